namespace Gosset.Llm.Loading;

/// <summary>Hyper-parameters of a Llama-family model (the llama2.c header plus the constants it implies).</summary>
/// <param name="Dim">Model (residual stream) width.</param>
/// <param name="HiddenDim">Width of the SwiGLU feed-forward layer.</param>
/// <param name="Layers">Number of transformer blocks.</param>
/// <param name="Heads">Number of query heads.</param>
/// <param name="KvHeads">Number of key/value heads (grouped-query attention when smaller than <paramref name="Heads"/>).</param>
/// <param name="VocabSize">Vocabulary size.</param>
/// <param name="SeqLen">Longest context the model supports.</param>
/// <param name="SharedClassifier">True when the output classifier is the token embedding table.</param>
/// <param name="NormEps">RMSNorm epsilon.</param>
/// <param name="RopeTheta">RoPE base frequency.</param>
public sealed record LlamaConfig(
    int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int VocabSize, int SeqLen,
    bool SharedClassifier, float NormEps = 1e-5f, float RopeTheta = 10000f)
{
    /// <summary>Width of one attention head: Dim / Heads.</summary>
    public int HeadSize => Heads > 0 ? Dim / Heads : 0;

    /// <summary>Width of the key (and value) vector of one token: KvHeads × HeadSize.</summary>
    public int KvDim => KvHeads * HeadSize;

    /// <summary>Number of parameters (classifier counted once when shared).</summary>
    public long ParameterCount =>
        (long)VocabSize * Dim + (long)Layers * (2L * Dim + 2L * Dim * Dim + 2L * Dim * KvDim + 3L * Dim * HiddenDim)
        + Dim + (SharedClassifier ? 0 : (long)VocabSize * Dim);

    /// <summary>Throws <see cref="GossetException"/> when the values cannot describe a working model.</summary>
    public void Validate(string source)
    {
        string hp = $"dim {Dim}, hidden {HiddenDim}, layers {Layers}, heads {Heads}, kv heads {KvHeads}, vocab {VocabSize}, seq_len {SeqLen}";
        if (Dim <= 0 || HiddenDim <= 0 || Layers <= 0 || Heads <= 0 || KvHeads <= 0 || VocabSize <= 0 || SeqLen <= 0)
            throw new InvalidFileException(source, $"implausible hyper-parameters ({hp}); not a Llama checkpoint?");
        if (Dim > 1 << 16 || HiddenDim > 1 << 18 || Layers > 1024 || VocabSize > 1 << 22 || SeqLen > 1 << 22)
            throw new InvalidFileException(source, $"implausible hyper-parameters ({hp}); not a Llama checkpoint?");
        if (Dim % Heads != 0 || Heads % KvHeads != 0 || HeadSize % 2 != 0)
            throw new InvalidFileException(source, $"dim {Dim}, heads {Heads} and kv heads {KvHeads} are inconsistent");
    }
}
