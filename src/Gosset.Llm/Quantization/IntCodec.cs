using Gosset.Coding;
namespace Gosset.Llm.Quantization;

/// <summary>
/// Symmetric INT-b round-to-nearest with one absmax scale per group of entries:
/// scale = absmax / (2^(b−1) − 1) rounded to fp16, value = clamp(round(x / scale), −2^(b−1), 2^(b−1) − 1).
/// Stored per vector: b bits per entry plus 16 bits per group.
/// </summary>
internal sealed class IntCodec : VectorCodec
{
    private readonly int _bits, _group, _groups, _max, _min;

    public IntCodec(int length, int bits, int group) : base(length)
    {
        if (bits is < 2 or > 8) throw new ArgumentOutOfRangeException(nameof(bits), bits, "INT bits must be 2..8");
        if (group <= 0 || group % 8 != 0 && group < length) throw new ArgumentOutOfRangeException(nameof(group), group, "group size must be a multiple of 8 (or the whole vector)");
        _bits = bits;
        _group = Math.Min(group, length);
        _groups = (length + _group - 1) / _group;
        _max = (1 << (bits - 1)) - 1;
        _min = -(1 << (bits - 1));
    }

    public int BitWidth => _bits;
    public int Group => _group;
    public override int CodeBytes => 2 * _groups + Length;
    public override long Bits => (long)_bits * Length + 16L * _groups;
    public override string Describe() => $"int{_bits} g={_group} absmax-fp16";

    public override void Begin(ReadOnlySpan<float> x, Span<byte> code)
    {
        for (int g = 0; g < _groups; g++)
        {
            int s = g * _group, n = Math.Min(_group, Length - s);
            float amax = 0;
            foreach (float v in x.Slice(s, n)) amax = Math.Max(amax, Math.Abs(v));
            WriteHalf(code[(2 * g)..], ToHalf(amax / _max));
        }
    }

    public override void QuantizeBlock(int block, ReadOnlySpan<float> xb, Span<byte> code, Span<float> yb)
    {
        for (int i = 0; i < xb.Length; i++)
        {
            int j = 8 * block + i;
            float scale = ReadHalf(code[(2 * (j / _group))..]);
            int v = scale > 0 ? (int)Math.Clamp(MathF.Round(xb[i] / scale), _min, _max) : 0;
            code[2 * _groups + j] = (byte)(v - _min);
            yb[i] = v * scale;
        }
    }

    public override void Decode(ReadOnlySpan<byte> code, Span<float> x)
    {
        for (int g = 0; g < _groups; g++)
        {
            float scale = ReadHalf(code[(2 * g)..]);
            int s = g * _group, n = Math.Min(_group, Length - s);
            for (int j = s; j < s + n; j++) x[j] = (code[2 * _groups + j] + _min) * scale;
        }
    }

    public override void Pack(ReadOnlySpan<byte> code, BitWriter w)
    {
        for (int g = 0; g < _groups; g++) w.Write(BitConverter.ToUInt16(code[(2 * g)..]), 16);
        for (int j = 0; j < Length; j++) w.Write(code[2 * _groups + j], _bits);
    }

    public override void Unpack(ref BitReader r, Span<byte> code)
    {
        for (int g = 0; g < _groups; g++) BitConverter.TryWriteBytes(code[(2 * g)..], (ushort)r.Read(16));
        for (int j = 0; j < Length; j++) code[2 * _groups + j] = (byte)r.Read(_bits);
    }
}
