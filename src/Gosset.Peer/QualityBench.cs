using Gosset.Kernels;
using Gosset.Llm.Evaluation;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;
using Gosset.Llm.Quantization;

namespace Gosset.Peer;

/// <summary>One row of the quality table: KL to the float model on the same token ids and windows.</summary>
/// <param name="Engine">"gosset" or "llama.cpp".</param>
/// <param name="Format">Gosset's --quant (plus variant) or llama.cpp's type.</param>
/// <param name="BitsPerWeight">Stored bits per weight of the linear layers (wq..w3), side information included.</param>
/// <param name="Kl">Mean KL(p_float ‖ p_model) per position, nats.</param>
/// <param name="Top1">Fraction of positions where the argmax agrees with the float model.</param>
/// <param name="Nll">Mean NLL of the next token.</param>
/// <param name="Tensors">What the linear layers are stored as (ggml types and counts, or Gosset's description).</param>
public sealed record QualityRow(string Engine, string Format, double BitsPerWeight, double Kl, double Top1, double Nll, string Tensors);

/// <summary>
/// Quality of Gosset's formats and llama.cpp's types in one harness: the same weights, token ids and windows
/// (window w feeds tokens[ctx·w, ctx·w + ctx) with an empty cache), KL against Gosset's float model.
/// </summary>
public static class QualityBench
{
    private static readonly string[] LinearKinds = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"];

    /// <summary>Runs the table. llama.cpp files go to <paramref name="workDir"/>.</summary>
    public static IReadOnlyList<QualityRow> Run(string modelPath, string textPath, int windows, int ctx, string workDir, int threads,
        IReadOnlyList<string> gossetQuants, IReadOnlyList<LlamaCppQuant> llamaTypes, Action<string> log, List<(string Type, string Reason)>? skipped = null)
    {
        var w = ModelLoader.LoadWeights(modelPath);
        var tok = ModelLoader.LoadTokenizer(modelPath, null, w.Config.VocabSize);
        int[] tokens = tok.Encode(File.ReadAllBytes(textPath), bos: true, eos: false);
        int available = Evaluator.WindowCount(tokens.Length, ctx);
        if (windows > available) throw new GossetException($"{textPath} has only {available} windows of {ctx}");
        if (ctx > w.Config.SeqLen) throw new GossetException($"--ctx {ctx} is longer than the model's seq_len {w.Config.SeqLen}");
        // Calibration (where a recipe needs it) comes from the text after the scored windows, as in `gosset eval`.
        int[] calib = tokens.Skip(windows * ctx).Prepend(tok.BosId).ToArray();
        var reference = LlamaModel.FromWeights(w);
        var refLogits = new float[windows][];
        for (int i = 0; i < windows; i++) refLogits[i] = reference.ForwardWindow(tokens.AsSpan(i * ctx, ctx));
        var rows = new List<QualityRow>();
        QualityRow Score(string engine, string format, double bits, string tensors, Func<int[], float[]> logits)
        {
            var (kl, top1, nll) = Compare(tokens, windows, ctx, w.Config.VocabSize, refLogits, logits);
            var r = new QualityRow(engine, format, bits, kl, top1, nll, tensors);
            log($"{engine} {format}: {bits:F3} bits/weight, KL {kl:F5}, top-1 {top1:P2}, NLL {nll:F5}");
            return r;
        }
        rows.Add(Score("gosset", "fp32", 32, "f32", ids => reference.ForwardWindow(ids)));
        foreach (string q in gossetQuants)
        {
            var m = ModelQuantizer.Quantize(w, QuantSpec.Parse(q), calib);
            rows.Add(Score("gosset", q, m.BitsPerWeight, m.Quant, ids => m.ForwardWindow(ids)));
            if (!m.Recipe!.Spec.Activations.IsQuantized && !m.Recipe.Spec.Keys.IsQuantized && !m.Recipe.Spec.Values.IsQuantized)
            {
                var (m2, bits2) = WithFloat16Down(m, w);
                rows.Add(Score("gosset", q + ", ffn_down f16", bits2, m.Quant + "; ffn_down f16", ids => m2.ForwardWindow(ids)));
            }
        }
        Directory.CreateDirectory(workDir);
        string f32 = Path.Combine(workDir, "model.f32.gguf");
        GgufModel.Save(w, f32, GgufModel.VocabularyFor(modelPath, w.Config.VocabSize), GgufWriteType.F32);
        try
        {
            using (var m = new LlamaCppModel(f32, ctx, threads))
                rows.Add(Score("llama.cpp", "f32", 32, "f32", ids => m.WindowLogits(ids)));
            foreach (var t in llamaTypes)
            {
                string path = Path.Combine(workDir, $"model.{t}.gguf");
                try { LlamaCppRuntime.Quantize(f32, path, t, threads, keepEmbeddingsF16: true); }
                catch (GossetException e)
                {
                    // e.g. Q4_0 / IQ4_NL / Q8_0 have no fallback for rows that are no multiple of 32 in this llama.cpp.
                    log($"llama.cpp {t}: not available on this model: {e.Message}");
                    skipped?.Add((t.ToString(), LlamaCppRuntime.LastMessage));
                    continue;
                }
                var (bits, types) = LinearBits(path);
                using var m = new LlamaCppModel(path, ctx, threads);
                rows.Add(Score("llama.cpp", t.ToString(), bits, types, ids => m.WindowLogits(ids)));
                File.Delete(path);
            }
        }
        finally { File.Delete(f32); }
        return rows;
    }

    /// <summary>Mean KL(p_ref ‖ p), top-1 agreement and NLL over the windows.</summary>
    internal static (double Kl, double Top1, double Nll) Compare(int[] tokens, int windows, int ctx, int vocab, float[][] refLogits, Func<int[], float[]> model)
    {
        double kl = 0, nll = 0;
        long n = 0, agree = 0;
        var lp = new double[vocab];
        var lr = new double[vocab];
        for (int win = 0; win < windows; win++)
        {
            int[] ids = tokens.AsSpan(win * ctx, ctx).ToArray();
            float[] logits = model(ids);
            for (int t = 0; t < ctx; t++)
            {
                Evaluator.LogSoftmax(logits.AsSpan(t * vocab, vocab), lp);
                Evaluator.LogSoftmax(refLogits[win].AsSpan(t * vocab, vocab), lr);
                double k = 0;
                for (int i = 0; i < vocab; i++) k += Math.Exp(lr[i]) * (lr[i] - lp[i]);
                kl += Math.Max(0, k);
                nll -= lp[tokens[win * ctx + t + 1]];
                if (Evaluator.ArgMax(lp) == Evaluator.ArgMax(lr)) agree++;
                n++;
            }
        }
        return (kl / n, (double)agree / n, nll / n);
    }

    /// <summary>The quantized model with every ffn_down replaced by the float weights rounded to f16 (llama.cpp's fallback for rows that are no multiple of 32).</summary>
    internal static (LlamaModel Model, double BitsPerWeight) WithFloat16Down(LlamaModel m, LlamaWeights w)
    {
        var c = m.Config;
        long bits = 0, n = 0;
        var layers = new LayerBlock[c.Layers];
        for (int l = 0; l < c.Layers; l++)
        {
            var b = m.Layers[l];
            var down = w.W2[l].Select(v => (float)(Half)v).ToArray();
            layers[l] = new LayerBlock
            {
                RmsAtt = b.RmsAtt, RmsFfn = b.RmsFfn, Wq = b.Wq, Wk = b.Wk, Wv = b.Wv, Wo = b.Wo, W1 = b.W1, W3 = b.W3,
                W2 = new Linear(c.HiddenDim, new Float32Matrix(down, c.Dim, c.HiddenDim)),
            };
            foreach (var lin in new[] { b.Wq, b.Wk, b.Wv, b.Wo, b.W1, b.W3 }) { bits += lin.Weights.StoredBits; n += (long)lin.Out * lin.In; }
            bits += 16L * down.Length;
            n += down.Length;
        }
        var model = new LlamaModel(c, m.Embedding, m.Classifier.Weights, m.RmsFinal, layers, m.Kv, m.Quant + "+down-f16") { Recipe = m.Recipe };
        model.SetBiases(w);
        return (model, (double)bits / n);
    }

    /// <summary>Stored bits per weight of the linear layers of a GGUF file, and a summary of their types.</summary>
    public static (double Bits, string Types) LinearBits(string ggufPath)
    {
        using var f = GgufFile.Open(ggufPath);
        long bytes = 0, n = 0;
        var kinds = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in f.Tensors)
        {
            var parts = t.Name.Split('.');
            if (parts.Length != 4 || parts[0] != "blk" || parts[3] != "weight" || !LinearKinds.Contains(parts[2])) continue;
            bytes += t.ByteLength;
            n += t.ElementCount;
            string key = $"{parts[2]}:{t.Type}";
            kinds[key] = kinds.GetValueOrDefault(key) + 1;
        }
        return (8.0 * bytes / n, string.Join(", ", kinds.Select(kv => $"{kv.Key}×{kv.Value}")));
    }
}
