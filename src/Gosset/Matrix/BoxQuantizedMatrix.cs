using Gosset.Coding;
using Gosset.Kernels;
using Gosset.Rotations;

namespace Gosset.Matrix;

/// <summary>
/// The kernels' 4-bit E8 code (<see cref="E8BoxCode"/>) applied to matrix columns, so that
/// <c>gosset rd</c> reports the quality of the format the fast GEMV kernels run on. Each column
/// is zero-padded to whole 8-blocks and rotated (no centring, as in the kernels); stored per
/// column: one fp32 RMS scale, then per block a 32-bit word (8 nibbles) and a 2-bit scale index.
/// </summary>
public sealed class BoxQuantizedMatrix : QuantizedMatrix
{
    private readonly float[] _scales;
    private readonly uint[] _words;
    private readonly byte[] _index;

    private BoxQuantizedMatrix(int rows, int cols, int np, RotationKind rot, ulong seed, float[] scales, uint[] words, byte[] index)
    {
        Rows = rows; Cols = cols; RotatedLength = np; RotationKind = rot; RotationSeed = seed; Centered = false;
        _scales = scales; _words = words; _index = index;
    }

    /// <inheritdoc/>
    public override string Method => "e8-box";

    /// <inheritdoc/>
    public override string Describe() => $"e8-box (E8 ∩ box, nibble per entry, k = {E8BoxCode.ScaleCount}) rotation={RotationKind.ToString().ToLowerInvariant()}";

    /// <inheritdoc/>
    public override float Mean(int j) => 0f;

    /// <summary>Encodes a matrix column by column.</summary>
    public static BoxQuantizedMatrix Quantize(DenseMatrix m, RotationKind rotation, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(m);
        if (m.Rows == 0 || m.Cols == 0) throw new GossetException($"Cannot quantize an empty {m.Rows}×{m.Cols} matrix.");
        m.ThrowIfNotFinite("Matrix");
        int np = (m.Rows + 7) / 8 * 8, nb = np / 8;
        var rot = Rotation.Create(rotation, np, seed);
        var scales = new float[m.Cols];
        var words = new uint[(long)nb * m.Cols];
        var index = new byte[(long)nb * m.Cols];
        Parallel.For(0, m.Cols, j =>
        {
            var buf = new float[np];
            m.Column(j).CopyTo(buf);
            var z = new float[np];
            rot.Apply(buf, z);
            scales[j] = E8BoxCode.VectorScale(z);
            E8BoxEncoder.Encode(z, scales[j], words.AsSpan(j * nb, nb), index.AsSpan(j * nb, nb), KernelSupport.Best);
        });
        return new BoxQuantizedMatrix(m.Rows, m.Cols, np, rotation, seed, scales, words, index);
    }

    /// <inheritdoc/>
    public override DenseMatrix DecodeRotated()
    {
        int nb = RotatedLength / 8;
        var z = new DenseMatrix(RotatedLength, Cols);
        Parallel.For(0, Cols, j =>
        {
            var col = z.Column(j);
            for (int b = 0; b < nb; b++)
                E8BoxCode.DecodeBlock(_words[j * nb + b], _index[j * nb + b], _scales[j], col.Slice(8 * b, 8));
        });
        return z;
    }

    /// <inheritdoc/>
    internal override void WriteBody(BinaryWriter w)
    {
        foreach (float s in _scales) w.Write(s);
        foreach (uint word in _words) w.Write(word);
        var bits = new BitWriter();
        foreach (byte i in _index) bits.Write(i, 2);
        byte[] packed = bits.ToArray();
        w.Write(packed.Length);
        w.Write(packed);
    }

    // Sizes are computed in 64 bits and checked against the bytes left before anything is allocated.
    internal static BoxQuantizedMatrix ReadBody(BinaryReader r, int rows, int cols, int np, RotationKind rot, ulong seed, bool centered)
    {
        if (centered || np != (rows + 7L) / 8 * 8) throw new InvalidDataException("Invalid e8-box shape.");
        long nb = np / 8, words = nb * cols, indexBytes = (words * 2 + 7) / 8;
        IO.GqFormat.Require(r, 4L * cols + 4L * words + 4 + indexBytes, "e8-box body");
        var scales = new float[cols];
        for (int j = 0; j < cols; j++)
        {
            scales[j] = r.ReadSingle();
            if (!float.IsFinite(scales[j]) || scales[j] < 0) throw new InvalidDataException("An e8-box column scale is not a finite non-negative number.");
        }
        var w = new uint[words];
        for (long i = 0; i < w.LongLength; i++) w[i] = r.ReadUInt32();
        int len = r.ReadInt32();
        if (len != indexBytes) throw new InvalidDataException("e8-box index length does not match the shape.");
        byte[] packed = r.ReadBytes(len);
        if (packed.Length != len) throw new EndOfStreamException();
        var index = new byte[words];
        var br = new BitReader(packed);
        for (long i = 0; i < index.LongLength; i++) index[i] = (byte)br.Read(2);
        return new BoxQuantizedMatrix(rows, cols, np, rot, seed, scales, w, index);
    }
}
