using System.Numerics.Tensors;

namespace Gosset.Matrix;

/// <summary>
/// Estimates AᵀB from two independently quantized matrices: Ĉ = ẐAᵀ·ẐB + n·μA·μBᵀ, where Ẑ are
/// the decoded columns in the shared rotated domain (the rotation cancels in inner products) and
/// the product of the column means is added back exactly (centred columns make the cross terms
/// vanish). No further scaling: each decoded column already carries its least-squares gain.
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
        var c = new DenseMatrix(a.Cols, b.Cols);
        Parallel.For(0, b.Cols, j =>
        {
            var bj = zb.Column(j);
            float mb = b.Mean(j);
            for (int i = 0; i < a.Cols; i++)
                c[i, j] = TensorPrimitives.Dot(za.Column(i), bj) + (float)((double)n * a.Mean(i) * mb);
        });
        return c;
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
