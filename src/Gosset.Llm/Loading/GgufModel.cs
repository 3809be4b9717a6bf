using System.Buffers.Binary;
using System.Text;

namespace Gosset.Llm.Loading;

/// <summary>Element types the GGUF writer stores for the matrices (norm weights are always F32, as llama.cpp expects).</summary>
public enum GgufWriteType
{
    /// <summary>IEEE binary32.</summary>
    F32,
    /// <summary>IEEE binary16 (round to nearest even).</summary>
    F16,
    /// <summary>bfloat16 (round to nearest even).</summary>
    BF16,
}

/// <summary>
/// Llama-family models in GGUF: reads <c>llama</c> and <c>qwen2</c> architectures (any supported tensor type,
/// dequantized to float32) and writes <c>llama</c> GGUF files that llama.cpp runs.
/// </summary>
/// <remarks>
/// GGUF <c>llama</c> files store wq/wk with the adjacent-pair RoPE row order (llama.cpp's converter undoes the
/// Hugging Face permutation), which is Gosset's order; <c>qwen2</c> files keep the HF "rotate half" order
/// (llama.cpp runs them with NEOX RoPE), so their wq/wk rows are reordered on load.
/// </remarks>
public static class GgufModel
{
    /// <summary>Loads the weights of a GGUF model.</summary>
    /// <exception cref="InvalidFileException">Malformed file, unsupported architecture or configuration field, missing tensor or wrong shape.</exception>
    public static LlamaWeights Load(string path) => Load(path, out _);

    /// <summary>Loads the weights and the tokenizer metadata (null when the file has none).</summary>
    public static LlamaWeights Load(string path, out GgufVocabulary? vocabulary)
    {
        using var f = GgufFile.Open(path);
        vocabulary = GgufVocabulary.Read(f);
        var config = ReadConfig(f, vocabulary, out string arch);
        var w = new LlamaWeights(config);
        int d = config.Dim, h = config.HiddenDim, kv = config.KvDim;
        void R(string name, float[] dst, long cols, long rows = 1)
        {
            var info = f.Find(name) ?? throw new InvalidFileException(path, $"tensor {name} is missing");
            long[] want = rows == 1 && dst.Length == cols ? [cols] : [cols, rows];
            bool ok = info.Dims.SequenceEqual(want) || (want.Length == 1 && info.Dims.Length == 2 && info.Dims[0] == cols && info.Dims[1] == 1);
            if (!ok) throw new InvalidFileException(path, $"tensor {name} has dims {info.DimsText}, expected [{string.Join(", ", want)}]");
            f.ReadFloats(info, dst);
        }
        R("token_embd.weight", w.TokenEmbedding, d, config.VocabSize);
        foreach (var t in f.Tensors)
            if (t.Name.EndsWith(".bias", StringComparison.Ordinal) && !(config.QkvBias && t.Name.Split('.') is [_, _, "attn_q" or "attn_k" or "attn_v", _]))
                throw new InvalidFileException(path, $"tensor {t.Name}: this engine has no such bias (only q/k/v biases are supported)");
        for (int l = 0; l < config.Layers; l++)
        {
            string p = $"blk.{l}.";
            R(p + "attn_norm.weight", w.RmsAtt[l], d);
            R(p + "attn_q.weight", w.Wq[l], d, d);
            R(p + "attn_k.weight", w.Wk[l], d, kv);
            R(p + "attn_v.weight", w.Wv[l], d, kv);
            R(p + "attn_output.weight", w.Wo[l], d, d);
            R(p + "ffn_norm.weight", w.RmsFfn[l], d);
            R(p + "ffn_gate.weight", w.W1[l], d, h);
            R(p + "ffn_down.weight", w.W2[l], h, d);
            R(p + "ffn_up.weight", w.W3[l], d, h);
            if (config.QkvBias)
            {
                R(p + "attn_q.bias", w.Bq![l], d);
                R(p + "attn_k.bias", w.Bk![l], kv);
                R(p + "attn_v.bias", w.Bv![l], kv);
            }
            if (arch == "qwen2")
            {
                HuggingFaceLoader.Unpermute(w.Wq[l], config.Heads, config.HeadSize, d);
                HuggingFaceLoader.Unpermute(w.Wk[l], config.KvHeads, config.HeadSize, d);
                if (config.QkvBias)
                {
                    HuggingFaceLoader.Unpermute(w.Bq![l], config.Heads, config.HeadSize, 1);
                    HuggingFaceLoader.Unpermute(w.Bk![l], config.KvHeads, config.HeadSize, 1);
                }
            }
        }
        R("output_norm.weight", w.RmsFinal, d);
        if (!config.SharedClassifier) R("output.weight", w.Classifier, d, config.VocabSize);
        w.CheckFinite(path);
        return w;
    }

    /// <summary>The tokenizer of a model Gosset loads, as a GGUF vocabulary (the GGUF's own, or the tokenizer file next to the model).</summary>
    public static GgufVocabulary VocabularyFor(string modelPath, int vocabSize)
    {
        if (GgufFile.IsGguf(modelPath))
        {
            using var f = GgufFile.Open(modelPath);
            return GgufVocabulary.Read(f) ?? throw new GossetException($"{modelPath} holds no tokenizer");
        }
        return GgufVocabulary.FromFile(ModelLoader.ResolveTokenizerPath(modelPath, null), vocabSize);
    }

    /// <summary>Reads the model configuration from GGUF metadata; unsupported fields are errors that name the key.</summary>
    public static LlamaConfig ReadConfig(GgufFile f, GgufVocabulary? vocabulary, out string arch)
    {
        ArgumentNullException.ThrowIfNull(f);
        arch = f.GetString("general.architecture") ?? throw new InvalidFileException(f.Path, "general.architecture is missing");
        if (arch is not ("llama" or "qwen2"))
            throw new InvalidFileException(f.Path, $"general.architecture \"{arch}\" is not supported (llama, qwen2)");
        string a = arch;
        int I(string key, int? fallback = null)
        {
            long? v = f.GetInt(a + "." + key);
            if (v is null)
                return fallback ?? throw new InvalidFileException(f.Path, $"{a}.{key} is missing");
            return v is >= 0 and <= int.MaxValue ? (int)v : throw new InvalidFileException(f.Path, $"{a}.{key} = {v} is out of range");
        }
        int dim = I("embedding_length"), heads = I("attention.head_count");
        foreach (string key in new[] { "attention.head_count_kv", "feed_forward_length" })
            if (f.Metadata.GetValueOrDefault(a + "." + key) is Array)
                throw new InvalidFileException(f.Path, $"{a}.{key} varies per layer; not supported");
        var embd = f.Find("token_embd.weight") ?? throw new InvalidFileException(f.Path, "tensor token_embd.weight is missing");
        if (embd.Dims.Length != 2 || embd.Dims[1] > int.MaxValue) throw new InvalidFileException(f.Path, $"token_embd.weight has dims {embd.DimsText}");
        int vocab = I("vocab_size", vocabulary?.Tokens.Length ?? (int)embd.Dims[1]);
        double eps = f.GetFloat(a + ".attention.layer_norm_rms_epsilon") ?? throw new InvalidFileException(f.Path, $"{a}.attention.layer_norm_rms_epsilon is missing");
        double theta = f.GetFloat(a + ".rope.freq_base") ?? 10000.0;
        bool bias = f.Find("blk.0.attn_q.bias") is not null;
        if (bias && (f.Find("blk.0.attn_k.bias") is null || f.Find("blk.0.attn_v.bias") is null))
            throw new InvalidFileException(f.Path, "blk.0.attn_q.bias without attn_k.bias / attn_v.bias: not supported");
        var c = new LlamaConfig(dim, I("feed_forward_length"), I("block_count"), heads, I("attention.head_count_kv", heads),
            vocab, I("context_length"), f.Find("output.weight") is null, (float)eps, (float)theta)
        {
            Architecture = arch, QkvBias = bias,
        };
        c.Validate(f.Path);
        int hs = c.HeadSize;
        if (I("rope.dimension_count", hs) != hs)
            throw new InvalidFileException(f.Path, $"{a}.rope.dimension_count {I("rope.dimension_count")} ≠ head size {hs}: partial rotary embeddings are not supported");
        if (I("attention.key_length", hs) != hs || I("attention.value_length", hs) != hs)
            throw new InvalidFileException(f.Path, $"{a}.attention.key_length / value_length differ from embedding_length / head_count; not supported");
        string? scaling = f.GetString(a + ".rope.scaling.type");
        if (scaling is not (null or "none"))
            throw new InvalidFileException(f.Path, $"{a}.rope.scaling.type \"{scaling}\" is not supported");
        if (f.Find("rope_freqs.weight") is { } rf) c = c with { RopeScaling = MatchRopeFactors(f, rf, c) };
        foreach (string key in new[] { "expert_count", "attention.sliding_window" })
            if (f.Metadata.ContainsKey(a + "." + key)) throw new InvalidFileException(f.Path, $"{a}.{key} is not supported");
        return c;
    }

    // llama.cpp stores Llama-3 RoPE scaling as per-frequency divisors (rope_freqs.weight), not as its parameters.
    // The parameters are recovered by matching the divisors against the published Llama-3.x settings.
    private static RopeScaling MatchRopeFactors(GgufFile f, GgufTensorInfo rf, LlamaConfig c)
    {
        int half = c.HeadSize / 2;
        if (rf.Dims is not [var n] || n != half) throw new InvalidFileException(f.Path, $"rope_freqs.weight has dims {rf.DimsText}, expected [{half}]");
        var factors = new float[half];
        f.ReadFloats(rf, factors);
        float factor = factors.Max();
        int? orig = f.GetInt(c.Architecture + ".rope.scaling.original_context_length") is long o ? (int)o : null;
        foreach (int original in new[] { orig ?? 8192, 8192, 4096, 2048, 16384, 32768 }.Distinct())
        {
            var s = new RopeScaling(factor, 1, 4, original);
            var plain = (c with { RopeScaling = null }).RopeInverseFrequencies();
            var scaled = (c with { RopeScaling = s }).RopeInverseFrequencies();
            bool match = true;
            for (int j = 0; j < half && match; j++) match = Math.Abs(plain[j] / scaled[j] - factors[j]) <= 1e-4 * factors[j];
            if (match) return s;
        }
        throw new InvalidFileException(f.Path, "rope_freqs.weight does not match Llama-3 RoPE scaling (low_freq_factor 1, high_freq_factor 4); other frequency factors are not supported");
    }

    /// <summary>
    /// The GGUF metadata of a model as llama.cpp reads it: general keys, the architecture's hyperparameters
    /// (with the Llama-3 scaling's original context), and the tokenizer when given. Shared by every GGUF writer.
    /// </summary>
    internal static List<(string Key, GgufValueType Type, object Value)> Metadata(LlamaConfig c, string arch, string name, uint fileType, GgufVocabulary? vocabulary)
    {
        var meta = new List<(string Key, GgufValueType Type, object Value)>
        {
            ("general.architecture", GgufValueType.String, arch),
            ("general.name", GgufValueType.String, name),
            ("general.file_type", GgufValueType.UInt32, fileType),
            ("general.alignment", GgufValueType.UInt32, 32u),
            (arch + ".context_length", GgufValueType.UInt32, (uint)c.SeqLen),
            (arch + ".embedding_length", GgufValueType.UInt32, (uint)c.Dim),
            (arch + ".block_count", GgufValueType.UInt32, (uint)c.Layers),
            (arch + ".feed_forward_length", GgufValueType.UInt32, (uint)c.HiddenDim),
            (arch + ".attention.head_count", GgufValueType.UInt32, (uint)c.Heads),
            (arch + ".attention.head_count_kv", GgufValueType.UInt32, (uint)c.KvHeads),
            (arch + ".attention.layer_norm_rms_epsilon", GgufValueType.Float32, c.NormEps),
            (arch + ".rope.freq_base", GgufValueType.Float32, c.RopeTheta),
            (arch + ".rope.dimension_count", GgufValueType.UInt32, (uint)c.HeadSize),
            (arch + ".vocab_size", GgufValueType.UInt32, (uint)c.VocabSize),
        };
        if (c.RopeScaling is { } rs)
            meta.Add((arch + ".rope.scaling.original_context_length", GgufValueType.UInt32, (uint)rs.OriginalMaxPositions));
        if (vocabulary is not null)
        {
            meta.Add(("tokenizer.ggml.model", GgufValueType.String, vocabulary.Model));
            if (vocabulary.Pre is not null) meta.Add(("tokenizer.ggml.pre", GgufValueType.String, vocabulary.Pre));
            meta.Add(("tokenizer.ggml.tokens", GgufValueType.Array, vocabulary.Tokens));
            if (vocabulary.Scores is not null) meta.Add(("tokenizer.ggml.scores", GgufValueType.Array, vocabulary.Scores));
            if (vocabulary.TokenTypes is not null) meta.Add(("tokenizer.ggml.token_type", GgufValueType.Array, vocabulary.TokenTypes));
            if (vocabulary.Merges is not null) meta.Add(("tokenizer.ggml.merges", GgufValueType.Array, vocabulary.Merges));
            meta.Add(("tokenizer.ggml.bos_token_id", GgufValueType.UInt32, (uint)vocabulary.BosId));
            meta.Add(("tokenizer.ggml.eos_token_id", GgufValueType.UInt32, (uint)vocabulary.EosId));
            if (vocabulary.UnknownId is int u) meta.Add(("tokenizer.ggml.unknown_token_id", GgufValueType.UInt32, (uint)u));
        }
        return meta;
    }

    /// <summary>
    /// Writes weights (and optionally a tokenizer) as a GGUF v3 <c>llama</c> model, atomically.
    /// Matrices and the embedding use <paramref name="type"/>; norm weights are F32.
    /// </summary>
    public static void Save(LlamaWeights w, string path, GgufVocabulary? vocabulary, GgufWriteType type = GgufWriteType.F16, string name = "gosset")
    {
        ArgumentNullException.ThrowIfNull(w);
        var c = w.Config;
        if (vocabulary is not null && vocabulary.Tokens.Length != c.VocabSize)
            throw new GossetException($"the tokenizer has {vocabulary.Tokens.Length} tokens but the model's vocabulary is {c.VocabSize}");
        // Mistral runs as llama in llama.cpp; Qwen2 has its own architecture (HF row order, NEOX RoPE, q/k/v biases).
        string a = c.Architecture == "qwen2" ? "qwen2" : "llama";
        if (c.QkvBias && a != "qwen2") throw new GossetException("q/k/v biases are written for qwen2 models only");
        var meta = Metadata(c, a, name, type switch { GgufWriteType.F32 => 0u, GgufWriteType.F16 => 1u, _ => 32u }, vocabulary);
        int d = c.Dim, h = c.HiddenDim, kv = c.KvDim;
        var mt = type switch { GgufWriteType.F32 => GgufTensorType.F32, GgufWriteType.F16 => GgufTensorType.F16, _ => GgufTensorType.BF16 };
        var tensors = new List<(string Name, long[] Dims, GgufTensorType Type, float[] Data)>
        {
            ("token_embd.weight", [d, c.VocabSize], mt, w.TokenEmbedding),
        };
        if (c.RopeScaling is not null)
        {
            var plain = (c with { RopeScaling = null }).RopeInverseFrequencies();
            var scaled = c.RopeInverseFrequencies();
            tensors.Add(("rope_freqs.weight", [plain.Length], GgufTensorType.F32, plain.Select((f, j) => (float)(f / scaled[j])).ToArray()));
        }
        float[] Hf(float[] x, int heads, int cols)
        {
            if (a != "qwen2") return x;
            var y = (float[])x.Clone();
            HuggingFaceLoader.Permute(y, heads, c.HeadSize, cols);
            return y;
        }
        for (int l = 0; l < c.Layers; l++)
        {
            string p = $"blk.{l}.";
            tensors.Add((p + "attn_norm.weight", [d], GgufTensorType.F32, w.RmsAtt[l]));
            tensors.Add((p + "attn_q.weight", [d, d], mt, Hf(w.Wq[l], c.Heads, d)));
            tensors.Add((p + "attn_k.weight", [d, kv], mt, Hf(w.Wk[l], c.KvHeads, d)));
            if (c.QkvBias)
            {
                tensors.Add((p + "attn_q.bias", [d], GgufTensorType.F32, Hf(w.Bq![l], c.Heads, 1)));
                tensors.Add((p + "attn_k.bias", [kv], GgufTensorType.F32, Hf(w.Bk![l], c.KvHeads, 1)));
                tensors.Add((p + "attn_v.bias", [kv], GgufTensorType.F32, w.Bv![l]));
            }
            tensors.Add((p + "attn_v.weight", [d, kv], mt, w.Wv[l]));
            tensors.Add((p + "attn_output.weight", [d, d], mt, w.Wo[l]));
            tensors.Add((p + "ffn_norm.weight", [d], GgufTensorType.F32, w.RmsFfn[l]));
            tensors.Add((p + "ffn_gate.weight", [d, h], mt, w.W1[l]));
            tensors.Add((p + "ffn_down.weight", [h, d], mt, w.W2[l]));
            tensors.Add((p + "ffn_up.weight", [d, h], mt, w.W3[l]));
        }
        tensors.Add(("output_norm.weight", [d], GgufTensorType.F32, w.RmsFinal));
        if (!c.SharedClassifier) tensors.Add(("output.weight", [d, c.VocabSize], mt, w.Classifier));
        Gosset.IO.AtomicFile.Write(path, s => WriteFile(s, meta, tensors));
    }

    /// <summary>Writes the GGUF v3 header and the metadata table (the tensor table follows); shared by every GGUF writer.</summary>
    internal static void WriteHeader(BinaryWriter bw, int tensorCount, IReadOnlyList<(string Key, GgufValueType Type, object Value)> meta)
    {
        bw.Write(GgufFile.Magic);
        bw.Write(3u);
        bw.Write((ulong)tensorCount);
        bw.Write((ulong)meta.Count);
        foreach (var (key, type, value) in meta)
        {
            WriteString(bw, key);
            bw.Write((uint)type);
            switch (value)
            {
                case string x: WriteString(bw, x); break;
                case uint x: bw.Write(x); break;
                case float x: bw.Write(x); break;
                case string[] a: bw.Write((uint)GgufValueType.String); bw.Write((ulong)a.Length); foreach (var x in a) WriteString(bw, x); break;
                case float[] a: bw.Write((uint)GgufValueType.Float32); bw.Write((ulong)a.Length); foreach (var x in a) bw.Write(x); break;
                case int[] a: bw.Write((uint)GgufValueType.Int32); bw.Write((ulong)a.Length); foreach (var x in a) bw.Write(x); break;
                default: throw new InvalidOperationException($"metadata {key}: unexpected value type");
            }
        }
    }

    /// <summary>A GGUF string: uint64 byte length, then UTF-8 bytes.</summary>
    internal static void WriteString(BinaryWriter bw, string x) { var b = Encoding.UTF8.GetBytes(x); bw.Write((ulong)b.Length); bw.Write(b); }

    private static void WriteFile(Stream s, List<(string Key, GgufValueType Type, object Value)> meta,
        List<(string Name, long[] Dims, GgufTensorType Type, float[] Data)> tensors)
    {
        const int align = 32;
        var bw = new BinaryWriter(s, Encoding.UTF8, leaveOpen: true);
        WriteHeader(bw, tensors.Count, meta);
        void Str(string x) => WriteString(bw, x);
        long offset = 0;
        foreach (var (name, dims, type, data) in tensors)
        {
            Str(name);
            bw.Write((uint)dims.Length);
            foreach (long x in dims) bw.Write((ulong)x);
            bw.Write((uint)type);
            bw.Write((ulong)offset);
            offset += Align((long)data.Length * GgufTypes.BlockBytes(type), align);
        }
        bw.Flush();
        Pad(s, align);
        var buf = new byte[1 << 16];
        foreach (var (_, _, type, data) in tensors)
        {
            int es = GgufTypes.BlockBytes(type), per = buf.Length / es;
            for (int i = 0; i < data.Length; i += per)
            {
                int n = Math.Min(per, data.Length - i);
                for (int j = 0; j < n; j++)
                {
                    float v = data[i + j];
                    switch (type)
                    {
                        case GgufTensorType.F32: BinaryPrimitives.WriteSingleLittleEndian(buf.AsSpan(4 * j), v); break;
                        case GgufTensorType.F16: BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(2 * j), BitConverter.HalfToUInt16Bits((Half)v)); break;
                        default: BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(2 * j), Gosset.IO.SafeTensors.SingleToBFloat16(v)); break;
                    }
                }
                s.Write(buf, 0, n * es);
            }
            Pad(s, align);
        }
    }

    private static long Align(long x, int a) => (x + a - 1) / a * a;

    private static void Pad(Stream s, int align)
    {
        long p = s.Position, target = Align(p, align);
        for (; p < target; p++) s.WriteByte(0);
    }
}
