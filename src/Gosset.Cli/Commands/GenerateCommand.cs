using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gosset.Llm.Inference;

namespace Gosset.Cli.Commands;

/// <summary><c>gosset generate</c>: streams text from a (quantized) model, token by token, and prints tokens/s.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var lo = new LlmOptions();
        var prompt = new Option<string>("--prompt") { Description = "prompt text", DefaultValueFactory = _ => "" };
        var steps = new Option<int>("--steps") { Description = "positions to run, prompt included (capped at the model's seq_len)", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0f };
        var seed = new Option<ulong>("--seed") { Description = "sampling seed", DefaultValueFactory = _ => 42 };
        var json = new Option<string?>("--json") { Description = "write the result JSON here" };
        var profile = new Option<bool>("--profile") { Description = "print the time per token of each part (linear layers, activation preparation, attention, norms, classifier, ...) of the prompt (prefill) and of decoding to stderr" };
        var cmd = new Command("generate", "Generate text token by token from a (quantized) model.");
        lo.AddTo(cmd);
        cmd.Options.Add(prompt); cmd.Options.Add(steps); cmd.Options.Add(temperature); cmd.Options.Add(seed); cmd.Options.Add(json); cmd.Options.Add(profile);
        cmd.SetAction(pr =>
        {
            // Every check before the first character is printed: an error is then the only output.
            int steps0 = pr.GetValue(steps);
            float temp0 = pr.GetValue(temperature);
            if (steps0 <= 0) throw new GossetException("--steps must be positive");
            if (temp0 < 0 || !float.IsFinite(temp0)) throw new GossetException("--temperature must be ≥ 0");
            var (model, _, tok) = lo.Load(pr);
            int[] ids = tok.Encode(pr.GetValue(prompt) ?? "", bos: true, eos: false);
            if (ids.Length > Math.Min(steps0, model.Config.SeqLen))
                throw new GossetException($"the prompt has {ids.Length} tokens, more than --steps {steps0} (or the model's seq_len {model.Config.SeqLen})");
            var stream = new Generator.TextStream(tok);
            var output = new System.Text.StringBuilder();
            // Echo the prompt as llama2.c does (each prompt token after BOS).
            for (int i = 1; i < ids.Length; i++) { string s = stream.Push(ids[i - 1], ids[i]); Console.Write(s); output.Append(s); }
            var stops = new HashSet<int>(lo.StopIds);
            var prof = pr.GetValue(profile) ? new InferenceProfile() : null;
            var prefillProf = prof is null ? null : new InferenceProfile();
            var res = Generator.Run(model, ids, pr.GetValue(steps), pr.GetValue(temperature), pr.GetValue(seed), (prev, next) =>
            {
                string s = stream.Push(prev, next);
                Console.Write(s);
                output.Append(s);
                Console.Out.Flush();
            }, stops, decodeProfile: prof, prefillProfile: prefillProf);
            var generated = res.Ids;
            Console.WriteLine();
            double secs = res.PrefillSeconds + res.DecodeSeconds;
            int positions = ids.Length + res.DecodeTokens;
            double tps = positions / Math.Max(secs, 1e-9);
            long? peak = ProcessMemory.PeakRssBytes();
            var inv = CultureInfo.InvariantCulture;
            Console.Error.WriteLine(string.Format(inv, "prefill {0:F1} tok/s ({1} tokens in {2:F2} s), decode {3:F2} tok/s ({4} tokens in {5:F2} s), peak RSS {6}, KV cache {8:F1} MB; quant {7}",
                res.PrefillTokensPerSecond, res.PrefillTokens, res.PrefillSeconds, res.DecodeTokensPerSecond, res.DecodeTokens, res.DecodeSeconds,
                peak is long p ? string.Format(inv, "{0:F0} MB", p / 1e6) : "n/a", model.Quant, res.KvCacheBytes / 1e6));
            Console.Error.WriteLine(string.Format(inv, "achieved tok/s: {0:F1} ({1} positions in {2:F2} s)", tps, positions, secs));
            foreach (var (name, pf) in new[] { ("prefill", prefillProf), ("decode", prof) })
                if (pf is not null && pf.Tokens > 0)
                {
                    Console.Error.WriteLine(string.Format(inv, "{0} profile ({1} tokens, {2:F2} ms/token timed):", name, pf.Tokens, 1e3 * pf.TotalSeconds / pf.Tokens));
                    foreach (var (part, ms, share) in pf.Breakdown())
                        Console.Error.WriteLine(string.Format(inv, "  {0,-17} {1,8:F3} ms/token {2,6:P1}", part, ms, share));
                }
            string? jp = pr.GetValue(json);
            if (jp is not null)
            {
                var o = new JsonObject
                {
                    ["text"] = output.ToString(), ["prompt_ids"] = new JsonArray(ids.Select(i => (JsonNode?)i).ToArray()),
                    ["ids"] = new JsonArray(generated.Select(i => (JsonNode?)i).ToArray()), ["tokens_per_second"] = tps,
                    ["prefill_tokens"] = res.PrefillTokens, ["prefill_tok_s"] = res.PrefillTokensPerSecond,
                    ["decode_tokens"] = res.DecodeTokens, ["decode_tok_s"] = res.DecodeTokensPerSecond, ["peak_rss_bytes"] = peak,
                    ["quant"] = model.Quant, ["bits_per_weight"] = model.BitsPerWeight, ["bits_per_parameter"] = model.BitsPerParameter, ["classifier"] = model.ClassifierFormat, ["kv_bytes_per_token"] = model.KvBytesPerToken,
                    ["kv_cache_bytes"] = res.KvCacheBytes,
                };
                Gosset.IO.AtomicFile.WriteAllText(jp, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
            return 0;
        });
        return cmd;
    }
}
