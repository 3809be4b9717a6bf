using System.Runtime.CompilerServices;

namespace Gosset.Lattices;

/// <summary>
/// The Gosset lattice E8 = D8 ∪ (D8 + ½·𝟙). Points are handled in <em>doubled coordinates</em>
/// v = 2λ ∈ ℤ⁸ (all coordinates even or all odd, Σv ≡ 0 mod 4), so every lattice computation
/// downstream of the fine quantizer is exact integer arithmetic.
/// </summary>
/// <remarks>
/// Generator (columns are basis vectors, det = 1): g₁ = 2e₁, gᵢ = eᵢ − eᵢ₋₁ for i = 2..7,
/// g₈ = ½·𝟙. <see cref="ToDigits"/> and <see cref="FromDigits"/> apply G⁻¹ and G to doubled
/// coordinates by back-substitution, with no division that could round.
/// </remarks>
public static class E8Lattice
{
    /// <summary>Dimension of E8.</summary>
    public const int Dimension = 8;

    /// <summary>Normalised second moment G(E8) (Conway &amp; Sloane, Table 2.3).</summary>
    public const double NormalizedSecondMoment = 0.0716821;

    /// <summary>The generator matrix G as rows [i][j] (column j is the j-th basis vector).</summary>
    public static double[,] Generator()
    {
        var g = new double[8, 8];
        g[0, 0] = 2;
        for (int j = 1; j < 7; j++) { g[j, j] = 1; g[j - 1, j] = -1; }
        for (int i = 0; i < 8; i++) g[i, 7] = 0.5;
        return g;
    }

    /// <summary>
    /// Closest E8 point to <paramref name="x"/> (8 values), written as doubled coordinates.
    /// Returns the squared distance ‖x − v/2‖².
    /// </summary>
    /// <remarks>
    /// Conway–Sloane: the closest D8 point to x and the closest point of D8 + ½ (the D8 point
    /// closest to x − ½, shifted back); keep the nearer. Exact ties between the two cosets go to
    /// the candidate whose error vector x − λ is lexicographically larger, a rule that depends on
    /// the error only and so commutes with lattice translations.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Closest(ReadOnlySpan<float> x, Span<int> v)
    {
        if (x.Length < 8 || v.Length < 8) throw new ArgumentException("E8 works on blocks of 8.");
        Span<int> a = stackalloc int[8];
        Span<int> b = stackalloc int[8];
        float da = ClosestD8Doubled(x, 0f, a);
        float db = ClosestD8Doubled(x, 0.5f, b);
        bool takeB = db < da || (db == da && LexLargerError(x, b, a));
        (takeB ? b : a).CopyTo(v);
        return takeB ? db : da;
    }

    // Closest point of D8 + s·𝟙 to x, written doubled: v = 2(r + s). Returns squared distance.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ClosestD8Doubled(ReadOnlySpan<float> x, float s, Span<int> v)
    {
        int sum = 0, worst = 0;
        float worstAbs = -1f, worstErr = 0f, dist = 0f;
        Span<int> r = stackalloc int[8];
        for (int i = 0; i < 8; i++)
        {
            float t = x[i] - s;
            float ri = MathF.Floor(t + 0.5f);
            float e = t - ri;
            r[i] = (int)ri;
            sum += r[i];
            dist += e * e;
            float ae = MathF.Abs(e);
            if (ae > worstAbs) { worstAbs = ae; worst = i; worstErr = e; }
        }
        if ((sum & 1) != 0)
        {
            int step = worstErr > 0 ? 1 : -1;
            float e2 = worstErr - step;
            dist += e2 * e2 - worstErr * worstErr;
            r[worst] += step;
        }
        int twoS = s == 0f ? 0 : 1;
        for (int i = 0; i < 8; i++) v[i] = 2 * r[i] + twoS;
        return dist;
    }

    private static bool LexLargerError(ReadOnlySpan<float> x, ReadOnlySpan<int> b, ReadOnlySpan<int> a)
    {
        for (int i = 0; i < 8; i++)
        {
            float eb = x[i] - 0.5f * b[i], ea = x[i] - 0.5f * a[i];
            if (eb != ea) return eb > ea;
        }
        return false;
    }

    /// <summary>
    /// Exact closest E8 point to v / (2q) — the coarse quantizer of the Voronoi code qE8 applied to
    /// the doubled-coordinate point v — computed in integer arithmetic. Writes the doubled
    /// coordinates of the E8 point into <paramref name="w"/>.
    /// </summary>
    /// <remarks>
    /// With t = v/q, the target is the point of 2E8 = 2D8 ∪ (2D8 + 𝟙) nearest t: the D8 point
    /// nearest v/(2q) (doubled), or the D8 point nearest (v − q)/(2q) (doubled, plus one). Ties
    /// between the cosets go to the lexicographically larger error v − q·w, as in
    /// <see cref="Closest"/>; every rule depends on the error only, so
    /// Coarse(v + q·u) = Coarse(v) + u for every u ∈ 2E8. This is what makes decoding exact on
    /// the boundary of the coarse cell.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ClosestCoarse(ReadOnlySpan<int> v, int q, Span<int> w)
    {
        Span<int> za = stackalloc int[8];
        Span<int> zb = stackalloc int[8];
        Span<int> ra = stackalloc int[8];
        Span<int> rb = stackalloc int[8];
        for (int i = 0; i < 8; i++) { za[i] = v[i]; zb[i] = v[i] - q; }
        long da = DnLattice.ClosestExact(za, 2 * q, ra);
        long db = DnLattice.ClosestExact(zb, 2 * q, rb);
        bool takeB = db < da;
        if (db == da)
        {
            for (int i = 0; i < 8; i++)
            {
                long ea = v[i] - (long)q * (2 * ra[i]);
                long eb = v[i] - (long)q * (2 * rb[i] + 1);
                if (ea != eb) { takeB = eb > ea; break; }
            }
        }
        for (int i = 0; i < 8; i++) w[i] = takeB ? 2 * rb[i] + 1 : 2 * ra[i];
    }

    /// <summary>
    /// Coordinates c = G⁻¹λ of the E8 point λ = v/2 in the generator basis (integers).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ToDigits(ReadOnlySpan<int> v, Span<int> c)
    {
        int v8 = v[7];
        c[7] = v8;
        c[6] = (v[6] - v8) >> 1;
        for (int i = 5; i >= 1; i--) c[i] = ((v[i] - v8) >> 1) + c[i + 1];
        c[0] = (((v[0] - v8) >> 1) + c[1]) >> 1;
    }

    /// <summary>Doubled coordinates v = 2·G·c of the lattice point with basis coordinates c.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void FromDigits(ReadOnlySpan<int> c, Span<int> v)
    {
        int c8 = c[7];
        v[0] = 4 * c[0] - 2 * c[1] + c8;
        for (int i = 1; i < 6; i++) v[i] = 2 * c[i] - 2 * c[i + 1] + c8;
        v[6] = 2 * c[6] + c8;
        v[7] = c8;
    }

    /// <summary>True when v (doubled coordinates) is a point of E8.</summary>
    public static bool Contains(ReadOnlySpan<int> v)
    {
        int parity = v[0] & 1, sum = 0;
        for (int i = 0; i < 8; i++) { if ((v[i] & 1) != parity) return false; sum += v[i]; }
        return (sum & 3) == 0;
    }
}
