using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gosset.Kernels;

/// <summary>
/// 128-bit kernels for the <see cref="E8BoxCode"/> matrix through the cross-platform Vector128 API
/// (SSE4.1 or AdvSimd): one block (4 lanes) of a chunk at a time, block terms in scalar code.
/// The int8 activation modes have no 128-bit variant; they run the scalar reference.
/// </summary>
[SkipLocalsInit]
internal static unsafe class E8GemvVector128
{
    public static bool IsSupported => KernelSupport.IsSupported(KernelIsa.Vector128);

    public static void Gemv(PackedE8Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        if (a.Mode == ActivationMode.Float32) GemvFloat(m, a, r0, r1, g0, g1, y);
        else E8GemvScalar.Gemv(m, a, r0, r1, g0, g1, y);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Widen4(byte* p)
        => Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalar(*(uint*)p).AsByte())).AsInt32();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GemvFloat(PackedE8Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        int groups = m.Groups, cp = m.PaddedCols, nb = a.Blocks, batch = a.Batch, rows = m.Rows, rowBytes = m.RowBytes;
        Vector128<float>* acc = stackalloc Vector128<float>[batch];
        float* sBa = stackalloc float[16];
        var fifteen = Vector128.Create(15u);
        fixed (byte* nib0 = m.Nibbles)
        fixed (uint* sw0 = m.ScaleWords)
        fixed (float* x20 = a.X2, nx0 = a.Nx, cf0 = a.Cf, tab = m.HalfTable16)
        {
            for (int r = r0; r < r1; r++)
            {
                byte* nib = nib0 + (long)r * rowBytes;
                uint* sw = sw0 + (long)r * groups;
                for (int c = 0; c < batch; c++) acc[c] = Vector128<float>.Zero;
                for (int g = g0; g < g1; g++)
                {
                    uint word = sw[g];
                    for (int j = 0; j < 16; j++) sBa[j] = tab[(word >> (2 * j)) & 3];
                    for (int h = 0; h < 4; h++) // blocks 4h..4h+3 in lanes 0..3
                    {
                        var wv = Vector128.Load((uint*)(nib + 64 * g + 16 * h));
                        var sB = Vector128.Load(sBa + 4 * h);
                        var pm = (((wv & Vector128.Create(0x11111111u)) * 0x11111111u) << 3).AsInt32() >> 31;
                        var d0 = Vector128.ConvertToSingle((wv & fifteen).AsInt32());
                        var d1 = Vector128.ConvertToSingle(((wv >>> 4) & fifteen).AsInt32());
                        var d2 = Vector128.ConvertToSingle(((wv >>> 8) & fifteen).AsInt32());
                        var d3 = Vector128.ConvertToSingle(((wv >>> 12) & fifteen).AsInt32());
                        var d4 = Vector128.ConvertToSingle(((wv >>> 16) & fifteen).AsInt32());
                        var d5 = Vector128.ConvertToSingle(((wv >>> 20) & fifteen).AsInt32());
                        var d6 = Vector128.ConvertToSingle(((wv >>> 24) & fifteen).AsInt32());
                        var d7 = Vector128.ConvertToSingle((wv >>> 28).AsInt32());
                        for (int c = 0; c < batch; c++)
                        {
                            float* x = x20 + (long)c * cp + 128 * g + 4 * h;
                            var s = d0 * Vector128.Load(x);
                            var t = d1 * Vector128.Load(x + 16);
                            s = Vector128.FusedMultiplyAdd(d2, Vector128.Load(x + 32), s);
                            t = Vector128.FusedMultiplyAdd(d3, Vector128.Load(x + 48), t);
                            s = Vector128.FusedMultiplyAdd(d4, Vector128.Load(x + 64), s);
                            t = Vector128.FusedMultiplyAdd(d5, Vector128.Load(x + 80), t);
                            s = Vector128.FusedMultiplyAdd(d6, Vector128.Load(x + 96), s);
                            t = Vector128.FusedMultiplyAdd(d7, Vector128.Load(x + 112), t);
                            long bo = (long)c * nb + 16 * g + 4 * h;
                            var bt = Vector128.Load(nx0 + bo) + (Vector128.Load(cf0 + bo).AsInt32() & pm).AsSingle();
                            acc[c] = Vector128.FusedMultiplyAdd((s + t) + bt, sB, acc[c]);
                        }
                    }
                }
                float rs = m.RowScales[r];
                for (int c = 0; c < batch; c++) y[c * rows + r] += rs * Vector128.Sum(acc[c]);
            }
        }
    }

    /// <summary>Decodes rows [r0, r1) to fp32 in natural order, half a block per vector; bit-exact with the scalar decoder.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Decode(PackedE8Matrix m, int r0, int r1, Span<float> dst)
    {
        int cols = m.Cols, rowBytes = m.RowBytes, groups = m.Groups;
        // nibble i of a word: (word · 2^(28 − 4i)) >>> 28
        var mulLo = Vector128.Create(1u << 28, 1u << 24, 1u << 20, 1u << 16);
        var mulHi = Vector128.Create(1u << 12, 1u << 8, 1u << 4, 1u);
        var dLo = Vector128.Create(-1, 1, 1, 1);
        var dHi = Vector128.Create(1);
        Span<float> tail = stackalloc float[8];
        fixed (byte* nib0 = m.Nibbles)
        fixed (uint* sw0 = m.ScaleWords)
        fixed (float* tab = m.HalfTable16, d0 = dst, t0 = tail)
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
                    var sc = Vector128.Create(tab[(sw[b >> 4] >> (2 * (b & 15))) & 3] * rs);
                    var pm = Vector128.Create(-E8BoxCode.Parity(word));
                    var wv = Vector128.Create(word);
                    var u0 = ((wv * mulLo) >>> 28).AsInt32();
                    var u1 = ((wv * mulHi) >>> 28).AsInt32();
                    var v0 = u0 + u0 - Vector128.Create(16) + (dLo & pm);
                    var v1 = u1 + u1 - Vector128.Create(16) + (dHi & pm);
                    bool full = 8 * b + 8 <= cols;
                    float* o = full ? drow + 8 * b : t0;
                    Vector128.Store(Vector128.ConvertToSingle(v0) * sc, o);
                    Vector128.Store(Vector128.ConvertToSingle(v1) * sc, o + 4);
                    if (!full) tail[..(cols - 8 * b)].CopyTo(new Span<float>(drow + 8 * b, cols - 8 * b));
                }
            }
        }
    }
}
