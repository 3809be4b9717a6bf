using Gosset.Llm.Loading;

namespace Gosset.Tests.Peer;

/// <summary>Small random-weight Llama checkpoints for cross-engine tests.</summary>
internal static class TinyModels
{
    public static LlamaWeights RandomLlama(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, bool shared, int seed)
    {
        var c = new LlamaConfig(dim, hidden, layers, heads, kvHeads, vocab, 256, shared, 1e-5f, 10000f);
        var w = new LlamaWeights(c);
        var rng = new Random(seed);
        void Fill(float[] a, double scale)
        {
            for (int i = 0; i < a.Length; i++)
                a[i] = (float)(scale * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        }
        void Norm(float[] a) { for (int i = 0; i < a.Length; i++) a[i] = (float)(1 + 0.2 * (rng.NextDouble() - 0.5)); }
        Fill(w.TokenEmbedding, 1);
        for (int l = 0; l < layers; l++)
        {
            Norm(w.RmsAtt[l]); Norm(w.RmsFfn[l]);
            foreach (var a in new[] { w.Wq[l], w.Wk[l], w.Wv[l], w.Wo[l], w.W1[l], w.W3[l] }) Fill(a, 1 / Math.Sqrt(dim));
            Fill(w.W2[l], 1 / Math.Sqrt(hidden));
        }
        Norm(w.RmsFinal);
        if (!shared) Fill(w.Classifier, 1 / Math.Sqrt(dim));
        return w;
    }

    /// <summary>A SentencePiece-style vocabulary: unk, BOS, EOS, 256 byte pieces, then plain pieces.</summary>
    public static GgufVocabulary ByteVocab(int size)
    {
        var tokens = new string[size];
        var types = new int[size];
        var scores = new float[size];
        tokens[0] = "<unk>"; tokens[1] = "<s>"; tokens[2] = "</s>";
        types[0] = GgufVocabulary.Unknown; types[1] = types[2] = GgufVocabulary.Control;
        for (int b = 0; b < 256; b++) { tokens[3 + b] = $"<0x{b:X2}>"; types[3 + b] = GgufVocabulary.Byte; }
        for (int i = 259; i < size; i++) { tokens[i] = "\u2581w" + i; types[i] = GgufVocabulary.Normal; scores[i] = -i; }
        return new GgufVocabulary("llama", tokens, scores, types, null, 1, 2, 0, null);
    }
}
