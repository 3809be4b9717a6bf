namespace Gosset.Llm.Loading;

/// <summary>
/// Llama 3.x RoPE frequency scaling (<c>rope_scaling</c> with <c>rope_type: "llama3"</c>): long wavelengths are
/// divided by <paramref name="Factor"/>, short ones kept, the band between interpolated smoothly.
/// </summary>
/// <param name="Factor">Divisor of the low frequencies.</param>
/// <param name="LowFreqFactor">Wavelengths above original_max_position / this are fully scaled.</param>
/// <param name="HighFreqFactor">Wavelengths below original_max_position / this are kept.</param>
/// <param name="OriginalMaxPositions">The pre-training context (<c>original_max_position_embeddings</c>).</param>
public sealed record RopeScaling(float Factor, float LowFreqFactor, float HighFreqFactor, int OriginalMaxPositions);

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
    /// <summary>Llama-3 RoPE scaling, or null for plain RoPE.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>True when the query, key and value projections have biases (Qwen2).</summary>
    public bool QkvBias { get; init; }

    /// <summary>The <c>model_type</c> the configuration came from ("llama", "mistral", "qwen2"; "llama2c" for llama2.c files).</summary>
    public string Architecture { get; init; } = "llama";

    /// <summary>Width of one attention head: Dim / Heads.</summary>
    public int HeadSize => Heads > 0 ? Dim / Heads : 0;

    /// <summary>Width of the key (and value) vector of one token: KvHeads × HeadSize.</summary>
    public int KvDim => KvHeads * HeadSize;

    /// <summary>Number of parameters (classifier counted once when shared; biases included).</summary>
    public long ParameterCount =>
        (long)VocabSize * Dim + (long)Layers * (2L * Dim + 2L * Dim * Dim + 2L * Dim * KvDim + 3L * Dim * HiddenDim + (QkvBias ? Dim + 2L * KvDim : 0))
        + Dim + (SharedClassifier ? 0 : (long)VocabSize * Dim);

    /// <summary>
    /// RoPE inverse frequencies θ^(−2j/hs) for j &lt; hs/2, with the Llama-3 scaling applied when configured
    /// (the formula of Meta's reference code and of transformers' <c>_compute_llama3_parameters</c>).
    /// </summary>
    public double[] RopeInverseFrequencies()
    {
        int half = HeadSize / 2;
        var f = new double[half];
        for (int j = 0; j < half; j++) f[j] = Math.Pow(RopeTheta, -2.0 * j / HeadSize);
        if (RopeScaling is not { } s) return f;
        double lowWavelen = s.OriginalMaxPositions / (double)s.LowFreqFactor;
        double highWavelen = s.OriginalMaxPositions / (double)s.HighFreqFactor;
        for (int j = 0; j < half; j++)
        {
            double wavelen = 2 * Math.PI / f[j];
            if (wavelen < highWavelen) continue;
            if (wavelen > lowWavelen) { f[j] /= s.Factor; continue; }
            double smooth = (s.OriginalMaxPositions / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
            f[j] = (1 - smooth) * f[j] / s.Factor + smooth * f[j];
        }
        return f;
    }

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
        // Every tensor is one array: its element count must fit (long arithmetic, no overflow at these bounds).
        long largest = Math.Max(Math.Max((long)Dim * HiddenDim, (long)Dim * Dim), (long)VocabSize * Dim);
        if (largest > Array.MaxLength)
            throw new InvalidFileException(source, $"a tensor of {largest} entries is larger than this engine's arrays allow ({hp})");
        if (!float.IsFinite(RopeTheta) || RopeTheta <= 1 || !float.IsFinite(NormEps) || NormEps < 0)
            throw new InvalidFileException(source, $"rope_theta {RopeTheta} or rms_norm_eps {NormEps} is implausible");
        if (RopeScaling is { } s && (!(s.Factor >= 1) || !(s.LowFreqFactor > 0) || !(s.HighFreqFactor > s.LowFreqFactor) || s.OriginalMaxPositions <= 0
            || !float.IsFinite(s.Factor) || !float.IsFinite(s.HighFreqFactor)))
            throw new InvalidFileException(source, $"rope_scaling {s} is implausible (need factor ≥ 1, 0 < low_freq_factor < high_freq_factor, original_max_position_embeddings > 0)");
    }
}
