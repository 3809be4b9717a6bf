using System.Numerics.Tensors;

namespace Gosset.Matrix;

/// <summary>
/// Estimates AᵀB from two independently quantized matrices: Ĉ = ẐAᵀ·ẐB + n·μA·μBᵀ, where Ẑ are
/// the decoded columns in the shared rotated domain (the rotation cancels in inner products) and
/// the product of the column means is added back exactly (centred columns make the cross terms
/// vanish). No further scaling: each decoded column already carries its least-squares gain.
/// When only one factor was centred (e.g. E8 × INT), the cross term is added too: with A centred
/// and B coded whole, AᵀB = ĀᵀB + μA·(1ᵀB), and 1ᵀB̂ = (R·pad(1))ᵀ·ẐB in the rotated domain.
/// </summary>
public static class ProductEstimator
{
    /// <summary>Estimates AᵀB (a×b, returned column-major as a DenseMatrix of a rows, b columns).</summary>
    /// <exception cref="GossetException">The two factors do not share n, the rotation or its seed.</exception>
    public static DenseMatrix Estimate(QuantizedMatrix a, QuantizedMatrix b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Rows != b.Rows) throw new GossetException($"Inner dimensions differ: A has {a.Rows} rows, B has {b.Rows}.");
        if (a.RotatedLength != b.RotatedLength || a.RotationKind != b.RotationKind || (a.RotationKind != Rotations.RotationKind.None && a.RotationSeed != b.RotationSeed))
            throw new GossetException("A and B were not encoded with the same rotation (kind, seed and padded length must match).");
        var za = a.DecodeRotated();
        var zb = b.DecodeRotated();
        return Multiply(za, zb, a, b);
    }

    /// <summary>ẐAᵀ·ẐB plus the exact mean term, from decoded rotated columns.</summary>
    internal static DenseMatrix Multiply(DenseMatrix za, DenseMatrix zb, QuantizedMatrix a, QuantizedMatrix b)
    {
        int n = a.Rows;
        // Mean(j) is 0 for an uncentred factor, so the n·μAμBᵀ term needs both centred; the cross
        // term of a mixed pair needs the column sums of the uncentred factor's decoded columns.
        double[]? sumsB = a.Centered && !b.Centered ? ColumnSums(zb, b) : null;
        double[]? sumsA = b.Centered && !a.Centered ? ColumnSums(za, a) : null;
        var c = new DenseMatrix(a.Cols, b.Cols);
        Parallel.For(0, b.Cols, j =>
        {
            var bj = zb.Column(j);
            float mb = b.Mean(j);
            for (int i = 0; i < a.Cols; i++)
            {
                double cross = (double)n * a.Mean(i) * mb;
                if (sumsB is not null) cross += a.Mean(i) * sumsB[j];
                if (sumsA is not null) cross += sumsA[i] * mb;
                c[i, j] = TensorPrimitives.Dot(za.Column(i), bj) + (float)cross;
            }
        });
        return c;
    }

    /// <summary>1ᵀx̂_j for every decoded column: the rotated all-ones vector (zero on the padding) dotted with z_j.</summary>
    private static double[] ColumnSums(DenseMatrix z, QuantizedMatrix m)
    {
        var ones = new float[m.RotatedLength];
        ones.AsSpan(0, m.Rows).Fill(1f);
        var u = new float[m.RotatedLength];
        m.CreateRotation().Apply(ones, u);
        var sums = new double[z.Cols];
        for (int j = 0; j < z.Cols; j++)
        {
            var col = z.Column(j);
            double s = 0;
            for (int t = 0; t < u.Length; t++) s += (double)u[t] * col[t];
            sums[j] = s;
        }
        return sums;
    }

    /// <summary>Exact AᵀB in double precision (reference for error measurement).</summary>
    public static double[] ExactProduct(DenseMatrix a, DenseMatrix b)
    {
        if (a.Rows != b.Rows) throw new GossetException($"Inner dimensions differ: A has {a.Rows} rows, B has {b.Rows}.");
        var c = new double[(long)a.Cols * b.Cols];
        Parallel.For(0, b.Cols, j =>
        {
            var bj = b.Column(j);
            for (int i = 0; i < a.Cols; i++)
            {
                var ai = a.Column(i);
                double s = 0;
                for (int t = 0; t < ai.Length; t++) s += (double)ai[t] * bj[t];
                c[(long)j * a.Cols + i] = s;
            }
        });
        return c;
    }
}
