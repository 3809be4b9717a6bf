using Gosset.Matrix;
using Gosset.Theory;

namespace Gosset.Harness;

/// <summary>One row of a rate–distortion run.</summary>
public sealed record RdResult
{
    /// <summary>Method name.</summary>
    public required string Method { get; init; }
    /// <summary>Target rate asked for.</summary>
    public required double TargetRate { get; init; }
    /// <summary>Configuration.</summary>
    public required MethodConfig Config { get; init; }
    /// <summary>Whether the GEMV kernels run this format directly.</summary>
    public bool Kernels { get; init; }
    /// <summary>
    /// Whether the stored rate is within <see cref="TargetRate"/> + <see cref="RateBudget.Allowance"/>, the <c>--bits</c> rule's
    /// limit (a nominal row may exceed it: its target is the method's own configuration knob).
    /// </summary>
    public bool WithinBudget => BitsPerEntry <= RateBudget.Limit(TargetRate) + 1e-12;
    /// <summary>The warning when side information dominates the stored rate (<see cref="RateBudget.SideInformationWarning"/>), or null.</summary>
    public string? SideInformationWarning { get; init; }
    /// <summary>Total stored bits per entry (mean of A and B; side information included).</summary>
    public required double BitsPerEntry { get; init; }
    /// <summary>Bits per entry of A alone.</summary>
    public required double BitsPerEntryA { get; init; }
    /// <summary>Bits per entry of B alone.</summary>
    public required double BitsPerEntryB { get; init; }
    /// <summary>Product error measures.</summary>
    public required ProductError Error { get; init; }
    /// <summary>Γ at the measured rate.</summary>
    public double Gamma => RateDistortion.Gamma(BitsPerEntry);
    /// <summary>Gap to Γ in dB.</summary>
    public double GapDb => RateDistortion.GapDb(Error.Distortion, BitsPerEntry);
    /// <summary>Normalised MSE of A's reconstruction.</summary>
    public required double MseA { get; init; }
    /// <summary>Normalised MSE of B's reconstruction.</summary>
    public required double MseB { get; init; }
}

/// <summary>Runs methods over rates on one pair of matrices: A and B are encoded independently, then AᵀB is estimated.</summary>
public static class RdHarness
{
    /// <summary>Encodes A and B with <paramref name="method"/> at <paramref name="rate"/> and measures the product.</summary>
    public static RdResult Run(DenseMatrix a, DenseMatrix b, MatrixMethod method, double rate, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(method);
        return Finish(a, b, method, rate, method.Encode(a, rate, seed), method.Encode(b, rate, seed));
    }

    private static RdResult Finish(DenseMatrix a, DenseMatrix b, MatrixMethod method, double rate, QuantizedMatrix qa, QuantizedMatrix qb)
    {
        // Per encoded matrix: `e8` outside 2..4 bits stores the Voronoi code, which the kernels do not run.
        bool kernels = qa is E8BoxQuantizedMatrix or BoxQuantizedMatrix && qb is E8BoxQuantizedMatrix or BoxQuantizedMatrix;
        return Measure(a, b, qa, qb, method.Name, rate, method.Describe(qa)) with
        {
            Kernels = kernels, SideInformationWarning = RateBudget.SideInformationWarning([qa, qb]),
        };
    }

    /// <summary>
    /// Encodes A and B at the configuration the <c>--bits</c> rule picks for <paramref name="bits"/> (<see cref="RateBudget"/>:
    /// the largest joint stored rate ≤ R + <see cref="RateBudget.Allowance"/>, the same for both, as <c>matmul --bits</c>
    /// codes them) and measures the product; <see cref="RdResult.WithinBudget"/> is false when no configuration fits
    /// (the configuration for the nominal rate is used then).
    /// </summary>
    /// <exception cref="GossetException">No configuration of the method fits and none exists for the nominal rate.</exception>
    public static RdResult RunBudget(DenseMatrix a, DenseMatrix b, MatrixMethod method, double bits, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(method);
        var (codes, _, _) = RateBudget.Encode(method, [a, b], bits, seed);
        return Finish(a, b, method, bits, codes[0], codes[1]);
    }

    /// <summary>Measures an already encoded pair.</summary>
    public static RdResult Measure(DenseMatrix a, DenseMatrix b, QuantizedMatrix qa, QuantizedMatrix qb, string method, double rate, MethodConfig config)
    {
        var c = ProductEstimator.Estimate(qa, qb);
        long ea = (long)a.Rows * a.Cols, eb = (long)b.Rows * b.Cols;
        return new RdResult
        {
            Method = method,
            TargetRate = rate,
            Config = config,
            BitsPerEntry = (double)(qa.TotalBits + qb.TotalBits) / (ea + eb),
            BitsPerEntryA = qa.BitsPerEntry,
            BitsPerEntryB = qb.BitsPerEntry,
            Error = ProductError.Measure(a, b, c),
            MseA = ProductError.NormalizedMse(a, qa.Dequantize()),
            MseB = ProductError.NormalizedMse(b, qb.Dequantize()),
        };
    }
}
