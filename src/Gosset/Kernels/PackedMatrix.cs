namespace Gosset.Kernels;

/// <summary>
/// A weight matrix W [rows = outputs][cols = inputs] in one stored format, multiplied by that format's own kernel: the one
/// matrix type the LLM engine runs. The kernel formats are <see cref="PackedE8Matrix"/> (the E8 box code, also what a
/// <c>.gq</c> of method <c>e8</c> multiplies with), <see cref="PackedInt8Matrix"/> and the INT4 comparison format
/// <see cref="PackedInt4Matrix"/>; the engine adds float, 16-bit and
/// codec-row formats. A format without a kernel of its own multiplies by decoding each row once (<see cref="Multiply"/>).
/// </summary>
public abstract class PackedMatrix
{
    /// <summary>Output dimension (rows of W).</summary>
    public abstract int Rows { get; }

    /// <summary>Input dimension (columns of W).</summary>
    public abstract int Cols { get; }

    /// <summary>Exact stored bits of the whole matrix in the form it is saved in, side information included.</summary>
    public abstract long StoredBits { get; }

    /// <summary>Row <paramref name="r"/> (Cols values): a view of stored floats, or decoded into <paramref name="scratch"/>.</summary>
    /// <param name="r">Row index, 0 ≤ r &lt; <see cref="Rows"/>.</param>
    /// <param name="scratch">At least <see cref="Cols"/> floats the row may be decoded into.</param>
    /// <exception cref="ArgumentOutOfRangeException">r is outside the matrix.</exception>
    /// <exception cref="ArgumentException">scratch is shorter than a row.</exception>
    public abstract ReadOnlySpan<float> Row(int r, Span<float> scratch);

    /// <summary>
    /// y[t, :] = W·x[t, :] for t &lt; <paramref name="batch"/> (x is [batch][Cols], y is [batch][Rows], row-major) on the
    /// format's kernel. This default decodes each row once (the kernels' row threading) and multiplies it with every vector.
    /// </summary>
    /// <param name="x">Activations, at least batch·Cols values.</param>
    /// <param name="y">Outputs, at least batch·Rows values.</param>
    /// <param name="batch">Number of vectors (≥ 1).</param>
    /// <param name="activations">How the kernel treats the activations; only the E8 and INT4 kernel formats take other than <see cref="ActivationMode.Float32"/>.</param>
    /// <param name="threads">Worker count (0: all cores; 1: the calling thread).</param>
    /// <exception cref="ArgumentException">x or y is too short, or quantized activations for a format whose kernel takes floats.</exception>
    public virtual unsafe void Multiply(ReadOnlySpan<float> x, Span<float> y, int batch, ActivationMode activations, int threads)
    {
        RequireFloat(activations);
        CheckLengths(x, y, batch);
        int width = Cols, outDim = Rows;
        fixed (float* xp = x, yp = y)
        {
            float* xs = xp, ys = yp; // fixed locals cannot be captured
            RowParallel.For(outDim, threads, (r0, r1) =>
            {
                float[] scratch = System.Buffers.ArrayPool<float>.Shared.Rent(width);
                try
                {
                    for (int r = r0; r < r1; r++)
                    {
                        var row = Row(r, scratch);
                        for (int t = 0; t < batch; t++)
                            ys[(long)t * outDim + r] = System.Numerics.Tensors.TensorPrimitives.Dot(row, new ReadOnlySpan<float>(xs + (long)t * width, width));
                    }
                }
                finally { System.Buffers.ArrayPool<float>.Shared.Return(scratch); }
            });
        }
    }

    /// <summary>Throws unless the activations stay float (formats whose kernels have no quantized-activation mode).</summary>
    /// <exception cref="ArgumentException">Any other mode.</exception>
    protected void RequireFloat(ActivationMode activations)
    {
        if (activations != ActivationMode.Float32) throw new ArgumentException($"{GetType().Name} multiplies float activations only, not {activations}.", nameof(activations));
    }

    /// <summary>Throws unless x holds batch·Cols values and y batch·Rows.</summary>
    /// <exception cref="ArgumentException">A span is too short or batch is not positive.</exception>
    protected void CheckLengths(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int batch)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        if (x.Length < (long)batch * Cols) throw new ArgumentException($"x holds {x.Length} values, expected batch·cols = {(long)batch * Cols}.", nameof(x));
        if (y.Length < (long)batch * Rows) throw new ArgumentException($"y holds {y.Length} values, expected batch·rows = {(long)batch * Rows}.", nameof(y));
    }
}
