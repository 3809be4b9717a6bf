using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gosset.Llm.Evaluation;
using Gosset.Llm.Inference;

namespace Gosset.Cli.Commands;

/// <summary><c>gosset eval</c>: perplexity over non-overlapping windows, and KL / top-1 agreement against the float model.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var lo = new LlmOptions();
        var text = new Option<string>("--text") { Description = "text file to score (read as raw bytes, encoded with one BOS)", Required = true };
        var ctx = new Option<int>("--ctx") { Description = "window length (tokens)", DefaultValueFactory = _ => 512 };
        var windows = new Option<int>("--windows") { Description = "number of windows from the start (0 = all)", DefaultValueFactory = _ => 0 };
        var json = new Option<string?>("--json") { Description = "write the result JSON here" };
        var cmd = new Command("eval", "Perplexity of a (quantized) model on a text, with KL(p_float‖p_quant) and top-1 agreement against the float model.");
        lo.AddTo(cmd);
        cmd.Options.Add(text); cmd.Options.Add(ctx); cmd.Options.Add(windows); cmd.Options.Add(json);
        cmd.SetAction(pr =>
        {
            string textPath = pr.GetValue(text)!;
            int c = pr.GetValue(ctx), n = pr.GetValue(windows);
            if (c <= 0) throw new GossetException("--ctx must be positive");
            if (n < 0) throw new GossetException("--windows must be ≥ 0");
            if (!File.Exists(textPath)) throw new FileNotFoundException($"text not found: {textPath}", textPath);
            var sw = Stopwatch.StartNew();
            // Calibration on the evaluated file skips the evaluated windows, so no scored token is seen in calibration.
            var (model, weights, tok) = lo.Load(pr, calibFilter: (cp, calib) =>
                Path.GetFullPath(cp) == Path.GetFullPath(textPath) ? calib.Skip(Math.Max(n, 1) * c).Prepend(1).ToArray() : calib, defaultCalib: textPath);
            double loadS = sw.Elapsed.TotalSeconds;
            if (c > model.Config.SeqLen) throw new GossetException($"--ctx {c} is longer than the model's seq_len {model.Config.SeqLen}");
            int[] tokens = tok.Encode(File.ReadAllBytes(textPath), bos: true, eos: false);
            if (tokens.Length < 2) throw new GossetException($"{textPath} is empty: nothing to score");
            LlamaModel? reference = !model.IsQuantized ? null : weights is null ? null : LlamaModel.FromWeights(weights);
            sw.Restart();
            var r = Evaluator.Evaluate(model, tokens, c, n, reference);
            double evalS = sw.Elapsed.TotalSeconds;
            bool quantized = model.IsQuantized;
            double kl = r.Kl ?? 0, top1 = r.Top1Agreement ?? 1;
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"model        {pr.GetValue(lo.Model)}  ({model.Config.Layers} layers, dim {model.Config.Dim}, vocab {model.Config.VocabSize})");
            Console.WriteLine($"quant        {model.Quant}");
            Console.WriteLine($"text         {textPath}: {tokens.Length} tokens; {r.Windows} windows of {c}, {r.Tokens} scored");
            Console.WriteLine(string.Format(inv, "ppl          {0:F4}   (mean NLL {1:F6})", r.Ppl, r.Nll));
            if (r.ReferenceNll is double rn) Console.WriteLine(string.Format(inv, "float ppl    {0:F4}   (gap {1:+0.0000;-0.0000})", Math.Exp(rn), r.Ppl - Math.Exp(rn)));
            if (quantized && reference is null) Console.WriteLine("KL / top-1   not measured (a .gqm holds no float weights to compare with)");
            else Console.WriteLine(string.Format(inv, "KL           {0:F5} nats/token   top-1 agreement {1:P2}", kl, top1));
            Console.WriteLine(string.Format(inv, "bits         {0:F3} per weight, {1:F3} per activation, KV {2:F1} bytes/token", model.BitsPerWeight, model.BitsPerActivation, model.KvBytesPerToken));
            Console.WriteLine(string.Format(inv, "all weights  {0:F3} bits per parameter (linear layers, embedding table, classifier {1})", model.BitsPerParameter, model.ClassifierFormat));
            Console.WriteLine(string.Format(inv, "time         load+quantize {0:F1} s, eval {1:F1} s", loadS, evalS));
            string? jp = pr.GetValue(json);
            if (jp is not null)
            {
                var o = new JsonObject
                {
                    ["nll"] = r.Nll, ["ppl"] = r.Ppl,
                    ["kl"] = quantized && reference is null ? null : kl,
                    ["top1_agreement"] = quantized && reference is null ? null : top1,
                    ["tokens"] = r.Tokens,
                    ["bits_per_weight"] = model.BitsPerWeight, ["bits_per_activation"] = model.BitsPerActivation,
                    ["bits_per_parameter"] = model.BitsPerParameter, ["classifier"] = model.ClassifierFormat,
                    ["kv_bytes_per_token"] = model.KvBytesPerToken, ["quant"] = model.Quant, ["kernels"] = model.LinearsOnKernels, ["kernel_activations"] = model.KernelActivations,
                    ["float_nll"] = r.ReferenceNll, ["float_ppl"] = r.ReferenceNll is double x ? Math.Exp(x) : null,
                    ["windows"] = r.Windows, ["ctx"] = c, ["text"] = textPath, ["model"] = pr.GetValue(lo.Model),
                    ["nll_per_window"] = new JsonArray(r.NllPerWindow.Select(v => (JsonNode?)v).ToArray()),
                };
                Gosset.IO.AtomicFile.WriteAllText(jp, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
            return 0;
        });
        return cmd;
    }
}
