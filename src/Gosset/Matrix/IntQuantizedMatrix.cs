using Gosset.Baselines;
using Gosset.Rotations;

namespace Gosset.Matrix;

/// <summary>
/// Baseline: every column (optionally rotated by the same seeded rotation as the E8 code) coded
/// with INT-b round-to-nearest and one fp16 step per group of consecutive entries. No centring:
/// this is the standard symmetric INT format.
/// </summary>
public sealed class IntQuantizedMatrix : QuantizedMatrix
{
    private readonly byte[] _payload;
    private readonly IntQuantizer _q;

    private IntQuantizedMatrix(int rows, int cols, RotationKind rot, ulong seed, IntQuantizer q, byte[] payload)
    {
        Rows = rows; Cols = cols; RotatedLength = rows; RotationKind = rot; RotationSeed = seed; Centered = false;
        _q = q; _payload = payload;
    }

    /// <summary>The scalar quantizer (bits, group size, clipping, levels).</summary>
    public IntQuantizer Quantizer => _q;

    /// <inheritdoc/>
    public override string Method => "int" + (_q.Clipping == IntClipping.MseOptimal ? "-clip" : "") + (RotationKind == RotationKind.None ? "" : "-rot");

    /// <inheritdoc/>
    public override string Describe() => $"{_q.Name} rotation={RotationKind.ToString().ToLowerInvariant()}";

    /// <inheritdoc/>
    public override float Mean(int j) => 0f;

    /// <summary>Encodes a matrix column by column.</summary>
    public static IntQuantizedMatrix Quantize(DenseMatrix m, IntQuantizer q, RotationKind rotation, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(m);
        if (m.Rows == 0 || m.Cols == 0) throw new GossetException($"Cannot quantize an empty {m.Rows}×{m.Cols} matrix.");
        m.ThrowIfNotFinite("Matrix");
        var rot = Rotation.Create(rotation, m.Rows, seed);
        int per = q.PackedLength(m.Rows);
        var payload = new byte[(long)per * m.Cols];
        Parallel.For(0, m.Cols, j =>
        {
            var buf = new float[m.Rows];
            rot.Apply(m.Column(j), buf);
            q.Encode(buf, payload.AsSpan(j * per, per));
        });
        return new IntQuantizedMatrix(m.Rows, m.Cols, rotation, seed, q, payload);
    }

    /// <inheritdoc/>
    public override DenseMatrix DecodeRotated()
    {
        int per = _q.PackedLength(Rows);
        var z = new DenseMatrix(Rows, Cols);
        Parallel.For(0, Cols, j => _q.Decode(_payload.AsSpan(j * per, per), z.Column(j)));
        return z;
    }

    /// <inheritdoc/>
    internal override void WriteBody(BinaryWriter w)
    {
        w.Write((byte)_q.Bits);
        w.Write(_q.GroupSize);
        w.Write((byte)_q.Clipping);
        w.Write((byte)_q.Levels);
        w.Write(_payload.Length);
        w.Write(_payload);
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
        long perColumn = ((long)rows * bits + 16L * (((long)rows + group - 1) / group) + 7) / 8;
        long expected = perColumn * cols;
        int len = r.ReadInt32();
        if (perColumn > int.MaxValue || len != expected) throw new InvalidDataException($"INT payload holds {len} bytes; a {rows}×{cols} matrix needs {expected}.");
        IO.GqFormat.Require(r, len, "INT payload");
        var q = new IntQuantizer(bits, group, clip, levels);
        byte[] payload = r.ReadBytes(len);
        if (payload.Length != len) throw new EndOfStreamException();
        return new IntQuantizedMatrix(rows, cols, rot, seed, q, payload);
    }
}
