namespace Gosset.Kernels;

/// <summary>
/// The batched-product driver of the INT4 comparison kernels (<see cref="PackedInt4Matrix"/>): shape
/// checks, slices of <see cref="MaxBatch"/>, activation preparation, row threads and column tiles.
/// (The E8 box-code kernels have their own driver in <see cref="PackedE8Matrix"/>.)
/// </summary>
internal static class E8Kernels
{
    /// <summary>Largest batch the small-batch kernels take in one call.</summary>
    public const int MaxBatch = 16;

    /// <summary>
    /// Groups (128 columns) per column tile: the activations a tile needs for the whole batch stay
    /// within about 32 KiB (L1) while every row of the thread's chunk streams past them.
    /// </summary>
    public static int TileGroups(ActivationMode mode, int batch, int groups)
    {
        int bytesPerGroup = mode == ActivationMode.Float32 ? 128 * 4 + 16 * 8 : 128 + 16 * 12;
        int t = Math.Max(2, (32 << 10) / (bytesPerGroup * batch));
        // Even tiles: 112 groups at t = 51 become 3 tiles of 38 rather than 51 + 51 + 10.
        int tiles = (groups + t - 1) / t;
        return (groups + tiles - 1) / tiles;
    }

    /// <summary>Runs a kernel over rows [r0, r1) tile by tile; y (zeroed by the caller) accumulates.</summary>
    public static void Tiled(int groups, int tile, int r0, int r1, Action<int, int, int, int> kernel)
    {
        for (int g0 = 0; g0 < groups; g0 += tile) kernel(r0, r1, g0, Math.Min(groups, g0 + tile));
    }

    /// <summary>A GEMV kernel over rows [r0, r1) and column groups [g0, g1), accumulating into y.</summary>
    public delegate void RangeKernel(KernelIsa isa, E8Activations a, int r0, int r1, int g0, int g1, float[] y);

    /// <summary>
    /// The batched product shared by the 4-bit weight formats: checks shapes, splits batches above
    /// <see cref="MaxBatch"/>, prepares the activations once (fp32, int8 or E8 box code), then runs
    /// <paramref name="kernel"/> over row chunks (threads) and column tiles (L1-sized) into a pooled y.
    /// </summary>
    public static void Multiply(ReadOnlySpan<float> x, Span<float> y, int batch, int rows, int cols, int paddedCols,
        ActivationMode mode, KernelIsa? isa, int threads, RangeKernel kernel)
    {
        var k = isa ?? KernelSupport.Best;
        KernelSupport.Require(k);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        if (y.Length < batch * rows) throw new ArgumentException($"y holds {y.Length} values, expected batch·rows = {batch * rows}.", nameof(y));
        if (x.Length < batch * cols) throw new ArgumentException($"x holds {x.Length} values, expected batch·cols = {batch * cols}.", nameof(x));
        if (batch > MaxBatch)
        {
            // Larger batches run as slices of at most MaxBatch activation vectors.
            for (int b0 = 0; b0 < batch; b0 += MaxBatch)
            {
                int nb = Math.Min(MaxBatch, batch - b0);
                Multiply(x.Slice(b0 * cols, nb * cols), y.Slice(b0 * rows, nb * rows), nb, rows, cols, paddedCols, mode, k, threads, kernel);
            }
            return;
        }
        using var act = new E8Activations(x, batch, cols, paddedCols, mode);
        float[] yBuf = System.Buffers.ArrayPool<float>.Shared.Rent(batch * rows);
        try
        {
            yBuf.AsSpan(0, batch * rows).Clear();
            int groups = paddedCols / 128, tile = TileGroups(mode, batch, groups);
            RowParallel.For(rows, threads, (r0, r1) => Tiled(groups, tile, r0, r1, (a0, a1, g0, g1) => kernel(k, act, a0, a1, g0, g1, yBuf)));
            yBuf.AsSpan(0, batch * rows).CopyTo(y);
        }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(yBuf); }
    }
}
