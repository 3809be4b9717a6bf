using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Gosset.IO;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;

namespace Gosset.Cli.Commands;

/// <summary><c>gosset synth-model</c>: a random-weight checkpoint with the exact shapes of a public model, streamed to disk.</summary>
internal static class SynthModelCommand
{
    public static Command Create()
    {
        var like = new Option<string>("--like") { Description = "shape to copy: " + string.Join(" | ", SyntheticModel.Known.Keys), Required = true };
        var output = new Option<string>("--out") { Description = "output folder (config.json, tokenizer.json, model.safetensors), or a .gguf file with --format gguf", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "bf16 | f16 | f32", DefaultValueFactory = _ => "bf16" };
        var format = new Option<string>("--format") { Description = "hf (Hugging Face folder) or gguf (one GGUF file as llama.cpp lays it out, llama or qwen2 architecture; --out ends with .gguf)", DefaultValueFactory = _ => "hf" };
        var seed = new Option<ulong>("--seed") { Description = "random seed (same seed, same bytes)", DefaultValueFactory = _ => 1 };
        var cmd = new Command("synth-model", "Write a random-weight checkpoint with a public model's shapes (for speed and memory work; its quality means nothing).");
        foreach (var o in new Option[] { like, output, dtype, format, seed }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            string name = pr.GetValue(like)!;
            if (!SyntheticModel.Known.TryGetValue(name, out var shape))
                throw new GossetException($"--like \"{name}\" is not one of {string.Join(", ", SyntheticModel.Known.Keys)}");
            var dt = (pr.GetValue(dtype) ?? "bf16").ToLowerInvariant() switch
            {
                "bf16" => SafeTensorsDType.BF16, "f16" => SafeTensorsDType.F16, "f32" => SafeTensorsDType.F32,
                var x => throw new GossetException($"--dtype \"{x}\" is not bf16, f16 or f32"),
            };
            string fmt = (pr.GetValue(format) ?? "hf").ToLowerInvariant();
            if (fmt is not ("hf" or "gguf")) throw new GossetException($"--format \"{fmt}\" is not hf or gguf");
            string dir = pr.GetValue(output)!;
            if (fmt == "gguf" && !dir.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) throw new GossetException("--format gguf: --out must end with .gguf");
            var sw = Stopwatch.StartNew();
            long last = -1;
            Action<long, long> progress = (done, total) =>
            {
                long pct = done * 100 / total;
                if (pct != last) { Console.Error.Write($"\rwriting {pct}%"); last = pct; }
            };
            long bytes = fmt == "gguf" ? SyntheticModel.WriteGguf(shape, dir, dt, pr.GetValue(seed), progress)
                : SyntheticModel.Write(shape, dir, dt, pr.GetValue(seed), progress);
            Console.Error.WriteLine();
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"wrote        {dir} (random weights shaped like {name}; marked \"gosset_random_weights\": true)");
            Console.WriteLine(string.Format(inv, "size         {0:N0} bytes ({1})", bytes, dt));
            Console.WriteLine(string.Format(inv, "time         {0:F1} s, peak RSS {1:F0} MB", sw.Elapsed.TotalSeconds, (ProcessMemory.PeakRssBytes() ?? 0) / 1e6));
            return 0;
        });
        return cmd;
    }
}
