namespace Gosset.Kernels;

/// <summary>Float32 rows [rows][cols], row-major: the exact format, multiplied by <see cref="DenseGemv"/>.</summary>
/// <param name="data">The rows (at least rows·cols values; kept, not copied).</param>
/// <param name="rows">Output dimension.</param>
/// <param name="cols">Input dimension.</param>
public sealed class Float32Matrix(float[] data, int rows, int cols) : PackedMatrix
{
    /// <summary>The rows, row-major.</summary>
    public float[] Data { get; } = CheckShape(data, rows, cols);

    /// <inheritdoc/>
    public override int Rows { get; } = rows;

    /// <inheritdoc/>
    public override int Cols { get; } = cols;

    /// <summary>32 bits per entry.</summary>
    public override long StoredBits => 32L * Rows * Cols;

    /// <inheritdoc/>
    public override ReadOnlySpan<float> Row(int r, Span<float> scratch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(r);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(r, Rows);
        return Data.AsSpan((int)((long)r * Cols), Cols);
    }

    /// <inheritdoc/>
    public override void Multiply(ReadOnlySpan<float> x, Span<float> y, int batch, ActivationMode activations, int threads)
    {
        RequireFloat(activations);
        CheckLengths(x, y, batch);
        DenseGemv.Multiply(Data, Rows, Cols, x[..(batch * Cols)], y[..(batch * Rows)], batch, threads);
    }

    private static float[] CheckShape(float[] data, int rows, int cols)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (data.LongLength < (long)rows * cols) throw new ArgumentException($"data holds {data.LongLength} values, expected rows·cols = {(long)rows * cols}.", nameof(data));
        return data;
    }
}
