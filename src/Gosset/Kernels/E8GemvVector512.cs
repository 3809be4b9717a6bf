using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gosset.Kernels;

/// <summary>
/// AVX-512 kernels for the <see cref="E8BoxCode"/> matrix: one group = 16 blocks = 128 weights =
/// 64 bytes of nibbles per iteration. Nothing per weight but unpacking and one multiply-add:
/// block scales and the parity correction are applied to 16 block sums at a time.
/// </summary>
/// <remarks>
/// Parity of 16 blocks at once: t = w &amp; 0x11111111 has one bit per nibble; t·0x11111111 sums
/// them into bits 28..31 without carries (each partial sum ≤ 8), so bit 28 is the parity, and an
/// arithmetic shift of (t·0x11111111) &lt;&lt; 3 makes it a 0 / −1 lane mask.
/// .NET 10 exposes no 512-bit VNNI on this CPU (only AVX10), so int8 dot products use
/// vpmaddubsw + vpmaddwd (no saturation: |15·127·2 + 15·127·2| &lt; 2¹⁵).
/// </remarks>
[SkipLocalsInit]
internal static unsafe class E8GemvVector512
{
    public static bool IsSupported => KernelSupport.IsSupported(KernelIsa.Vector512);

    public static void Gemv(PackedE8Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        if (a.Mode == ActivationMode.Float32)
        {
            if (a.Batch == 1) GemvFloat1(m, a, r0, r1, g0, g1, y); else GemvFloat(m, a, r0, r1, g0, g1, y);
        }
        else if (a.Batch == 1) GemvInt1(m, a, r0, r1, g0, g1, y);
        else GemvInt(m, a, r0, r1, g0, g1, y);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> BlockScales(Vector512<float> table16, uint word)
        => Avx512F.PermuteVar16x32(table16, Avx512F.ShiftRightLogicalVariable(Vector512.Create(word),
            Vector512.Create(0u, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)).AsInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> ParityMask(Vector512<uint> words)
        => (((words & Vector512.Create(0x11111111u)) * 0x11111111u) << 3).AsInt32() >> 31;

    // Batch 1: accumulators stay in registers. Lane L of every vector is block L of the group
    // (X2 is transposed to match), so the block scales multiply one block-sum vector per group.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GemvFloat1(PackedE8Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        int groups = m.Groups, rowBytes = m.RowBytes;
        var fifteen = Vector512.Create(15u);
        fixed (byte* nib0 = m.Nibbles)
        fixed (uint* sw0 = m.ScaleWords)
        fixed (float* x20 = a.X2, nx0 = a.Nx, cf0 = a.Cf, tab = m.HalfTable16)
        {
            var table = Vector512.Load(tab);
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                uint* sw = sw0 + (long)r * groups;
                var a0 = Vector512<float>.Zero; var a1 = a0;
                int g = g0;
                for (; g + 1 < g1; g += 2) // two independent accumulators, no branch
                {
                    a0 = Vector512.FusedMultiplyAdd(FloatGroup(nib + 64 * g, x20 + 128 * g, nx0 + 16 * g, cf0 + 16 * g, fifteen), BlockScales(table, sw[g]), a0);
                    a1 = Vector512.FusedMultiplyAdd(FloatGroup(nib + 64 * g + 64, x20 + 128 * g + 128, nx0 + 16 * g + 16, cf0 + 16 * g + 16, fifteen), BlockScales(table, sw[g + 1]), a1);
                }
                if (g < g1)
                    a0 = Vector512.FusedMultiplyAdd(FloatGroup(nib + 64 * g, x20 + 128 * g, nx0 + 16 * g, cf0 + 16 * g, fifteen), BlockScales(table, sw[g]), a0);
                y[r] += m.RowScales[r] * Vector512.Sum(a0 + a1);
            }
        }
    }

    // Block sums Σ vᵢ·2xᵢ of one group (lane L = block L), before the block scales.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> FloatGroup(byte* p, float* x, float* nx, float* cf, Vector512<uint> fifteen)
    {
        var wv = Vector512.Load((uint*)p);
        var bt = Vector512.Load(nx) + (Vector512.Load(cf).AsInt32() & ParityMask(wv)).AsSingle();
        return NibbleDot.Dot(wv, x, fifteen) + bt;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GemvInt1(PackedE8Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        int groups = m.Groups, rowBytes = m.RowBytes;
        var low = Vector512.Create((byte)15);
        var ones = Vector512.Create((short)1);
        fixed (byte* nib0 = m.Nibbles)
        fixed (uint* sw0 = m.ScaleWords)
        fixed (sbyte* q0 = a.Q)
        fixed (int* init0 = a.Init, ci0 = a.Ci)
        fixed (float* sig0 = a.Sig, tab = m.HalfTable16)
        {
            var table = Vector512.Load(tab);
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                uint* sw = sw0 + (long)r * groups;
                var a0 = Vector512<float>.Zero; var a1 = a0;
                int g = g0;
                for (; g + 1 < g1; g += 2)
                {
                    a0 = Vector512.FusedMultiplyAdd(IntGroup(nib + 64 * g, q0 + 128 * g, init0 + 16 * g, ci0 + 16 * g, low, ones),
                        BlockScales(table, sw[g]) * Vector512.Load(sig0 + 16 * g), a0);
                    int h = g + 1;
                    a1 = Vector512.FusedMultiplyAdd(IntGroup(nib + 64 * h, q0 + 128 * h, init0 + 16 * h, ci0 + 16 * h, low, ones),
                        BlockScales(table, sw[h]) * Vector512.Load(sig0 + 16 * h), a1);
                }
                if (g < g1)
                    a0 = Vector512.FusedMultiplyAdd(IntGroup(nib + 64 * g, q0 + 128 * g, init0 + 16 * g, ci0 + 16 * g, low, ones),
                        BlockScales(table, sw[g]) * Vector512.Load(sig0 + 16 * g), a0);
                y[r] += m.RowScales[r] * Vector512.Sum(a0 + a1);
            }
        }
    }

    // Σ vᵢqᵢ of 16 blocks as floats: 2(Σuq − 8Q) + p·C.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> IntGroup(byte* p, sbyte* q, int* init, int* ci, Vector512<byte> low, Vector512<short> ones)
    {
        var bytes = Vector512.Load(p);
        var lo = bytes & low;
        var hi = (bytes.AsUInt16() >>> 4).AsByte() & low;
        var s16 = Avx512BW.MultiplyAddAdjacent(lo, Vector512.Load(q)) + Avx512BW.MultiplyAddAdjacent(hi, Vector512.Load(q + 64));
        var t = Avx512BW.MultiplyAddAdjacent(s16, ones) + Vector512.Load(init);
        return Vector512.ConvertToSingle(t + t + (Vector512.Load(ci) & ParityMask(bytes.AsUInt32())));
    }

    // Batch > 1: the doubled coordinates vᵢ = 2uᵢ − 16 + p·dᵢ are decoded to floats once per group
    // (parity and offset included), so each activation vector costs 8 multiply-adds and one scaled
    // accumulate per 16 blocks. X2 holds 2x, hence the final factor ½.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GemvFloat(PackedE8Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        int groups = m.Groups, cp = m.PaddedCols, batch = a.Batch, rows = m.Rows, rowBytes = m.RowBytes;
        Vector512<float>* acc = stackalloc Vector512<float>[batch];
        var fifteen = Vector512.Create(15u);
        var sixteen = Vector512.Create(16);
        fixed (byte* nib0 = m.Nibbles)
        fixed (uint* sw0 = m.ScaleWords)
        fixed (float* x20 = a.X2, tab = m.HalfTable16)
        {
            var table = Vector512.Load(tab);
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                uint* sw = sw0 + (long)r * groups;
                for (int c = 0; c < batch; c++) acc[c] = Vector512<float>.Zero;
                for (int g = g0; g < g1; g++)
                {
                    var wv = Vector512.Load((uint*)(nib + 64 * g));
                    var sB = BlockScales(table, sw[g]);
                    var pm = ParityMask(wv);   // −p
                    var u0 = (wv & fifteen).AsInt32();
                    var d0 = Vector512.ConvertToSingle(u0 + u0 - sixteen + pm);   // d₀ = −1: +(−p)
                    var d1 = Dec(wv, 4, pm); var d2 = Dec(wv, 8, pm); var d3 = Dec(wv, 12, pm);
                    var d4 = Dec(wv, 16, pm); var d5 = Dec(wv, 20, pm); var d6 = Dec(wv, 24, pm);
                    var u7 = (wv >>> 28).AsInt32();
                    var d7 = Vector512.ConvertToSingle(u7 + u7 - sixteen - pm);
                    for (int c = 0; c < batch; c++)
                    {
                        float* x = x20 + (long)c * cp + 128 * g;
                        var st = NibbleDot.Dot(d0, d1, d2, d3, d4, d5, d6, d7, x);
                        acc[c] = Vector512.FusedMultiplyAdd(st, sB, acc[c]);
                    }
                }
                float rs = m.RowScales[r] * 0.5f;
                for (int c = 0; c < batch; c++) y[c * rows + r] += rs * Vector512.Sum(acc[c]);
            }
        }
    }

    // vⱼ = 2uⱼ − 16 + p for j ≥ 1 (pm = −p).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Dec(Vector512<uint> wv, [System.Diagnostics.CodeAnalysis.ConstantExpected] int shift, Vector512<int> pm)
    {
        var u = ((wv >>> shift) & Vector512.Create(15u)).AsInt32();
        return Vector512.ConvertToSingle(u + u - Vector512.Create(16) - pm);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GemvInt(PackedE8Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        int groups = m.Groups, cp = m.PaddedCols, nb = a.Blocks, batch = a.Batch, rows = m.Rows, rowBytes = m.RowBytes;
        Vector512<float>* acc = stackalloc Vector512<float>[batch];
        var low = Vector512.Create((byte)15);
        var ones = Vector512.Create((short)1);
        fixed (byte* nib0 = m.Nibbles)
        fixed (uint* sw0 = m.ScaleWords)
        fixed (sbyte* q0 = a.Q)
        fixed (int* init0 = a.Init, ci0 = a.Ci)
        fixed (float* sig0 = a.Sig, tab = m.HalfTable16)
        {
            var table = Vector512.Load(tab);
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                uint* sw = sw0 + (long)r * groups;
                for (int c = 0; c < batch; c++) acc[c] = Vector512<float>.Zero;
                for (int g = g0; g < g1; g++)
                {
                    byte* p = nib + 64 * g;
                    var sB = BlockScales(table, sw[g]);
                    var bytes = Vector512.Load(p);
                    var pm = ParityMask(bytes.AsUInt32());
                    var lo = bytes & low;
                    var hi = (bytes.AsUInt16() >>> 4).AsByte() & low;
                    for (int c = 0; c < batch; c++)
                    {
                        sbyte* q = q0 + (long)c * cp + 128 * g;
                        var s16 = Avx512BW.MultiplyAddAdjacent(lo, Vector512.Load(q)) + Avx512BW.MultiplyAddAdjacent(hi, Vector512.Load(q + 64));
                        long bo = (long)c * nb + 16 * g;
                        var t = Avx512BW.MultiplyAddAdjacent(s16, ones) + Vector512.Load(init0 + bo);
                        t = t + t + (Vector512.Load(ci0 + bo) & pm);
                        acc[c] = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(t), sB * Vector512.Load(sig0 + bo), acc[c]);
                    }
                }
                float rs = m.RowScales[r];
                for (int c = 0; c < batch; c++) y[c * rows + r] += rs * Vector512.Sum(acc[c]);
            }
        }
    }

    /// <summary>Decodes rows [r0, r1) to fp32 in natural order; bit-exact with <see cref="E8GemvScalar.Decode"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Decode(PackedE8Matrix m, int r0, int r1, Span<float> dst)
    {
        int groups = m.Groups, cols = m.Cols, rowBytes = m.RowBytes;
        int fullGroups = cols / 128;
        // Interleave low (even entries) and high (odd entries) nibbles back to natural order.
        var ilA = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        var ilB = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        var bi = Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        // p·dᵢ = −pm for i ≠ 0 and +pm for i = 0 (pm = −p).
        var dNeg = Vector512.Create(1, -1, -1, -1, -1, -1, -1, -1, 1, -1, -1, -1, -1, -1, -1, -1);
        var fifteen = Vector512.Create(15);
        var sixteen = Vector512.Create(16);
        Span<float> tail = stackalloc float[128];
        fixed (byte* nib0 = m.Nibbles)
        fixed (uint* sw0 = m.ScaleWords)
        fixed (float* tab = m.HalfTable16, d0 = dst, t0 = tail)
        {
            var table = Vector512.Load(tab);
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                var sBr = Vector512.Create(m.RowScales[r]);
                float* drow = d0 + (long)(r - r0) * cols;
                for (int g = 0; g < groups; g++)
                {
                    byte* p = nib + 64 * g;
                    var sB = BlockScales(table, sw0[(long)r * groups + g]) * sBr;
                    var pm = ParityMask(Vector512.Load((uint*)p));
                    float* o = g < fullGroups ? drow + 128 * g : t0;
                    for (int k = 0; k < 4; k++)
                    {
                        var w = Avx512F.ConvertToVector512Int32(Vector128.Load(p + 16 * k));
                        var lo = w & fifteen;
                        var hi = w >>> 4;
                        var bk = bi + Vector512.Create(4 * k);
                        var u0 = Avx512F.PermuteVar16x32x2(lo, ilA, hi);
                        var v0 = u0 + u0 - sixteen + Avx512F.PermuteVar16x32(pm, bk) * dNeg;
                        Vector512.Store(Vector512.ConvertToSingle(v0) * Avx512F.PermuteVar16x32(sB, bk), o + 32 * k);
                        var bk2 = bk + Vector512.Create(2);
                        var u1 = Avx512F.PermuteVar16x32x2(lo, ilB, hi);
                        var v1 = u1 + u1 - sixteen + Avx512F.PermuteVar16x32(pm, bk2) * dNeg;
                        Vector512.Store(Vector512.ConvertToSingle(v1) * Avx512F.PermuteVar16x32(sB, bk2), o + 32 * k + 16);
                    }
                    if (g >= fullGroups) new ReadOnlySpan<float>(t0, cols - 128 * g).CopyTo(new Span<float>(drow + 128 * g, cols - 128 * g));
                }
            }
        }
    }
}
