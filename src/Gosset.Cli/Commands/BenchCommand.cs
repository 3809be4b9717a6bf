using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Gosset.IO;
using Spectre.Console;

namespace Gosset.Cli.Commands;

/// <summary><c>gosset bench</c>: the quick kernel benchmark (copy bandwidth, E8 encode/decode, GEMV fp32 vs E8 2/3/4-bit vs INT4, llama.cpp's GEMV through <see cref="PeerBench"/>).</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var json = new Option<string?>("--json") { Description = "Write the results as JSON to this path (atomically)." };
        var quick = new Option<bool>("--quick") { Description = "Fewer repetitions and a smaller copy buffer." };
        var threads = new Option<int>("--threads") { Description = "Threads for every kernel (0 = all cores).", DefaultValueFactory = _ => 0 };
        var noPeer = new Option<bool>("--no-llamacpp") { Description = "Skip llama.cpp's own GEMV (ggml mul_mat through LLamaSharp.Backend.Cpu), timed by default in the same loop." };
        var shapes = new Option<string?>("--shapes") { Description = "GEMV shapes ROWSxCOLS, comma-separated (default: 4096x4096,14336x4096,4096x14336; e.g. a 1B model's 3072x2048,2048x2048,16384x2048,2048x8192)." };
        var batches = new Option<string?>("--batches") { Description = "Batch sizes, comma-separated (default: 1,8)." };
        var build = PeerBench.BuildOption();
        var cmd = new Command("bench", "Kernel speed: memcpy bandwidth, E8 encode/decode, GEMV fp32 vs E8 2/3/4-bit vs INT4 vs llama.cpp (one process, same threads).");
        cmd.Options.Add(json);
        cmd.Options.Add(quick);
        cmd.Options.Add(threads);
        cmd.Options.Add(noPeer);
        cmd.Options.Add(shapes);
        cmd.Options.Add(batches);
        cmd.Options.Add(build);
        cmd.SetAction(pr =>
        {
            PeerBench.SelectBuild(pr.GetValue(build));
            string? path = pr.GetValue(json);
            if (path != null)
            {
                string dir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
                if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"Directory does not exist: {dir}");
            }
            var res = KernelBenchmark.Run(pr.GetValue(quick), pr.GetValue(threads), ParseShapes(pr.GetValue(shapes)), ParseList(pr.GetValue(batches), "--batches", 1, 512), log: s => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(s)}[/]"));
            Print(res);
            var peer = pr.GetValue(noPeer) ? null : PeerBench.Run(res, s => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(s)}[/]"));
            if (path != null) AtomicFile.WriteAllBytes(path, ToJson(res, peer));
            return 0;
        });
        return cmd;
    }

    private static (int Rows, int Cols)[]? ParseShapes(string? s)
    {
        if (string.IsNullOrWhiteSpace(s)) return null;
        var list = new List<(int, int)>();
        foreach (var part in s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var rc = part.Split('x', 'X');
            if (rc.Length != 2 || !int.TryParse(rc[0], NumberStyles.None, CultureInfo.InvariantCulture, out int r) || !int.TryParse(rc[1], NumberStyles.None, CultureInfo.InvariantCulture, out int c)
                || r < 1 || c < 1 || r > 65536 || c > 65536 || (long)r * c > 1L << 28)
                throw new GossetException($"--shapes: '{part}' is not ROWSxCOLS with 1..65536 each and at most 2^28 entries");
            list.Add((r, c));
        }
        return list.Count > 0 ? [.. list] : null;
    }

    private static int[]? ParseList(string? s, string name, int min, int max)
    {
        if (string.IsNullOrWhiteSpace(s)) return null;
        var list = new List<int>();
        foreach (var part in s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < min || v > max)
                throw new GossetException($"{name}: '{part}' is not an integer in {min}..{max}");
            list.Add(v);
        }
        return list.Count > 0 ? [.. list] : null;
    }

    private static string F(double v, string fmt = "F2") => v.ToString(fmt, CultureInfo.InvariantCulture);

    private static void Print(KernelBenchmarkResult r)
    {
        AnsiConsole.MarkupLine($"threads {r.Threads}; kernel level {Markup.Escape(r.KernelLevel)}; {Markup.Escape(r.Isa)}");
        AnsiConsole.MarkupLine($"memcpy {F(r.MemcpyGbps, "F1")} GB/s; E8 encode {F(r.EncodeEntriesPerSecond / 1e6, "F1")} M entries/s; " +
            $"decode {F(r.DecodeEntriesPerSecond / 1e6, "F0")} M entries/s = {F(r.DecodeGbpsFp32Out, "F1")} GB/s fp32 out ({F(100 * r.DecodeFractionOfMemcpy, "F0")}% of memcpy)");
        AnsiConsole.MarkupLine($"Voronoi E8/16E8 (SIMD): encode {F(r.Voronoi16.Encode / 1e6, "F1")} M entries/s, best of 4 scales {F(r.Voronoi16.EncodeBest4 / 1e6, "F1")} M, decode {F(r.Voronoi16.Decode / 1e6, "F1")} M");
        var t = new Table().Title($"GEMV, ms (min of {r.Repetitions} alternating runs)");
        foreach (var h in new[] { "rows×cols", "batch", "fp32", "E8 default", "read floor", "fp32/default", "E8 fp32-act", "E8 W4A8", "E8 W4A4", "E8 3-bit", "E8 2-bit", "INT4", "INT4 W4A8", "E8 bits", "INT4 bits" })
            t.AddColumn(new TableColumn(h).RightAligned());
        foreach (var g in r.Gemv)
            t.AddRow($"{g.Rows}×{g.Cols}", g.Batch.ToString(CultureInfo.InvariantCulture), F(g.Fp32Ms), $"{F(g.E8DefaultMs)} ({g.E8DefaultMode})", F(g.E8ReadMs),
                F(g.Fp32Ms / g.E8DefaultMs) + "×", F(g.E8Ms), F(g.E8Int8Ms), F(g.E8W4A4Ms), F(g.E8B3Ms), F(g.E8B2Ms), F(g.Int4Ms), F(g.Int4Int8Ms),
                F(g.E8BitsPerWeight, "F3"), F(g.Int4BitsPerWeight, "F3"));
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLine($"total {F(r.Seconds, "F0")} s");
    }

    internal static byte[] ToJson(KernelBenchmarkResult r, PeerBench.Result? peer = null)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("memcpy_gbps", r.MemcpyGbps);
            w.WriteNumber("threads", r.Threads);
            w.WriteString("isa", r.Isa);
            w.WriteString("kernel_level", r.KernelLevel);
            w.WriteString("e8_kernel", Gosset.Kernels.E8Kernel.Best.Name);
            w.WriteNumber("repetitions", r.Repetitions);
            w.WriteString("timing", "minimum over repetitions that alternate the implementations");
            w.WriteStartObject("encode");
            w.WriteNumber("entries_per_s", r.EncodeEntriesPerSecond);
            w.WriteString("code", "the default 4-bit e8 code (PackedE8Matrix.Encode: table fit on up to 512 rows, 8-lane encoder with row-scale search), all threads, best of the three shapes");
            w.WriteEndObject();
            w.WriteStartObject("decode");
            w.WriteNumber("entries_per_s", r.DecodeEntriesPerSecond);
            w.WriteNumber("gbps_fp32_out", r.DecodeGbpsFp32Out);
            w.WriteNumber("fraction_of_memcpy", r.DecodeFractionOfMemcpy);
            w.WriteEndObject();
            w.WriteStartObject("voronoi_q16");
            w.WriteNumber("encode_entries_per_s", r.Voronoi16.Encode);
            w.WriteNumber("encode_best_of_4_entries_per_s", r.Voronoi16.EncodeBest4);
            w.WriteNumber("decode_entries_per_s", r.Voronoi16.Decode);
            w.WriteEndObject();
            peer?.WriteNote(w);
            w.WriteStartArray("gemv");
            for (int gi = 0; gi < r.Gemv.Count; gi++)
            {
                var g = r.Gemv[gi];
                w.WriteStartObject();
                w.WriteNumber("rows", g.Rows);
                w.WriteNumber("cols", g.Cols);
                w.WriteNumber("batch", g.Batch);
                w.WriteNumber("fp32_ms", g.Fp32Ms);
                w.WriteNumber("e8_ms", g.E8Ms);
                w.WriteNumber("int4_ms", g.Int4Ms);
                w.WriteNumber("e8_bits_per_weight", g.E8BitsPerWeight);
                w.WriteNumber("int4_bits_per_weight", g.Int4BitsPerWeight);
                w.WriteNumber("e8_w4a8_ms", g.E8Int8Ms);
                w.WriteNumber("e8_w4a4_ms", g.E8W4A4Ms);
                w.WriteNumber("int4_w4a8_ms", g.Int4Int8Ms);
                w.WriteNumber("fp32_median_ms", g.Fp32MedianMs);
                w.WriteNumber("e8_median_ms", g.E8MedianMs);
                w.WriteNumber("int4_median_ms", g.Int4MedianMs);
                w.WriteNumber("e8_speedup_vs_fp32", g.E8SpeedupVsFp32);
                w.WriteNumber("e8_speedup_vs_int4", g.E8SpeedupVsInt4);
                w.WriteNumber("e8_default_ms", g.E8DefaultMs);
                w.WriteString("e8_default_mode", g.E8DefaultMode);
                w.WriteNumber("e8_3bit_ms", g.E8B3Ms);
                w.WriteNumber("e8_2bit_ms", g.E8B2Ms);
                w.WriteNumber("e8_read_ms", g.E8ReadMs);
                w.WriteNumber("e8_3bit_bits_per_weight", g.E8B3BitsPerWeight);
                w.WriteNumber("e8_2bit_bits_per_weight", g.E8B2BitsPerWeight);
                peer?.WriteRow(w, gi);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNumber("seconds", r.Seconds);
            w.WriteEndObject();
        }
        return ms.ToArray();
    }
}
