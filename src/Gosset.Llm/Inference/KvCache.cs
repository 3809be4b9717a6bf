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
/// The key/value cache of one sequence: per layer and position, K and V of all KV heads, kept either as
/// float32 or as codes; attention reads decoded values from the stored codes.
/// </summary>
public sealed class KvCache
{
    private readonly int _kvDim, _capacity;
    private readonly KvLayerFormat[] _formats;
    private readonly float[]?[] _kf, _vf;
    private readonly byte[]?[] _kc, _vc;

    internal KvCache(int layers, int kvDim, int capacity, KvLayerFormat[] formats)
    {
        _kvDim = kvDim;
        _capacity = capacity;
        _formats = formats;
        _kf = new float[layers][]; _vf = new float[layers][];
        _kc = new byte[layers][]; _vc = new byte[layers][];
        for (int l = 0; l < layers; l++)
        {
            var f = formats[l];
            if (f.Keys is null) _kf[l] = new float[capacity * kvDim]; else _kc[l] = new byte[capacity * f.Keys.CodeBytes];
            if (f.Values is null) _vf[l] = new float[capacity * kvDim]; else _vc[l] = new byte[capacity * f.Values.CodeBytes];
        }
    }

    /// <summary>Positions the cache can hold.</summary>
    public int Capacity => _capacity;

    /// <summary>Positions written so far (the next position to feed).</summary>
    public int Length { get; internal set; }

    internal void Write(int layer, int pos, ReadOnlySpan<float> k, ReadOnlySpan<float> v)
    {
        if (pos >= _capacity) throw new GossetException($"position {pos} is beyond the KV cache capacity {_capacity}");
        var f = _formats[layer];
        Span<float> t = stackalloc float[_kvDim];
        if (f.Keys is null) k.CopyTo(_kf[layer].AsSpan(pos * _kvDim, _kvDim));
        else
        {
            KvLayerFormat.Forward(k, f.KeyShift, f.KeyScale, t);
            f.Keys.Encode(t, _kc[layer].AsSpan(pos * f.Keys.CodeBytes, f.Keys.CodeBytes));
        }
        if (f.Values is null) v.CopyTo(_vf[layer].AsSpan(pos * _kvDim, _kvDim));
        else
        {
            KvLayerFormat.Forward(v, f.ValueShift, f.ValueScale, t);
            f.Values.Encode(t, _vc[layer].AsSpan(pos * f.Values.CodeBytes, f.Values.CodeBytes));
        }
    }

    /// <summary>Decoded keys and values of positions [0, count) into [count][kv_dim] arrays.</summary>
    internal void Read(int layer, int count, float[] k, float[] v)
    {
        var f = _formats[layer];
        Read(f.Keys, _kf[layer], _kc[layer], count, k, f.KeyShift, f.KeyScale);
        Read(f.Values, _vf[layer], _vc[layer], count, v, f.ValueShift, f.ValueScale);
    }

    private void Read(VectorCodec? codec, float[]? floats, byte[]? codes, int count, float[] dst, float[]? shift, float[]? scale)
    {
        if (codec is null) { Array.Copy(floats!, dst, count * _kvDim); return; }
        Linear.ForTokens(count, 64 * _kvDim, p =>
        {
            var d = dst.AsSpan(p * _kvDim, _kvDim);
            codec.Decode(codes.AsSpan(p * codec.CodeBytes, codec.CodeBytes), d);
            KvLayerFormat.Backward(d, shift, scale);
        });
    }
}
