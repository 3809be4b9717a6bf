using Gosset.Coding;
namespace Gosset.Codes;

/// <summary>
/// Quantizes vectors of a fixed length into codes: side information (scales) plus one code per entry
/// or per 8-block. In memory a code is a byte array of <see cref="CodeBytes"/>; on disk it is packed
/// to exactly <see cref="Bits"/> bits, the figure every bits-per-entry report uses.
/// </summary>
/// <remarks>
/// Encoding is split into <see cref="Begin"/> (side information from the whole vector) and
/// <see cref="QuantizeBlock"/> (one block of up to 8 entries), so that LDLQ error feedback can
/// change later blocks after earlier ones are quantized.
/// </remarks>
public abstract class VectorCodec
{
    /// <summary>A codec for vectors of <paramref name="length"/> entries.</summary>
    protected VectorCodec(int length) => Length = length;

    /// <summary>Entries per vector.</summary>
    public int Length { get; }
    /// <summary>Number of blocks of (up to) 8 entries.</summary>
    public int Blocks => (Length + 7) / 8;
    /// <summary>Bytes of one unpacked code in memory.</summary>
    public abstract int CodeBytes { get; }
    /// <summary>Stored (packed) bits per vector, side information included.</summary>
    public abstract long Bits { get; }
    /// <summary>Short description, e.g. "e8 q=14 k=4 fp16-rms".</summary>
    public abstract string Describe();

    /// <summary>Computes and stores the side information of x.</summary>
    public abstract void Begin(ReadOnlySpan<float> x, Span<byte> code);
    /// <summary>Quantizes entries [8·block, 8·block + xb.Length) of a vector (side information already set); writes the reconstruction.</summary>
    public abstract void QuantizeBlock(int block, ReadOnlySpan<float> xb, Span<byte> code, Span<float> yb);
    /// <summary>Reconstructs a vector from its code.</summary>
    public abstract void Decode(ReadOnlySpan<byte> code, Span<float> x);
    /// <summary>Packs a code into exactly <see cref="Bits"/> bits.</summary>
    public abstract void Pack(ReadOnlySpan<byte> code, BitWriter w);
    /// <summary>Unpacks a code written by <see cref="Pack"/>.</summary>
    public abstract void Unpack(ref BitReader r, Span<byte> code);

    /// <summary>
    /// Whether a code unpacks to block-int8 form (<see cref="ToBlockInt8"/>): small integers and one scale per 8-block with
    /// x̂ = scale·v exactly as <see cref="Decode"/> gives it. The integer kernels and attention over the KV cache read that form.
    /// </summary>
    public virtual bool HasBlockInt8Form => false;

    /// <summary>Unpacks a code to block-int8 form: values[i]·scales[i / 8] is entry i of <see cref="Decode"/>'s output.</summary>
    /// <param name="code">A code of this codec.</param>
    /// <param name="values">[Length] integers.</param>
    /// <param name="scales">[Blocks] scales.</param>
    /// <exception cref="NotSupportedException">The codec has no such form (<see cref="HasBlockInt8Form"/> is false).</exception>
    public virtual void ToBlockInt8(ReadOnlySpan<byte> code, Span<sbyte> values, Span<float> scales)
        => throw new NotSupportedException($"{Describe()} has no block-int8 form");

    /// <summary>Encodes a vector (no error feedback).</summary>
    public virtual void Encode(ReadOnlySpan<float> x, Span<byte> code)
    {
        Begin(x, code);
        Span<float> y = stackalloc float[8];
        for (int b = 0; b < Blocks; b++)
        {
            int s = 8 * b, n = Math.Min(8, Length - s);
            QuantizeBlock(b, x.Slice(s, n), code, y[..n]);
        }
    }

    /// <summary>Quantizes and reconstructs x in one call (what <see cref="Encode"/> then <see cref="Decode"/> give).</summary>
    public virtual void Roundtrip(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<byte> code = CodeBytes <= 4096 ? stackalloc byte[CodeBytes] : new byte[CodeBytes];
        Begin(x, code);
        for (int b = 0; b < Blocks; b++)
        {
            int s = 8 * b, n = Math.Min(8, Length - s);
            QuantizeBlock(b, x.Slice(s, n), code, y.Slice(s, n));
        }
    }

    /// <summary>v rounded to fp16.</summary>
    protected static float ToHalf(float v) => (float)(Half)v;
    /// <summary>Writes v as fp16, little-endian.</summary>
    protected static void WriteHalf(Span<byte> dst, float v) => BitConverter.TryWriteBytes(dst, BitConverter.HalfToUInt16Bits((Half)v));
    /// <summary>Reads an fp16 written by <see cref="WriteHalf"/>.</summary>
    protected static float ReadHalf(ReadOnlySpan<byte> src) => (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(src));
}
