namespace Gosset.Llm.Loading;

/// <summary>
/// The float32 tensors of a Llama model, in llama2.c layout: matrices are [out][in] row-major (y = W·x),
/// one array per layer. RoPE pairs are adjacent (2j, 2j+1) within each head (the llama2.c / Meta order).
/// </summary>
public sealed class LlamaWeights
{
    /// <summary>Creates zero-filled tensors for a configuration.</summary>
    public LlamaWeights(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config;
        int d = config.Dim, h = config.HiddenDim, kv = config.KvDim, l = config.Layers;
        TokenEmbedding = new float[(long)config.VocabSize * d];
        RmsAtt = Make(l, d); Wq = Make(l, (long)d * d); Wk = Make(l, (long)kv * d); Wv = Make(l, (long)kv * d); Wo = Make(l, (long)d * d);
        RmsFfn = Make(l, d); W1 = Make(l, (long)h * d); W2 = Make(l, (long)d * h); W3 = Make(l, (long)h * d);
        RmsFinal = new float[d];
        Classifier = config.SharedClassifier ? TokenEmbedding : new float[(long)config.VocabSize * d];
        if (config.QkvBias) { Bq = Make(l, d); Bk = Make(l, kv); Bv = Make(l, kv); }
    }

    private static float[][] Make(int layers, long size)
    {
        var a = new float[layers][];
        for (int i = 0; i < layers; i++) a[i] = new float[size];
        return a;
    }

    /// <summary>Hyper-parameters.</summary>
    public LlamaConfig Config { get; }
    /// <summary>Token embedding [vocab][dim].</summary>
    public float[] TokenEmbedding { get; }
    /// <summary>Attention RMSNorm weights, per layer [dim].</summary>
    public float[][] RmsAtt { get; }
    /// <summary>Query projection, per layer [dim][dim].</summary>
    public float[][] Wq { get; }
    /// <summary>Key projection, per layer [kv_dim][dim].</summary>
    public float[][] Wk { get; }
    /// <summary>Value projection, per layer [kv_dim][dim].</summary>
    public float[][] Wv { get; }
    /// <summary>Attention output projection, per layer [dim][dim].</summary>
    public float[][] Wo { get; }
    /// <summary>Feed-forward RMSNorm weights, per layer [dim].</summary>
    public float[][] RmsFfn { get; }
    /// <summary>Gate projection, per layer [hidden][dim].</summary>
    public float[][] W1 { get; }
    /// <summary>Down projection, per layer [dim][hidden].</summary>
    public float[][] W2 { get; }
    /// <summary>Up projection, per layer [hidden][dim].</summary>
    public float[][] W3 { get; }
    /// <summary>Final RMSNorm weights [dim].</summary>
    public float[] RmsFinal { get; }
    /// <summary>Output classifier [vocab][dim]; the same array as <see cref="TokenEmbedding"/> when shared.</summary>
    public float[] Classifier { get; }

    /// <summary>Query bias, per layer [dim] (RoPE pair order like <see cref="Wq"/>'s rows), or null without biases.</summary>
    public float[][]? Bq { get; }
    /// <summary>Key bias, per layer [kv_dim], or null.</summary>
    public float[][]? Bk { get; }
    /// <summary>Value bias, per layer [kv_dim], or null.</summary>
    public float[][]? Bv { get; }

    /// <summary>Throws when any weight is NaN or infinite (a corrupt checkpoint).</summary>
    public void CheckFinite(string source)
    {
        void Check(float[] a, string name)
        {
            foreach (float v in a)
                if (!float.IsFinite(v)) throw new InvalidFileException(source, $"tensor {name} holds NaN or infinite values (corrupt checkpoint?)");
        }
        Check(TokenEmbedding, "token_embedding");
        for (int i = 0; i < Config.Layers; i++)
        {
            Check(RmsAtt[i], "rms_att"); Check(Wq[i], "wq"); Check(Wk[i], "wk"); Check(Wv[i], "wv"); Check(Wo[i], "wo");
            Check(RmsFfn[i], "rms_ffn"); Check(W1[i], "w1"); Check(W2[i], "w2"); Check(W3[i], "w3");
            if (Bq is not null) { Check(Bq[i], "bq"); Check(Bk![i], "bk"); Check(Bv![i], "bv"); }
        }
        Check(RmsFinal, "rms_final");
        if (!Config.SharedClassifier) Check(Classifier, "wcls");
    }
}
