namespace Gosset.Theory;

/// <summary>
/// The limit of matrix-product quantization for iid Gaussian matrices (Ordentlich &amp; Polyanskiy,
/// "Optimal Quantization for Matrix Multiplication"): no pair of encoders at R bits/entry achieves a
/// normalised distortion D = E‖AᵀB − Ĉ‖²_F/(n·a·b) below Γ(R).
/// </summary>
public static class RateDistortion
{
    /// <summary>φ(R) = 1 − (1 − 2^{−2R})² = 2·2^{−2R} − 2^{−4R}.</summary>
    public static double Phi(double r)
    {
        if (r < 0 || double.IsNaN(r)) throw new ArgumentOutOfRangeException(nameof(r), r, "Rate must be ≥ 0.");
        double t = Math.Pow(2, -2 * r);
        return 2 * t - t * t;
    }

    /// <summary>R* ≈ 0.906, the solution of R = ½·log2(1 + 4R·ln 2): the phase transition.</summary>
    public static double RStar { get; } = SolveRStar();

    /// <summary>Γ(R): φ(R) for R ≥ R*, the tangent 1 − (1 − φ(R*))·R/R* below it (time sharing).</summary>
    public static double Gamma(double r)
    {
        if (r < 0 || double.IsNaN(r)) throw new ArgumentOutOfRangeException(nameof(r), r, "Rate must be ≥ 0.");
        return r >= RStar ? Phi(r) : 1 - (1 - Phi(RStar)) * r / RStar;
    }

    /// <summary>Gap to the limit in dB: 10·log10(D / Γ(R)).</summary>
    public static double GapDb(double distortion, double rate) => 10 * Math.Log10(distortion / Gamma(rate));

    /// <summary>Ratio of two distortions in dB: 10·log10(a / b).</summary>
    public static double Db(double a, double b) => 10 * Math.Log10(a / b);

    private static double SolveRStar()
    {
        // f(R) = ½·log2(1 + 4R ln2) − R is positive on (0, R*) and negative after.
        double lo = 0.5, hi = 2.0;
        for (int i = 0; i < 200; i++)
        {
            double mid = 0.5 * (lo + hi);
            double f = 0.5 * Math.Log2(1 + 4 * mid * Math.Log(2)) - mid;
            if (f > 0) lo = mid; else hi = mid;
        }
        return 0.5 * (lo + hi);
    }
}
