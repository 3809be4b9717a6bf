using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gosset.Llm.Evaluation;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;
using Gosset.Llm.Quantization;
using Gosset.Peer;

namespace Gosset.Cli.Commands;

/// <summary>
/// <c>gosset bench-model</c>: Gosset and llama.cpp (through LLamaSharp) on the same weights, each configuration in its
/// own child process (so peak RSS is per configuration), engines alternating; and <c>gosset bench-quality</c>.
/// </summary>
internal static class BenchModelCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "model Gosset loads (llama2.c .bin, Hugging Face folder, GGUF)", Required = true };
        var threads = new Option<int>("--threads") { Description = "threads for both engines (0 = all cores)", DefaultValueFactory = _ => 0 };
        var prompt = new Option<int>("--prompt-tokens") { Description = "prompt length fed as one batch (prefill)", DefaultValueFactory = _ => 512 };
        var gen = new Option<int>("--gen-tokens") { Description = "tokens generated one at a time (decode)", DefaultValueFactory = _ => 128 };
        var json = new Option<string>("--json") { Description = "write the result JSON here (atomically)", Required = true };
        var work = new Option<string?>("--work") { Description = "folder for the converted and quantized files (default: a temporary folder, deleted afterwards)" };
        var reps = new Option<int>("--reps") { Description = "runs of each configuration (alternating); the best is reported", DefaultValueFactory = _ => 1 };
        var quants = new Option<string>("--gosset") { Description = "Gosset --quant values to run besides fp32 (each with quantize-model's default classifier, int8); \"+classifier-X\" appended passes --classifier X (source, int8, e8)", DefaultValueFactory = _ => "w4,w4+classifier-source,w4a4kv4" };
        var types = new Option<string>("--llamacpp") { Description = "llama.cpp types to run besides F16 (Q4_0, Q4_K_M, IQ4_XS, IQ4_NL, Q8_0)", DefaultValueFactory = _ => "Q4_0,Q4_K_M,IQ4_XS" };
        var dtype = new Option<string>("--dtype") { Description = "GGUF float type written for llama.cpp: f16 or bf16", DefaultValueFactory = _ => "f16" };
        var calib = new Option<string?>("--calib") { Description = "calibration text passed to quantize-model (for recipes that use it)" };
        var build = PeerBench.BuildOption();
        var cmd = new Command("bench-model", "Prefill / decode tok/s, file size and peak memory of Gosset and llama.cpp on the same weights (one child process per configuration, engines alternating).");
        foreach (var o in new Option[] { model, threads, prompt, gen, json, work, reps, quants, types, dtype, calib, build }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            PeerBench.SelectBuild(pr.GetValue(build));
            string src = pr.GetValue(model)!, jsonPath = pr.GetValue(json)!;
            int t = pr.GetValue(threads) <= 0 ? Environment.ProcessorCount : pr.GetValue(threads);
            int p = pr.GetValue(prompt), g = pr.GetValue(gen), r = pr.GetValue(reps);
            if (p < 1 || g < 1 || r < 1) throw new GossetException("--prompt-tokens, --gen-tokens and --reps must be positive");
            string jsonDir = Path.GetDirectoryName(Path.GetFullPath(jsonPath)) ?? ".";
            if (!Directory.Exists(jsonDir)) throw new DirectoryNotFoundException($"Directory does not exist: {jsonDir}");
            var write = (pr.GetValue(dtype) ?? "f16").ToLowerInvariant() switch
            {
                "f16" => GgufWriteType.F16,
                "bf16" => GgufWriteType.BF16,
                var x => throw new GossetException($"--dtype {x} is not f16 or bf16"),
            };
            var llamaTypes = ParseTypes(pr.GetValue(types)!);
            var gossetQuants = (pr.GetValue(quants) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var q in gossetQuants) QuantSpec.Parse(SplitClassifier(q).Quant);
            string? userWork = pr.GetValue(work);
            string dir = userWork ?? Path.Combine(Path.GetTempPath(), $"gosset-bench-model-{Environment.ProcessId}");
            Directory.CreateDirectory(dir);
            try
            {
                var rows = Run(src, dir, t, p, g, r, write, gossetQuants, llamaTypes, pr.GetValue(calib));
                var o = new JsonObject
                {
                    ["model"] = src,
                    ["threads"] = t,
                    ["rows"] = new JsonArray(rows.Select(x => (JsonNode?)x).ToArray()),
                };
                Gosset.IO.AtomicFile.WriteAllText(jsonPath, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
            finally
            {
                if (userWork is null) Directory.Delete(dir, recursive: true);
            }
            return 0;
        });
        return cmd;
    }

    private static LlamaCppQuant[] ParseTypes(string s) =>
        s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
         .Select(x => Enum.TryParse<LlamaCppQuant>(x, ignoreCase: true, out var v) ? v : throw new GossetException($"llama.cpp type \"{x}\" is not one of {string.Join(", ", Enum.GetNames<LlamaCppQuant>())}"))
         .ToArray();

    private sealed record Config(string Engine, string Format, string File);

    /// <summary>"w4+classifier-e8" → ("w4", "e8"); a plain quant gets quantize-model's default classifier (null).</summary>
    private static (string Quant, string? Classifier) SplitClassifier(string q)
    {
        const string marker = "+classifier-";
        int i = q.IndexOf(marker, StringComparison.OrdinalIgnoreCase);
        if (i < 0) return (q, null);
        string c = q[(i + marker.Length)..].ToLowerInvariant();
        return ClassifierQuantizer.Formats.Contains(c) ? (q[..i], c) : throw new GossetException($"--gosset {q}: classifier \"{c}\" is not one of {string.Join(", ", ClassifierQuantizer.Formats)}");
    }

    private static List<JsonObject> Run(string src, string dir, int threads, int prompt, int gen, int reps, GgufWriteType write,
        string[] gossetQuants, LlamaCppQuant[] llamaTypes, string? calib)
    {
        var log = (string s) => Console.Error.WriteLine(s);
        string floatName = write == GgufWriteType.F16 ? "F16" : "BF16";
        string floatGguf = Path.Combine(dir, $"model.{floatName}.gguf");
        {
            var w = ModelLoader.LoadWeights(src);
            if (prompt + gen > w.Config.SeqLen) throw new GossetException($"--prompt-tokens + --gen-tokens = {prompt + gen} exceeds the model's seq_len {w.Config.SeqLen}");
            GgufVocabulary? vocab = null;
            try { vocab = GgufModel.VocabularyFor(src, w.Config.VocabSize); }
            catch (Exception e) when (e is GossetException or FileNotFoundException)
            {
                // Both engines are fed token ids; llama.cpp still wants a vocabulary to load the file.
                log("tokenizer not convertible, the GGUF gets placeholder pieces: " + e.Message);
                vocab = GgufVocabulary.Placeholder(w.Config.VocabSize);
            }
            log($"writing {floatGguf}");
            GgufModel.Save(w, floatGguf, vocab, write);
        }
        GC.Collect();
        var gosset = new List<Config> { new("gosset", "fp32", src) };
        foreach (string q in gossetQuants)
        {
            string gqm = Path.Combine(dir, $"model.{q}.gqm");
            log($"quantizing with Gosset: {q}");
            var (quant, classifier) = SplitClassifier(q);
            var args = new List<string> { "quantize-model", "--model", src, "--quant", quant, "--out", gqm };
            if (classifier is not null) args.AddRange(["--classifier", classifier]);
            if (calib is not null) args.AddRange(["--calib", calib]);
            RunSelf(args, threads, out _);
            gosset.Add(new Config("gosset", q, gqm));
        }
        var llama = new List<Config> { new("llama.cpp", floatName, floatGguf) };
        foreach (var t in llamaTypes)
        {
            string path = Path.Combine(dir, $"model.{t}.gguf");
            log($"quantizing with llama.cpp: {t}");
            LlamaCppRuntime.Quantize(floatGguf, path, t, threads);
            llama.Add(new Config("llama.cpp", t.ToString(), path));
        }
        var order = new List<Config>();
        for (int i = 0; i < Math.Max(gosset.Count, llama.Count); i++)
        {
            if (i < gosset.Count) order.Add(gosset[i]);
            if (i < llama.Count) order.Add(llama[i]);
        }
        var best = new Dictionary<Config, JsonObject>();
        for (int rep = 0; rep < reps; rep++)
        {
            foreach (var c in order)
            {
                RunSelf(["bench-model-run", "--engine", c.Engine, "--file", c.File, "--threads", threads.ToString(Inv),
                    "--prompt-tokens", prompt.ToString(Inv), "--gen-tokens", gen.ToString(Inv)], threads, out string stdout);
                var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault()
                    ?? throw new GossetException($"bench-model-run {c.Engine} {c.Format} printed nothing");
                var m = JsonNode.Parse(line)!.AsObject();
                double pre = m["prefill_tok_s"]!.GetValue<double>(), dec = m["decode_tok_s"]!.GetValue<double>(), rss = m["peak_rss_mb"]!.GetValue<double>();
                log(string.Format(Inv, "{0} {1}: prefill {2:F1} tok/s, decode {3:F2} tok/s, peak RSS {4:F0} MB", c.Engine, c.Format, pre, dec, rss));
                var row = new JsonObject
                {
                    ["engine"] = c.Engine,
                    ["format"] = c.Format,
                    ["bits_per_weight"] = m["bits_per_weight"]!.GetValue<double>(),
                    ["prefill_tok_s"] = pre,
                    ["decode_tok_s"] = dec,
                    ["file_bytes"] = FileBytes(c.File),
                    ["peak_rss_mb"] = rss,
                    ["build"] = m["build"]?.GetValue<string>(),
                };
                if (best.TryGetValue(c, out var prev))
                {
                    row["prefill_tok_s"] = Math.Max(pre, prev["prefill_tok_s"]!.GetValue<double>());
                    row["decode_tok_s"] = Math.Max(dec, prev["decode_tok_s"]!.GetValue<double>());
                    row["peak_rss_mb"] = Math.Max(rss, prev["peak_rss_mb"]!.GetValue<double>());
                }
                best[c] = row;
            }
        }
        return order.Select(c => best[c]).ToList();
    }

    private static long FileBytes(string path) =>
        File.Exists(path) ? new FileInfo(path).Length : Directory.GetFiles(path).Sum(f => new FileInfo(f).Length);

    /// <summary>Runs this CLI as a child process limited to <paramref name="threads"/> processors; throws with its stderr on failure.</summary>
    internal static void RunSelf(IReadOnlyList<string> args, int threads, out string stdout)
    {
        var psi = SelfStartInfo();
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        // .NET sizes its parallel loops by the processor count it sees.
        psi.Environment["DOTNET_PROCESSOR_COUNT"] = threads.ToString(Inv);
        using var proc = Process.Start(psi) ?? throw new GossetException("could not start a child gosset process");
        var err = proc.StandardError.ReadToEndAsync();
        stdout = proc.StandardOutput.ReadToEnd();
        proc.WaitForExit();
        if (proc.ExitCode != 0)
            throw new GossetException($"child `gosset {string.Join(' ', args)}` failed (exit {proc.ExitCode}): {err.Result.Trim().Split('\n').LastOrDefault()}");
    }

    private static ProcessStartInfo SelfStartInfo()
    {
        string cli = typeof(BenchModelCommand).Assembly.Location;
        string? host = Environment.ProcessPath;
        bool viaDotnet = host is null || Path.GetFileNameWithoutExtension(host) is "dotnet" or "testhost" || !cli.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
            || Path.GetFileNameWithoutExtension(host) != Path.GetFileNameWithoutExtension(cli) && Path.GetFileNameWithoutExtension(host) != "gosset";
        if (!viaDotnet) return new ProcessStartInfo(host!);
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h
            : host is not null && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host : "dotnet";
        var psi = new ProcessStartInfo(dotnet);
        psi.ArgumentList.Add(cli);
        return psi;
    }

    /// <summary>The hidden worker: one configuration, one JSON line on stdout.</summary>
    public static Command CreateWorker()
    {
        var engine = new Option<string>("--engine") { Required = true };
        var file = new Option<string>("--file") { Required = true };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 0 };
        var prompt = new Option<int>("--prompt-tokens") { DefaultValueFactory = _ => 512 };
        var gen = new Option<int>("--gen-tokens") { DefaultValueFactory = _ => 128 };
        var cmd = new Command("bench-model-run", "(internal) one configuration of bench-model") { Hidden = true };
        foreach (var o in new Option[] { engine, file, threads, prompt, gen }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            string f = pr.GetValue(file)!;
            int t = pr.GetValue(threads) <= 0 ? Environment.ProcessorCount : pr.GetValue(threads);
            int p = pr.GetValue(prompt), g = pr.GetValue(gen);
            double pre, dec, bits;
            string build;
            if (pr.GetValue(engine) == "gosset")
            {
                var m = f.EndsWith(".gqm", StringComparison.OrdinalIgnoreCase) ? QuantizedModelFile.Load(f).Model : LlamaModel.FromWeights(ModelLoader.LoadWeights(f));
                int[] ids = PromptIds(p, m.Config.VocabSize);
                var cache = m.CreateCache(p + g);
                var sw = Stopwatch.StartNew();
                // Logits of the last prompt token only (as llama.cpp computes them): no [prompt, vocab] array.
                int next = Evaluator.ArgMax(m.ForwardLast(cache, ids));
                pre = p / sw.Elapsed.TotalSeconds;
                sw.Restart();
                for (int i = 0; i < g; i++) next = Evaluator.ArgMax(m.ForwardLast(cache, [next]));
                dec = g / sw.Elapsed.TotalSeconds;
                // Stored bits per weight of the linear layers, as the llama.cpp rows count theirs; file_bytes has the rest
                // (embedding table and classifier: Gosset's default int8 tied table, llama.cpp's Q6_K one).
                bits = !m.IsQuantized ? 32 : m.BitsPerWeight;
                build = "kernels " + Gosset.Kernels.E8Kernel.Best.Name;
            }
            else
            {
                using var m = new LlamaCppModel(f, p + g, t);
                var (ps, ds) = m.Time(PromptIds(p, m.VocabSize), g);
                pre = p / ps;
                dec = g / ds;
                bits = QualityBench.LinearBits(f).Bits;
                build = LlamaCppRuntime.LoadedBuild + " build";
            }
            var o = new JsonObject
            {
                ["prefill_tok_s"] = pre, ["decode_tok_s"] = dec, ["bits_per_weight"] = bits, ["peak_rss_mb"] = PeakRssMb(), ["build"] = build,
            };
            Console.WriteLine(o.ToJsonString());
            return 0;
        });
        return cmd;
    }

    /// <summary>The same prompt for both engines: fixed pseudo-random ids past the special tokens.</summary>
    internal static int[] PromptIds(int n, int vocab)
    {
        var ids = new int[n];
        ids[0] = 1;
        for (int i = 1; i < n; i++) ids[i] = 3 + (int)((i * 7919L + 13) % (vocab - 3));
        return ids;
    }

    /// <summary>Peak resident set (VmHWM) of this process in MB; NaN where /proc is unavailable.</summary>
    internal static double PeakRssMb()
    {
        if (!File.Exists("/proc/self/status")) return double.NaN;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0], Inv) / 1024.0;
        return double.NaN;
    }

    /// <summary><c>gosset bench-quality</c>: KL to the float model for Gosset's formats and llama.cpp's types, same ids and windows.</summary>
    public static Command CreateQuality()
    {
        var model = new Option<string>("--model") { Description = "model (llama2.c .bin, HF folder, GGUF)", Required = true };
        var text = new Option<string>("--text") { Description = "text to score (raw bytes, one BOS)", Required = true };
        var windows = new Option<int>("--windows") { Description = "windows scored", DefaultValueFactory = _ => 32 };
        var ctx = new Option<int>("--ctx") { Description = "window length", DefaultValueFactory = _ => 512 };
        var threads = new Option<int>("--threads") { Description = "llama.cpp threads (0 = all cores)", DefaultValueFactory = _ => 0 };
        var quants = new Option<string>("--gosset") { Description = "Gosset --quant values", DefaultValueFactory = _ => "w4,w4a4kv4" };
        var types = new Option<string>("--llamacpp") { Description = "llama.cpp types", DefaultValueFactory = _ => "Q4_0,Q4_K_M,IQ4_XS,IQ4_NL,Q8_0" };
        var json = new Option<string?>("--json") { Description = "write the result JSON here" };
        var cmd = new Command("bench-quality", "KL to the float model of Gosset's formats and llama.cpp's types (same weights, token ids and windows; llama.cpp keeps embeddings and output in F16).");
        foreach (var o in new Option[] { model, text, windows, ctx, threads, quants, types, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            string textPath = pr.GetValue(text)!;
            if (!File.Exists(textPath)) throw new FileNotFoundException($"text not found: {textPath}", textPath);
            int n = pr.GetValue(windows), c = pr.GetValue(ctx);
            if (n < 1 || c < 2) throw new GossetException("--windows must be ≥ 1 and --ctx ≥ 2");
            int t = pr.GetValue(threads) <= 0 ? Environment.ProcessorCount : pr.GetValue(threads);
            string dir = Path.Combine(Path.GetTempPath(), $"gosset-bench-quality-{Environment.ProcessId}");
            IReadOnlyList<QualityRow> rows;
            var skipped = new List<(string Type, string Reason)>();
            try
            {
                rows = QualityBench.Run(pr.GetValue(model)!, textPath, n, c, dir, t,
                    pr.GetValue(quants)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                    ParseTypes(pr.GetValue(types)!), s => Console.Error.WriteLine(s), skipped);
            }
            finally
            {
                if (Directory.Exists(dir)) Directory.Delete(dir, true);
            }
            Console.WriteLine("| engine | format | bits/weight (linear layers) | KL | top-1 | NLL | stored as |");
            Console.WriteLine("|---|---|---:|---:|---:|---:|---|");
            foreach (var r in rows)
                Console.WriteLine(string.Format(Inv, "| {0} | {1} | {2:F3} | {3:F5} | {4:P2} | {5:F5} | {6} |", r.Engine, r.Format, r.BitsPerWeight, r.Kl, r.Top1, r.Nll, r.Tensors));
            foreach (var (type, reason) in skipped) Console.WriteLine($"llama.cpp {type}: not available ({reason})");
            string? jp = pr.GetValue(json);
            if (jp is not null)
            {
                var o = new JsonObject
                {
                    ["model"] = pr.GetValue(model), ["text"] = textPath, ["windows"] = n, ["ctx"] = c,
                    ["reference"] = "Gosset float32 logits",
                    ["rows"] = new JsonArray(rows.Select(r => (JsonNode?)new JsonObject
                    {
                        ["engine"] = r.Engine, ["format"] = r.Format, ["bits_per_weight"] = r.BitsPerWeight, ["kl"] = r.Kl,
                        ["top1_agreement"] = r.Top1, ["nll"] = r.Nll, ["tensors"] = r.Tensors,
                    }).ToArray()),
                    ["llamacpp_not_available"] = new JsonArray(skipped.Select(x => (JsonNode?)new JsonObject { ["type"] = x.Type, ["reason"] = x.Reason }).ToArray()),
                };
                Gosset.IO.AtomicFile.WriteAllText(jp, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
            return 0;
        });
        return cmd;
    }
}
