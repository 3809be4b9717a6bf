namespace Gosset.Matrix;

/// <summary>
/// A dense float32 matrix stored column-major: entry (i, j) is <c>Data[j * Rows + i]</c>, so each
/// column is one contiguous run of <see cref="Rows"/> values. In Gosset a column is the length-n
/// vector that gets quantized (A ∈ ℝ^{n×a} has a columns of length n).
/// </summary>
/// <remarks>
/// The shape is immutable; the entries are not copied on construction and may be written through
/// <see cref="Data"/>, <see cref="Column"/> or the indexer. The type does no arithmetic beyond what
/// is needed to move data in and out; it does not reject NaN/Inf (see <see cref="ThrowIfNotFinite"/>).
/// </remarks>
public sealed class DenseMatrix
{
    /// <summary>Number of rows (the length of each column).</summary>
    public int Rows { get; }

    /// <summary>Number of columns.</summary>
    public int Cols { get; }

    /// <summary>The entries, column by column (length <c>Rows * Cols</c>).</summary>
    public float[] Data { get; }

    /// <summary>Creates a zero matrix of the given shape.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A dimension is negative or the size overflows.</exception>
    public DenseMatrix(int rows, int cols) : this(rows, cols, new float[CheckedSize(rows, cols)]) { }

    /// <summary>Wraps existing column-major data (not copied).</summary>
    /// <exception cref="ArgumentException"><paramref name="data"/> does not have <c>rows * cols</c> entries.</exception>
    public DenseMatrix(int rows, int cols, float[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        long size = CheckedSize(rows, cols);
        if (data.Length != size)
            throw new ArgumentException($"Data has {data.Length} entries, a {rows}×{cols} matrix needs {size}.", nameof(data));
        Rows = rows;
        Cols = cols;
        Data = data;
    }

    /// <summary>Builds a matrix from row-major data (copied and transposed into column-major order).</summary>
    public static DenseMatrix FromRowMajor(int rows, int cols, ReadOnlySpan<float> rowMajor)
    {
        var m = new DenseMatrix(rows, cols);
        if (rowMajor.Length != m.Data.Length)
            throw new ArgumentException($"Data has {rowMajor.Length} entries, a {rows}×{cols} matrix needs {m.Data.Length}.", nameof(rowMajor));
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                m.Data[j * rows + i] = rowMajor[i * cols + j];
        return m;
    }

    /// <summary>Entry in row <paramref name="i"/>, column <paramref name="j"/>.</summary>
    public float this[int i, int j]
    {
        get => Data[Index(i, j)];
        set => Data[Index(i, j)] = value;
    }

    /// <summary>Column <paramref name="j"/> as a span of length <see cref="Rows"/> over <see cref="Data"/>.</summary>
    public Span<float> Column(int j)
    {
        if ((uint)j >= (uint)Cols) throw new ArgumentOutOfRangeException(nameof(j), $"Column {j} is outside 0..{Cols - 1}.");
        return Data.AsSpan(j * Rows, Rows);
    }

    /// <summary>The entries copied into row-major order (row by row).</summary>
    public float[] ToRowMajor()
    {
        var r = new float[Data.Length];
        for (int j = 0; j < Cols; j++)
            for (int i = 0; i < Rows; i++)
                r[i * Cols + j] = Data[j * Rows + i];
        return r;
    }

    /// <summary>
    /// Throws <see cref="GossetException"/> naming <paramref name="what"/> and the first
    /// offending position if any entry is NaN or ±Inf.
    /// </summary>
    public void ThrowIfNotFinite(string what)
    {
        for (int k = 0; k < Data.Length; k++)
        {
            if (!float.IsFinite(Data[k]))
                throw new GossetException($"{what} contains {Data[k]} at row {k % Math.Max(Rows, 1)}, column {k / Math.Max(Rows, 1)}; only finite values can be quantized.");
        }
    }

    /// <summary>Squared Frobenius norm (accumulated in double).</summary>
    public double FrobeniusNorm2()
    {
        double s = 0;
        foreach (float v in Data) s += (double)v * v;
        return s;
    }

    private int Index(int i, int j)
    {
        if ((uint)i >= (uint)Rows || (uint)j >= (uint)Cols)
            throw new ArgumentOutOfRangeException(nameof(i), $"Entry ({i}, {j}) is outside a {Rows}×{Cols} matrix.");
        return j * Rows + i;
    }

    private static int CheckedSize(int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        long size = (long)rows * cols;
        if (size > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(rows), $"A {rows}×{cols} matrix is too large.");
        return (int)size;
    }
}
