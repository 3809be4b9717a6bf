using Gosset.Lattices;

namespace Gosset.Tests.Lattices;

public class E8LatticeTests
{
    // Independent reference: the closest point of D8 + s·𝟙 lies in the box {⌊x−s⌋, ⌊x−s⌋+1}⁸ + s,
    // so scanning those 2⁸ points (both cosets) finds the true minimum distance.
    internal static double BruteForceDistance2(ReadOnlySpan<double> x)
    {
        double best = double.MaxValue;
        foreach (double s in new[] { 0.0, 0.5 })
        {
            for (int mask = 0; mask < 256; mask++)
            {
                double d = 0; long sum = 0;
                for (int i = 0; i < 8; i++)
                {
                    double p = Math.Floor(x[i] - s) + ((mask >> i) & 1);
                    sum += (long)p;
                    d += (x[i] - s - p) * (x[i] - s - p);
                }
                if ((sum & 1) == 0 && d < best) best = d;
            }
        }
        return best;
    }

    [Fact]
    public void Generator_has_det_one_even_gram_and_240_minimal_vectors()
    {
        var g = E8Lattice.Generator();
        double[,] m = (double[,])g.Clone();
        Assert.Equal(1.0, Determinant(m), 12);
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++)
            {
                double gram = 0;
                for (int k = 0; k < 8; k++) gram += g[k, i] * g[k, j];
                Assert.Equal(Math.Round(gram), gram, 12);
                if (i == j) Assert.True(((long)gram & 1) == 0, "Gram diagonal must be even");
            }
        // Count norm-2 vectors among doubled-coordinate points with entries in [-2, 2].
        int count = 0;
        Span<int> v = stackalloc int[8];
        for (int code = 0; code < 390625; code++)
        {
            int c = code, norm = 0;
            for (int i = 0; i < 8; i++) { v[i] = c % 5 - 2; c /= 5; norm += v[i] * v[i]; }
            if (norm == 8 && E8Lattice.Contains(v)) count++; // ‖v/2‖² = 2
        }
        Assert.Equal(240, count);
    }

    [Fact]
    public void Digits_map_is_inverse_of_generator()
    {
        var rng = new Random(1);
        Span<int> c = stackalloc int[8];
        Span<int> v = stackalloc int[8];
        Span<int> c2 = stackalloc int[8];
        var g = E8Lattice.Generator();
        for (int t = 0; t < 2000; t++)
        {
            for (int i = 0; i < 8; i++) c[i] = rng.Next(-50, 50);
            E8Lattice.FromDigits(c, v);
            Assert.True(E8Lattice.Contains(v));
            for (int i = 0; i < 8; i++)
            {
                double y = 0;
                for (int j = 0; j < 8; j++) y += g[i, j] * c[j];
                Assert.Equal(2 * y, v[i]);
            }
            E8Lattice.ToDigits(v, c2);
            Assert.True(c.SequenceEqual(c2));
        }
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(3.0)]
    [InlineData(40.0)]
    public void Closest_matches_brute_force(double spread)
    {
        var rng = new Random(7);
        Span<float> x = stackalloc float[8];
        Span<double> xd = stackalloc double[8];
        Span<int> v = stackalloc int[8];
        for (int t = 0; t < 3000; t++)
        {
            for (int i = 0; i < 8; i++) { x[i] = (float)((rng.NextDouble() * 2 - 1) * spread); xd[i] = x[i]; }
            float d = E8Lattice.Closest(x, v);
            Assert.True(E8Lattice.Contains(v));
            double actual = 0;
            for (int i = 0; i < 8; i++) actual += (xd[i] - 0.5 * v[i]) * (xd[i] - 0.5 * v[i]);
            Assert.True(Math.Abs(BruteForceDistance2(xd) - actual) < 1e-9 * (1 + actual));
            Assert.True(Math.Abs(actual - d) < 1e-3 * (1 + actual));
        }
    }

    [Fact]
    public void Closest_on_ties_still_returns_a_nearest_point()
    {
        // Points on Voronoi boundaries: half-integers and quarter-integers.
        var rng = new Random(3);
        Span<float> x = stackalloc float[8];
        Span<double> xd = stackalloc double[8];
        Span<int> v = stackalloc int[8];
        for (int t = 0; t < 3000; t++)
        {
            for (int i = 0; i < 8; i++) { x[i] = rng.Next(-12, 12) * 0.25f; xd[i] = x[i]; }
            E8Lattice.Closest(x, v);
            double actual = 0;
            for (int i = 0; i < 8; i++) actual += (xd[i] - 0.5 * v[i]) * (xd[i] - 0.5 * v[i]);
            Assert.Equal(BruteForceDistance2(xd), actual, 9);
        }
    }

    [Fact]
    public void Coarse_quantizer_matches_brute_force_and_commutes_with_translation()
    {
        var rng = new Random(11);
        Span<int> v = stackalloc int[8];
        Span<int> w = stackalloc int[8];
        Span<int> shifted = stackalloc int[8];
        Span<int> w2 = stackalloc int[8];
        Span<int> u = stackalloc int[8];
        Span<int> c = stackalloc int[8];
        Span<double> t = stackalloc double[8];
        foreach (int q in new[] { 2, 3, 4, 5, 7, 8, 14, 16, 31 })
        {
            for (int trial = 0; trial < 400; trial++)
            {
                // random E8 point (doubled), often on boundaries for small q
                for (int i = 0; i < 8; i++) c[i] = rng.Next(-3 * q, 3 * q);
                E8Lattice.FromDigits(c, v);
                E8Lattice.ClosestCoarse(v, q, w);
                Assert.True(E8Lattice.Contains(w));
                for (int i = 0; i < 8; i++) t[i] = v[i] / (2.0 * q);
                double d = 0;
                for (int i = 0; i < 8; i++) d += (t[i] - 0.5 * w[i]) * (t[i] - 0.5 * w[i]);
                Assert.Equal(BruteForceDistance2(t), d, 9);
                // translation by a coarse lattice point moves the answer by the same point
                for (int i = 0; i < 8; i++) c[i] = rng.Next(-4, 4);
                E8Lattice.FromDigits(c, u);
                for (int i = 0; i < 8; i++) shifted[i] = v[i] + q * u[i];
                E8Lattice.ClosestCoarse(shifted, q, w2);
                for (int i = 0; i < 8; i++) Assert.Equal(w[i] + u[i], w2[i]);
            }
        }
    }

    [Fact]
    public void Dn_exact_and_float_agree_with_brute_force()
    {
        var rng = new Random(5);
        double[] x = new double[6], y = new double[6];
        int[] z = new int[6], r = new int[6];
        for (int t = 0; t < 2000; t++)
        {
            int m = rng.Next(1, 9);
            for (int i = 0; i < 6; i++) { z[i] = rng.Next(-40, 40); x[i] = z[i] / (double)m; }
            long d2 = DnLattice.ClosestExact(z, m, r);
            DnLattice.Closest(x, y);
            double best = double.MaxValue;
            for (int mask = 0; mask < 64; mask++)
            {
                double d = 0; long s = 0;
                for (int i = 0; i < 6; i++) { double p = Math.Floor(x[i]) + ((mask >> i) & 1); s += (long)p; d += (x[i] - p) * (x[i] - p); }
                if ((s & 1) == 0) best = Math.Min(best, d);
            }
            double dy = 0, dr = 0; long sy = 0, sr = 0;
            for (int i = 0; i < 6; i++) { dy += (x[i] - y[i]) * (x[i] - y[i]); dr += (x[i] - r[i]) * (x[i] - r[i]); sy += (long)y[i]; sr += r[i]; }
            Assert.Equal(best, dy, 9);
            Assert.Equal(best, dr, 9);
            Assert.Equal(best * m * m, d2, 6);
            Assert.Equal(0, sy & 1); Assert.Equal(0, sr & 1);
        }
    }

    [Fact]
    public void Integer_lattice_rounds_half_up()
    {
        double[] y = new double[3];
        IntegerLattice.Closest(new[] { 0.5, -0.5, 1.49 }, y);
        Assert.Equal(new[] { 1.0, 0.0, 1.0 }, y);
    }

    private static double Determinant(double[,] a)
    {
        int n = a.GetLength(0); double det = 1;
        for (int c = 0; c < n; c++)
        {
            int p = c;
            for (int r = c + 1; r < n; r++) if (Math.Abs(a[r, c]) > Math.Abs(a[p, c])) p = r;
            if (a[p, c] == 0) return 0;
            if (p != c) { for (int k = 0; k < n; k++) (a[p, k], a[c, k]) = (a[c, k], a[p, k]); det = -det; }
            det *= a[c, c];
            for (int r = c + 1; r < n; r++) { double f = a[r, c] / a[c, c]; for (int k = c; k < n; k++) a[r, k] -= f * a[c, k]; }
        }
        return det;
    }
}
