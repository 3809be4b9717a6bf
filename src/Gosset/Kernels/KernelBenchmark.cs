using System.Diagnostics;

namespace Gosset.Kernels;

/// <summary>One GEMV measurement of <see cref="KernelBenchmark"/> (milliseconds: minimum over alternating repetitions).</summary>
public sealed record GemvTiming(int Rows, int Cols, int Batch,
    double Fp32Ms, double E8Ms, double Int4Ms, double E8Int8Ms, double E8W4A4Ms, double Int4Int8Ms,
    double Fp32MedianMs, double E8MedianMs, double Int4MedianMs,
    double E8BitsPerWeight, double Int4BitsPerWeight)
{
    /// <summary>fp32 time over E8 (fp32 activations) time.</summary>
    public double E8SpeedupVsFp32 => Fp32Ms / E8Ms;
    /// <summary>INT4 time over E8 time (both fp32 activations).</summary>
    public double E8SpeedupVsInt4 => Int4Ms / E8Ms;
}

/// <summary>Results of <see cref="KernelBenchmark.Run"/>.</summary>
public sealed record KernelBenchmarkResult(
    int Threads, string Isa, double MemcpyGbps,
    double EncodeEntriesPerSecond, double DecodeEntriesPerSecond, double DecodeGbpsFp32Out,
    IReadOnlyList<GemvTiming> Gemv, int Repetitions, double Seconds)
{
    /// <summary>Voronoi code E8/16E8 (<see cref="VoronoiBatch"/>): encode entries/s at one scale, best-of-4-scales encode entries/s, decode entries/s (all threads).</summary>
    public (double Encode, double EncodeBest4, double Decode) Voronoi16 { get; init; }

    /// <summary>Decode output bandwidth as a fraction of the copy bandwidth measured in the same run.</summary>
    public double DecodeFractionOfMemcpy => DecodeGbpsFp32Out / MemcpyGbps;
}

/// <summary>
/// The quick kernel benchmark behind <c>gosset bench</c>: copy bandwidth (the ceiling), E8 encode
/// and decode throughput, and GEMV at batch 1 and 8 for the LLM shapes, fp32 vs E8 4-bit vs INT4,
/// all in one process on the same threads. Times are minima over repetitions that alternate the
/// implementations, which keeps ratios meaningful on a shared machine.
/// </summary>
public static class KernelBenchmark
{
    /// <summary>The default shapes (rows × cols): 4096×4096, 14336×4096, 4096×14336.</summary>
    public static readonly (int Rows, int Cols)[] DefaultShapes = [(4096, 4096), (14336, 4096), (4096, 14336)];

    /// <summary>Runs the benchmark. <paramref name="quick"/> uses fewer repetitions; <paramref name="log"/> receives progress lines.</summary>
    public static KernelBenchmarkResult Run(bool quick = false, int threads = 0, (int Rows, int Cols)[]? shapes = null, int[]? batches = null, Action<string>? log = null)
    {
        var total = Stopwatch.StartNew();
        shapes ??= DefaultShapes;
        batches ??= [1, 8];
        int t = threads <= 0 ? Environment.ProcessorCount : threads;
        int reps = quick ? 5 : 15;
        log ??= _ => { };

        double memcpy = MeasureMemcpy(quick ? 64 : 256, t, reps);
        log($"memcpy {memcpy:F1} GB/s");

        WarmUp(t);

        var rows = new List<GemvTiming>();
        double encodeRate = 0, decodeRate = 0;
        foreach (var (r, c) in shapes)
        {
            var w = RandomMatrix(r, c, 1234 + r + c);
            var sw = Stopwatch.StartNew();
            var e8 = PackedE8Matrix.Quantize(w, r, c);
            double enc = (double)r * c / sw.Elapsed.TotalSeconds;
            encodeRate = Math.Max(encodeRate, enc);
            var i4 = PackedInt4Matrix.Quantize(w, r, c);
            log($"{r}x{c}: encoded at {enc / 1e6:F1} M entries/s");
            if (r * (long)c > 32_000_000)
                decodeRate = Math.Max(decodeRate, MeasureDecode(e8, t, reps));
            foreach (int b in batches)
            {
                var x = RandomMatrix(b, c, 99 + b);
                var y = new float[b * r];
                Action fp32 = () => DenseGemv.Multiply(w, r, c, x, y, b, t);
                Action e8f = () => e8.Multiply(x, y, b, ActivationMode.Float32, null, t);
                Action i4f = () => i4.Multiply(x, y, b, ActivationMode.Float32, null, t);
                Action e8i = () => e8.Multiply(x, y, b, ActivationMode.Int8, null, t);
                Action e8q = () => e8.Multiply(x, y, b, ActivationMode.E8Box4, null, t);
                Action i4i = () => i4.Multiply(x, y, b, ActivationMode.Int8, null, t);
                var times = Alternate(reps, fp32, e8f, i4f, e8i, e8q, i4i);
                var g = new GemvTiming(r, c, b, Min(times[0]), Min(times[1]), Min(times[2]), Min(times[3]), Min(times[4]), Min(times[5]),
                    Median(times[0]), Median(times[1]), Median(times[2]), e8.BitsPerWeight, i4.BitsPerWeight);
                rows.Add(g);
                log($"{r}x{c} batch {b}: fp32 {g.Fp32Ms:F2} ms, e8 {g.E8Ms:F2} ms ({g.E8SpeedupVsFp32:F2}x), int4 {g.Int4Ms:F2} ms");
            }
        }
        var vor = MeasureVoronoi(16, t, quick ? 3 : 5);
        log($"Voronoi q=16: encode {vor.Encode / 1e6:F1} M entries/s, best of 4 scales {vor.EncodeBest4 / 1e6:F1} M, decode {vor.Decode / 1e6:F1} M");
        return new KernelBenchmarkResult(t, KernelSupport.Describe(), memcpy, encodeRate, decodeRate, decodeRate * 4 / 1e9, rows, reps, total.Elapsed.TotalSeconds) { Voronoi16 = vor };
    }

    // Tiered JIT starts every method at tier 0 (System.Numerics.Tensors ships as IL, so
    // TensorPrimitives.Dot would be measured unoptimized) and postpones tier-1 compiles while new
    // tier-0 code keeps appearing. Run every path on a small shape, then pause so that the
    // background compiles finish before anything is timed.
    private static void WarmUp(int threads)
    {
        const int r = 512, c = 4096;
        var w = RandomMatrix(r, c, 5);
        var e8 = PackedE8Matrix.Quantize(w, r, c);
        var i4 = PackedInt4Matrix.Quantize(w, r, c);
        var sw = Stopwatch.StartNew();
        for (int round = 0; round < 3; round++)
        {
            foreach (int b in new[] { 1, 8 })
            {
                var x = RandomMatrix(b, c, 7);
                var y = new float[b * r];
                for (int i = 0; i < 40; i++)
                {
                    DenseGemv.Multiply(w, r, c, x, y, b, threads);
                    foreach (var mode in Enum.GetValues<ActivationMode>())
                    {
                        e8.Multiply(x, y, b, mode, null, threads);
                        if (mode != ActivationMode.E8Box4) i4.Multiply(x, y, b, mode, null, threads);
                    }
                }
            }
            Thread.Sleep(400);
        }
    }

    private static double Min(List<double> v) => v.Min();
    private static double Median(List<double> v) { var s = v.Order().ToArray(); return s[s.Length / 2]; }

    /// <summary>Runs each action once per repetition, in turn, after one warm-up each; milliseconds per action and repetition.</summary>
    public static List<double>[] Alternate(int reps, params Action[] actions)
    {
        var res = actions.Select(_ => new List<double>()).ToArray();
        var sw = new Stopwatch();
        // Warm-up: long enough for tiered JIT to reach optimized code (library code starts as R2R,
        // which may not use the widest vectors) and for the caches and page tables to settle.
        foreach (var a in actions)
        {
            sw.Restart();
            for (int i = 0; i < 3 || (sw.ElapsedMilliseconds < 250 && i < 200); i++) a();
        }
        for (int i = 0; i < reps; i++)
            for (int k = 0; k < actions.Length; k++)
            {
                sw.Restart();
                actions[k]();
                res[k].Add(sw.Elapsed.TotalMilliseconds);
            }
        return res;
    }

    /// <summary>Copy bandwidth in GB/s (bytes copied per second, one read and one write each), same threading as the kernels.</summary>
    public static double MeasureMemcpy(int megabytes, int threads, int reps)
    {
        int n = megabytes * (1 << 20) / 4;
        var src = new float[n];
        var dst = new float[n];
        src.AsSpan().Fill(1f);
        int rows = 4096, per = n / rows;
        var times = Alternate(reps, () => RowParallel.For(rows, threads, (r0, r1) =>
            src.AsSpan(r0 * per, (r1 - r0) * per).CopyTo(dst.AsSpan(r0 * per, (r1 - r0) * per))))[0];
        return (double)rows * per * 4 / (times.Min() / 1e3) / 1e9;
    }

    /// <summary>E8 decode throughput (entries per second) of a whole matrix to fp32 with the best kernel.</summary>
    public static double MeasureDecode(PackedE8Matrix m, int threads, int reps)
    {
        var dst = new float[(long)m.Rows * m.Cols];
        int cols = m.Cols;
        var times = Alternate(reps, () => RowParallel.For(m.Rows, threads, (r0, r1) =>
            m.DequantizeRows(r0, r1, dst.AsSpan(r0 * cols, (r1 - r0) * cols))))[0];
        return (double)m.Rows * m.Cols / (times.Min() / 1e3);
    }

    /// <summary>Throughput (entries/s) of the SIMD Voronoi code E8/qE8 on N(0,1)-like data: encode at one scale, encode with the best of 4 scales, decode.</summary>
    public static (double Encode, double EncodeBest4, double Decode) MeasureVoronoi(int q, int threads, int reps)
    {
        const int Rows = 64, PerRow = 8 * 4096;
        var code = new Codes.VoronoiCode(q);
        var x = RandomMatrix(Rows, PerRow, 11);
        for (int i = 0; i < x.Length; i++) x[i] *= 1.7f; // unit variance
        var beta = new float[Rows * PerRow / 8];
        beta.AsSpan().Fill(4.5f / q);
        float[] scales = [3.5f / q, 4.5f / q, 6.5f / q, 17f / q];
        var digits = new byte[x.Length];
        var over = new bool[beta.Length];
        var idx = new byte[beta.Length];
        var y = new float[x.Length];
        int nb = PerRow / 8;
        var t = Alternate(reps,
            () => RowParallel.For(Rows, threads, (r0, r1) => VoronoiBatch.Encode(code, x.AsSpan(r0 * PerRow, (r1 - r0) * PerRow), beta.AsSpan(r0 * nb, (r1 - r0) * nb), digits.AsSpan(r0 * PerRow, (r1 - r0) * PerRow), over.AsSpan(r0 * nb, (r1 - r0) * nb))),
            () => RowParallel.For(Rows, threads, (r0, r1) => VoronoiBatch.EncodeBest(code, x.AsSpan(r0 * PerRow, (r1 - r0) * PerRow), scales, digits.AsSpan(r0 * PerRow, (r1 - r0) * PerRow), idx.AsSpan(r0 * nb, (r1 - r0) * nb), y.AsSpan(r0 * PerRow, (r1 - r0) * PerRow))),
            () => RowParallel.For(Rows, threads, (r0, r1) => VoronoiBatch.Decode(code, digits.AsSpan(r0 * PerRow, (r1 - r0) * PerRow), beta.AsSpan(r0 * nb, (r1 - r0) * nb), y.AsSpan(r0 * PerRow, (r1 - r0) * PerRow))));
        double n = x.Length;
        return (n / (t[0].Min() / 1e3), n / (t[1].Min() / 1e3), n / (t[2].Min() / 1e3));
    }

    /// <summary>Uniform(−1, 1) matrix from a fast deterministic generator.</summary>
    public static float[] RandomMatrix(int rows, int cols, int seed)
    {
        var a = new float[(long)rows * cols];
        RowParallel.For(rows, 0, (r0, r1) =>
        {
            ulong s = ((ulong)seed * 0x9E3779B97F4A7C15UL) ^ ((ulong)r0 * 0xBF58476D1CE4E5B9UL) | 1UL;
            for (long i = (long)r0 * cols; i < (long)r1 * cols; i++)
            {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                a[i] = (s >> 40) * (2f / (1 << 24)) - 1f;
            }
        });
        return a;
    }
}
