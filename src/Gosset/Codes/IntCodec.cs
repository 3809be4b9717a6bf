using System.Runtime.InteropServices;
using Gosset.Baselines;
using Gosset.Coding;
namespace Gosset.Codes;

/// <summary>
/// INT-b as a vector codec: <see cref="IntQuantizer"/> (the one INT quantizer: bits, group, clipping, levels) with one
/// fp16 step per group of entries. The <c>int*</c> methods of <c>gosset rd</c> (columns of a <c>.gq</c>) and the LLM's INT
/// weights, activations and K/V all code their vectors with it.
/// In memory: [groups fp16 steps, 2 bytes each, little-endian][one byte per entry: the quantizer's code, 0 … 2^b − 1].
/// Stored: exactly <see cref="Bits"/> = 16 per group + b per entry, the steps first, then the codes, least significant bit first.
/// </summary>
public sealed class IntCodec : VectorCodec
{
    private readonly int _groups;

    /// <summary>A codec for vectors of <paramref name="length"/> entries.</summary>
    /// <param name="length">Entries per vector.</param>
    /// <param name="quantizer">The quantizer (bits, group size, clipping, levels).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is not positive.</exception>
    public IntCodec(int length, IntQuantizer quantizer) : base(length)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        Quantizer = quantizer;
        _groups = quantizer.GroupCount(length);
    }

    /// <summary>The LLM's INT-b: absmax clipping, mid-tread levels (zero exact), groups of <paramref name="group"/> entries (at most the whole vector).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bits"/> is outside 2 … 8, or <paramref name="group"/> is not a multiple of 8 shorter than the vector.</exception>
    public IntCodec(int length, int bits, int group)
        : this(length, new IntQuantizer(
            bits is < 2 or > 8 ? throw new ArgumentOutOfRangeException(nameof(bits), bits, "INT bits must be 2..8") : bits,
            group <= 0 || group % 8 != 0 && group < length ? throw new ArgumentOutOfRangeException(nameof(group), group, "group size must be a multiple of 8 (or the whole vector)") : Math.Min(group, length),
            IntClipping.AbsMax, IntLevels.MidTread))
    {
    }

    /// <summary>The scalar quantizer.</summary>
    public IntQuantizer Quantizer { get; }
    /// <summary>Bits per entry b.</summary>
    public int BitWidth => Quantizer.Bits;
    /// <summary>Entries per fp16 step.</summary>
    public int Group => Quantizer.GroupSize;
    /// <inheritdoc/>
    public override int CodeBytes => 2 * _groups + Length;
    /// <inheritdoc/>
    public override long Bits => Quantizer.TotalBits(Length);
    /// <inheritdoc/>
    public override string Describe() => Quantizer.Name;

    private Span<Half> Steps(Span<byte> code) => MemoryMarshal.Cast<byte, Half>(code[..(2 * _groups)]);
    private ReadOnlySpan<Half> Steps(ReadOnlySpan<byte> code) => MemoryMarshal.Cast<byte, Half>(code[..(2 * _groups)]);

    /// <inheritdoc/>
    public override void Encode(ReadOnlySpan<float> x, Span<byte> code) => Quantizer.Quantize(x, code[(2 * _groups)..], Steps(code));

    /// <inheritdoc/>
    public override void Begin(ReadOnlySpan<float> x, Span<byte> code)
    {
        var steps = Steps(code);
        for (int g = 0; g < _groups; g++)
        {
            int s = g * Group, n = Math.Min(Group, Length - s);
            steps[g] = Quantizer.ChooseStep(x.Slice(s, n));
        }
    }

    private float Step(ReadOnlySpan<byte> code, int j) => (float)Steps(code)[j / Group];

    /// <inheritdoc/>
    public override void QuantizeBlock(int block, ReadOnlySpan<float> xb, Span<byte> code, Span<float> yb)
    {
        for (int i = 0; i < xb.Length; i++)
        {
            int j = 8 * block + i;
            float step = Step(code, j);
            int c = Quantizer.Code(xb[i], step);
            code[2 * _groups + j] = (byte)c;
            yb[i] = Quantizer.Level(c, step);
        }
    }

    /// <inheritdoc/>
    /// <exception cref="GossetException">A code or a step is invalid (corrupt data).</exception>
    public override void Decode(ReadOnlySpan<byte> code, Span<float> x) => Quantizer.Dequantize(code.Slice(2 * _groups, Length), Steps(code), x[..Length]);

    /// <inheritdoc/>
    public override bool HasBlockInt8Form => Group % 8 == 0 && Length % 8 == 0 && Quantizer.Levels == IntLevels.MidTread;

    /// <summary>The levels' integers (code − (2^(b−1) − 1), |v| ≤ 127) and per block its group's step: x̂ = step·v as <see cref="Decode"/> gives it.</summary>
    /// <exception cref="NotSupportedException">Mid-rise levels, or groups that are not whole 8-blocks.</exception>
    public override void ToBlockInt8(ReadOnlySpan<byte> code, Span<sbyte> values, Span<float> scales)
    {
        if (!HasBlockInt8Form) base.ToBlockInt8(code, values, scales);
        int half = (1 << (BitWidth - 1)) - 1;
        for (int j = 0; j < Length; j++) values[j] = (sbyte)(code[2 * _groups + j] - half);
        for (int t = 0; t < Blocks; t++) scales[t] = Step(code, 8 * t);
    }

    /// <inheritdoc/>
    public override void Pack(ReadOnlySpan<byte> code, BitWriter w)
    {
        for (int g = 0; g < _groups; g++) w.Write(BitConverter.ToUInt16(code[(2 * g)..]), 16);
        for (int j = 0; j < Length; j++) w.Write(code[2 * _groups + j], BitWidth);
    }

    /// <inheritdoc/>
    /// <exception cref="InvalidDataException">A code exceeds the quantizer's largest code.</exception>
    public override void Unpack(ref BitReader r, Span<byte> code)
    {
        for (int g = 0; g < _groups; g++) BitConverter.TryWriteBytes(code[(2 * g)..], (ushort)r.Read(16));
        for (int j = 0; j < Length; j++)
        {
            int c = (int)r.Read(BitWidth);
            if (c > Quantizer.MaxCode) throw new InvalidDataException($"INT code {c} at entry {j} exceeds the largest code {Quantizer.MaxCode}.");
            code[2 * _groups + j] = (byte)c;
        }
    }
}
