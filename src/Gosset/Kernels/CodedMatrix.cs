using Gosset.Codes;

namespace Gosset.Kernels;

/// <summary>
/// Rows kept as codes of one <see cref="VectorCodec"/> (a fixed number of bytes each) and decoded on use: the packed form
/// of any code without a kernel of its own (INT, the Voronoi reference). Products decode each row once.
/// </summary>
/// <param name="codec">The row code; its length is the column count.</param>
/// <param name="codes">rows·<see cref="VectorCodec.CodeBytes"/> bytes, row by row (kept, not copied).</param>
/// <param name="rows">Output dimension.</param>
public sealed class CodedMatrix(VectorCodec codec, byte[] codes, int rows) : PackedMatrix
{
    /// <summary>The row code.</summary>
    public VectorCodec Codec { get; } = codec ?? throw new ArgumentNullException(nameof(codec));

    /// <summary>The rows' codes.</summary>
    public byte[] Codes { get; } = codes ?? throw new ArgumentNullException(nameof(codes));

    /// <inheritdoc/>
    public override int Rows { get; } = rows >= 0 && codes.LongLength >= (long)rows * codec.CodeBytes ? rows
        : throw new ArgumentException($"{codes.LongLength} code bytes do not hold {rows} rows of {codec.CodeBytes}.", nameof(codes));

    /// <inheritdoc/>
    public override int Cols => Codec.Length;

    /// <summary>The codec's exact bits per row, times the rows.</summary>
    public override long StoredBits => Codec.Bits * Rows;

    /// <inheritdoc/>
    public override ReadOnlySpan<float> Row(int r, Span<float> scratch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(r);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(r, Rows);
        Codec.Decode(Codes.AsSpan((int)((long)r * Codec.CodeBytes), Codec.CodeBytes), scratch);
        return scratch[..Cols];
    }
}
