using System.Text;
using Gosset.Llm.Evaluation;
using Gosset.Llm.Tokenization;

namespace Gosset.Llm.Inference;

/// <summary>Timings of one generation: the prompt as one batch (prefill), then one token per step (decode).</summary>
/// <param name="Ids">Generated ids (prompt excluded).</param>
/// <param name="PrefillTokens">Prompt positions fed in the batch.</param>
/// <param name="PrefillSeconds">Wall time of the prefill (logits of its last token included).</param>
/// <param name="DecodeTokens">Positions fed one at a time after the prompt.</param>
/// <param name="DecodeSeconds">Wall time of those steps.</param>
public sealed record GenerationResult(List<int> Ids, int PrefillTokens, double PrefillSeconds, int DecodeTokens, double DecodeSeconds)
{
    /// <summary>Prompt tokens per second.</summary>
    public double PrefillTokensPerSecond => PrefillTokens / Math.Max(PrefillSeconds, 1e-9);
    /// <summary>Generated tokens per second after the prompt.</summary>
    public double DecodeTokensPerSecond => DecodeTokens / Math.Max(DecodeSeconds, 1e-9);
    /// <summary>Bytes the KV cache held in memory for the run's positions (<see cref="KvCache.MemoryBytes"/>).</summary>
    public long KvCacheBytes { get; init; }
}

/// <summary>Generation with greedy (temperature 0) or temperature sampling: the prompt in one batch, then token by token.</summary>
public static class Generator
{
    /// <summary>
    /// Feeds the prompt ids, then samples up to <paramref name="steps"/> positions in total (prompt included, as
    /// llama2.c counts), stopping at BOS (id 1). <paramref name="onToken"/> receives each generated id.
    /// Returns the generated ids (prompt excluded).
    /// </summary>
    public static List<int> Generate(LlamaModel model, int[] promptIds, int steps, float temperature, ulong seed, Action<int, int>? onToken = null)
        => Run(model, promptIds, steps, temperature, seed, onToken, [1]).Ids;

    /// <summary>
    /// As <see cref="Generate"/>, stopping at any of <paramref name="stopIds"/>, and with timings. The prompt is fed as
    /// batches of up to <paramref name="prefillBatch"/> tokens through the batched products; only the last logits are computed.
    /// A <paramref name="decodeProfile"/> receives the time per part of the decode steps, a <paramref name="prefillProfile"/> that of the prompt.
    /// </summary>
    public static GenerationResult Run(LlamaModel model, int[] promptIds, int steps, float temperature, ulong seed,
        Action<int, int>? onToken, IReadOnlyCollection<int> stopIds, int prefillBatch = 256, InferenceProfile? decodeProfile = null,
        InferenceProfile? prefillProfile = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(promptIds);
        ArgumentNullException.ThrowIfNull(stopIds);
        if (promptIds.Length == 0) throw new GossetException("the prompt must hold at least BOS");
        if (steps <= 0) throw new GossetException("--steps must be positive");
        if (temperature < 0 || !float.IsFinite(temperature)) throw new GossetException("--temperature must be ≥ 0");
        steps = Math.Min(steps, model.Config.SeqLen);
        if (promptIds.Length > steps) throw new GossetException($"the prompt has {promptIds.Length} tokens, more than --steps {steps} (or the model's seq_len)");
        var cache = model.CreateCache(steps);
        var rng = new Random(unchecked((int)(seed ^ (seed >> 32))));
        var probs = temperature == 0 ? null : new double[model.Config.VocabSize];
        var result = new List<int>();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        float[] logits = [];
        cache.Profile = prefillProfile;
        for (int p0 = 0; p0 < promptIds.Length; p0 += prefillBatch)
            logits = model.ForwardLast(cache, promptIds.AsSpan(p0, Math.Min(prefillBatch, promptIds.Length - p0)));
        double prefill = sw.Elapsed.TotalSeconds;
        cache.Profile = decodeProfile;
        sw.Restart();
        int decoded = 0, token = promptIds[^1];
        while (true)
        {
            int next = temperature == 0 ? Evaluator.ArgMax(logits) : Sample(logits, temperature, rng, probs!);
            if (stopIds.Contains(next)) break;
            result.Add(next);
            onToken?.Invoke(token, next);
            token = next;
            if (cache.Length >= steps) break;
            logits = model.ForwardLast(cache, [token]);
            decoded++;
        }
        return new GenerationResult(result, promptIds.Length, prefill, decoded, sw.Elapsed.TotalSeconds) { KvCacheBytes = cache.MemoryBytes };
    }

    private static int Sample(ReadOnlySpan<float> logits, float temperature, Random rng, double[] p)
    {
        double max = System.Numerics.Tensors.TensorPrimitives.Max(logits);
        double sum = 0;
        for (int i = 0; i < p.Length; i++) { p[i] = Math.Exp((logits[i] - max) / temperature); sum += p[i]; }
        double r = rng.NextDouble() * sum, acc = 0;
        for (int i = 0; i < p.Length; i++) { acc += p[i]; if (r < acc) return i; }
        return p.Length - 1;
    }

    /// <summary>Streams UTF-8 bytes of pieces to text, holding incomplete characters back.</summary>
    public sealed class TextStream(ITextTokenizer tokenizer)
    {
        private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();

        /// <summary>Text that <paramref name="token"/> adds after <paramref name="previous"/>.</summary>
        public string Push(int previous, int token)
        {
            byte[] b = tokenizer.DecodePiece(previous, token);
            var chars = new char[b.Length + 4];
            int n = _decoder.GetChars(b, 0, b.Length, chars, 0, flush: false);
            return new string(chars, 0, n);
        }
    }
}
