using Gosset.Baselines;
using Gosset.Coding;
namespace Gosset.Llm.Quantization;

/// <summary>
/// INT-b for the LLM (weights per row, activations per token, K/V per token): the one INT quantizer,
/// <see cref="IntQuantizer"/>, with absmax clipping and mid-tread levels (k·s, |k| ≤ 2^(b−1) − 1, zero exact),
/// one fp16 step per group of entries. Stored per vector: b bits per entry plus 16 bits per group.
/// </summary>
internal sealed class IntCodec : VectorCodec
{
    private readonly int _bits, _group, _groups;
    private readonly IntQuantizer _q;

    public IntCodec(int length, int bits, int group) : base(length)
    {
        if (bits is < 2 or > 8) throw new ArgumentOutOfRangeException(nameof(bits), bits, "INT bits must be 2..8");
        if (group <= 0 || group % 8 != 0 && group < length) throw new ArgumentOutOfRangeException(nameof(group), group, "group size must be a multiple of 8 (or the whole vector)");
        _bits = bits;
        _group = Math.Min(group, length);
        _groups = (length + _group - 1) / _group;
        _q = new IntQuantizer(bits, _group, IntClipping.AbsMax, IntLevels.MidTread);
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
            WriteHalf(code[(2 * g)..], (float)_q.ChooseStep(x.Slice(s, n)));
        }
    }

    private float Step(ReadOnlySpan<byte> code, int j) => ReadHalf(code[(2 * (j / _group))..]);

    // Stored entry = quantizer code + 1 = k + 2^(b−1): the byte files written before the one-quantizer change hold.

    public override void QuantizeBlock(int block, ReadOnlySpan<float> xb, Span<byte> code, Span<float> yb)
    {
        for (int i = 0; i < xb.Length; i++)
        {
            int j = 8 * block + i;
            float step = Step(code, j);
            int c = _q.Code(xb[i], step);
            code[2 * _groups + j] = (byte)(c + 1);
            yb[i] = _q.Level(c, step);
        }
    }

    public override void Decode(ReadOnlySpan<byte> code, Span<float> x)
    {
        for (int j = 0; j < Length; j++) x[j] = _q.Level(code[2 * _groups + j] - 1, Step(code, j));
    }

    /// <inheritdoc/>
    public override bool HasBlockInt8Form => _group % 8 == 0 && Length % 8 == 0;

    /// <summary>The levels' integers (code − (2^(b−1) − 1), |v| ≤ 127) and per block its group's step: x̂ = step·v as <see cref="Decode"/> gives it.</summary>
    public override void ToBlockInt8(ReadOnlySpan<byte> code, Span<sbyte> values, Span<float> scales)
    {
        if (!HasBlockInt8Form) base.ToBlockInt8(code, values, scales);
        int half = (1 << (_bits - 1)) - 1;
        for (int j = 0; j < Length; j++) values[j] = (sbyte)(code[2 * _groups + j] - 1 - half);
        for (int t = 0; t < Blocks; t++) scales[t] = Step(code, 8 * t);
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
