using System.Text.Json;
using Gosset.Kernels;
using Gosset.Peer;

namespace Gosset.Cli.Commands;

/// <summary>The llama.cpp part of <c>gosset bench</c>: ggml's GEMV on each gemv row's shape, interleaved with Gosset's kernels.</summary>
internal static class PeerBench
{
    /// <summary>Per gemv row the llama.cpp timings (null where not measured), or a note saying why none were.</summary>
    internal sealed record Result(IReadOnlyList<PeerGemvRow?> Rows, string? Note)
    {
        public void WriteNote(Utf8JsonWriter w)
        {
            if (Note is not null) w.WriteString("llamacpp_note", Note);
            var first = Rows.FirstOrDefault(r => r is not null);
            if (first is not null) w.WriteString("llamacpp_build", first.Ggml);
        }

        public void WriteRow(Utf8JsonWriter w, int i)
        {
            if (i >= Rows.Count || Rows[i] is not PeerGemvRow r) return;
            w.WriteStartObject("llamacpp");
            foreach (var (k, v) in r.Ms) w.WriteNumber(k, v);
            w.WriteStartObject("layout");
            foreach (var (k, v) in r.Layouts) w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteStartObject("gosset_same_loop");
            foreach (var (k, v) in r.GossetMs) w.WriteNumber(k, v);
            w.WriteEndObject();
            w.WriteEndObject();
        }
    }

    /// <summary>
    /// <c>--llamacpp-build</c>: which of LLamaSharp.Backend.Cpu's native builds llama.cpp runs (auto: the one for this CPU). With
    /// avx2 and <c>DOTNET_EnableAVX512=0</c> an AVX-512 machine compares both engines at the AVX2 level.
    /// </summary>
    public static System.CommandLine.Option<string> BuildOption() => new("--llamacpp-build")
    {
        Description = $"llama.cpp's native build: auto (LLamaSharp's pick for this CPU), avx512, avx2, avx or noavx; with avx2 and DOTNET_EnableAVX512=0 both engines run at the AVX2 level (also ${LlamaCppRuntime.BuildVariable}).",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(LlamaCppRuntime.BuildVariable) is { Length: > 0 } e ? e : "auto",
    };

    /// <summary>Applies a <see cref="BuildOption"/> value before llama.cpp loads (and exports it to worker processes).</summary>
    /// <exception cref="GossetException">The value names no build.</exception>
    public static void SelectBuild(string? name)
    {
        var b = LlamaCppRuntime.ParseBuild(name) ?? throw new GossetException($"--llamacpp-build (or {LlamaCppRuntime.BuildVariable}): '{name}' is not one of auto, avx512, avx2, avx, noavx");
        try { LlamaCppRuntime.Build = b; }
        catch (InvalidOperationException e) { throw new GossetException("--llamacpp-build: " + e.Message); }
        Environment.SetEnvironmentVariable(LlamaCppRuntime.BuildVariable, b.ToString().ToLowerInvariant());
    }

    /// <summary>Measures llama.cpp on the shapes of <paramref name="res"/>; a machine without llama.cpp gets a note instead.</summary>
    public static Result Run(KernelBenchmarkResult res, Action<string> log)
    {
        var rows = new List<PeerGemvRow?>();
        try
        {
            foreach (var g in res.Gemv)
            {
                var w = KernelBenchmark.RandomMatrix(g.Rows, g.Cols, 1234 + g.Rows + g.Cols);
                var x = KernelBenchmark.RandomMatrix(g.Batch, g.Cols, 99 + g.Batch);
                var y = new float[g.Batch * g.Rows];
                var e8 = PackedE8Matrix.Encode(w, g.Rows, g.Cols);
                var e3 = KernelBenchmark.RandomCodes(g.Rows, g.Cols, 3, 7);
                var e2 = KernelBenchmark.RandomCodes(g.Rows, g.Cols, 2, 8);
                var floor = KernelBenchmark.ReadBuffer(e8);
                int t = res.Threads, b = g.Batch;
                // Gosset's kernels again in the same round-robin loop, so the ratios come from one loop.
                (string, Action)[] gosset =
                [
                    ("fp32", () => DenseGemv.Multiply(w, g.Rows, g.Cols, x, y, b, t)),
                    ("e8", () => e8.Multiply(x, y, b, ActivationMode.Float32, null, t)),
                    ("e8_w4a8", () => e8.Multiply(x, y, b, ActivationMode.Int8, null, t)),
                    ("e8_w4a4", () => e8.Multiply(x, y, b, ActivationMode.E8Box4, null, t)),
                    ("e8_default", () => e8.Multiply(x, y, b, PackedE8Matrix.DefaultActivationMode, null, t)),
                    ("e8_3bit", () => e3.Multiply(x, y, b, PackedE8Matrix.DefaultActivationMode, null, t)),
                    ("e8_2bit", () => e2.Multiply(x, y, b, PackedE8Matrix.DefaultActivationMode, null, t)),
                    ("e8_read", () => KernelBenchmark.ReadAll(floor, t)),
                ];
                var r = PeerGemvBench.Measure(g.Rows, g.Cols, g.Batch, t, res.Repetitions, gosset);
                rows.Add(r);
                log($"llama.cpp {g.Rows}x{g.Cols} batch {g.Batch}: " + string.Join(", ", r.Ms.Select(kv => $"{kv.Key[..^3]} {kv.Value:F2} ms")));
            }
            return new Result(rows, null);
        }
        catch (PeerUnavailableException e)
        {
            log("llama.cpp not measured: " + e.Message);
            return new Result(rows, e.Message);
        }
    }
}
