using System.Numerics.Tensors;

namespace Gosset.Kernels;

/// <summary>
/// The fp32 reference product y = Wx with <see cref="TensorPrimitives.Dot(ReadOnlySpan{float}, ReadOnlySpan{float})"/>
/// per row, on the same <see cref="RowParallel"/> threading as the quantized kernels (the speed baseline).
/// </summary>
public static class DenseGemv
{
    /// <summary>Y = W·X: w [rows][cols], x [batch][cols], y [batch][rows].</summary>
    public static void Multiply(float[] w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y, int batch = 1, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (w.LongLength < (long)rows * cols) throw new ArgumentException("w is shorter than rows·cols.", nameof(w));
        if (x.Length < batch * cols || y.Length < batch * rows) throw new ArgumentException("x or y is too short for the batch.");
        float[] xs = System.Buffers.ArrayPool<float>.Shared.Rent(batch * cols);
        float[] ys = System.Buffers.ArrayPool<float>.Shared.Rent(batch * rows);
        try
        {
            x[..(batch * cols)].CopyTo(xs);
            RowParallel.For(rows, threads, (r0, r1) =>
            {
                for (int r = r0; r < r1; r++)
                {
                    var row = new ReadOnlySpan<float>(w, r * cols, cols);
                    for (int c = 0; c < batch; c++) ys[c * rows + r] = TensorPrimitives.Dot(row, new ReadOnlySpan<float>(xs, c * cols, cols));
                }
            });
            ys.AsSpan(0, batch * rows).CopyTo(y);
        }
        finally
        {
            System.Buffers.ArrayPool<float>.Shared.Return(xs);
            System.Buffers.ArrayPool<float>.Shared.Return(ys);
        }
    }
}
