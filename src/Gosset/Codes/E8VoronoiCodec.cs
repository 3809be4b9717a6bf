using Gosset.Coding;
using Gosset.Codes;

namespace Gosset.Codes;

/// <summary>How an E8 codec scales a vector to unit RMS before the lattice code.</summary>
public enum E8Norm
{
    /// <summary>One fp16 RMS per vector (16 bits of side information per vector).</summary>
    PerVectorFp16,
    /// <summary>A fixed scale known to encoder and decoder (calibrated once; no side information per vector).</summary>
    Fixed,
}

/// <summary>
/// NestQuant-style E8 codec: the vector is divided by its scale s (unit RMS), each 8-block is encoded
/// with the Voronoi code E8/qE8 at each of k scales β (lattice units) and the β with the least
/// squared error is kept. Stored per vector: the fp16 scale (unless fixed), per block ⌈8·log2 q⌉ bits
/// of mixed-radix digits and ⌈log2 k⌉ bits of scale index.
/// </summary>
public sealed class E8VoronoiCodec : VectorCodec
{
    private readonly VoronoiCode _code;
    private readonly E8VectorQuantizer _quantizer;
    private readonly float[] _betas;
    private readonly int _digitBits, _indexBits;
    private readonly E8Norm _norm;
    private readonly float _fixedScale;
    private readonly int _headerBytes;

    /// <summary>A codec for vectors of <paramref name="length"/> entries.</summary>
    /// <param name="length">Entries per vector, a multiple of 8.</param>
    /// <param name="q">Nesting ratio of the Voronoi code E8/qE8.</param>
    /// <param name="betas">1 to 256 block scales β (lattice units).</param>
    /// <param name="norm">Per-vector fp16 RMS or a fixed scale.</param>
    /// <param name="fixedScale">The fixed scale (with <see cref="E8Norm.Fixed"/>).</param>
    /// <exception cref="ArgumentException"><paramref name="length"/> is not a multiple of 8, or the scale count is out of range.</exception>
    public E8VoronoiCodec(int length, int q, float[] betas, E8Norm norm = E8Norm.PerVectorFp16, float fixedScale = 1f) : base(length)
    {
        if (length % 8 != 0) throw new ArgumentException("E8 codec length must be a multiple of 8", nameof(length));
        if (betas.Length is < 1 or > 256) throw new ArgumentException("1 to 256 scales", nameof(betas));
        _code = new VoronoiCode(q);
        var set = new ScaleSet(betas);
        _quantizer = new E8VectorQuantizer(_code, set, ScaleSelection.LeastError);
        _betas = set.Betas.ToArray();
        _digitBits = (int)Math.Ceiling(8 * Math.Log2(q) - 1e-9);
        _indexBits = betas.Length == 1 ? 0 : (int)Math.Ceiling(Math.Log2(betas.Length) - 1e-9);
        _norm = norm;
        _fixedScale = fixedScale;
        _headerBytes = norm == E8Norm.PerVectorFp16 ? 2 : 0;
    }

    /// <summary>Nesting ratio q.</summary>
    public int Q => _code.Q;
    /// <summary>The block scales β.</summary>
    public IReadOnlyList<float> Betas => _betas;
    /// <inheritdoc/>
    public override int CodeBytes => _headerBytes + Length + Blocks;
    /// <inheritdoc/>
    public override long Bits => (_norm == E8Norm.PerVectorFp16 ? 16 : 0) + (long)Blocks * (_digitBits + _indexBits);
    /// <inheritdoc/>
    public override string Describe() =>
        $"e8 q={Q} k={_betas.Length} {(_norm == E8Norm.PerVectorFp16 ? "fp16-rms/vector" : "fixed-scale")}";

    private float Scale(ReadOnlySpan<byte> code) => _norm == E8Norm.PerVectorFp16 ? ReadHalf(code) : _fixedScale;

    /// <inheritdoc/>
    public override void Begin(ReadOnlySpan<float> x, Span<byte> code)
    {
        if (_norm != E8Norm.PerVectorFp16) return;
        double ss = 0;
        foreach (float v in x) ss += (double)v * v;
        float rms = (float)Math.Sqrt(ss / x.Length);
        float s = ToHalf(rms);
        if (!(s > 0) || !float.IsFinite(s)) s = rms > 0 ? (float)Half.MaxValue : 0f;
        WriteHalf(code, s);
    }

    /// <inheritdoc/>
    public override void QuantizeBlock(int block, ReadOnlySpan<float> xb, Span<byte> code, Span<float> yb)
    {
        float s = Scale(code);
        var digits = code.Slice(_headerBytes + 8 * block, 8);
        ref byte index = ref code[_headerBytes + Length + block];
        if (s == 0) { digits.Clear(); index = 0; yb.Clear(); return; }
        Span<float> u = stackalloc float[8];
        float inv = 1f / s;
        for (int i = 0; i < 8; i++) u[i] = xb[i] * inv;
        _quantizer.QuantizeBlock(u, ReadOnlySpan<float>.Empty, digits, out index);
        _code.Decode(digits, _betas[index] * s, ReadOnlySpan<float>.Empty, yb);
    }

    /// <inheritdoc/>
    public override void Decode(ReadOnlySpan<byte> code, Span<float> x)
    {
        // All blocks at once with the SIMD Voronoi decoder (bit-exact with VoronoiCode.Decode).
        float s = Scale(code);
        Span<float> beta = Blocks <= 1024 ? stackalloc float[Blocks] : new float[Blocks];
        for (int b = 0; b < Blocks; b++) beta[b] = _betas[code[_headerBytes + Length + b]] * s;
        Gosset.Kernels.VoronoiBatch.Decode(_code, code.Slice(_headerBytes, Length), beta, x);
    }

    /// <inheritdoc/>
    public override void Pack(ReadOnlySpan<byte> code, BitWriter w)
    {
        if (_norm == E8Norm.PerVectorFp16) w.Write(BitConverter.ToUInt16(code), 16);
        for (int b = 0; b < Blocks; b++)
        {
            ulong v = 0;
            for (int i = 7; i >= 0; i--) v = v * (ulong)Q + code[_headerBytes + 8 * b + i];
            w.Write(v, _digitBits);
            w.Write(code[_headerBytes + Length + b], _indexBits);
        }
    }

    /// <inheritdoc/>
    public override void Unpack(ref BitReader r, Span<byte> code)
    {
        if (_norm == E8Norm.PerVectorFp16) BitConverter.TryWriteBytes(code, (ushort)r.Read(16));
        for (int b = 0; b < Blocks; b++)
        {
            ulong v = r.Read(_digitBits);
            for (int i = 0; i < 8; i++) { code[_headerBytes + 8 * b + i] = (byte)(v % (ulong)Q); v /= (ulong)Q; }
            int idx = (int)r.Read(_indexBits);
            if (idx >= _betas.Length) throw new InvalidDataException("scale index out of range (corrupt file)");
            code[_headerBytes + Length + b] = (byte)idx;
        }
    }
}
