using System.Runtime.CompilerServices;

namespace Gosset.Kernels;

/// <summary>
/// Scalar reference for the <see cref="E8BoxCode"/> matrix kernels: decodes every block with
/// <see cref="E8BoxCode.DecodeDoubled"/> and forms the dot products in the obvious order.
/// The SIMD variants are tested against it.
/// </summary>
[SkipLocalsInit]
internal static class E8GemvScalar
{
    /// <summary>y[c·rows + r] for r in [r0, r1), every c of the batch.</summary>
    public static void Gemv(PackedE8Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        Span<int> v = stackalloc int[8];
        int nb = a.Blocks, cp = a.PaddedCols;
        var scales = E8BoxCode.BlockScales;
        for (int r = r0; r < r1; r++)
        {
            for (int c = 0; c < a.Batch; c++)
            {
                float acc = 0f;
                for (int b = 16 * g0; b < Math.Min(16 * g1, m.StoredBlocks); b++)
                {
                    E8BoxCode.DecodeDoubled(m.Word(r, b), v);
                    float half = scales[m.ScaleIndex(r, b)] * 0.5f;
                    if (a.Mode == ActivationMode.Float32)
                    {
                        var x = a.Xo.AsSpan(c * cp + 8 * b, 8);
                        float s = 0f;
                        for (int i = 0; i < 8; i++) s += v[i] * x[i];
                        acc += half * s;
                    }
                    else
                    {
                        var q = a.Qo.AsSpan(c * cp + 8 * b, 8);
                        int t = 0;
                        for (int i = 0; i < 8; i++) t += v[i] * q[i];
                        acc += half * a.Sig[c * nb + b] * t;
                    }
                }
                y[c * m.Rows + r] += m.RowScales[r] * acc;
            }
        }
    }

    /// <summary>Decodes rows [r0, r1) to fp32, natural order, [r1 − r0][cols].</summary>
    public static void Decode(PackedE8Matrix m, int r0, int r1, Span<float> dst)
    {
        Span<float> blk = stackalloc float[8];
        int cols = m.Cols;
        for (int r = r0; r < r1; r++)
        {
            var row = dst.Slice((r - r0) * cols, cols);
            for (int b = 0; 8 * b < cols; b++)
            {
                E8BoxCode.DecodeBlock(m.Word(r, b), m.ScaleIndex(r, b), m.RowScales[r], blk);
                int n = Math.Min(8, cols - 8 * b);
                blk[..n].CopyTo(row.Slice(8 * b, n));
            }
        }
    }
}
