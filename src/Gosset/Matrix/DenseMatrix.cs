namespace Gosset.Matrix;

/// <summary>
/// A float32 matrix stored column by column (column-major). Columns are the length-n vectors that
/// get quantized; a product AᵀB pairs columns of A with columns of B.
/// </summary>
public sealed class DenseMatrix
{
    /// <summary>Creates a zero matrix.</summary>
    public DenseMatrix(int rows, int cols)
    {
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(rows < 0 ? nameof(rows) : nameof(cols));
        Rows = rows; Cols = cols;
        Data = new float[checked(rows * cols)];
    }

    /// <summary>Wraps column-major data (not copied).</summary>
    public DenseMatrix(int rows, int cols, float[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(rows < 0 ? nameof(rows) : nameof(cols));
        if (data.Length != (long)rows * cols) throw new ArgumentException($"Data has {data.Length} values, expected {rows}×{cols}.", nameof(data));
        Rows = rows; Cols = cols; Data = data;
    }

    /// <summary>Number of rows n.</summary>
    public int Rows { get; }
    /// <summary>Number of columns.</summary>
    public int Cols { get; }
    /// <summary>Values, column by column: element (i, j) is at j·Rows + i.</summary>
    public float[] Data { get; }

    /// <summary>Element (i, j).</summary>
    public float this[int i, int j]
    {
        get => Data[j * Rows + i];
        set => Data[j * Rows + i] = value;
    }

    /// <summary>Column j as a span.</summary>
    public Span<float> Column(int j) => Data.AsSpan(j * Rows, Rows);

    /// <summary>Builds a matrix from a row-major array [rows, cols].</summary>
    public static DenseMatrix FromRowMajor(int rows, int cols, ReadOnlySpan<float> rowMajor)
    {
        var m = new DenseMatrix(rows, cols);
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) m.Data[j * rows + i] = rowMajor[i * cols + j];
        return m;
    }

    /// <summary>Throws a <see cref="GossetException"/> naming <paramref name="what"/> if any value is NaN or infinite.</summary>
    public void ThrowIfNotFinite(string what)
    {
        for (int k = 0; k < Data.Length; k++)
            if (!float.IsFinite(Data[k]))
                throw new GossetException($"{what} contains {(float.IsNaN(Data[k]) ? "NaN" : "Inf")} at row {k % Math.Max(Rows, 1)}, column {k / Math.Max(Rows, 1)}.");
    }

    /// <summary>Squared Frobenius norm (accumulated in double).</summary>
    public double FrobeniusNorm2()
    {
        double s = 0;
        foreach (float v in Data) s += (double)v * v;
        return s;
    }
}
