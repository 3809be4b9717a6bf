using Gosset.Kernels;
using Gosset.Codes;
using Gosset.Rotations;
using System.Numerics.Tensors;
using Gosset.Llm.Loading;

namespace Gosset.Llm.Inference;

/// <summary>One transformer block's parameters.</summary>
internal sealed class LayerBlock
{
    public required float[] RmsAtt { get; init; }
    public required float[] RmsFfn { get; init; }
    public required Linear Wq { get; init; }
    public required Linear Wk { get; init; }
    public required Linear Wv { get; init; }
    public required Linear Wo { get; init; }
    public required Linear W1 { get; init; }
    public required Linear W2 { get; init; }
    public required Linear W3 { get; init; }
    public IEnumerable<Linear> Linears => [Wq, Wk, Wv, Wo, W1, W2, W3];
    /// <summary>q, k and v stacked in one product (their weights are views of its rows), or null.</summary>
    public Linear? Qkv { get; init; }
    /// <summary>Gate and up stacked in one product, or null.</summary>
    public Linear? GateUp { get; init; }

    /// <summary>
    /// The block with q/k/v and gate/up each stacked into one product when their weights allow it (e8 kernel codes with
    /// one scale table, the same input rotation and activation mode, no activation codec): one pass over the input, one
    /// thread dispatch, the same output bits. Each linear keeps its stored bits; its weights become a view of the stack.
    /// </summary>
    public LayerBlock Stacked()
    {
        var (q, k, v, qkv) = Stack3(Wq, Wk, Wv);
        var (g, u, _, gu) = Stack3(W1, W3, null);
        if (qkv is null && gu is null) return this;
        return new LayerBlock { RmsAtt = RmsAtt, RmsFfn = RmsFfn, Wq = q, Wk = k, Wv = v!, Wo = Wo, W1 = g, W2 = W2, W3 = u, Qkv = qkv ?? Qkv, GateUp = gu ?? GateUp };
    }

    private static (Linear, Linear, Linear?, Linear?) Stack3(Linear a, Linear b, Linear? c)
    {
        Linear[] parts = c is null ? [a, b] : [a, b, c];
        if (parts.Any(l => l.Weights is not PackedE8Matrix || l.Activations is not null || l.Calibration is not null || !ReferenceEquals(l.Rotation, a.Rotation)
            || l.KernelActivations != a.KernelActivations || l.In != a.In || l.Width != a.Width))
            return (a, b, c, null);
        var st = PackedE8Matrix.Stack(parts.Select(l => (PackedE8Matrix)l.Weights).ToArray());
        if (st is null) return (a, b, c, null);
        var (stack, views) = st.Value;
        Linear View(int i) => new(parts[i].In, views[i], parts[i].Rotation, null, parts[i].KernelActivations);
        return (View(0), View(1), c is null ? null : View(2), new Linear(a.In, stack, a.Rotation, null, a.KernelActivations));
    }
}

/// <summary>
/// A Llama-family model ready for inference, in float32 or with quantized weights, activations and
/// KV cache. <see cref="Forward"/> processes a block of consecutive tokens at once (matrix–matrix,
/// multithreaded): a whole window for evaluation, or one token for generation.
/// </summary>
public sealed class LlamaModel
{
    internal LlamaModel(LlamaConfig config, float[] embedding, float[] classifier, float[] rmsFinal, LayerBlock[] layers,
        KvLayerFormat[] kv, string quant)
        : this(config, embedding.Length == 0 ? null : new TokenTable(embedding, config.VocabSize, config.Dim),
            embedding.Length == 0 ? null : new Float32Matrix(classifier, config.VocabSize, config.Dim), rmsFinal, layers, kv, quant)
    {
    }

    /// <summary>Null tables (empty arrays above) make a structure whose tables <see cref="SetTables"/> supplies (the .gqm reader).</summary>
    internal LlamaModel(LlamaConfig config, TokenTable? embedding, PackedMatrix? classifier, float[] rmsFinal, LayerBlock[] layers,
        KvLayerFormat[] kv, string quant)
    {
        Config = config;
        Embedding = embedding!;
        Classifier = classifier is null ? null! : new Linear(config.Dim, classifier);
        RmsFinal = rmsFinal;
        Layers = layers;
        Kv = kv;
        _quant = quant;
    }

    private readonly string _quant;

    /// <summary>The float32 model of a checkpoint's weights.</summary>
    public static LlamaModel FromWeights(LlamaWeights w)
    {
        ArgumentNullException.ThrowIfNull(w);
        var c = w.Config;
        var layers = new LayerBlock[c.Layers];
        Linear L(float[] a, int rows, int cols) => new(cols, new Float32Matrix(a, rows, cols));
        for (int l = 0; l < c.Layers; l++)
        {
            layers[l] = new LayerBlock
            {
                RmsAtt = w.RmsAtt[l], RmsFfn = w.RmsFfn[l],
                Wq = L(w.Wq[l], c.Dim, c.Dim), Wk = L(w.Wk[l], c.KvDim, c.Dim), Wv = L(w.Wv[l], c.KvDim, c.Dim),
                Wo = L(w.Wo[l], c.Dim, c.Dim), W1 = L(w.W1[l], c.HiddenDim, c.Dim), W2 = L(w.W2[l], c.Dim, c.HiddenDim),
                W3 = L(w.W3[l], c.HiddenDim, c.Dim),
            };
        }
        var kv = Enumerable.Range(0, c.Layers).Select(_ => new KvLayerFormat(null, null, null)).ToArray();
        var m = new LlamaModel(c, w.TokenEmbedding, w.Classifier, w.RmsFinal, layers, kv, "fp");
        m.SetBiases(w);
        return m;
    }

    /// <summary>Hyper-parameters.</summary>
    public LlamaConfig Config { get; }
    /// <summary>The quantization this model runs with ("fp" for float32; " classifier int8" or " classifier e8" appended when the classifier is quantized).</summary>
    public string Quant => ClassifierFormat == "source" ? _quant : $"{_quant} classifier {ClassifierFormat}";

    /// <summary>How the classifier is stored: "source" (the checkpoint's precision), "int8" (8 bits, an fp16 step per 256) or "e8" (the 4-bit e8 box code); see <see cref="Quantization.ClassifierQuantizer"/>.</summary>
    public string ClassifierFormat { get; private set; } = "source";

    /// <summary>
    /// Replaces the classifier by a quantized layer. The token embedding is unchanged, except that a tied head's 8-bit
    /// classifier becomes the embedding table too (one 8-bit copy for both, as llama.cpp keeps one tied table).
    /// </summary>
    internal void SetClassifier(Linear classifier, string format)
    {
        if (classifier.Out != Config.VocabSize || classifier.In != Config.Dim) throw new ArgumentException("classifier shape does not match the configuration");
        Classifier = classifier;
        ClassifierFormat = format;
        if (Config.SharedClassifier && classifier.Weights is PackedInt8Matrix i8) Embedding = new TokenTable(i8);
    }

    /// <summary>Whether the embedding table is the tied 8-bit classifier (stored once).</summary>
    internal bool SharesInt8Table => Embedding.Int8 is not null;

    /// <summary>
    /// Stored bits per parameter over every weight matrix: the linear layers, the embedding table and the classifier (a
    /// tied classifier kept at source precision, or a tied 8-bit one, is the embedding table and counts once; an e8 copy counts as well).
    /// Parameters: linear entries, vocab·dim, and vocab·dim again when the checkpoint's head is untied.
    /// </summary>
    public double BitsPerParameter
    {
        get
        {
            long bits = 0, n = 0;
            foreach (var l in Layers.SelectMany(b => b.Linears)) { bits += l.Weights.StoredBits; n += (long)l.Out * l.In; }
            long table = (long)Config.VocabSize * Config.Dim;
            bits += Embedding.Bits;
            n += table;
            if (!Config.SharedClassifier || (ClassifierFormat != "source" && !SharesInt8Table)) bits += Classifier.Weights.StoredBits;
            if (!Config.SharedClassifier) n += table;
            return (double)bits / n;
        }
    }
    internal TokenTable Embedding { get; private set; }

    /// <summary>Sets the embedding table and classifier (kept at their stored precision).</summary>
    internal void SetTables(TokenTable embedding, PackedMatrix classifier)
    {
        if (embedding.Rows != Config.VocabSize || embedding.Cols != Config.Dim || classifier.Rows != Config.VocabSize || classifier.Cols != Config.Dim)
            throw new ArgumentException("embedding or classifier shape does not match the configuration");
        Embedding = embedding;
        Classifier = new Linear(Config.Dim, classifier);
    }
    /// <summary>Query / key / value biases per layer (engine row order), or null (Qwen2 has them).</summary>
    internal float[][]? Bq { get; private set; }
    internal float[][]? Bk { get; private set; }
    internal float[][]? Bv { get; private set; }

    /// <summary>Takes the q/k/v biases of a checkpoint (nothing when it has none).</summary>
    internal void SetBiases(LlamaWeights w) => SetBiases(w.Bq, w.Bk, w.Bv);

    internal void SetBiases(float[][]? bq, float[][]? bk, float[][]? bv)
    {
        if ((bq is null) != (bk is null) || (bq is null) != (bv is null)) throw new ArgumentException("all three biases or none");
        if (bq is not null && (bq.Length != Config.Layers || !Config.QkvBias)) throw new ArgumentException("biases do not match the configuration");
        Bq = bq; Bk = bk; Bv = bv;
    }
    internal Linear Classifier { get; private set; }
    internal float[] RmsFinal { get; }
    internal LayerBlock[] Layers { get; }

    /// <summary>True when every linear layer multiplies on the packed E8 kernels (no per-row float decode).</summary>
    public bool LinearsOnKernels => Layers.Length > 0 && Layers.All(b => new[] { b.Wq, b.Wk, b.Wv, b.Wo, b.W1, b.W2, b.W3 }.All(l => l.Weights is PackedE8Matrix));
    /// <summary>How the kernel layers take their inputs: "fp32", "int8 per 256-group" (weight-only e8 default), "int8 per 8-block" (off-grid tables), "e8" (W4A4 box codes) or "none" when no layer runs on the kernels.</summary>
    public string KernelActivations => Layers.SelectMany(b => new[] { b.Wq, b.Wk, b.Wv, b.Wo, b.W1, b.W2, b.W3 }).FirstOrDefault(l => l.Weights is PackedE8Matrix) is { } k
        ? k.Activations is E8BoxCodec ? "e8 codes (int8 kernels)"
        : k.Activations is not null ? "fp32 after codec round trip" : k.KernelActivations switch
        {
            Gosset.Kernels.ActivationMode.Int8 => "int8 per 8-block",
            Gosset.Kernels.ActivationMode.Int8Group => "int8 per 256-group",
            Gosset.Kernels.ActivationMode.E8Box4 => "e8 box codes",
            _ => "fp32",
        }
        : "none";
    internal KvLayerFormat[] Kv { get; }
    /// <summary>The recipe a quantized model was built from (null for float).</summary>
    internal Quantization.QuantRecipe? Recipe { get; init; }
    /// <summary>True when built with a quantization recipe (weights, activations or KV quantized).</summary>
    public bool IsQuantized => Recipe is not null;
    /// <summary>Calibration hook: receives (layer, q, k, v, tokens) after RoPE and head rotation, before the cache.</summary>
    internal Action<int, float[], float[], float[], int>? KvTap { get; set; }

    /// <summary>Stored bits per weight of the quantizable linear layers (all of wq..w3), side information included.</summary>
    public double BitsPerWeight
    {
        get
        {
            long bits = 0, n = 0;
            foreach (var l in Layers.SelectMany(b => b.Linears)) { bits += l.Weights.StoredBits; n += (long)l.Out * l.In; }
            return (double)bits / n;
        }
    }

    /// <summary>Bits per activation entry at the inputs of the linear layers (32 when not quantized), weighted by entries per token.</summary>
    public double BitsPerActivation
    {
        get
        {
            double bits = 0; long n = 0;
            foreach (var b in Layers)
                foreach (var l in new[] { b.Wq, b.Wo, b.W1, b.W2 }) // wk, wv, w3 share their input with wq / w1
                {
                    bits += l.ActivationBits;
                    n += l.In;
                }
            return bits / n;
        }
    }

    /// <summary>Bytes of KV cache per token over all layers, as stored (codes and side information).</summary>
    public double KvBytesPerToken
    {
        get
        {
            double bits = 0;
            foreach (var f in Kv)
                bits += (f.Keys?.Bits ?? 32L * Config.KvDim) + (f.Values?.Bits ?? 32L * Config.KvDim);
            return bits / 8;
        }
    }

    /// <summary>Creates an empty KV cache for up to <paramref name="capacity"/> positions (default: the model's seq_len).</summary>
    public KvCache CreateCache(int capacity = 0) => CreateCache(capacity, readCodes: true);

    /// <summary>As <see cref="CreateCache(int)"/>; <paramref name="readCodes"/> false keeps decoded float rows for every codec (the reference attention path).</summary>
    internal KvCache CreateCache(int capacity, bool readCodes)
    {
        if (capacity <= 0) capacity = Config.SeqLen;
        if (capacity > Config.SeqLen) throw new GossetException($"context {capacity} is longer than the model's seq_len {Config.SeqLen}");
        return new KvCache(Config, capacity, Kv, readCodes);
    }

    /// <summary>Logits [tokens.Length][vocab] of a window fed at positions 0.. with an empty cache.</summary>
    public float[] ForwardWindow(ReadOnlySpan<int> tokens)
    {
        if (tokens.Length == 0) throw new GossetException("empty window");
        if (tokens.Length > Config.SeqLen) throw new GossetException($"window of {tokens.Length} tokens is longer than the model's seq_len {Config.SeqLen}");
        return Forward(CreateCache(tokens.Length), tokens);
    }

    /// <summary>
    /// Feeds tokens at positions cache.Length.. and returns their logits [tokens.Length][vocab] (a new array).
    /// One token at a time is the generation path; a window at once is the evaluation path.
    /// </summary>
    public float[] Forward(KvCache cache, ReadOnlySpan<int> tokens)
    {
        var logits = new float[(long)tokens.Length * Config.VocabSize];
        Run(cache, tokens, logits);
        return logits;
    }

    /// <summary>
    /// Feeds tokens at positions cache.Length.. (a prompt in one batch, or one token) and returns the logits of the last
    /// one: the cache's run-state buffer [vocab], overwritten by the next call. Allocates nothing once the state is sized.
    /// </summary>
    public float[] ForwardLast(KvCache cache, ReadOnlySpan<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(cache);
        Run(cache, tokens, null);
        return cache.State.Logits;
    }

    private void Run(KvCache cache, ReadOnlySpan<int> tokens, float[]? allLogits)
    {
        ArgumentNullException.ThrowIfNull(cache);
        var c = Config;
        int T = tokens.Length, dim = c.Dim, kvDim = c.KvDim, pos0 = cache.Length;
        if (T == 0) throw new GossetException("no tokens to feed");
        if (pos0 + T > cache.Capacity) throw new GossetException($"context of {pos0 + T} tokens exceeds the cache capacity {cache.Capacity} (model seq_len {c.SeqLen})");
        var st = cache.State;
        st.Ensure(T);
        float[] x = st.X, xb = st.Xb, q = st.Q, k = st.K, v = st.V, att = st.Att, hb = st.Hb, hb2 = st.Hb2;
        var prof = cache.Profile;
        long mark = prof is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
        for (int t = 0; t < T; t++)
        {
            int id = tokens[t];
            if ((uint)id >= (uint)c.VocabSize) throw new GossetException($"token id {id} is outside the vocabulary (size {c.VocabSize})");
            Embedding.Row(id, x.AsSpan(t * dim, dim));
        }
        prof?.Lap(ProfilePart.Embedding, ref mark);
        for (int l = 0; l < c.Layers; l++)
        {
            var L = Layers[l];
            var fmt = Kv[l];
            RmsNorm(x, L.RmsAtt, xb, T, dim, c.NormEps);
            prof?.Lap(ProfilePart.Norms, ref mark);
            if (L.Qkv is { } qkvLin && L.Wq.Calibration is null && L.Wk.Calibration is null && L.Wv.Calibration is null)
                StackedForward(qkvLin, xb, T, st, prof, ProfilePart.AttentionLinears, (q, dim), (k, kvDim), (v, kvDim));
            else
            {
                L.Wq.Forward(xb, T, q, prof, ProfilePart.AttentionLinears);
                L.Wk.Forward(xb, T, k, prof, ProfilePart.AttentionLinears);
                L.Wv.Forward(xb, T, v, prof, ProfilePart.AttentionLinears);
            }
            if (prof is not null) mark = System.Diagnostics.Stopwatch.GetTimestamp();
            if (Bq is not null)
                for (int t = 0; t < T; t++)
                {
                    TensorPrimitives.Add(q.AsSpan(t * dim, dim), Bq[l], q.AsSpan(t * dim, dim));
                    TensorPrimitives.Add(k.AsSpan(t * kvDim, kvDim), Bk![l], k.AsSpan(t * kvDim, kvDim));
                    TensorPrimitives.Add(v.AsSpan(t * kvDim, kvDim), Bv![l], v.AsSpan(t * kvDim, kvDim));
                }
            for (int t = 0; t < T; t++)
            {
                Rope(q.AsSpan(t * dim, dim), st, pos0 + t, c.HeadSize);
                Rope(k.AsSpan(t * kvDim, kvDim), st, pos0 + t, c.HeadSize);
                if (fmt.HeadRotation is { } r)
                {
                    RotateHeads(r, q.AsSpan(t * dim, dim), c.HeadSize, false);
                    RotateHeads(r, k.AsSpan(t * kvDim, kvDim), c.HeadSize, false);
                    RotateHeads(r, v.AsSpan(t * kvDim, kvDim), c.HeadSize, false);
                }
                cache.Write(l, pos0 + t, k.AsSpan(t * kvDim, kvDim), v.AsSpan(t * kvDim, kvDim));
            }
            KvTap?.Invoke(l, q, k, v, T);
            prof?.Lap(ProfilePart.RopeKv, ref mark);
            Attention(q, cache, l, att, T, pos0, c);
            if (fmt.HeadRotation is { } r2)
                for (int t = 0; t < T; t++) RotateHeads(r2, att.AsSpan(t * dim, dim), c.HeadSize, true);
            prof?.Lap(ProfilePart.Attention, ref mark);
            L.Wo.Forward(att, T, xb, prof, ProfilePart.AttentionLinears);
            if (prof is not null) mark = System.Diagnostics.Stopwatch.GetTimestamp();
            TensorPrimitives.Add(x.AsSpan(0, T * dim), xb.AsSpan(0, T * dim), x.AsSpan(0, T * dim));
            prof?.Lap(ProfilePart.Elementwise, ref mark);
            RmsNorm(x, L.RmsFfn, xb, T, dim, c.NormEps);
            prof?.Lap(ProfilePart.Norms, ref mark);
            if (L.GateUp is { } guLin && L.W1.Calibration is null && L.W3.Calibration is null)
                StackedForward(guLin, xb, T, st, prof, ProfilePart.FfnLinears, (hb, c.HiddenDim), (hb2, c.HiddenDim));
            else
            {
                L.W1.Forward(xb, T, hb, prof, ProfilePart.FfnLinears);
                L.W3.Forward(xb, T, hb2, prof, ProfilePart.FfnLinears);
            }
            if (prof is not null) mark = System.Diagnostics.Stopwatch.GetTimestamp();
            SwiGlu(hb.AsSpan(0, T * c.HiddenDim), hb2.AsSpan(0, T * c.HiddenDim));
            prof?.Lap(ProfilePart.Elementwise, ref mark);
            L.W2.Forward(hb, T, xb, prof, ProfilePart.FfnLinears);
            if (prof is not null) mark = System.Diagnostics.Stopwatch.GetTimestamp();
            TensorPrimitives.Add(x.AsSpan(0, T * dim), xb.AsSpan(0, T * dim), x.AsSpan(0, T * dim));
            prof?.Lap(ProfilePart.Elementwise, ref mark);
        }
        cache.Length = pos0 + T;
        if (allLogits is not null)
        {
            RmsNorm(x, RmsFinal, xb, T, dim, c.NormEps);
            prof?.Lap(ProfilePart.Norms, ref mark);
            Classifier.Forward(xb, T, allLogits, prof, ProfilePart.Classifier);
        }
        else
        {
            // Only the last token's logits are needed: the classifier (often the largest matrix) runs once.
            x.AsSpan((T - 1) * dim, dim).CopyTo(att);
            RmsNorm(att, RmsFinal, xb, 1, dim, c.NormEps);
            prof?.Lap(ProfilePart.Norms, ref mark);
            Classifier.Forward(xb, 1, st.Logits, prof, ProfilePart.Classifier);
        }
        if (prof is not null) { prof.Calls++; prof.Tokens += T; }
    }

    /// <summary>A stacked product (<see cref="LayerBlock.Stacked"/>) into the run state's buffer, each token's outputs split into the parts' buffers [T][width].</summary>
    private static void StackedForward(Linear stacked, float[] x, int T, RunState st, InferenceProfile? prof, ProfilePart part, params ReadOnlySpan<(float[] Dst, int Width)> parts)
    {
        int w = stacked.Out;
        var s = st.StackedFor(w);
        stacked.Forward(x, T, s, prof, part);
        for (int t = 0; t < T; t++)
        {
            int o = t * w;
            foreach (var (dst, width) in parts) { s.AsSpan(o, width).CopyTo(dst.AsSpan(t * width, width)); o += width; }
        }
    }

    /// <summary>h ← silu(h)·u, elementwise (the SwiGLU gate).</summary>
    private static void SwiGlu(Span<float> h, ReadOnlySpan<float> u)
    {
        // silu(a) = a·σ(a), vectorised in chunks (σ from TensorPrimitives).
        Span<float> sig = stackalloc float[1024];
        for (int i = 0; i < h.Length; i += sig.Length)
        {
            int n = Math.Min(sig.Length, h.Length - i);
            var hs = h.Slice(i, n);
            TensorPrimitives.Sigmoid(hs, sig[..n]);
            TensorPrimitives.Multiply(hs, sig[..n], hs);
            TensorPrimitives.Multiply(hs, u.Slice(i, n), hs);
        }
    }

    private static void RotateHeads(IRotation r, Span<float> vec, int hs, bool inverse)
    {
        Span<float> tmp = stackalloc float[hs];
        for (int h = 0; h < vec.Length / hs; h++)
        {
            var head = vec.Slice(h * hs, hs);
            head.CopyTo(tmp);
            if (inverse) r.ApplyInverse(tmp, head); else r.Apply(tmp, head);
        }
    }

    internal static void RmsNorm(float[] x, float[] w, float[] o, int T, int dim, float eps)
    {
        for (int t = 0; t < T; t++)
        {
            var xs = x.AsSpan(t * dim, dim);
            // Sum of squares in double, four independent sums (no dependency chain of dim additions).
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int i = 0;
            for (; i + 4 <= dim; i += 4)
            {
                s0 += (double)xs[i] * xs[i]; s1 += (double)xs[i + 1] * xs[i + 1];
                s2 += (double)xs[i + 2] * xs[i + 2]; s3 += (double)xs[i + 3] * xs[i + 3];
            }
            for (; i < dim; i++) s0 += (double)xs[i] * xs[i];
            double ss = (s0 + s1) + (s2 + s3);
            float inv = (float)(1.0 / Math.Sqrt(ss / dim + eps));
            var os = o.AsSpan(t * dim, dim);
            TensorPrimitives.Multiply(xs, inv, os); // os = w·(inv·x), the same two roundings per entry as before
            TensorPrimitives.Multiply(os, w.AsSpan(0, dim), os);
        }
    }

    /// <summary>Rotates each adjacent pair (2j, 2j+1) of every head by pos·f_j, f_j the (scaled) inverse frequency, from the tables.</summary>
    private static void Rope(Span<float> vec, RunState st, int pos, int hs)
    {
        int half = hs / 2;
        var cos = st.Cos.AsSpan(pos * half, half);
        var sin = st.Sin.AsSpan(pos * half, half);
        for (int h = 0; h < vec.Length; h += hs)
            for (int j = 0; j < half; j++)
            {
                int i = h + 2 * j;
                float cr = cos[j], ci = sin[j];
                float v0 = vec[i], v1 = vec[i + 1];
                vec[i] = v0 * cr - v1 * ci;
                vec[i + 1] = v0 * ci + v1 * cr;
            }
    }

    /// <summary>Reference RoPE (angle computed per call); the tables must reproduce it.</summary>
    internal static void Rope(Span<float> vec, int pos, int hs, double[] inverseFrequencies)
    {
        for (int i = 0; i < vec.Length; i += 2)
        {
            double angle = pos * inverseFrequencies[(i % hs) / 2];
            float cr = (float)Math.Cos(angle), ci = (float)Math.Sin(angle);
            float v0 = vec[i], v1 = vec[i + 1];
            vec[i] = v0 * cr - v1 * ci;
            vec[i + 1] = v0 * ci + v1 * cr;
        }
    }

    /// <summary>Positions attention reads (and unpacks, from a coded cache) at a time: a multiple of 8; 32 × head_size floats stay in L1.</summary>
    private const int KvChunk = 32;

    /// <summary>Tokens of a batch whose queries share one pass over the cache in attention.</summary>
    private const int TokenTile = 8;

    /// <summary>dst[s] = q · rows[s·stride …] for s &lt; dst.Length: eight key rows at a time (eight FMA chains), the rest one by one.</summary>
    private static void Scores(ReadOnlySpan<float> q, ReadOnlySpan<float> rows, int stride, Span<float> dst)
    {
        int hs = q.Length, n = dst.Length, s = 0;
        for (; s + 8 <= n; s += 8) HeadOps.Dot8(q, rows.Slice(s * stride), stride, dst.Slice(s, 8));
        for (; s < n; s++) dst[s] = HeadOps.Dot(q, rows.Slice(s * stride, hs));
    }

    /// <summary>
    /// Causal multi-head attention of T new tokens over the cache (GQA: query head h reads KV head h / group). One work
    /// item per (tile of up to <see cref="TokenTile"/> tokens, KV head) serves the tile's queries of the group's heads, so
    /// each key and value row is loaded (and, in a coded cache, unpacked) once for all of them, in chunks of
    /// <see cref="KvChunk"/> positions that stay in L1; per-position dots and axpys are inlined (<see cref="HeadOps"/>);
    /// threaded when the work is large enough. Chunking does not change the result: every score is one
    /// <see cref="HeadOps.Dot"/> and every output one <see cref="HeadOps.WeightedSum"/> in position order.
    /// </summary>
    private static void Attention(float[] q, KvCache cache, int layer, float[] att, int T, int pos0, LlamaConfig c)
    {
        int hs = c.HeadSize, dim = c.Dim, kvHeads = c.KvHeads, group = c.Heads / c.KvHeads;
        int tiles = (T + TokenTile - 1) / TokenTile;
        float scale = 1f / MathF.Sqrt(hs);
        var fmt = cache.Format(layer);
        void Body(int item)
        {
            int g = item % kvHeads, t0 = item / kvHeads * TokenTile, t1 = Math.Min(T, t0 + TokenTile), tt = t1 - t0;
            int nMax = pos0 + t1, kvOff = g * hs;
            var keys = cache.Keys(layer, nMax);
            var values = cache.Values(layer, nMax);
            int len = tt * group * nMax; // scores [token of the tile][query head of the group][position]
            float[]? rented = len > 16384 ? System.Buffers.ArrayPool<float>.Shared.Rent(len) : null;
            Span<float> scores = rented is null ? stackalloc float[len] : rented.AsSpan(0, len);
            Span<float> unpacked = stackalloc float[keys.IsCoded || values.IsCoded ? KvChunk * hs : 0];
            // The queries, as the key rows need them: codes hold (k − shift) / channel scale, so q·k = (q ⊙ channel scale)·code + q·shift.
            Span<float> qs = stackalloc float[keys.IsCoded && fmt.KeyScale is not null ? tt * group * hs : 0];
            for (int t = t0; t < t1 && !qs.IsEmpty; t++)
                for (int j = 0; j < group; j++)
                    TensorPrimitives.Multiply(q.AsSpan(t * dim + (g * group + j) * hs, hs), fmt.KeyScale.AsSpan(kvOff, hs), qs.Slice(((t - t0) * group + j) * hs, hs));
            for (int c0 = 0; c0 < nMax; c0 += KvChunk)
            {
                int m = Math.Min(KvChunk, nMax - c0);
                var rows = keys.Chunk(g, c0, m, unpacked, out int stride);
                for (int t = t0; t < t1; t++)
                {
                    int n = pos0 + t + 1;
                    if (c0 >= n) break;
                    for (int j = 0; j < group; j++)
                    {
                        int r = (t - t0) * group + j;
                        var qj = qs.IsEmpty ? q.AsSpan(t * dim + (g * group + j) * hs, hs) : qs.Slice(r * hs, hs);
                        Scores(qj, rows, stride, scores.Slice(r * nMax + c0, Math.Min(m, n - c0)));
                    }
                }
            }
            for (int t = t0; t < t1; t++)
                for (int j = 0; j < group; j++)
                {
                    var sj = scores.Slice(((t - t0) * group + j) * nMax, pos0 + t + 1);
                    if (keys.IsCoded && fmt.KeyShift is { } kshift)
                        TensorPrimitives.Add(sj, HeadOps.Dot(q.AsSpan(t * dim + (g * group + j) * hs, hs), kshift.AsSpan(kvOff, hs)), sj);
                    TensorPrimitives.Multiply(sj, scale, sj);
                    float max = TensorPrimitives.Max(sj);
                    TensorPrimitives.Subtract(sj, max, sj);
                    TensorPrimitives.Exp(sj, sj);
                    TensorPrimitives.Multiply(sj, 1f / TensorPrimitives.Sum(sj), sj);
                }
            // Σₛ pₛ·vₛ, chunk by chunk into the outputs (each head's output in registers while a chunk's positions run).
            for (int c0 = 0; c0 < nMax; c0 += KvChunk)
            {
                int m = Math.Min(KvChunk, nMax - c0);
                var rows = values.Chunk(g, c0, m, unpacked, out int stride);
                for (int t = t0; t < t1; t++)
                {
                    int n = pos0 + t + 1;
                    if (c0 >= n) break;
                    for (int j = 0; j < group; j++)
                        HeadOps.WeightedSum(scores.Slice(((t - t0) * group + j) * nMax + c0, Math.Min(m, n - c0)), rows, stride,
                            att.AsSpan(t * dim + (g * group + j) * hs, hs), accumulate: c0 > 0);
                }
            }
            if (values.IsCoded && (fmt.ValueScale is not null || fmt.ValueShift is not null))
                for (int t = t0; t < t1; t++)
                    for (int j = 0; j < group; j++)
                    {
                        // Undo the per-channel affine once on the output: Σ pₛ(scale·cₛ + shift) = scale ⊙ Σ pₛcₛ + shift·Σ pₛ.
                        var o = att.AsSpan(t * dim + (g * group + j) * hs, hs);
                        if (fmt.ValueScale is { } vsc) TensorPrimitives.Multiply(o, vsc.AsSpan(kvOff, hs), o);
                        if (fmt.ValueShift is { } vsh)
                            TensorPrimitives.MultiplyAdd(vsh.AsSpan(kvOff, hs), TensorPrimitives.Sum(scores.Slice(((t - t0) * group + j) * nMax, pos0 + t + 1)), o, o);
                    }
            if (rented is not null) System.Buffers.ArrayPool<float>.Shared.Return(rented);
        }
        int items = tiles * kvHeads;
        if ((long)T * c.Heads * (pos0 + T) * hs < 1 << 15) for (int i = 0; i < items; i++) Body(i);
        else Gosset.Kernels.RowParallel.ForEach(items, Body);
    }
}
