namespace Gosset.Kernels;

/// <summary>
/// The one threading scheme every GEMV in this folder uses (fp32, E8, INT4): rows split into
/// contiguous chunks, run with <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/>.
/// </summary>
public static class RowParallel
{
    /// <summary>Runs <paramref name="body"/>(r0, r1) over chunks covering [0, rows). threads ≤ 0 means all cores; 1 runs inline.</summary>
    /// <param name="rows">Rows to cover.</param>
    /// <param name="threads">Threads (≤ 0: all cores).</param>
    /// <param name="body">Called with each chunk [r0, r1).</param>
    /// <param name="align">Chunks start at multiples of this (a packed layout's row tile), unless a chunk would then hold all rows.</param>
    public static void For(int rows, int threads, Action<int, int> body, int align = 1)
    {
        ArgumentNullException.ThrowIfNull(body);
        int t = threads <= 0 ? Environment.ProcessorCount : threads;
        if (t == 1 || rows < 32) { body(0, rows); return; }
        // Several chunks per thread so a thread slowed by other load does not hold up the product.
        int chunk = Math.Max(8, (rows + 8 * t - 1) / (8 * t));
        if (align > 1)
        {
            int aligned = (chunk + align - 1) / align * align;
            // Keep at least one chunk per thread: a tiny matrix stays split even if its chunks cut tiles.
            if ((rows + aligned - 1) / aligned >= t) chunk = aligned;
        }
        int n = (rows + chunk - 1) / chunk;
        Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = t }, i =>
        {
            int r0 = i * chunk;
            body(r0, Math.Min(rows, r0 + chunk));
        });
    }
}
