namespace Gosset.Lattices;

/// <summary>
/// The checkerboard lattice Dₙ = {x ∈ ℤⁿ : Σx even}. Closest point after Conway &amp; Sloane:
/// round every coordinate; if the sum is odd, re-round the coordinate with the largest rounding
/// error the other way.
/// </summary>
/// <remarks>
/// Tie rules depend only on the rounding errors (round half up; the first of equal largest errors;
/// a zero error re-rounds down), so the quantizer commutes with translations by Dₙ points. The
/// Voronoi code relies on that property to decode boundary points exactly.
/// </remarks>
public static class DnLattice
{
    /// <summary>Writes the closest point of Dₙ to <paramref name="x"/> into <paramref name="y"/>.</summary>
    public static void Closest(ReadOnlySpan<double> x, Span<double> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("Output is shorter than input.", nameof(y));
        if (x.Length == 0) return;
        double sum = 0;
        int worst = 0; double worstAbs = -1;
        for (int i = 0; i < x.Length; i++)
        {
            double r = Math.Floor(x[i] + 0.5);
            y[i] = r;
            sum += r;
            double a = Math.Abs(x[i] - r);
            if (a > worstAbs) { worstAbs = a; worst = i; }
        }
        if (Math.IEEERemainder(sum, 2) != 0)
            y[worst] += x[worst] - y[worst] > 0 ? 1 : -1;
    }

    /// <summary>
    /// Exact closest point of Dₙ to z / m for integer z and m &gt; 0, in integer arithmetic.
    /// Writes the point into <paramref name="r"/> and returns the squared distance times m².
    /// </summary>
    public static long ClosestExact(ReadOnlySpan<int> z, int m, Span<int> r)
    {
        if (m <= 0) throw new ArgumentOutOfRangeException(nameof(m));
        long sum = 0;
        int worst = 0; long worstAbs = -1; long worstErr = 0;
        long dist = 0;
        for (int i = 0; i < z.Length; i++)
        {
            // round half up: floor((2z + m) / 2m), error e = z − m·r in [−m/2, m/2)
            long ri = FloorDiv(2L * z[i] + m, 2L * m);
            long e = z[i] - m * ri;
            r[i] = (int)ri;
            sum += ri;
            dist += e * e;
            long a = Math.Abs(e);
            if (a > worstAbs) { worstAbs = a; worst = i; worstErr = e; }
        }
        if ((sum & 1) != 0)
        {
            int step = worstErr > 0 ? 1 : -1;
            long e2 = worstErr - (long)m * step;
            dist += e2 * e2 - worstErr * worstErr;
            r[worst] += step;
        }
        return dist;
    }

    internal static long FloorDiv(long a, long b)
    {
        long q = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
        return q;
    }
}
