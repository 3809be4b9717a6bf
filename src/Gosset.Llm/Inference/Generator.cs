using System.Text;
using Gosset.Llm.Evaluation;
using Gosset.Llm.Tokenization;

namespace Gosset.Llm.Inference;

/// <summary>Token-by-token generation with greedy (temperature 0) or temperature sampling.</summary>
public static class Generator
{
    /// <summary>
    /// Feeds the prompt ids one at a time, then samples up to <paramref name="steps"/> positions in total
    /// (prompt included, as llama2.c counts), stopping at BOS. <paramref name="onToken"/> receives each generated id.
    /// Returns the generated ids (prompt excluded).
    /// </summary>
    public static List<int> Generate(LlamaModel model, int[] promptIds, int steps, float temperature, ulong seed, Action<int, int>? onToken = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(promptIds);
        if (promptIds.Length == 0) throw new GossetException("the prompt must hold at least BOS");
        if (steps <= 0) throw new GossetException("--steps must be positive");
        if (temperature < 0 || !float.IsFinite(temperature)) throw new GossetException("--temperature must be ≥ 0");
        steps = Math.Min(steps, model.Config.SeqLen);
        if (promptIds.Length > steps) throw new GossetException($"the prompt has {promptIds.Length} tokens, more than --steps {steps} (or the model's seq_len)");
        var cache = model.CreateCache(steps);
        var rng = new Random(unchecked((int)(seed ^ (seed >> 32))));
        var result = new List<int>();
        int token = promptIds[0];
        for (int pos = 0; pos < steps; pos++)
        {
            float[] logits = model.Forward(cache, [token]);
            int next;
            if (pos + 1 < promptIds.Length) next = promptIds[pos + 1];
            else
            {
                next = temperature == 0 ? Evaluator.ArgMax(logits) : Sample(logits, temperature, rng);
                if (next == 1) break; // llama2.c stops at BOS
                result.Add(next);
                onToken?.Invoke(token, next);
            }
            token = next;
        }
        return result;
    }

    private static int Sample(float[] logits, float temperature, Random rng)
    {
        double max = logits.Max();
        var p = new double[logits.Length];
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
