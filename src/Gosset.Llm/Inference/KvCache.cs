using Gosset.Llm.Loading;
using Gosset.Rotations;
using Gosset.Llm.Quantization;

namespace Gosset.Llm.Inference;

/// <summary>How one layer's K and V vectors are stored: float, or codes of a codec (length kv_dim) after a per-head rotation.</summary>
internal sealed class KvLayerFormat(VectorCodec? keys, VectorCodec? values, IRotation? headRotation)
{
    public VectorCodec? Keys { get; } = keys;
    public VectorCodec? Values { get; } = values;
    /// <summary>Rotation of length head_size applied to every query, key and value head vector (undone on the attention output).</summary>
    public IRotation? HeadRotation { get; } = headRotation;
    /// <summary>Calibrated per-channel shift and scale: the codec stores (k − shift) / scale (null = 0 and 1).</summary>
    public float[]? KeyShift { get; init; }
    /// <summary>See <see cref="KeyShift"/>.</summary>
    public float[]? KeyScale { get; init; }
    /// <summary>Same for values.</summary>
    public float[]? ValueShift { get; init; }
    /// <summary>Same for values.</summary>
    public float[]? ValueScale { get; init; }

    internal static void Forward(ReadOnlySpan<float> x, float[]? shift, float[]? scale, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = (x[i] - (shift?[i] ?? 0f)) / (scale?[i] ?? 1f);
    }

    internal static void Backward(Span<float> y, float[]? shift, float[]? scale)
    {
        if (shift is null && scale is null) return;
        for (int i = 0; i < y.Length; i++) y[i] = y[i] * (scale?[i] ?? 1f) + (shift?[i] ?? 0f);
    }
}

/// <summary>
/// The key/value cache of one sequence and the run state of the forward pass that fills it. Per layer and
/// position it holds K and V of all KV heads: as float32, or as codes of the layer's codec. Appending a token
/// encodes only that token; its decoded values are kept beside the codes, so attention never decodes the
/// cache again (the attention-on-codes path plugs in at <see cref="Keys"/> / <see cref="Values"/>).
/// </summary>
public sealed class KvCache
{
    private readonly int _kvDim, _capacity;
    private readonly KvLayerFormat[] _formats;
    private readonly float[][] _k, _v;      // [layer][capacity, kv_dim]: the values attention reads
    private readonly byte[]?[] _kc, _vc;   // [layer][capacity, code bytes]: what a quantized cache stores

    internal KvCache(LlamaConfig config, int capacity, KvLayerFormat[] formats)
    {
        int layers = config.Layers;
        _kvDim = config.KvDim;
        _capacity = capacity;
        _formats = formats;
        _k = new float[layers][]; _v = new float[layers][];
        _kc = new byte[layers][]; _vc = new byte[layers][];
        for (int l = 0; l < layers; l++)
        {
            var f = formats[l];
            _k[l] = new float[(long)capacity * _kvDim];
            _v[l] = new float[(long)capacity * _kvDim];
            if (f.Keys is not null) _kc[l] = new byte[(long)capacity * f.Keys.CodeBytes];
            if (f.Values is not null) _vc[l] = new byte[(long)capacity * f.Values.CodeBytes];
        }
        State = new RunState(config, capacity);
    }

    /// <summary>Positions the cache can hold.</summary>
    public int Capacity => _capacity;

    /// <summary>Positions written so far (the next position to feed).</summary>
    public int Length { get; internal set; }

    /// <summary>When set, every forward call on this cache adds its time per part here (null: not timed).</summary>
    public InferenceProfile? Profile { get; set; }

    /// <summary>Buffers of the forward pass, allocated once per sequence.</summary>
    internal RunState State { get; }

    internal void Write(int layer, int pos, ReadOnlySpan<float> k, ReadOnlySpan<float> v)
    {
        if (pos >= _capacity) throw new GossetException($"position {pos} is beyond the KV cache capacity {_capacity}");
        var f = _formats[layer];
        Store(f.Keys, k, f.KeyShift, f.KeyScale, _kc[layer], _k[layer], pos);
        Store(f.Values, v, f.ValueShift, f.ValueScale, _vc[layer], _v[layer], pos);
    }

    private void Store(VectorCodec? codec, ReadOnlySpan<float> x, float[]? shift, float[]? scale, byte[]? codes, float[] floats, int pos)
    {
        var dst = floats.AsSpan(pos * _kvDim, _kvDim);
        if (codec is null) { x.CopyTo(dst); return; }
        Span<float> t = _kvDim <= 8192 ? stackalloc float[_kvDim] : new float[_kvDim];
        KvLayerFormat.Forward(x, shift, scale, t);
        var code = codes.AsSpan(pos * codec.CodeBytes, codec.CodeBytes);
        codec.Encode(t, code);
        codec.Decode(code, dst);
        KvLayerFormat.Backward(dst, shift, scale);
    }

    /// <summary>Keys of positions [0, count) of a layer as attention reads them: [count, kv_dim].</summary>
    internal ReadOnlySpan<float> Keys(int layer, int count) => _k[layer].AsSpan(0, count * _kvDim);

    /// <summary>Values of positions [0, count): [count, kv_dim].</summary>
    internal ReadOnlySpan<float> Values(int layer, int count) => _v[layer].AsSpan(0, count * _kvDim);

    /// <summary>Decoded keys and values of positions [0, count) copied into [count][kv_dim] arrays.</summary>
    internal void Read(int layer, int count, float[] k, float[] v)
    {
        Keys(layer, count).CopyTo(k);
        Values(layer, count).CopyTo(v);
    }
}

/// <summary>
/// Scratch of the forward pass, sized for a batch of tokens and grown only when a larger batch comes, plus the
/// RoPE cos/sin tables for every position of the cache.
/// </summary>
internal sealed class RunState
{
    private readonly LlamaConfig _c;

    public RunState(LlamaConfig c, int capacity)
    {
        _c = c;
        int half = c.HeadSize / 2;
        double[] inv = c.RopeInverseFrequencies();
        Cos = new float[(long)capacity * half];
        Sin = new float[(long)capacity * half];
        for (int p = 0; p < capacity; p++)
            for (int j = 0; j < half; j++)
            {
                double a = p * inv[j];
                Cos[p * half + j] = (float)Math.Cos(a);
                Sin[p * half + j] = (float)Math.Sin(a);
            }
        X = Xb = Q = K = V = Att = Hb = Hb2 = Logits = [];
        Ensure(1);
    }

    public int Batch { get; private set; }
    public float[] Cos { get; }    // [capacity, head_size/2]
    public float[] Sin { get; }    // [capacity, head_size/2]
    public float[] X { get; private set; }      // [batch, dim] residual stream
    public float[] Xb { get; private set; }     // [batch, dim] normed input / block output
    public float[] Q { get; private set; }      // [batch, dim]
    public float[] K { get; private set; }      // [batch, kv_dim]
    public float[] V { get; private set; }      // [batch, kv_dim]
    public float[] Att { get; private set; }    // [batch, dim] attention output
    public float[] Hb { get; private set; }     // [batch, hidden] gate, then SwiGLU
    public float[] Hb2 { get; private set; }    // [batch, hidden] up
    public float[] Logits { get; private set; } // [1, vocab] last token's logits
    public float[] Stacked { get; private set; } = []; // [batch, width] output of a stacked projection (q|k|v or gate|up)

    /// <summary>The stacked-projection buffer for <see cref="Batch"/> tokens of <paramref name="width"/> outputs (allocated once).</summary>
    public float[] StackedFor(int width)
    {
        if (Stacked.Length < (long)Batch * width) Stacked = new float[(long)Batch * width];
        return Stacked;
    }

    /// <summary>Makes room for <paramref name="batch"/> tokens (allocates only when larger than before).</summary>
    public void Ensure(int batch)
    {
        if (batch <= Batch) return;
        var c = _c;
        X = new float[batch * c.Dim]; Xb = new float[batch * c.Dim]; Q = new float[batch * c.Dim]; Att = new float[batch * c.Dim];
        K = new float[batch * c.KvDim]; V = new float[batch * c.KvDim];
        Hb = new float[(long)batch * c.HiddenDim]; Hb2 = new float[(long)batch * c.HiddenDim];
        if (Logits.Length == 0) Logits = new float[c.VocabSize];
        Batch = batch;
    }
}
