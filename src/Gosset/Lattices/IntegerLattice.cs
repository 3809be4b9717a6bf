namespace Gosset.Lattices;

/// <summary>The integer lattice ℤⁿ: closest point is coordinate-wise rounding (ties round up).</summary>
public static class IntegerLattice
{
    /// <summary>Writes the closest point of ℤⁿ to <paramref name="x"/> into <paramref name="y"/>.</summary>
    /// <remarks>Ties (x = k + ½) round up, so the quantizer commutes with integer translations.</remarks>
    public static void Closest(ReadOnlySpan<double> x, Span<double> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("Output is shorter than input.", nameof(y));
        for (int i = 0; i < x.Length; i++) y[i] = Math.Floor(x[i] + 0.5);
    }
}
