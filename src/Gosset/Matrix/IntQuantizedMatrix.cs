using Gosset.Baselines;
using Gosset.Codes;
using Gosset.Coding;
using Gosset.Rotations;

namespace Gosset.Matrix;

/// <summary>
/// Baseline: every column (optionally rotated by the same seeded rotation as the E8 code) coded
/// with INT-b round-to-nearest and one fp16 step per group of consecutive entries. No centring:
/// this is the standard symmetric INT format.
/// </summary>
public sealed class IntQuantizedMatrix : QuantizedMatrix
{
    private readonly IntCodec _codec;
    private readonly byte[] _codes; // [Cols][codec.CodeBytes], unpacked

    private IntQuantizedMatrix(int rows, int cols, RotationKind rot, ulong seed, IntCodec codec, byte[] codes)
    {
        Rows = rows; Cols = cols; RotatedLength = rows; RotationKind = rot; RotationSeed = seed; Centered = false;
        _codec = codec; _codes = codes;
    }

    /// <summary>The scalar quantizer (bits, group size, clipping, levels).</summary>
    public IntQuantizer Quantizer => _codec.Quantizer;

    /// <summary>The vector codec every column is coded with.</summary>
    public IntCodec Codec => _codec;

    /// <inheritdoc/>
    public override string Method => "int" + (Quantizer.Clipping == IntClipping.MseOptimal ? "-clip" : "") + (RotationKind == RotationKind.None ? "" : "-rot");

    /// <inheritdoc/>
    public override string Describe() => $"{Quantizer.Name} rotation={RotationKind.ToString().ToLowerInvariant()}";

    /// <inheritdoc/>
    public override float Mean(int j) => 0f;

    /// <summary>The columns' codes as rows of <see cref="Codec"/> (<see cref="Kernels.CodedMatrix"/>), decoded once per product.</summary>
    public override Kernels.PackedMatrix Transposed => _rows ??= new Kernels.CodedMatrix(_codec, _codes, Cols);

    private Kernels.PackedMatrix? _rows;

    /// <summary>Encodes a matrix column by column.</summary>
    /// <param name="m">The matrix, finite.</param>
    /// <param name="q">The quantizer.</param>
    /// <param name="rotation">Rotation applied to each column first.</param>
    /// <param name="seed">Rotation seed.</param>
    /// <exception cref="GossetException">The matrix is empty or has a non-finite entry.</exception>
    public static IntQuantizedMatrix Quantize(DenseMatrix m, IntQuantizer q, RotationKind rotation, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(m);
        if (m.Rows == 0 || m.Cols == 0) throw new GossetException($"Cannot quantize an empty {m.Rows}×{m.Cols} matrix.");
        m.ThrowIfNotFinite("Matrix");
        var rot = Rotation.Create(rotation, m.Rows, seed);
        var codec = new IntCodec(m.Rows, q);
        int per = codec.CodeBytes;
        var codes = new byte[(long)per * m.Cols];
        Parallel.For(0, m.Cols, j =>
        {
            var buf = new float[m.Rows];
            rot.Apply(m.Column(j), buf);
            codec.Encode(buf, codes.AsSpan(j * per, per));
        });
        return new IntQuantizedMatrix(m.Rows, m.Cols, rotation, seed, codec, codes);
    }

    /// <inheritdoc/>
    public override DenseMatrix DecodeRotated()
    {
        int per = _codec.CodeBytes;
        var z = new DenseMatrix(Rows, Cols);
        Parallel.For(0, Cols, j => _codec.Decode(_codes.AsSpan(j * per, per), z.Column(j)));
        return z;
    }

    // Stored bytes of one column: its codec bits, zero padded to a whole byte.
    private static long ColumnBytes(IntQuantizer q, int rows) => (q.TotalBits(rows) + 7) / 8;

    /// <inheritdoc/>
    internal override void WriteBody(BinaryWriter w)
    {
        w.Write((byte)Quantizer.Bits);
        w.Write(Quantizer.GroupSize);
        w.Write((byte)Quantizer.Clipping);
        w.Write((byte)Quantizer.Levels);
        w.Write(checked((int)(ColumnBytes(Quantizer, Rows) * Cols)));
        int per = _codec.CodeBytes;
        for (int j = 0; j < Cols; j++)
        {
            var bw = new BitWriter();
            _codec.Pack(_codes.AsSpan(j * per, per), bw);
            w.Write(bw.ToArray());
        }
    }

    // Sizes are computed in 64 bits and checked against the bytes left before anything is allocated.
    internal static IntQuantizedMatrix ReadBody(BinaryReader r, int rows, int cols, int rotatedLength, RotationKind rot, ulong seed, bool centered)
    {
        if (centered || rotatedLength != rows) throw new InvalidDataException("INT matrices are neither centred nor padded.");
        int bits = r.ReadByte();
        int group = r.ReadInt32();
        byte clipCode = r.ReadByte(), levelsCode = r.ReadByte();
        var clip = (IntClipping)clipCode;
        var levels = (IntLevels)levelsCode;
        if (bits < 2 || bits > 8 || group < 1 || !Enum.IsDefined(clip) || !Enum.IsDefined(levels))
            throw new InvalidDataException($"Invalid INT parameters (bits {bits}, group {group}, clipping {clipCode}, levels {levelsCode}).");
        var q = new IntQuantizer(bits, group, clip, levels);
        long perColumn = ColumnBytes(q, rows);
        long expected = perColumn * cols;
        int len = r.ReadInt32();
        if (perColumn > int.MaxValue || len != expected) throw new InvalidDataException($"INT payload holds {len} bytes; a {rows}×{cols} matrix needs {expected}.");
        IO.GqFormat.Require(r, len, "INT payload");
        byte[] payload = r.ReadBytes(len);
        if (payload.Length != len) throw new EndOfStreamException();
        var codec = new IntCodec(rows, q);
        int per = codec.CodeBytes;
        if ((long)per * cols > Array.MaxLength) throw new InvalidDataException($"A {rows}×{cols} INT matrix is too large.");
        var codes = new byte[(long)per * cols];
        for (int j = 0; j < cols; j++)
        {
            var br = new BitReader(payload.AsSpan((int)(j * perColumn), (int)perColumn));
            codec.Unpack(ref br, codes.AsSpan(j * per, per));
        }
        return new IntQuantizedMatrix(rows, cols, rot, seed, codec, codes);
    }
}
