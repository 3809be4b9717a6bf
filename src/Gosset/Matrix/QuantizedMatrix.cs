using System.Numerics.Tensors;
using Gosset.Kernels;
using Gosset.Rotations;

namespace Gosset.Matrix;

/// <summary>
/// A matrix whose columns were quantized independently of any other matrix. It knows its exact
/// stored size: <see cref="TotalBits"/> is the length of its <c>.gq</c> serialization (header,
/// parameters, scales, means, norms, codes, checksum), so bits/entry counts everything.
/// </summary>
public abstract class QuantizedMatrix
{
    private long _bits = -1;

    /// <summary>Rows n (length of each column).</summary>
    public int Rows { get; protected init; }
    /// <summary>Columns.</summary>
    public int Cols { get; protected init; }
    /// <summary>Rotation applied to each (centred, padded) column before coding.</summary>
    public RotationKind RotationKind { get; protected init; }
    /// <summary>Seed of the rotation (both factors of a product must share it).</summary>
    public ulong RotationSeed { get; protected init; }
    /// <summary>Length of the rotated (padded) columns.</summary>
    public int RotatedLength { get; protected init; }
    /// <summary>Whether column means were removed and stored.</summary>
    public bool Centered { get; protected init; }

    /// <summary>Short method name, e.g. "e8" or "int-rot".</summary>
    public abstract string Method { get; }

    /// <summary>Human-readable parameters.</summary>
    public abstract string Describe();

    /// <summary>Total stored bits (the serialized size).</summary>
    public long TotalBits
    {
        get
        {
            if (_bits < 0)
            {
                using var counter = new CountingStream();
                IO.GqFormat.Write(counter, this);
                _bits = counter.Length * 8;
            }
            return _bits;
        }
    }

    /// <summary>Stored bits per matrix entry, all side information included.</summary>
    public double BitsPerEntry => (double)TotalBits / ((long)Rows * Cols);

    /// <summary>Mean of column j (0 when not centred).</summary>
    public abstract float Mean(int j);

    /// <summary>
    /// Decodes every column in the rotated domain: z_j ≈ R·pad(x_j − μ_j), length
    /// <see cref="RotatedLength"/>. Products of columns are computed here without rotating back.
    /// </summary>
    public abstract DenseMatrix DecodeRotated();

    /// <summary>Reconstructs the matrix: x̂_j = μ_j + first n entries of Rᵀ·z_j.</summary>
    public DenseMatrix Dequantize()
    {
        var z = DecodeRotated();
        var rot = CreateRotation();
        var result = new DenseMatrix(Rows, Cols);
        Parallel.For(0, Cols, j =>
        {
            var buf = new float[RotatedLength];
            rot.ApplyInverse(z.Column(j), buf);
            var col = result.Column(j);
            buf.AsSpan(0, Rows).CopyTo(col);
            if (Centered) TensorPrimitives.Add(col, Mean(j), col);
        });
        return result;
    }

    /// <summary>
    /// Ĉ = ÂᵀB for a float B (n × b) with only this side quantized: the columns of B are padded and rotated like
    /// this matrix's, and ĉ_ij = ẑ_i·R·pad(b_j) + μ_i·1ᵀb_j, the first term on <see cref="Transposed"/>: a format the kernels
    /// run (<see cref="E8BoxQuantizedMatrix"/>) multiplies its packed codes directly (<see cref="RunsOnKernels"/>).
    /// </summary>
    /// <param name="b">The float factor, n × b, finite.</param>
    /// <returns>Ĉ, a × b.</returns>
    /// <exception cref="GossetException">B's row count differs from n, or B has a non-finite entry.</exception>
    public DenseMatrix MultiplyTransposed(DenseMatrix b)
    {
        ArgumentNullException.ThrowIfNull(b);
        if (b.Rows != Rows) throw new GossetException($"Inner dimensions differ: A has {Rows} rows, B has {b.Rows}.");
        b.ThrowIfNotFinite("B");
        var rot = CreateRotation();
        var zb = new DenseMatrix(RotatedLength, b.Cols);
        Parallel.For(0, b.Cols, j =>
        {
            var buf = new float[RotatedLength];
            b.Column(j).CopyTo(buf);
            rot.Apply(buf, zb.Column(j));
        });
        var c = MultiplyRotated(zb);
        if (Centered)
            for (int j = 0; j < b.Cols; j++)
            {
                double sum = 0;
                foreach (float v in b.Column(j)) sum += v;
                var col = c.Column(j);
                for (int i = 0; i < Cols; i++) col[i] += (float)(Mean(i) * sum);
            }
        return c;
    }

    /// <summary>Whether <see cref="MultiplyTransposed"/> runs on the GEMM kernels (packed codes) rather than on decoded columns.</summary>
    public virtual bool RunsOnKernels => false;

    /// <summary>
    /// Âᵀ in the rotated domain as a packed matrix (<see cref="PackedMatrix"/>): row i is the code of column i, centred when
    /// <see cref="Centered"/> (Cols rows of <see cref="RotatedLength"/> entries). The kernel format's is its packed codes
    /// (<see cref="E8BoxQuantizedMatrix.Packed"/>), INT columns stay codes (<see cref="CodedMatrix"/>), the others are decoded
    /// once into float rows.
    /// </summary>
    public virtual PackedMatrix Transposed => _transposed ??= new Float32Matrix(DecodeRotated().Data, Cols, RotatedLength);

    private PackedMatrix? _transposed;

    /// <summary>ẐᵀZ_B for rotated float columns zb (RotatedLength × b): a × b, on <see cref="Transposed"/>'s product.</summary>
    private DenseMatrix MultiplyRotated(DenseMatrix zb)
    {
        // zb is column-major [b][RotatedLength]: the packed matrix's batch layout; its output [b][Cols] is Ĉ column-major.
        var c = new DenseMatrix(Cols, zb.Cols);
        Transposed.Multiply(zb.Data, c.Data, zb.Cols, ActivationMode.Float32, 0);
        return c;
    }

    /// <summary>The rotation shared by the encoder and decoder.</summary>
    public IRotation CreateRotation() => Rotations.Rotation.Create(RotationKind, RotatedLength, RotationSeed);

    /// <summary>Writes the method-specific body (after the common header) of the .gq format.</summary>
    internal abstract void WriteBody(BinaryWriter w);

    private sealed class CountingStream : Stream
    {
        private long _len;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _len;
        public override long Position { get => _len; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => _len += count;
        public override void Write(ReadOnlySpan<byte> buffer) => _len += buffer.Length;
        public override void WriteByte(byte value) => _len++;
    }
}
