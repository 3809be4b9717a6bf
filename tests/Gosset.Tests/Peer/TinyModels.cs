using Gosset.Llm.Loading;

namespace Gosset.Tests.Peer;

/// <summary>Small random-weight Llama checkpoints for cross-engine tests.</summary>
internal static class TinyModels
{
    public static LlamaWeights RandomLlama(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, bool shared, int seed) =>
        Random(new LlamaConfig(dim, hidden, layers, heads, kvHeads, vocab, 256, shared, 1e-5f, 10000f), seed);

    /// <summary>Llama-3.2-like: RoPE θ = 500000 with llama3 scaling (factor 32; original context 64 so that most frequencies are scaled within 200 positions), untied head, GQA.</summary>
    public static LlamaConfig Llama3 { get; } = new(128, 320, 2, 4, 2, 300, 256, SharedClassifier: false, 1e-5f, 500000f)
    {
        RopeScaling = new RopeScaling(32, 1, 4, 64), Architecture = "llama",
    };

    /// <summary>Qwen2-like: q/k/v biases, tied head, θ = 1e6, eps 1e-6.</summary>
    public static LlamaConfig Qwen2 { get; } = new(128, 320, 2, 4, 2, 300, 256, SharedClassifier: true, 1e-6f, 1000000f)
    {
        QkvBias = true, Architecture = "qwen2",
    };

    /// <summary>Mistral-like: one K/V head (GQA 4:1), untied head.</summary>
    public static LlamaConfig Mistral { get; } = new(128, 320, 2, 4, 1, 300, 256, SharedClassifier: false, 1e-5f, 1000000f) { Architecture = "mistral" };

    public static LlamaWeights Random(LlamaConfig c, int seed)
    {
        int dim = c.Dim, hidden = c.HiddenDim, layers = c.Layers;
        bool shared = c.SharedClassifier;
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
            if (c.QkvBias) { Fill(w.Bq![l], 0.5); Fill(w.Bk![l], 0.5); Fill(w.Bv![l], 0.5); }
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
