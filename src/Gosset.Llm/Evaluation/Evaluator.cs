using Gosset.Llm.Inference;

namespace Gosset.Llm.Evaluation;

/// <summary>Result of a perplexity (and, with a reference model, KL / top-1) evaluation.</summary>
/// <param name="Nll">Mean negative log-likelihood (natural log) per scored target.</param>
/// <param name="Ppl">exp(Nll).</param>
/// <param name="Kl">Mean KL(p_reference ‖ p_model) per scored position (nats); null without a reference.</param>
/// <param name="Top1Agreement">Fraction of positions where both models' argmax agree; null without a reference.</param>
/// <param name="Tokens">Number of scored targets.</param>
/// <param name="Windows">Number of windows evaluated.</param>
/// <param name="NllPerWindow">Mean NLL of each window.</param>
/// <param name="ReferenceNll">Mean NLL of the reference model on the same targets; null without a reference.</param>
public sealed record EvalResult(double Nll, double Ppl, double? Kl, double? Top1Agreement, long Tokens, int Windows,
    double[] NllPerWindow, double? ReferenceNll);

/// <summary>
/// Perplexity over non-overlapping windows (the protocol of golden.json): window w feeds
/// tokens[ctx·w, ctx·w + ctx) at positions 0.. with an empty cache and scores the next tokens.
/// </summary>
public static class Evaluator
{
    /// <summary>Number of windows of <paramref name="ctx"/> a token stream yields (the last may be shorter).</summary>
    public static int WindowCount(int tokenCount, int ctx) => (tokenCount - 1 + ctx - 1) / ctx;

    /// <summary>Evaluates <paramref name="model"/> on the first <paramref name="windows"/> windows (all when ≤ 0).</summary>
    /// <remarks>
    /// <paramref name="referenceCache"/>, when given, keeps the reference logits per window start so that
    /// several evaluations against the same reference (a sweep) compute them once.
    /// </remarks>
    public static EvalResult Evaluate(LlamaModel model, int[] tokens, int ctx, int windows, LlamaModel? reference = null,
        Action<int, int>? progress = null, Dictionary<int, float[]>? referenceCache = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Length < 2) throw new GossetException("the text is empty: nothing to score (need at least one token after BOS)");
        if (ctx <= 0) throw new GossetException("--ctx must be positive");
        if (ctx > model.Config.SeqLen) throw new GossetException($"context {ctx} is longer than the model's seq_len {model.Config.SeqLen}");
        int available = WindowCount(tokens.Length, ctx);
        int n = windows <= 0 ? available : Math.Min(windows, available);
        double nll = 0, refNll = 0, kl = 0;
        long count = 0, agree = 0;
        var perWindow = new double[n];
        int vocab = model.Config.VocabSize;
        for (int w = 0; w < n; w++)
        {
            int start = w * ctx;
            int len = Math.Min(ctx, tokens.Length - 1 - start);
            var input = tokens.AsSpan(start, len);
            float[] logits = model.ForwardWindow(input);
            float[]? refLogits = null;
            if (reference is not null)
            {
                if (referenceCache is null || !referenceCache.TryGetValue(start, out refLogits))
                {
                    refLogits = reference.ForwardWindow(input);
                    if (referenceCache is not null) referenceCache[start] = refLogits;
                }
            }
            double wn = 0;
            var lp = new double[vocab];
            var lr = new double[vocab];
            for (int t = 0; t < len; t++)
            {
                int target = tokens[start + t + 1];
                LogSoftmax(logits.AsSpan(t * vocab, vocab), lp);
                wn -= lp[target];
                if (refLogits is not null)
                {
                    LogSoftmax(refLogits.AsSpan(t * vocab, vocab), lr);
                    refNll -= lr[target];
                    double k = 0;
                    for (int i = 0; i < vocab; i++) k += Math.Exp(lr[i]) * (lr[i] - lp[i]);
                    kl += Math.Max(0, k);
                    if (ArgMax(lp) == ArgMax(lr)) agree++;
                }
            }
            nll += wn;
            count += len;
            perWindow[w] = wn / len;
            progress?.Invoke(w + 1, n);
        }
        double mean = nll / count;
        return new EvalResult(mean, Math.Exp(mean), reference is null ? null : kl / count,
            reference is null ? null : (double)agree / count, count, n, perWindow, reference is null ? null : refNll / count);
    }

    /// <summary>log softmax of logits, computed in double.</summary>
    public static void LogSoftmax(ReadOnlySpan<float> logits, Span<double> dst)
    {
        double max = double.NegativeInfinity;
        foreach (float v in logits) max = Math.Max(max, v);
        double sum = 0;
        foreach (float v in logits) sum += Math.Exp(v - max);
        double lse = max + Math.Log(sum);
        for (int i = 0; i < logits.Length; i++) dst[i] = logits[i] - lse;
    }

    /// <summary>Index of the largest value; the lowest index on ties.</summary>
    public static int ArgMax(ReadOnlySpan<double> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    /// <summary>Index of the largest value; the lowest index on ties.</summary>
    public static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
