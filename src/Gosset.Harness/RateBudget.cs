using Gosset.Matrix;

namespace Gosset.Harness;

/// <summary>
/// The one meaning of a bit budget (<c>--bits R</c>) across the commands: among a method's
/// configurations, the one whose stored rate — every bit of the file, side information included,
/// over all the matrices coded together — is the largest at most R + <see cref="Allowance"/>.
/// The allowance is the side information of the usual "4-bit" formats (INT4 with one fp16 step per
/// 64 entries stores 4.25 bits/entry), so <c>--method int --bits 4</c> is INT4 wherever its steps
/// fit, and E8 at <c>--bits 4</c> stores at most 4.25 bits/entry.
/// </summary>
public static class RateBudget
{
    /// <summary>Bits per entry allowed above the asked rate for side information.</summary>
    public const double Allowance = 0.25;

    /// <summary>Side information above this share of the stored rate deserves a warning.</summary>
    public const double SideShareWarning = 0.10;

    /// <summary>The largest stored rate a budget of <paramref name="bits"/> allows.</summary>
    public static double Limit(double bits) => bits + Allowance;

    /// <summary>
    /// Encodes every matrix with <paramref name="method"/> at the configuration the budget picks
    /// (the same configuration for all, as a product needs) and returns the codes and their joint
    /// rate. When no configuration fits — side information alone exceeds the budget, as for a
    /// 37×5 matrix — the configuration for the nominal rate is used and <c>WithinBudget</c> is false
    /// (the CLI then warns).
    /// </summary>
    /// <exception cref="GossetException">The budget is out of range or the method has no configuration near it.</exception>
    public static (QuantizedMatrix[] Codes, double BitsPerEntry, bool WithinBudget) Encode(MatrixMethod method, IReadOnlyList<DenseMatrix> matrices, double bits, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(matrices);
        if (matrices.Count == 0) throw new ArgumentException("No matrix to encode.", nameof(matrices));
        if (!(bits >= 0.25 && bits <= 8.5)) throw new GossetException($"--bits {bits} is out of range (0.25 to 8.5).");
        long entries = matrices.Sum(m => (long)m.Rows * m.Cols);
        string? last = null;
        QuantizedMatrix[] EncodeAll(double t, QuantizedMatrix? first)
        {
            var codes = new QuantizedMatrix[matrices.Count];
            for (int i = 0; i < codes.Length; i++) codes[i] = i == 0 && first is not null ? first : method.Encode(matrices[i], t, seed);
            return codes;
        }
        double Rate(QuantizedMatrix[] codes) => (double)codes.Sum(c => c.TotalBits) / entries;
        // Methods map a target rate to a configuration, and the stored rate grows with the target:
        // walk the targets down and keep the first configuration that fits.
        for (double t = Math.Min(9, Limit(bits) + 0.25); t >= Math.Max(0.05, bits - 3); t -= 0.05)
        {
            if (!method.Supports(t)) continue;
            var first = method.Encode(matrices[0], t, seed);
            string config = first.Describe();
            if (config == last) continue;
            last = config;
            var codes = EncodeAll(t, first);
            double rate = Rate(codes);
            if (rate <= Limit(bits) + 1e-12) return (codes, rate, true);
        }
        if (!method.Supports(bits))
            throw new GossetException($"No {method.Name} configuration stores these matrices in {bits} + {Allowance} bits/entry.");
        var nominal = EncodeAll(bits, null);
        return (nominal, Rate(nominal), false);
    }

    /// <summary>
    /// Stored bits that are not the codes of the entries (header, means, gains, scales, steps,
    /// padding), or null for a format that does not separate them.
    /// </summary>
    public static long? SideInformationBits(QuantizedMatrix q) => q switch
    {
        E8QuantizedMatrix e => q.TotalBits - 8L * e.PayloadBytes + PaddingBits(e),
        IntQuantizedMatrix i => q.TotalBits - (long)i.Quantizer.Bits * q.Rows * q.Cols,
        _ => null,
    };

    // Codes of the zero padding up to a multiple of 8 are paid for but carry no entry.
    private static long PaddingBits(E8QuantizedMatrix e)
        => e.RotatedLength == e.Rows ? 0 : (long)Math.Round(8.0 * e.PayloadBytes * (e.RotatedLength - e.Rows) / e.RotatedLength);

    /// <summary>A one-line warning when side information is more than <see cref="SideShareWarning"/> of the stored rate, else null.</summary>
    public static string? SideInformationWarning(IEnumerable<QuantizedMatrix> codes)
    {
        long side = 0, total = 0, entries = 0;
        foreach (var q in codes)
        {
            if (SideInformationBits(q) is not { } s) return null;
            side += s; total += q.TotalBits; entries += (long)q.Rows * q.Cols;
        }
        if (total == 0 || side <= SideShareWarning * total) return null;
        return FormattableString.Invariant(
            $"side information is {100.0 * side / total:F0} % of the stored {(double)total / entries:F2} bits/entry (the matrix is small for this method; the codes themselves get {(double)(total - side) / entries:F2})");
    }
}
