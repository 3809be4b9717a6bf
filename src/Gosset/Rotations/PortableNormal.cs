using Gosset.Util;

namespace Gosset.Rotations;

/// <summary>
/// Standard normal draws that are bit-identical on every OS and CPU: the Marsaglia polar method
/// with a natural logarithm written with IEEE basic operations only (+, −, ×, ÷ and √ are
/// correctly rounded everywhere; <see cref="Math.Log(double)"/> and <see cref="Math.Cos"/> come
/// from the platform's libm and may differ in the last bit). Rotations stored as a seed in a file
/// are drawn from here, so a file decodes the same everywhere.
/// </summary>
public static class PortableNormal
{
    private const double Ln2Hi = 6.93147180369123816490e-01; // ln 2 split so e·Ln2Hi is exact for |e| < 2^11
    private const double Ln2Lo = 1.90821492927058770002e-10;
    private const double Sqrt2 = 1.4142135623730951;

    /// <summary>One N(0, 1) sample; consumes two or more 64-bit words of <paramref name="rng"/>.</summary>
    public static double Next(ref SplitMix64 rng)
    {
        while (true)
        {
            // 53-bit uniforms in (−1, 1); reject outside the unit disc and the origin
            double u = 2.0 * rng.NextDouble() - 1.0, v = 2.0 * rng.NextDouble() - 1.0;
            double s = u * u + v * v;
            if (s >= 1.0 || s == 0.0) continue;
            return u * Math.Sqrt(-2.0 * Log(s) / s);
        }
    }

    /// <summary>
    /// Natural logarithm of a positive finite normal double with IEEE basic operations only:
    /// x = 2^e·f with f ∈ [√½, √2), ln f = 2·atanh(t), t = (f − 1)/(f + 1), |t| ≤ 0.172, summed
    /// as a fixed series (relative error below 1e-15; the result is the same on every platform).
    /// </summary>
    public static double Log(double x)
    {
        if (!(x > 0) || !double.IsFinite(x) || !double.IsNormal(x))
            throw new ArgumentOutOfRangeException(nameof(x), x, "PortableNormal.Log needs a positive normal finite value.");
        long bits = BitConverter.DoubleToInt64Bits(x);
        int e = (int)((bits >> 52) & 0x7FF) - 1023;
        double f = BitConverter.Int64BitsToDouble((bits & 0x000FFFFFFFFFFFFFL) | 0x3FF0000000000000L); // [1, 2)
        if (f > Sqrt2) { f *= 0.5; e++; }
        double t = (f - 1.0) / (f + 1.0), t2 = t * t;
        // atanh(t) = t·Σ t^(2k)/(2k+1); |t|² ≤ 0.0295, 13 terms reach 1e-20 relative
        double sum = 0;
        for (int k = 12; k >= 0; k--) sum = sum * t2 + 1.0 / (2 * k + 1);
        return e * Ln2Hi + (2.0 * t * sum + e * Ln2Lo);
    }
}
