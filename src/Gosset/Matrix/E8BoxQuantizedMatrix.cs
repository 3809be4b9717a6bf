using Gosset.Codes;
using Gosset.Rotations;

namespace Gosset.Matrix;

/// <summary>
/// A matrix whose columns (after zero padding to whole 8-blocks and the shared rotation; no centring, as in
/// the kernels) are coded with the E8 box code: the kernel-native format, <c>e8</c> in <c>gosset rd</c>.
/// The body of its <c>.gq</c> file is <see cref="E8BoxFormat"/> with codes rows = the matrix's columns.
/// </summary>
public sealed class E8BoxQuantizedMatrix : QuantizedMatrix
{
    private E8BoxQuantizedMatrix(int rows, int cols, int np, RotationKind rot, ulong seed, E8BoxCodes codes, E8BoxTable table, string method)
    {
        Rows = rows; Cols = cols; RotatedLength = np; RotationKind = rot; RotationSeed = seed; Centered = false;
        Codes = codes; Table = table; _method = method;
    }

    private readonly string _method;

    /// <summary>The codes (one code row per matrix column, in the rotated domain).</summary>
    public E8BoxCodes Codes { get; }

    /// <summary>The fitted table (scales, index code, budget).</summary>
    public E8BoxTable Table { get; }

    /// <inheritdoc/>
    public override string Method => _method;

    /// <inheritdoc/>
    public override string Describe() =>
        $"e8 box b={Table.Bits} k={Table.K} group={8 * Table.GroupBlocks} index-bits/group={Table.GroupIndexBits} rotation={RotationKind.ToString().ToLowerInvariant()}";

    /// <inheritdoc/>
    public override float Mean(int j) => 0f;

    /// <summary>Encodes a matrix column by column with a table fitted to its own rotated columns.</summary>
    /// <param name="m">The matrix.</param>
    /// <param name="bits">b ∈ {2, 3, 4}.</param>
    /// <param name="k">Block scales.</param>
    /// <param name="indexBitsPerBlock">Index budget per block (NaN: fixed-width ⌈log2 k⌉-bit indices).</param>
    /// <param name="rotation">Rotation kind.</param>
    /// <param name="seed">Rotation seed.</param>
    /// <param name="method">Name reported as <see cref="Method"/>.</param>
    public static E8BoxQuantizedMatrix Quantize(DenseMatrix m, int bits, int k, double indexBitsPerBlock, RotationKind rotation, ulong seed, string method = "e8")
    {
        ArgumentNullException.ThrowIfNull(m);
        if (m.Rows == 0 || m.Cols == 0) throw new GossetException($"Cannot quantize an empty {m.Rows}×{m.Cols} matrix.");
        m.ThrowIfNotFinite("Matrix");
        int np = (m.Rows + 7) / 8 * 8;
        var rot = Rotation.Create(rotation, np, seed);
        var z = new float[m.Cols][];
        Parallel.For(0, m.Cols, j =>
        {
            var buf = new float[np];
            m.Column(j).CopyTo(buf);
            z[j] = new float[np];
            rot.Apply(buf, z[j]);
        });
        var table = E8BoxTable.Fit(z, bits, k, indexBitsPerBlock);
        var codes = new E8BoxCodes(m.Cols, np, bits, table.BlockScales);
        var codec = new E8BoxCodec(np, table) { SearchRowScale = true };
        Parallel.For(0, m.Cols, j => codec.EncodeRow(z[j], codes, j));
        return new E8BoxQuantizedMatrix(m.Rows, m.Cols, np, rotation, seed, codes, table, method);
    }

    /// <inheritdoc/>
    public override DenseMatrix DecodeRotated()
    {
        var z = new DenseMatrix(RotatedLength, Cols);
        Parallel.For(0, Cols, j => Codes.DequantizeRow(j, z.Column(j)));
        return z;
    }

    /// <inheritdoc/>
    public override bool RunsOnKernels => true;

    private Kernels.PackedE8Matrix? _packed;

    /// <summary>The codes repacked for the GEMV/GEMM kernels (once, on first use): row i is column i of the matrix.</summary>
    /// <remarks>Its <see cref="Kernels.PackedMatrix.StoredBits"/> are those of the stored codes (<see cref="E8BoxFormat.StoredBits"/>: the table and the rows).</remarks>
    public Kernels.PackedE8Matrix Packed => _packed ??= Kernels.PackedE8Matrix.FromCodes(Codes, E8BoxFormat.StoredBits(Codes.Rows, Codes.Cols, Table));

    /// <summary>The packed codes (<see cref="Packed"/>): products run on the kernels with exact fp32 activations.</summary>
    public override Kernels.PackedMatrix Transposed => Packed;

    /// <inheritdoc/>
    internal override void WriteBody(BinaryWriter w)
    {
        w.Flush();
        E8BoxFormat.Write(w.BaseStream, Codes, Table);
    }

    internal static E8BoxQuantizedMatrix ReadBody(BinaryReader r, int rows, int cols, int np, RotationKind rot, ulong seed, bool centered)
    {
        if (centered || np % 8 != 0 || np < rows || np - rows >= 8) throw new InvalidDataException("Invalid e8 box shape.");
        var (codes, table) = E8BoxFormat.Read(r.BaseStream);
        if (codes.Rows != cols || codes.Cols != np) throw new InvalidDataException($"E8 box codes are {codes.Rows}×{codes.Cols}, the header says {cols} columns of {np}.");
        return new E8BoxQuantizedMatrix(rows, cols, np, rot, seed, codes, table, "e8");
    }
}
