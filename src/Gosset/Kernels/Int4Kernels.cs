using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gosset.Kernels;

/// <summary>
/// Kernels for the INT4 baseline (<see cref="PackedInt4Matrix"/>): the same unpacking, activation
/// layouts (<see cref="E8Activations"/>), threading and vector widths as the E8 kernels, without
/// the parity correction and with one scale per 32 entries. The 128-bit level runs the scalar
/// reference.
/// </summary>
[SkipLocalsInit]
internal static unsafe class Int4Kernels
{
    public static void Gemv(KernelIsa isa, PackedInt4Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        switch (isa)
        {
            case KernelIsa.Vector512:
                if (a.Mode == ActivationMode.Float32) { if (a.Batch == 1) Float512B1(m, a, r0, r1, g0, g1, y); else Float512(m, a, r0, r1, g0, g1, y); }
                else if (a.Batch == 1) Int512B1(m, a, r0, r1, g0, g1, y);
                else Int512(m, a, r0, r1, g0, g1, y);
                break;
            case KernelIsa.Vector256:
                if (a.Mode == ActivationMode.Float32) Float256(m, a, r0, r1, g0, g1, y);
                else if (AvxVnni.IsSupported) Int256<Vnni>(m, a, r0, r1, g0, g1, y);
                else Int256<MaddUbs>(m, a, r0, r1, g0, g1, y);
                break;
            default: Scalar(m, a, r0, r1, g0, g1, y); break;
        }
    }

    /// <summary>Scalar reference.</summary>
    public static void Scalar(PackedInt4Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        int cp = a.PaddedCols, nb = a.Blocks;
        for (int r = r0; r < r1; r++)
        {
            var nib = m.Nibbles.AsSpan(r * m.RowBytes, m.RowBytes);
            for (int c = 0; c < a.Batch; c++)
            {
                float acc = 0f;
                for (int g = 4 * g0; g < Math.Min(4 * g1, m.GroupsPerRow); g++)
                {
                    float d = PackedInt4Matrix.ScaleValue(m.Scales[r * m.GroupsPerRow + g]);
                    if (a.Mode == ActivationMode.Float32)
                    {
                        float s = 0f;
                        for (int i = 32 * g; i < 32 * g + 32; i++) s += (((nib[i >> 1] >> (4 * (i & 1))) & 15) - 8) * a.Xo[c * cp + i];
                        acc += d * s;
                    }
                    else
                    {
                        for (int b = 4 * g; b < 4 * g + 4; b++)
                        {
                            int t = 0;
                            for (int i = 8 * b; i < 8 * b + 8; i++) t += (((nib[i >> 1] >> (4 * (i & 1))) & 15) - 8) * a.Qo[c * cp + i];
                            acc += d * a.Sig[c * nb + b] * t;
                        }
                    }
                }
                y[c * m.Rows + r] += acc;
            }
        }
    }

    // fp16 bits (positive normal or zero) to float: exact for every scale the format stores.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> HalfToSingle(ushort* h)
    {
        var bits = Vector128.WidenLower(Vector128.CreateScalar(*(ulong*)h).AsUInt16());
        var f = (bits << 13) + Vector128.Create(0x38000000u);
        return (f & ~Vector128.Equals(bits, Vector128<uint>.Zero)).AsSingle();
    }

    // Batch 1: register accumulators; lane L = block L of the group as in the E8 kernels.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Float512B1(PackedInt4Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        int rowBytes = m.RowBytes, gpr = m.GroupsPerRow;
        var expand = Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
        var fifteen = Vector512.Create(15u);
        var half = Vector512.Create(0.5f);
        fixed (byte* nib0 = m.Nibbles)
        fixed (ushort* sc0 = m.Scales)
        fixed (float* x20 = a.X2, nx0 = a.Nx)
        {
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                var a0 = Vector512<float>.Zero; var a1 = a0;
                ushort* sr = sc0 + (long)r * gpr;
                int g = g0;
                for (; g + 1 < g1; g += 2)
                {
                    a0 = Vector512.FusedMultiplyAdd(FloatGroup(nib + 64 * g, x20 + 128 * g, nx0 + 16 * g, fifteen), GroupScales(sr + 4 * g, expand, half), a0);
                    a1 = Vector512.FusedMultiplyAdd(FloatGroup(nib + 64 * g + 64, x20 + 128 * g + 128, nx0 + 16 * g + 16, fifteen), GroupScales(sr + 4 * g + 4, expand, half), a1);
                }
                if (g < g1)
                    a0 = Vector512.FusedMultiplyAdd(FloatGroup(nib + 64 * g, x20 + 128 * g, nx0 + 16 * g, fifteen), GroupScales(sr + 4 * g, expand, half), a0);
                y[r] += Vector512.Sum(a0 + a1);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> GroupScales(ushort* h, Vector512<int> expand, Vector512<float> half)
        => Avx512F.PermuteVar16x32(HalfToSingle(h).ToVector256Unsafe().ToVector512Unsafe(), expand) * half;

    // Σ (uᵢ·2xᵢ) − 16·X per block of one group (lane L = block L), before the group scales.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> FloatGroup(byte* p, float* x, float* nx, Vector512<uint> fifteen)
    {
        var wv = Vector512.Load((uint*)p);
        return NibbleDot.Dot(wv, x, fifteen) + Vector512.Load(nx);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Int512B1(PackedInt4Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        int rowBytes = m.RowBytes, gpr = m.GroupsPerRow;
        var expand = Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
        var low = Vector512.Create((byte)15);
        var ones = Vector512.Create((short)1);
        fixed (byte* nib0 = m.Nibbles)
        fixed (ushort* sc0 = m.Scales)
        fixed (sbyte* q0 = a.Q)
        fixed (int* init0 = a.Init)
        fixed (float* sig0 = a.Sig)
        {
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                var a0 = Vector512<float>.Zero; var a1 = a0;
                for (int g = g0; g < g1; g++)
                {
                    byte* p = nib + 64 * g;
                    sbyte* q = q0 + 128 * g;
                    var sB = Avx512F.PermuteVar16x32(HalfToSingle(sc0 + (long)r * gpr + 4 * g).ToVector256Unsafe().ToVector512Unsafe(), expand);
                    var bytes = Vector512.Load(p);
                    var lo = bytes & low;
                    var hi = (bytes.AsUInt16() >>> 4).AsByte() & low;
                    var s16 = Avx512BW.MultiplyAddAdjacent(lo, Vector512.Load(q)) + Avx512BW.MultiplyAddAdjacent(hi, Vector512.Load(q + 64));
                    var t = Avx512BW.MultiplyAddAdjacent(s16, ones) + Vector512.Load(init0 + 16 * g);
                    var f = Vector512.ConvertToSingle(t) * (sB * Vector512.Load(sig0 + 16 * g));
                    if ((g & 1) == 0) a0 += f; else a1 += f;
                }
                y[r] += Vector512.Sum(a0 + a1);
            }
        }
    }

    // Batch > 1: values uⱼ − 8 decoded to floats once per group (as the E8 batch kernel does).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Float512(PackedInt4Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        int cp = m.PaddedCols, batch = a.Batch, rows = m.Rows, rowBytes = m.RowBytes, gpr = m.GroupsPerRow;
        Vector512<float>* acc = stackalloc Vector512<float>[batch];
        var expand = Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
        var fifteen = Vector512.Create(15u);
        var eight = Vector512.Create(8);
        var half = Vector512.Create(0.5f);
        fixed (byte* nib0 = m.Nibbles)
        fixed (ushort* sc0 = m.Scales)
        fixed (float* x20 = a.X2)
        {
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                for (int c = 0; c < batch; c++) acc[c] = Vector512<float>.Zero;
                for (int g = g0; g < g1; g++)
                {
                    var wv = Vector512.Load((uint*)(nib + 64 * g));
                    var sBd = Avx512F.PermuteVar16x32(HalfToSingle(sc0 + (long)r * gpr + 4 * g).ToVector256Unsafe().ToVector512Unsafe(), expand) * half;
                    var d0 = Vector512.ConvertToSingle((wv & fifteen).AsInt32() - eight);
                    var d1 = Vector512.ConvertToSingle(((wv >>> 4) & fifteen).AsInt32() - eight);
                    var d2 = Vector512.ConvertToSingle(((wv >>> 8) & fifteen).AsInt32() - eight);
                    var d3 = Vector512.ConvertToSingle(((wv >>> 12) & fifteen).AsInt32() - eight);
                    var d4 = Vector512.ConvertToSingle(((wv >>> 16) & fifteen).AsInt32() - eight);
                    var d5 = Vector512.ConvertToSingle(((wv >>> 20) & fifteen).AsInt32() - eight);
                    var d6 = Vector512.ConvertToSingle(((wv >>> 24) & fifteen).AsInt32() - eight);
                    var d7 = Vector512.ConvertToSingle((wv >>> 28).AsInt32() - eight);
                    for (int c = 0; c < batch; c++)
                    {
                        float* x = x20 + (long)c * cp + 128 * g;
                        var st = NibbleDot.Dot(d0, d1, d2, d3, d4, d5, d6, d7, x);
                        acc[c] = Vector512.FusedMultiplyAdd(st, sBd, acc[c]);
                    }
                }
                for (int c = 0; c < batch; c++) y[c * rows + r] += Vector512.Sum(acc[c]);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Int512(PackedInt4Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        int groups = m.PaddedCols / 128, cp = m.PaddedCols, nb = a.Blocks, batch = a.Batch, rows = m.Rows, rowBytes = m.RowBytes, gpr = m.GroupsPerRow;
        Vector512<float>* acc = stackalloc Vector512<float>[batch];
        var expand = Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
        var low = Vector512.Create((byte)15);
        var ones = Vector512.Create((short)1);
        fixed (byte* nib0 = m.Nibbles)
        fixed (ushort* sc0 = m.Scales)
        fixed (sbyte* q0 = a.Q)
        fixed (int* init0 = a.Init)
        fixed (float* sig0 = a.Sig)
        {
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                for (int c = 0; c < batch; c++) acc[c] = Vector512<float>.Zero;
                for (int g = g0; g < g1; g++)
                {
                    byte* p = nib + 64 * g;
                    var sB = Avx512F.PermuteVar16x32(HalfToSingle(sc0 + (long)r * gpr + 4 * g).ToVector256Unsafe().ToVector512Unsafe(), expand);
                    var bytes = Vector512.Load(p);
                    var lo = bytes & low;
                    var hi = (bytes.AsUInt16() >>> 4).AsByte() & low;
                    for (int c = 0; c < batch; c++)
                    {
                        sbyte* q = q0 + (long)c * cp + 128 * g;
                        long bo = (long)c * nb + 16 * g;
                        var s16 = Avx512BW.MultiplyAddAdjacent(lo, Vector512.Load(q)) + Avx512BW.MultiplyAddAdjacent(hi, Vector512.Load(q + 64));
                        var t = Avx512BW.MultiplyAddAdjacent(s16, ones) + Vector512.Load(init0 + bo);
                        acc[c] = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(t), sB * Vector512.Load(sig0 + bo), acc[c]);
                    }
                }
                for (int c = 0; c < batch; c++) y[c * rows + r] += Vector512.Sum(acc[c]);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Float256(PackedInt4Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        int cp = m.PaddedCols, nb = a.Blocks, batch = a.Batch, rows = m.Rows, rowBytes = m.RowBytes, gpr = m.GroupsPerRow;
        Vector256<float>* acc = stackalloc Vector256<float>[batch];
        var fifteen = Vector256.Create(15u);
        fixed (byte* nib0 = m.Nibbles)
        fixed (ushort* sc0 = m.Scales)
        fixed (float* x20 = a.X2, nx0 = a.Nx)
        {
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                for (int c = 0; c < batch; c++) acc[c] = Vector256<float>.Zero;
                for (int g = g0; g < g1; g++)
                {
                    var s4 = HalfToSingle(sc0 + (long)r * gpr + 4 * g) * Vector128.Create(0.5f);
                    for (int h = 0; h < 2; h++)
                    {
                        var wv = Vector256.Load((uint*)(nib + 64 * g + 32 * h));
                        var sBd = Vector256.Create(Vector128.Create(s4.GetElement(2 * h)), Vector128.Create(s4.GetElement(2 * h + 1)));
                        var d0 = Vector256.ConvertToSingle((wv & fifteen).AsInt32());
                        var d1 = Vector256.ConvertToSingle(((wv >>> 4) & fifteen).AsInt32());
                        var d2 = Vector256.ConvertToSingle(((wv >>> 8) & fifteen).AsInt32());
                        var d3 = Vector256.ConvertToSingle(((wv >>> 12) & fifteen).AsInt32());
                        var d4 = Vector256.ConvertToSingle(((wv >>> 16) & fifteen).AsInt32());
                        var d5 = Vector256.ConvertToSingle(((wv >>> 20) & fifteen).AsInt32());
                        var d6 = Vector256.ConvertToSingle(((wv >>> 24) & fifteen).AsInt32());
                        var d7 = Vector256.ConvertToSingle((wv >>> 28).AsInt32());
                        for (int c = 0; c < batch; c++)
                        {
                            float* x = x20 + (long)c * cp + 128 * g + 8 * h;
                            var st = NibbleDot.Dot(d0, d1, d2, d3, d4, d5, d6, d7, x);
                            acc[c] = Vector256.FusedMultiplyAdd(st + Vector256.Load(nx0 + (long)c * nb + 16 * g + 8 * h), sBd, acc[c]);
                        }
                    }
                }
                for (int c = 0; c < batch; c++) y[c * rows + r] += Vector256.Sum(acc[c]);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Int256<TDot>(PackedInt4Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y) where TDot : IDot4
    {
        int groups = m.PaddedCols / 128, cp = m.PaddedCols, nb = a.Blocks, batch = a.Batch, rows = m.Rows, rowBytes = m.RowBytes, gpr = m.GroupsPerRow;
        Vector256<float>* acc = stackalloc Vector256<float>[batch];
        var low = Vector256.Create((byte)15);
        fixed (byte* nib0 = m.Nibbles)
        fixed (ushort* sc0 = m.Scales)
        fixed (sbyte* q0 = a.Q)
        fixed (int* init0 = a.Init)
        fixed (float* sig0 = a.Sig)
        {
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                for (int c = 0; c < batch; c++) acc[c] = Vector256<float>.Zero;
                for (int g = g0; g < g1; g++)
                {
                    var s4 = HalfToSingle(sc0 + (long)r * gpr + 4 * g);
                    for (int h = 0; h < 2; h++)
                    {
                        byte* p = nib + 64 * g + 32 * h;
                        var sB = Vector256.Create(Vector128.Create(s4.GetElement(2 * h)), Vector128.Create(s4.GetElement(2 * h + 1)));
                        var bytes = Vector256.Load(p);
                        var lo = bytes & low;
                        var hi = (bytes.AsUInt16() >>> 4).AsByte() & low;
                        for (int c = 0; c < batch; c++)
                        {
                            sbyte* q = q0 + (long)c * cp + 128 * g + 32 * h;
                            long bo = (long)c * nb + 16 * g + 8 * h;
                            var t = TDot.Dot(TDot.Dot(Vector256.Load(init0 + bo), lo, Vector256.Load(q)), hi, Vector256.Load(q + 64));
                            acc[c] = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(t), sB * Vector256.Load(sig0 + bo), acc[c]);
                        }
                    }
                }
                for (int c = 0; c < batch; c++) y[c * rows + r] += Vector256.Sum(acc[c]);
            }
        }
    }

    /// <summary>int8 dot products of 4-byte lanes (u8 · s8 → s32), accumulated.</summary>
    internal interface IDot4
    {
        static abstract Vector256<int> Dot(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s);
    }

    internal readonly struct Vnni : IDot4
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s) => AvxVnni.MultiplyWideningAndAdd(acc, u, s);
    }

    internal readonly struct MaddUbs : IDot4
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s)
            => acc + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256.Create((short)1));
    }
}
