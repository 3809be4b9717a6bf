using System.Diagnostics;
using System.Runtime.Intrinsics;
using Gosset.Codes;
using Gosset.Kernels;

namespace Gosset.Cli;

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
    /// <summary>The 4-bit E8 product in the mode the LLM engine uses by default (<see cref="PackedE8Matrix.DefaultActivationMode"/>).</summary>
    public double E8DefaultMs { get; init; }
    /// <summary>Name of that activation mode ("int8", "fp32", "e8-box4").</summary>
    public string E8DefaultMode { get; init; } = "";
    /// <summary>3-bit and 2-bit E8 products in the default activation mode (random codes: speed only).</summary>
    public double E8B3Ms { get; init; }
    /// <inheritdoc cref="E8B3Ms"/>
    public double E8B2Ms { get; init; }
    /// <summary>
    /// Time to read as many bytes as the 4-bit E8 product streams (<see cref="PackedE8Matrix.BytesRead"/>), once, on
    /// the same threads (a vector XOR over a buffer of that size): the memory floor of its batch-1 product.
    /// </summary>
    public double E8ReadMs { get; init; }
    /// <summary>Bits per weight the 3- and 2-bit products read.</summary>
    public double E8B3BitsPerWeight { get; init; }
    /// <inheritdoc cref="E8B3BitsPerWeight"/>
    public double E8B2BitsPerWeight { get; init; }
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

    /// <summary>The E8 kernel level of the run (<see cref="KernelSupport.Level"/>).</summary>
    public string KernelLevel { get; init; } = KernelSupport.Level;
}

/// <summary>
/// The quick kernel benchmark behind <c>gosset bench</c>: copy bandwidth (the ceiling), E8 encode
/// and decode throughput, and GEMV/GEMM for the LLM shapes: fp32, the E8 box code at 4 bits (fp32,
/// int8 and E8 activations), 3 and 2 bits and INT4, all in one process on the same threads
/// (llama.cpp is timed afterwards by the CLI's PeerBench, with Gosset's kernels in its loop). Times are minima over repetitions that alternate the implementations, which keeps
/// ratios meaningful on a shared machine.
/// </summary>
public static class KernelBenchmark
{
    /// <summary>The default shapes (rows × cols): 4096×4096, 14336×4096, 4096×14336.</summary>
    public static readonly (int Rows, int Cols)[] DefaultShapes = [(4096, 4096), (14336, 4096), (4096, 14336)];

    /// <summary>Name of an activation mode in reports.</summary>
    public static string ModeName(ActivationMode m) => m switch
    {
        ActivationMode.Float32 => "fp32",
        ActivationMode.Int8 => "int8",
        ActivationMode.Int8Group => "int8-group",
        _ => "e8-box4",
    };

    /// <summary>Runs the benchmark. <paramref name="quick"/> uses fewer repetitions; <paramref name="log"/> receives progress lines.</summary>
    public static KernelBenchmarkResult Run(bool quick = false, int threads = 0, (int Rows, int Cols)[]? shapes = null, int[]? batches = null,
        Action<string>? log = null)
    {
        var total = Stopwatch.StartNew();
        shapes ??= DefaultShapes;
        batches ??= [1, 8];
        int t = threads <= 0 ? Environment.ProcessorCount : threads;
        int reps = quick ? 5 : 15;
        log ??= _ => { };
        var mode = PackedE8Matrix.DefaultActivationMode;

        double memcpy = MeasureMemcpy(quick ? 64 : 256, t, reps);
        log($"memcpy {memcpy:F1} GB/s; E8 kernels: {E8Kernel.Best} ({KernelSupport.Level})");

        WarmUp(t);

        var rows = new List<GemvTiming>();
        double encodeRate = 0, decodeRate = 0;
        foreach (var (r, c) in shapes)
        {
            var w = RandomMatrix(r, c, 1234 + r + c);
            var sw = Stopwatch.StartNew();
            var e8 = PackedE8Matrix.Encode(w, r, c);
            double enc = (double)r * c / sw.Elapsed.TotalSeconds;
            encodeRate = Math.Max(encodeRate, enc);
            var e3 = RandomCodes(r, c, 3, 7);
            var e2 = RandomCodes(r, c, 2, 8);
            var i4 = PackedInt4Matrix.Quantize(w, r, c);
            var floor = ReadBuffer(e8);
            log($"{r}x{c}: encoded at {enc / 1e6:F1} M entries/s");
            if (r * (long)c > 32_000_000)
                decodeRate = Math.Max(decodeRate, MeasureDecode(e8, t, reps));
            foreach (int b in batches)
            {
                var x = RandomMatrix(b, c, 99 + b);
                var y = new float[b * r];
                var actions = new List<Action>
                {
                    () => DenseGemv.Multiply(w, r, c, x, y, b, t),
                    () => e8.Multiply(x, y, b, ActivationMode.Float32, null, t),
                    () => i4.Multiply(x, y, b, ActivationMode.Float32, null, t),
                    () => e8.Multiply(x, y, b, ActivationMode.Int8, null, t),
                    () => e8.Multiply(x, y, b, ActivationMode.E8Box4, null, t),
                    () => i4.Multiply(x, y, b, ActivationMode.Int8, null, t),
                    () => e8.Multiply(x, y, b, mode, null, t),
                    () => e3.Multiply(x, y, b, mode, null, t),
                    () => e2.Multiply(x, y, b, mode, null, t),
                    () => ReadAll(floor, t),
                };
                var times = Alternate(reps, [.. actions]);
                var g = new GemvTiming(r, c, b, Min(times[0]), Min(times[1]), Min(times[2]), Min(times[3]), Min(times[4]), Min(times[5]),
                    Median(times[0]), Median(times[1]), Median(times[2]), e8.BitsPerWeight, i4.BitsPerWeight)
                {
                    E8DefaultMs = Min(times[6]), E8DefaultMode = ModeName(mode),
                    E8B3Ms = Min(times[7]), E8B2Ms = Min(times[8]), E8ReadMs = Min(times[9]),
                    E8B3BitsPerWeight = e3.BitsPerWeight, E8B2BitsPerWeight = e2.BitsPerWeight,
                };
                rows.Add(g);
                log($"{r}x{c} batch {b}: fp32 {g.Fp32Ms:F2} ms, e8 default ({g.E8DefaultMode}) {g.E8DefaultMs:F2} ms ({g.Fp32Ms / g.E8DefaultMs:F2}x), e8 fp32-act {g.E8Ms:F2} ms, 3-bit {g.E8B3Ms:F2}, 2-bit {g.E8B2Ms:F2}, int4 {g.Int4Ms:F2} ms");
            }
        }
        var vor = MeasureVoronoi(16, t, quick ? 3 : 5);
        log($"Voronoi q=16: encode {vor.Encode / 1e6:F1} M entries/s, best of 4 scales {vor.EncodeBest4 / 1e6:F1} M, decode {vor.Decode / 1e6:F1} M");
        return new KernelBenchmarkResult(t, KernelSupport.Describe(), memcpy, encodeRate, decodeRate, decodeRate * 4 / 1e9, rows, reps, total.Elapsed.TotalSeconds)
        { Voronoi16 = vor };
    }

    /// <summary>A buffer of as many bytes as <paramref name="m"/> holds in memory (<see cref="PackedE8Matrix.BytesRead"/>: records, row scales, scale table), for <see cref="ReadAll"/>.</summary>
    internal static byte[] ReadBuffer(PackedE8Matrix m)
    {
        var buf = new byte[m.BytesRead];
        new Random(3).NextBytes(buf);
        return buf;
    }

    /// <summary>Reads every byte of <paramref name="buf"/> once on <paramref name="threads"/> threads (the product's row split), XOR-folding 64-byte lines.</summary>
    internal static void ReadAll(byte[] buf, int threads)
    {
        // Up to 4096 parts of whole 256-byte steps (fewer for a small buffer, so every part has some and the threads share it).
        int parts = (int)Math.Clamp(buf.LongLength / 256, 1, 4096);
        long per = buf.LongLength / parts / 256 * 256;
        RowParallel.For(parts, threads, (p0, p1) =>
        {
            long o0 = p0 * per, o1 = p1 == parts ? buf.LongLength : p1 * per;
            var span = buf.AsSpan((int)o0, (int)(o1 - o0));
            Vector512<byte> a = default, b = default, c = default, d = default;
            int i = 0;
            for (; i + 256 <= span.Length; i += 256)
            {
                a ^= Vector512.Create(span.Slice(i, 64)); b ^= Vector512.Create(span.Slice(i + 64, 64));
                c ^= Vector512.Create(span.Slice(i + 128, 64)); d ^= Vector512.Create(span.Slice(i + 192, 64));
            }
            byte tail = 0;
            for (; i < span.Length; i++) tail ^= span[i];
            // Consumed so the loop is not removed.
            if (((a ^ b ^ c ^ d).GetElement(0) ^ tail) == 0x5A) Interlocked.Increment(ref s_sink);
        });
    }

    private static int s_sink;

    /// <summary>Random b-bit codes with k = 4 scales (the products' speed does not depend on the values).</summary>
    internal static PackedE8Matrix RandomCodes(int rows, int cols, int bits, int seed)
    {
        float[] scales = [0.2f, 0.25f, 0.32f, 0.45f];
        E8BoxCodes.RoundToGrid(scales);
        var c = new E8BoxCodes(rows, cols, bits, scales);
        var rng = new Random(seed);
        rng.NextBytes(c.U);
        for (int i = 0; i < c.U.Length; i++) c.U[i] &= (byte)(c.Q - 1);
        for (int i = 0; i < c.ScaleIndex.Length; i++) c.ScaleIndex[i] = (byte)(c.U[8 * i] & 3);
        c.RowScale.AsSpan().Fill(1f);
        return PackedE8Matrix.FromCodes(c);
    }

    // Tiered JIT starts every method at tier 0 (System.Numerics.Tensors ships as IL, so
    // TensorPrimitives.Dot would be measured unoptimized) and postpones tier-1 compiles while new
    // tier-0 code keeps appearing. Run every path on a small shape, then pause so that the
    // background compiles finish before anything is timed.
    private static void WarmUp(int threads)
    {
        const int r = 512, c = 4096;
        var w = RandomMatrix(r, c, 5);
        var e8 = PackedE8Matrix.Encode(w, r, c);
        var e3 = RandomCodes(r, c, 3, 1);
        var e2 = RandomCodes(r, c, 2, 2);
        var i4 = PackedInt4Matrix.Quantize(w, r, c);
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
                        e3.Multiply(x, y, b, mode, null, threads);
                        e2.Multiply(x, y, b, mode, null, threads);
                        if (mode is ActivationMode.Float32 or ActivationMode.Int8) i4.Multiply(x, y, b, mode, null, threads);
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

    /// <summary>E8 decode throughput (entries per second) of a whole matrix to fp32 (the scalar row decoder).</summary>
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
