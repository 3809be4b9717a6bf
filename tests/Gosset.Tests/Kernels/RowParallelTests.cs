using Gosset.Kernels;

namespace Gosset.Tests.Kernels;

/// <summary>The persistent worker pool behind every product: coverage, errors, nesting and concurrent callers.</summary>
public class RowParallelTests
{
    [Theory]
    [InlineData(1, 0, 1)]
    [InlineData(31, 2, 1)]
    [InlineData(32, 2, 1)]
    [InlineData(1000, 0, 1)]
    [InlineData(1000, 3, 64)]
    [InlineData(4097, 2, 64)]
    [InlineData(100, 1, 1)]
    public void Every_row_is_covered_exactly_once(int rows, int threads, int align)
    {
        var hits = new int[rows];
        RowParallel.For(rows, threads, (r0, r1) => { for (int r = r0; r < r1; r++) Interlocked.Increment(ref hits[r]); }, align);
        Assert.All(hits, h => Assert.Equal(1, h));
        var items = new int[rows];
        RowParallel.ForEach(rows, i => Interlocked.Increment(ref items[i]), threads);
        Assert.All(items, h => Assert.Equal(1, h));
    }

    [Fact]
    public void An_exception_in_a_chunk_reaches_the_caller_after_every_chunk_ran()
    {
        int ran = 0;
        var e = Assert.Throws<AggregateException>(() => RowParallel.For(4096, 0, (r0, r1) =>
        {
            Interlocked.Add(ref ran, r1 - r0);
            if (r0 == 0) throw new InvalidOperationException("boom");
        }));
        Assert.IsType<InvalidOperationException>(e.InnerException);
        Assert.Equal(4096, ran);
        // The pool is usable afterwards.
        long sum = 0;
        RowParallel.For(4096, 0, (r0, r1) => { for (int r = r0; r < r1; r++) Interlocked.Add(ref sum, r); });
        Assert.Equal(4096L * 4095 / 2, sum);
    }

    [Fact]
    public void Nested_and_concurrent_calls_complete_with_correct_results()
    {
        const int outer = 64, inner = 512;
        var totals = new long[8];
        Parallel.For(0, totals.Length, c =>
        {
            for (int rep = 0; rep < 20; rep++)
            {
                long s = 0;
                RowParallel.For(outer, 0, (o0, o1) =>
                {
                    for (int o = o0; o < o1; o++)
                        RowParallel.For(inner, 0, (r0, r1) => { for (int r = r0; r < r1; r++) Interlocked.Add(ref s, o * inner + r); });
                });
                totals[c] += s;
            }
        });
        long n = outer * inner;
        Assert.All(totals, t => Assert.Equal(20 * n * (n - 1) / 2, t));
    }
}
