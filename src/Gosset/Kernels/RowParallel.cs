using System.Diagnostics;

namespace Gosset.Kernels;

/// <summary>
/// The one threading scheme every product in this library uses (fp32, E8, INT): rows split into
/// contiguous chunks that threads claim one by one. The threads are a persistent pool that spins
/// briefly between calls, so the many small products of one decoded token (about five per layer)
/// do not each pay the thread pool's wake-up latency; after <see cref="SpinMicroseconds"/> without
/// work the workers sleep and cost nothing.
/// </summary>
public static class RowParallel
{
    /// <summary>How long an idle worker spins for the next call before it sleeps (microseconds; 0 = sleep at once).</summary>
    public static int SpinMicroseconds { get; set; } = ReadSpin();

    /// <summary>Runs <paramref name="body"/>(r0, r1) over chunks covering [0, rows). threads ≤ 0 means all cores; 1 runs inline.</summary>
    /// <param name="rows">Rows to cover.</param>
    /// <param name="threads">Threads (≤ 0: all cores).</param>
    /// <param name="body">Called with each chunk [r0, r1).</param>
    /// <param name="align">Chunks start at multiples of this (a packed layout's row tile), unless a chunk would then hold all rows.</param>
    /// <exception cref="ArgumentNullException"><paramref name="body"/> is null.</exception>
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
        Pool.Run(new Job(body, rows, chunk, n, Math.Min(t, n) - 1));
    }

    /// <summary>Runs <paramref name="body"/>(i) for i in [0, count) on the same pool (one index per claim).</summary>
    /// <param name="count">Indices to run.</param>
    /// <param name="body">Called once per index.</param>
    /// <param name="threads">Threads (≤ 0: all cores).</param>
    /// <exception cref="ArgumentNullException"><paramref name="body"/> is null.</exception>
    public static void ForEach(int count, Action<int> body, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(body);
        int t = threads <= 0 ? Environment.ProcessorCount : threads;
        if (t == 1 || count <= 1) { for (int i = 0; i < count; i++) body(i); return; }
        Pool.Run(new Job((i0, _) => body(i0), count, 1, count, Math.Min(t, count) - 1));
    }

    /// <summary>
    /// Sends idle workers to sleep now instead of after <see cref="SpinMicroseconds"/>: call it before handing the cores
    /// to other code whose time is measured (another engine in a benchmark), so spinning workers do not take its cores.
    /// </summary>
    public static void Park() => Interlocked.Increment(ref s_park);

    private static int s_park;

    private static int ReadSpin()
        => int.TryParse(Environment.GetEnvironmentVariable("GOSSET_SPIN_US"), out int us) && us >= 0 ? us : 2000;

    private static readonly WorkerPool Pool = new(Environment.ProcessorCount - 1);

    /// <summary>One call: chunks claimed with an atomic counter; the caller runs chunks too, then waits for the rest.</summary>
    private sealed class Job(Action<int, int> body, int rows, int chunk, int count, int helpers)
    {
        private int _next, _done, _joined;
        private Exception? _error;
        public int Helpers { get; } = helpers;
        public bool IsDone => Volatile.Read(ref _done) == count;
        public Exception? Error => _error;

        /// <summary>A worker joins at most <see cref="Helpers"/> times (the caller's thread count).</summary>
        public bool TryJoin() => Interlocked.Increment(ref _joined) <= Helpers;

        public void Work()
        {
            for (int i; (i = Interlocked.Increment(ref _next) - 1) < count;)
            {
                try { int r0 = i * chunk; body(r0, Math.Min(rows, r0 + chunk)); }
                catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
                Interlocked.Increment(ref _done);
            }
        }
    }

    /// <summary>
    /// Background threads that wait for the next <see cref="Job"/>: spinning for <see cref="SpinMicroseconds"/>,
    /// then asleep on a semaphore. One caller at a time; a second concurrent caller (or a call from inside a
    /// job) runs on the .NET thread pool instead, so callers never wait on each other.
    /// </summary>
    private sealed class WorkerPool
    {
        private readonly int _size;
        private Job? _job;
        private int _generation, _sleepers, _busy, _started;
        private readonly SemaphoreSlim _wake = new(0);
        [ThreadStatic] private static bool t_worker;

        public WorkerPool(int size) => _size = Math.Max(0, size);

        public void Run(Job job)
        {
            if (_size == 0 || t_worker || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
            {
                // Nested or concurrent call: the shared thread pool (correct, only without the spinning workers).
                Parallel.For(0, job.Helpers + 1, new ParallelOptions { MaxDegreeOfParallelism = job.Helpers + 1 }, _ => job.Work());
                if (job.Error is not null) throw new AggregateException(job.Error);
                return;
            }
            try
            {
                EnsureStarted();
                Volatile.Write(ref _job, job);
                Interlocked.Increment(ref _generation);
                int sleeping = Volatile.Read(ref _sleepers);
                if (sleeping > 0) _wake.Release(Math.Min(sleeping, job.Helpers));
                job.Work();
                var spin = new SpinWait();
                while (!job.IsDone) spin.SpinOnce(-1);
            }
            finally
            {
                Volatile.Write(ref _job, null);
                Volatile.Write(ref _busy, 0);
            }
            if (job.Error is not null) throw new AggregateException(job.Error);
        }

        private void EnsureStarted()
        {
            if (Volatile.Read(ref _started) != 0 || Interlocked.Exchange(ref _started, 1) != 0) return;
            for (int i = 0; i < _size; i++)
                new Thread(Loop) { IsBackground = true, Name = $"gosset-worker-{i}" }.Start();
        }

        private void Loop()
        {
            t_worker = true;
            int seen = Volatile.Read(ref _generation), park = Volatile.Read(ref s_park);
            long idleSince = Stopwatch.GetTimestamp();
            while (true)
            {
                int g = Volatile.Read(ref _generation);
                if (g != seen)
                {
                    seen = g;
                    if (Volatile.Read(ref _job) is { } job && job.TryJoin()) job.Work();
                    idleSince = Stopwatch.GetTimestamp();
                    park = Volatile.Read(ref s_park);
                    continue;
                }
                if (Volatile.Read(ref s_park) == park && Stopwatch.GetElapsedTime(idleSince).Ticks * 10 < SpinMicroseconds * 100L) { Thread.SpinWait(30); continue; }
                Interlocked.Increment(ref _sleepers);
                // A job published after the increment is seen here or releases the semaphore (a spare release only wakes once for nothing).
                if (Volatile.Read(ref _generation) == seen) _wake.Wait();
                Interlocked.Decrement(ref _sleepers);
                idleSince = Stopwatch.GetTimestamp();
                park = Volatile.Read(ref s_park);
            }
        }
    }
}
