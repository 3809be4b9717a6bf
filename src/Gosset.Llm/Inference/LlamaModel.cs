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
    {
        Config = config;
        Embedding = embedding;
        Classifier = new Linear(config.Dim, new DenseWeights(classifier, config.VocabSize, config.Dim));
        RmsFinal = rmsFinal;
        Layers = layers;
        Kv = kv;
        Quant = quant;
    }

    /// <summary>The float32 model of a checkpoint's weights.</summary>
    public static LlamaModel FromWeights(LlamaWeights w)
    {
        ArgumentNullException.ThrowIfNull(w);
        var c = w.Config;
        var layers = new LayerBlock[c.Layers];
        Linear L(float[] a, int rows, int cols) => new(cols, new DenseWeights(a, rows, cols));
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
        return new LlamaModel(c, w.TokenEmbedding, w.Classifier, w.RmsFinal, layers, kv, "fp");
    }

    /// <summary>Hyper-parameters.</summary>
    public LlamaConfig Config { get; }
    /// <summary>The quantization this model runs with ("fp" for float32).</summary>
    public string Quant { get; }
    internal float[] Embedding { get; }
    internal Linear Classifier { get; }
    internal float[] RmsFinal { get; }
    internal LayerBlock[] Layers { get; }

    /// <summary>True when every linear layer multiplies on the packed E8 kernels (no per-row float decode).</summary>
    public bool LinearsOnKernels => Layers.Length > 0 && Layers.All(b => new[] { b.Wq, b.Wk, b.Wv, b.Wo, b.W1, b.W2, b.W3 }.All(l => l.Weights is BoxWeights));
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
            foreach (var l in Layers.SelectMany(b => b.Linears)) { bits += l.Weights.Bits; n += (long)l.Out * l.In; }
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
    public KvCache CreateCache(int capacity = 0)
    {
        if (capacity <= 0) capacity = Config.SeqLen;
        if (capacity > Config.SeqLen) throw new GossetException($"context {capacity} is longer than the model's seq_len {Config.SeqLen}");
        return new KvCache(Config.Layers, Config.KvDim, capacity, Kv);
    }

    /// <summary>Logits [tokens.Length][vocab] of a window fed at positions 0.. with an empty cache.</summary>
    public float[] ForwardWindow(ReadOnlySpan<int> tokens)
    {
        if (tokens.Length == 0) throw new GossetException("empty window");
        if (tokens.Length > Config.SeqLen) throw new GossetException($"window of {tokens.Length} tokens is longer than the model's seq_len {Config.SeqLen}");
        return Forward(CreateCache(tokens.Length), tokens);
    }

    /// <summary>
    /// Feeds tokens at positions cache.Length.. and returns their logits [tokens.Length][vocab].
    /// One token at a time is the generation path; a window at once is the evaluation path.
    /// </summary>
    public float[] Forward(KvCache cache, ReadOnlySpan<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(cache);
        var c = Config;
        int T = tokens.Length, dim = c.Dim, kvDim = c.KvDim, hs = c.HeadSize, pos0 = cache.Length;
        if (pos0 + T > cache.Capacity) throw new GossetException($"context of {pos0 + T} tokens exceeds the cache capacity {cache.Capacity} (model seq_len {c.SeqLen})");
        var x = new float[T * dim];
        for (int t = 0; t < T; t++)
        {
            int id = tokens[t];
            if ((uint)id >= (uint)c.VocabSize) throw new GossetException($"token id {id} is outside the vocabulary (size {c.VocabSize})");
            Embedding.AsSpan(id * dim, dim).CopyTo(x.AsSpan(t * dim, dim));
        }
        var xb = new float[T * dim];
        var q = new float[T * dim];
        var k = new float[T * kvDim];
        var v = new float[T * kvDim];
        var att = new float[T * dim];
        var hb = new float[T * c.HiddenDim];
        var hb2 = new float[T * c.HiddenDim];
        var kAll = new float[(pos0 + T) * kvDim];
        var vAll = new float[(pos0 + T) * kvDim];
        for (int l = 0; l < c.Layers; l++)
        {
            var L = Layers[l];
            var fmt = Kv[l];
            RmsNorm(x, L.RmsAtt, xb, T, dim, c.NormEps);
            L.Wq.Forward(xb, T, q);
            L.Wk.Forward(xb, T, k);
            L.Wv.Forward(xb, T, v);
            for (int t = 0; t < T; t++)
            {
                Rope(q.AsSpan(t * dim, dim), pos0 + t, hs, c.RopeTheta);
                Rope(k.AsSpan(t * kvDim, kvDim), pos0 + t, hs, c.RopeTheta);
                if (fmt.HeadRotation is { } r)
                {
                    RotateHeads(r, q.AsSpan(t * dim, dim), hs, false);
                    RotateHeads(r, k.AsSpan(t * kvDim, kvDim), hs, false);
                    RotateHeads(r, v.AsSpan(t * kvDim, kvDim), hs, false);
                }
                cache.Write(l, pos0 + t, k.AsSpan(t * kvDim, kvDim), v.AsSpan(t * kvDim, kvDim));
            }
            KvTap?.Invoke(l, q, k, v, T);
            cache.Read(l, pos0 + T, kAll, vAll);
            Attention(q, kAll, vAll, att, T, pos0, c);
            if (fmt.HeadRotation is { } r2)
                for (int t = 0; t < T; t++) RotateHeads(r2, att.AsSpan(t * dim, dim), hs, true);
            L.Wo.Forward(att, T, xb);
            TensorPrimitives.Add(x, xb, x);
            RmsNorm(x, L.RmsFfn, xb, T, dim, c.NormEps);
            L.W1.Forward(xb, T, hb);
            L.W3.Forward(xb, T, hb2);
            for (int i = 0; i < hb.Length; i++)
            {
                float a = hb[i];
                hb[i] = a / (1f + MathF.Exp(-a)) * hb2[i];
            }
            L.W2.Forward(hb, T, xb);
            TensorPrimitives.Add(x, xb, x);
        }
        cache.Length = pos0 + T;
        RmsNorm(x, RmsFinal, xb, T, dim, c.NormEps);
        var logits = new float[T * c.VocabSize];
        Classifier.Forward(xb, T, logits);
        return logits;
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
            double ss = 0;
            foreach (float v in xs) ss += (double)v * v;
            float inv = (float)(1.0 / Math.Sqrt(ss / dim + eps));
            var os = o.AsSpan(t * dim, dim);
            for (int i = 0; i < dim; i++) os[i] = w[i] * (inv * xs[i]);
        }
    }

    /// <summary>Rotates each adjacent pair (2j, 2j+1) of every head by pos·θ^(−2j/hs).</summary>
    internal static void Rope(Span<float> vec, int pos, int hs, float theta)
    {
        for (int i = 0; i < vec.Length; i += 2)
        {
            int hd = i % hs;
            double angle = pos * Math.Pow(theta, -(double)hd / hs);
            float cr = (float)Math.Cos(angle), ci = (float)Math.Sin(angle);
            float v0 = vec[i], v1 = vec[i + 1];
            vec[i] = v0 * cr - v1 * ci;
            vec[i + 1] = v0 * ci + v1 * cr;
        }
    }

    private static void Attention(float[] q, float[] kAll, float[] vAll, float[] att, int T, int pos0, LlamaConfig c)
    {
        int hs = c.HeadSize, dim = c.Dim, kvDim = c.KvDim, heads = c.Heads, group = c.Heads / c.KvHeads;
        float scale = 1f / MathF.Sqrt(hs);
        void Body(int item)
        {
            int t = item / heads, h = item % heads;
            int n = pos0 + t + 1;
            var scores = n <= 4096 ? stackalloc float[n] : new float[n];
            var qh = q.AsSpan(t * dim + h * hs, hs);
            int kvOff = (h / group) * hs;
            float max = float.NegativeInfinity;
            for (int s = 0; s < n; s++)
            {
                float d = TensorPrimitives.Dot(qh, kAll.AsSpan(s * kvDim + kvOff, hs)) * scale;
                scores[s] = d;
                if (d > max) max = d;
            }
            double sum = 0;
            for (int s = 0; s < n; s++) { float e = MathF.Exp(scores[s] - max); scores[s] = e; sum += e; }
            float inv = (float)(1 / sum);
            var o = att.AsSpan(t * dim + h * hs, hs);
            o.Clear();
            for (int s = 0; s < n; s++)
            {
                float a = scores[s] * inv;
                var vs = vAll.AsSpan(s * kvDim + kvOff, hs);
                for (int i = 0; i < hs; i++) o[i] += a * vs[i];
            }
        }
        int items = T * heads;
        if ((long)items * (pos0 + T) * hs < 1 << 15) for (int i = 0; i < items; i++) Body(i);
        else Parallel.For(0, items, Body);
    }
}
