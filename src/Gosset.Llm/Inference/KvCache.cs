using Gosset.Codes;
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
/// The cached K or V rows of one layer, positions [0, count): float rows [count, kv_dim], or block codes head-major
/// (head h's values [count, head_size] at h·capacity·head_size and its scales [count, head_size / 8] at
/// h·capacity·head_size / 8; entry = scale·value before the layer's per-channel affine), so that attention streams
/// each head's codes contiguously.
/// </summary>
internal readonly ref struct KvRows
{
    private readonly ReadOnlySpan<float> _floats;
    private readonly ReadOnlySpan<sbyte> _values;
    private readonly ReadOnlySpan<float> _scales;
    private readonly int _count, _capacity, _headSize, _kvDim;

    public KvRows(ReadOnlySpan<float> floats, int kvDim, int headSize) { _floats = floats; _kvDim = kvDim; _headSize = headSize; }
    public KvRows(sbyte[] values, float[] scales, int count, int capacity, int headSize)
    {
        _values = values; _scales = scales; _count = count; _capacity = capacity; _headSize = headSize; IsCoded = true;
    }
    public bool IsCoded { get; }
    /// <summary>Code values of KV head h: [count, head_size].</summary>
    public ReadOnlySpan<sbyte> HeadValues(int h) => _values.Slice(h * _capacity * _headSize, _count * _headSize);
    /// <summary>Block scales of KV head h: [count, head_size / 8].</summary>
    public ReadOnlySpan<float> HeadScales(int h) => _scales.Slice(h * _capacity * (_headSize / 8), _count * (_headSize / 8));

    /// <summary>
    /// Positions [p0, p0 + m) of KV head h as float rows: a view of the float cache (stride kv_dim), or the codes
    /// unpacked into <paramref name="buffer"/> (stride head_size).
    /// </summary>
    public ReadOnlySpan<float> Chunk(int h, int p0, int m, Span<float> buffer, out int stride)
    {
        if (!IsCoded) { stride = _kvDim; return _floats.Slice(p0 * _kvDim + h * _headSize); }
        int hs = _headSize, hb = hs / 8;
        CodedHeadOps.Unpack(HeadValues(h).Slice(p0 * hs), hs, HeadScales(h).Slice(p0 * hb), hb, buffer[..(m * hs)], m);
        stride = hs;
        return buffer;
    }
}

/// <summary>
/// The key/value cache of one sequence and the run state of the forward pass that fills it. Per layer and
/// position it holds K and V of all KV heads: as float32, or as codes of the layer's codec. Appending a token
/// encodes only that token. A codec with a block-int8 form (the E8 kernel code, INT with 8-multiple groups) is kept
/// only in that form, and attention reads the codes (<see cref="CodedHeadOps"/>: 1.5 bytes per entry instead of 4);
/// other codecs (the Voronoi reference code) keep the decoded values beside the codes, so nothing is decoded twice.
/// </summary>
public sealed class KvCache
{
    private readonly int _kvDim, _capacity, _headSize;
    private readonly KvLayerFormat[] _formats;
    private readonly float[]?[] _k, _v;    // [layer][capacity, kv_dim]: float rows attention reads (null when coded)
    private readonly byte[]?[] _kc, _vc;   // [layer][capacity, code bytes]: codes of codecs without a block-int8 form
    private readonly sbyte[]?[] _kq, _vq;  // [layer][kv_heads, capacity, head_size]: block-int8 values
    private readonly float[]?[] _ks, _vs;  // [layer][kv_heads, capacity, head_size / 8]: block scales

    internal KvCache(LlamaConfig config, int capacity, KvLayerFormat[] formats, bool readCodes = true)
    {
        int layers = config.Layers;
        _kvDim = config.KvDim;
        _headSize = config.HeadSize;
        _capacity = capacity;
        _formats = formats;
        _k = new float[layers][]; _v = new float[layers][];
        _kc = new byte[layers][]; _vc = new byte[layers][];
        _kq = new sbyte[layers][]; _vq = new sbyte[layers][];
        _ks = new float[layers][]; _vs = new float[layers][];
        for (int l = 0; l < layers; l++)
        {
            var f = formats[l];
            Allocate(f.Keys, readCodes && ReadsCodes(f.Keys, config.HeadSize), out _k[l], out _kc[l], out _kq[l], out _ks[l]);
            Allocate(f.Values, readCodes && ReadsCodes(f.Values, config.HeadSize), out _v[l], out _vc[l], out _vq[l], out _vs[l]);
        }
        State = new RunState(config, capacity);
    }

    /// <summary>Whether attention reads this codec's codes (block-int8 form, whole blocks per head).</summary>
    internal static bool ReadsCodes(VectorCodec? codec, int headSize) => codec is { HasBlockInt8Form: true } && headSize % 8 == 0;

    private void Allocate(VectorCodec? codec, bool coded, out float[]? floats, out byte[]? codes, out sbyte[]? values, out float[]? scales)
    {
        floats = null; codes = null; values = null; scales = null;
        if (coded)
        {
            values = new sbyte[(long)_capacity * _kvDim];
            scales = new float[(long)_capacity * (_kvDim / 8)];
            return;
        }
        floats = new float[(long)_capacity * _kvDim];
        if (codec is not null) codes = new byte[(long)_capacity * codec.CodeBytes];
    }

    /// <summary>Positions the cache can hold.</summary>
    public int Capacity => _capacity;

    /// <summary>Positions written so far (the next position to feed).</summary>
    public int Length { get; internal set; }

    /// <summary>Bytes the cache holds in memory for its whole capacity (codes, scales, float rows).</summary>
    public long MemoryBytes
    {
        get
        {
            long sum = 0;
            foreach (var a in _k.Concat(_v)) sum += 4L * (a?.LongLength ?? 0);
            foreach (var a in _kc.Concat(_vc)) sum += a?.LongLength ?? 0;
            foreach (var a in _kq.Concat(_vq)) sum += a?.LongLength ?? 0;
            foreach (var a in _ks.Concat(_vs)) sum += 4L * (a?.LongLength ?? 0);
            return sum;
        }
    }

    /// <summary>When set, every forward call on this cache adds its time per part here (null: not timed).</summary>
    public InferenceProfile? Profile { get; set; }

    /// <summary>Buffers of the forward pass, allocated once per sequence.</summary>
    internal RunState State { get; }

    /// <summary>The storage format of a layer.</summary>
    internal KvLayerFormat Format(int layer) => _formats[layer];

    internal void Write(int layer, int pos, ReadOnlySpan<float> k, ReadOnlySpan<float> v)
    {
        if (pos >= _capacity) throw new GossetException($"position {pos} is beyond the KV cache capacity {_capacity}");
        var f = _formats[layer];
        Store(f.Keys, k, f.KeyShift, f.KeyScale, pos, _k[layer], _kc[layer], _kq[layer], _ks[layer]);
        Store(f.Values, v, f.ValueShift, f.ValueScale, pos, _v[layer], _vc[layer], _vq[layer], _vs[layer]);
    }

    private void Store(VectorCodec? codec, ReadOnlySpan<float> x, float[]? shift, float[]? scale, int pos, float[]? floats, byte[]? codes, sbyte[]? values, float[]? scales)
    {
        if (codec is null) { x.CopyTo(floats.AsSpan(pos * _kvDim, _kvDim)); return; }
        Span<float> t = _kvDim <= 8192 ? stackalloc float[_kvDim] : new float[_kvDim];
        KvLayerFormat.Forward(x, shift, scale, t);
        if (values is not null)
        {
            Span<byte> c = codec.CodeBytes <= 16384 ? stackalloc byte[codec.CodeBytes] : new byte[codec.CodeBytes];
            Span<sbyte> v = _kvDim <= 16384 ? stackalloc sbyte[_kvDim] : new sbyte[_kvDim];
            Span<float> sc = stackalloc float[_kvDim / 8];
            codec.Encode(t, c);
            codec.ToBlockInt8(c, v, sc);
            int hs = _headSize, hb = hs / 8;
            for (int h = 0; h < _kvDim / hs; h++)
            {
                v.Slice(h * hs, hs).CopyTo(values.AsSpan((h * _capacity + pos) * hs, hs));
                sc.Slice(h * hb, hb).CopyTo(scales.AsSpan((h * _capacity + pos) * hb, hb));
            }
            return;
        }
        var code = codes.AsSpan(pos * codec.CodeBytes, codec.CodeBytes);
        var dst = floats.AsSpan(pos * _kvDim, _kvDim);
        codec.Encode(t, code);
        codec.Decode(code, dst);
        KvLayerFormat.Backward(dst, shift, scale);
    }

    /// <summary>Keys of positions [0, count) of a layer as attention reads them.</summary>
    internal KvRows Keys(int layer, int count) => Rows(_k[layer], _kq[layer], _ks[layer], count);

    /// <summary>Values of positions [0, count).</summary>
    internal KvRows Values(int layer, int count) => Rows(_v[layer], _vq[layer], _vs[layer], count);

    private KvRows Rows(float[]? floats, sbyte[]? values, float[]? scales, int count)
        => values is not null ? new KvRows(values, scales!, count, _capacity, _headSize) : new KvRows(floats.AsSpan(0, count * _kvDim), _kvDim, _headSize);
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
