using System.Runtime.CompilerServices;
using Gosset.Lattices;

namespace Gosset.Codes;

/// <summary>
/// The nested-lattice (Voronoi) code E8 / qE8: q⁸ codewords per 8-block, log2 q bits per entry.
/// </summary>
/// <remarks>
/// Encode x with scale β: λ = Q_E8(x/β); digits c = (G⁻¹λ) mod q.
/// Decode: y = G·c; λ̂ = y − q·Q_E8(y/q); x̂ = β·λ̂.
/// λ̂ = λ exactly iff λ is not overloaded (Q_E8(λ/q) = 0). The coarse quantizer is exact integer
/// arithmetic with translation-invariant tie rules (<see cref="E8Lattice.ClosestCoarse"/>), so
/// points on the boundary of the coarse cell decode to themselves.
/// This scalar type is the reference specification for the SIMD kernels.
/// </remarks>
public sealed class VoronoiCode
{
    /// <summary>Smallest supported nesting ratio.</summary>
    public const int MinQ = 2;
    /// <summary>Largest supported nesting ratio (digits fit a byte).</summary>
    public const int MaxQ = 256;

    /// <summary>Creates the code E8/qE8.</summary>
    /// <exception cref="ArgumentOutOfRangeException">q is outside [2, 256].</exception>
    public VoronoiCode(int q)
    {
        if (q < MinQ || q > MaxQ)
            throw new ArgumentOutOfRangeException(nameof(q), q, $"Nesting ratio q must be an integer in [{MinQ}, {MaxQ}].");
        Q = q;
    }

    /// <summary>Nesting ratio q.</summary>
    public int Q { get; }

    /// <summary>Bits per entry of the code alone: log2 q.</summary>
    public double BitsPerEntry => Math.Log2(Q);

    // Values of x/β are clamped so that integer arithmetic cannot overflow on absurd inputs.
    private const float Clamp = 1 << 24;

    /// <summary>
    /// Quantizes x/β (8 values) to the nearest E8 point and writes its doubled coordinates.
    /// An optional dither (in lattice units, 8 values) is added before quantization.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void QuantizeFine(ReadOnlySpan<float> x, float beta, ReadOnlySpan<float> dither, Span<int> v)
    {
        Span<float> t = stackalloc float[8];
        float inv = 1f / beta;
        for (int i = 0; i < 8; i++)
        {
            float s = x[i] * inv;
            if (!dither.IsEmpty) s += dither[i];
            t[i] = Math.Clamp(s, -Clamp, Clamp);
        }
        E8Lattice.Closest(t, v);
    }

    /// <summary>True when the lattice point v (doubled coordinates) lies outside the Voronoi cell of qE8.</summary>
    public bool IsOverloaded(ReadOnlySpan<int> v)
    {
        Span<int> w = stackalloc int[8];
        E8Lattice.ClosestCoarse(v, Q, w);
        for (int i = 0; i < 8; i++) if (w[i] != 0) return true;
        return false;
    }

    /// <summary>Digits (G⁻¹λ) mod q of the lattice point λ = v/2, each in [0, q).</summary>
    public void ToDigits(ReadOnlySpan<int> v, Span<byte> digits)
    {
        Span<int> c = stackalloc int[8];
        E8Lattice.ToDigits(v, c);
        for (int i = 0; i < 8; i++)
        {
            int d = c[i] % Q;
            digits[i] = (byte)(d < 0 ? d + Q : d);
        }
    }

    /// <summary>Decoded lattice point λ̂ (doubled coordinates) of 8 digits: the coset representative in the Voronoi cell of qE8.</summary>
    public void DecodeLattice(ReadOnlySpan<byte> digits, Span<int> v)
    {
        Span<int> c = stackalloc int[8];
        Span<int> y = stackalloc int[8];
        Span<int> w = stackalloc int[8];
        for (int i = 0; i < 8; i++) c[i] = digits[i];
        E8Lattice.FromDigits(c, y);
        E8Lattice.ClosestCoarse(y, Q, w);
        for (int i = 0; i < 8; i++) v[i] = y[i] - Q * w[i];
    }

    /// <summary>
    /// Reduces a lattice point to its coset representative in the Voronoi cell of qE8
    /// (what the decoder returns for it): v − q·Q_E8(v/q).
    /// </summary>
    public void Reduce(ReadOnlySpan<int> v, Span<int> reduced)
    {
        Span<int> w = stackalloc int[8];
        E8Lattice.ClosestCoarse(v, Q, w);
        for (int i = 0; i < 8; i++) reduced[i] = v[i] - Q * w[i];
    }

    /// <summary>
    /// Encodes one block: digits of Q_E8(x/β + u). Returns true when the block is overloaded
    /// (the decoder will then return a different lattice point).
    /// </summary>
    public bool Encode(ReadOnlySpan<float> x, float beta, ReadOnlySpan<float> dither, Span<byte> digits)
    {
        Span<int> v = stackalloc int[8];
        QuantizeFine(x, beta, dither, v);
        ToDigits(v, digits);
        return IsOverloaded(v);
    }

    /// <summary>Decodes one block: x̂ = β·(λ̂ − u).</summary>
    public void Decode(ReadOnlySpan<byte> digits, float beta, ReadOnlySpan<float> dither, Span<float> x)
    {
        Span<int> v = stackalloc int[8];
        DecodeLattice(digits, v);
        for (int i = 0; i < 8; i++)
        {
            float l = 0.5f * v[i];
            if (!dither.IsEmpty) l -= dither[i];
            x[i] = beta * l;
        }
    }
}
