namespace Gosset.Matrix;

/// <summary>Error measures of a product estimate Ĉ ≈ AᵀB.</summary>
public sealed record ProductError
{
    /// <summary>‖AᵀB − Ĉ‖²_F · n / (‖Ā‖²_F·‖B̄‖²_F), Ā, B̄ the column-centred factors; equals D for iid N(0,1).</summary>
    public required double Distortion { get; init; }
    /// <summary>‖AᵀB − Ĉ‖_F / ‖AᵀB‖_F.</summary>
    public required double RelativeError { get; init; }
    /// <summary>‖AᵀB − Ĉ‖_F / (‖A‖_F‖B‖_F/√n), the normalisation of the universal guarantee.</summary>
    public required double FrobeniusNormalizedError { get; init; }

    /// <summary>Computes the error measures of <paramref name="estimate"/> against the exact product.</summary>
    public static ProductError Measure(DenseMatrix a, DenseMatrix b, DenseMatrix estimate)
    {
        var exact = ProductEstimator.ExactProduct(a, b);
        double err = 0, norm = 0;
        for (int j = 0; j < b.Cols; j++)
            for (int i = 0; i < a.Cols; i++)
            {
                double e = exact[(long)j * a.Cols + i];
                double d = e - estimate[i, j];
                err += d * d; norm += e * e;
            }
        double ca = CenteredNorm2(a), cb = CenteredNorm2(b);
        int n = a.Rows;
        return new ProductError
        {
            Distortion = ca > 0 && cb > 0 ? err * n / (ca * cb) : double.NaN,
            RelativeError = norm > 0 ? Math.Sqrt(err / norm) : double.NaN,
            FrobeniusNormalizedError = Math.Sqrt(err) / (Math.Sqrt(a.FrobeniusNorm2() * b.FrobeniusNorm2() / n)),
        };
    }

    /// <summary>‖X̄‖²_F of the column-centred matrix.</summary>
    public static double CenteredNorm2(DenseMatrix m)
    {
        double total = 0;
        for (int j = 0; j < m.Cols; j++)
        {
            var c = m.Column(j);
            double s = 0, s2 = 0;
            foreach (float v in c) { s += v; }
            double mu = s / m.Rows;
            foreach (float v in c) { double d = v - mu; s2 += d * d; }
            total += s2;
        }
        return total;
    }

    /// <summary>‖X − X̂‖²_F / ‖X̄‖²_F: per-entry MSE relative to the centred energy (the per-entry MSE for unit-variance data).</summary>
    public static double NormalizedMse(DenseMatrix x, DenseMatrix xhat)
    {
        double e = 0;
        for (long k = 0; k < x.Data.LongLength; k++) { double d = x.Data[k] - xhat.Data[k]; e += d * d; }
        double c = CenteredNorm2(x);
        return c > 0 ? e / c : (e == 0 ? 0 : double.PositiveInfinity);
    }
}
