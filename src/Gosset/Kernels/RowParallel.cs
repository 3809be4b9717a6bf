namespace Gosset.Kernels;

/// <summary>
/// The one threading scheme every GEMV in this folder uses (fp32, E8, INT4): rows split into
/// contiguous chunks, run with <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/>.
/// </summary>
public static class RowParallel
{
    /// <summary>Runs <paramref name="body"/>(r0, r1) over chunks covering [0, rows). threads ≤ 0 means all cores; 1 runs inline.</summary>
    public static void For(int rows, int threads, Action<int, int> body)
    {
        int t = threads <= 0 ? Environment.ProcessorCount : threads;
        if (t == 1 || rows < 32) { body(0, rows); return; }
        // Several chunks per thread so a thread slowed by other load does not hold up the product.
        int chunk = Math.Max(8, (rows + 8 * t - 1) / (8 * t));
        int n = (rows + chunk - 1) / chunk;
        Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = t }, i =>
        {
            int r0 = i * chunk;
            body(r0, Math.Min(rows, r0 + chunk));
        });
    }
}
