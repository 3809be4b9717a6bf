using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gosset.Kernels;

/// <summary>
/// AVX2 kernels for the <see cref="E8BoxCode"/> matrix: the Vector512 algorithm on half groups
/// (8 blocks = 32 bytes of nibbles). int8 dot products use AVX-VNNI vpdpbusd when present,
/// otherwise vpmaddubsw + vpmaddwd.
/// </summary>
[SkipLocalsInit]
internal static unsafe class E8GemvVector256
{
    public static bool IsSupported => KernelSupport.IsSupported(KernelIsa.Vector256);

    public static void Gemv(PackedE8Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        if (a.Mode == ActivationMode.Float32) GemvFloat(m, a, r0, r1, g0, g1, y);
        else if (AvxVnni.IsSupported) GemvInt<Vnni>(m, a, r0, r1, g0, g1, y);
        else GemvInt<MaddUbs>(m, a, r0, r1, g0, g1, y);
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> BlockScales(Vector256<float> table8, uint word8)
        => Avx2.PermuteVar8x32(table8, Avx2.ShiftRightLogicalVariable(Vector256.Create(word8), Vector256.Create(0u, 2, 4, 6, 8, 10, 12, 14)).AsInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> ParityMask(Vector256<uint> words)
        => (((words & Vector256.Create(0x11111111u)) * 0x11111111u) << 3).AsInt32() >> 31;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GemvFloat(PackedE8Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        int groups = m.Groups, cp = m.PaddedCols, nb = a.Blocks, batch = a.Batch, rows = m.Rows, rowBytes = m.RowBytes;
        Vector256<float>* acc = stackalloc Vector256<float>[batch];
        var fifteen = Vector256.Create(15u);
        fixed (byte* nib0 = m.Nibbles)
        fixed (uint* sw0 = m.ScaleWords)
        fixed (float* x20 = a.X2, nx0 = a.Nx, cf0 = a.Cf, tab = m.HalfTable16)
        {
            var table = Vector256.Load(tab);
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                uint* sw = sw0 + (long)r * groups;
                for (int c = 0; c < batch; c++) acc[c] = Vector256<float>.Zero;
                for (int g = g0; g < g1; g++)
                {
                    for (int h = 0; h < 2; h++) // half group: blocks 8h..8h+7 in lanes 0..7
                    {
                        var wv = Vector256.Load((uint*)(nib + 64 * g + 32 * h));
                        var sB = BlockScales(table, sw[g] >> (16 * h));
                        var pm = ParityMask(wv);
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
                            long bo = (long)c * nb + 16 * g + 8 * h;
                            var bt = Vector256.Load(nx0 + bo) + (Vector256.Load(cf0 + bo).AsInt32() & pm).AsSingle();
                            acc[c] = Vector256.FusedMultiplyAdd(st + bt, sB, acc[c]);
                        }
                    }
                }
                float rs = m.RowScales[r];
                for (int c = 0; c < batch; c++) y[c * rows + r] += rs * Vector256.Sum(acc[c]);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GemvInt<TDot>(PackedE8Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y) where TDot : IDot4
    {
        int groups = m.Groups, cp = m.PaddedCols, nb = a.Blocks, batch = a.Batch, rows = m.Rows, rowBytes = m.RowBytes;
        Vector256<float>* acc = stackalloc Vector256<float>[batch];
        var low = Vector256.Create((byte)15);
        fixed (byte* nib0 = m.Nibbles)
        fixed (uint* sw0 = m.ScaleWords)
        fixed (sbyte* q0 = a.Q)
        fixed (int* init0 = a.Init, ci0 = a.Ci)
        fixed (float* sig0 = a.Sig, tab = m.HalfTable16)
        {
            var table = Vector256.Load(tab);
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                uint* sw = sw0 + (long)r * groups;
                for (int c = 0; c < batch; c++) acc[c] = Vector256<float>.Zero;
                for (int g = g0; g < g1; g++)
                {
                    for (int h = 0; h < 2; h++)
                    {
                        byte* p = nib + 64 * g + 32 * h;
                        var sB = BlockScales(table, sw[g] >> (16 * h));
                        var bytes = Vector256.Load(p);
                        var pm = ParityMask(bytes.AsUInt32());
                        var lo = bytes & low;
                        var hi = (bytes.AsUInt16() >>> 4).AsByte() & low;
                        for (int c = 0; c < batch; c++)
                        {
                            sbyte* q = q0 + (long)c * cp + 128 * g + 32 * h;
                            long bo = (long)c * nb + 16 * g + 8 * h;
                            var t = TDot.Dot(TDot.Dot(Vector256.Load(init0 + bo), lo, Vector256.Load(q)), hi, Vector256.Load(q + 64));
                            t = t + t + (Vector256.Load(ci0 + bo) & pm);
                            acc[c] = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(t), sB * Vector256.Load(sig0 + bo), acc[c]);
                        }
                    }
                }
                float rs = m.RowScales[r];
                for (int c = 0; c < batch; c++) y[c * rows + r] += rs * Vector256.Sum(acc[c]);
            }
        }
    }

    /// <summary>Decodes rows [r0, r1) to fp32 in natural order, one block per vector; bit-exact with the scalar decoder.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Decode(PackedE8Matrix m, int r0, int r1, Span<float> dst)
    {
        int cols = m.Cols, rowBytes = m.RowBytes, groups = m.Groups;
        int fullBlocks = cols / 8;
        var shifts = Vector256.Create(0u, 4, 8, 12, 16, 20, 24, 28);
        var d = Vector256.Create(-1, 1, 1, 1, 1, 1, 1, 1);
        var fifteen = Vector256.Create(15u);
        Span<float> tail = stackalloc float[8];
        fixed (byte* nib0 = m.Nibbles)
        fixed (uint* sw0 = m.ScaleWords)
        fixed (float* tab = m.HalfTable16, d0 = dst)
        {
            for (int r = r0; r < r1; r++)
            {
                uint* w = (uint*)(nib0 + (long)r * rowBytes);
                uint* sw = sw0 + (long)r * groups;
                float rs = m.RowScales[r];
                float* drow = d0 + (long)(r - r0) * cols;
                int nbk = (cols + 7) / 8;
                for (int b = 0; b < nbk; b++)
                {
                    uint word = w[b];
                    float sc = tab[(sw[b >> 4] >> (2 * (b & 15))) & 3] * rs;
                    var u = (Avx2.ShiftRightLogicalVariable(Vector256.Create(word), shifts) & fifteen).AsInt32();
                    var v = u + u - Vector256.Create(16) + (d & Vector256.Create(-E8BoxCode.Parity(word)));
                    var f = Vector256.ConvertToSingle(v) * Vector256.Create(sc);
                    if (b < fullBlocks) Vector256.Store(f, drow + 8 * b);
                    else
                    {
                        fixed (float* t = tail) Vector256.Store(f, t);
                        tail[..(cols - 8 * b)].CopyTo(new Span<float>(drow + 8 * b, cols - 8 * b));
                    }
                }
            }
        }
    }
}
