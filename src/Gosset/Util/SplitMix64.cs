namespace Gosset.Util;

/// <summary>
/// A small, fully specified pseudo-random generator (SplitMix64). Quantized files store seeds, and
/// decoders regenerate rotations and dithers from them, so the sequence must never depend on the
/// runtime's <see cref="Random"/> implementation.
/// </summary>
public struct SplitMix64
{
    private ulong _state;

    /// <summary>Creates a generator from a seed.</summary>
    public SplitMix64(ulong seed) => _state = seed;

    /// <summary>Creates a generator for a sub-stream identified by (seed, a, b).</summary>
    public static SplitMix64 ForStream(ulong seed, ulong a, ulong b = 0)
    {
        var g = new SplitMix64(seed ^ 0x6A09E667F3BCC909UL);
        ulong s = g.NextUInt64() ^ (a * 0x9E3779B97F4A7C15UL);
        g = new SplitMix64(s);
        s = g.NextUInt64() ^ (b * 0xC2B2AE3D27D4EB4FUL);
        return new SplitMix64(s);
    }

    /// <summary>Next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Random sign ±1.</summary>
    public float NextSign() => (NextUInt64() & 1) == 0 ? 1f : -1f;

    /// <summary>Standard normal sample (Box–Muller, one value per call).</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(); // (0, 1]
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
