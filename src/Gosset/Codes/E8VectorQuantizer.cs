using System.Runtime.CompilerServices;
using Gosset.Lattices;

namespace Gosset.Codes;

/// <summary>
/// Quantizes vectors (length a multiple of 8) with the Voronoi code E8/qE8 and a set of k scales
/// per 8-block: each block stores 8 digits in [0, q) and one scale index in [0, k).
/// </summary>
/// <remarks>
/// Scalar reference implementation. Inputs are expected to be rotated and normalised to unit
/// RMS per entry, the setting the scale sets are tuned for.
/// </remarks>
public sealed class E8VectorQuantizer
{
    /// <summary>Creates the quantizer.</summary>
    public E8VectorQuantizer(VoronoiCode code, ScaleSet scales, ScaleSelection selection = ScaleSelection.LeastError)
    {
        ArgumentNullException.ThrowIfNull(code);
        ArgumentNullException.ThrowIfNull(scales);
        Code = code;
        Scales = scales;
        Selection = selection;
    }

    /// <summary>Creates a quantizer for nesting ratio q with the given scales.</summary>
    public E8VectorQuantizer(int q, ScaleSet scales, ScaleSelection selection = ScaleSelection.LeastError)
        : this(new VoronoiCode(q), scales, selection) { }

    /// <summary>The Voronoi code.</summary>
    public VoronoiCode Code { get; }
    /// <summary>The k scales.</summary>
    public ScaleSet Scales { get; }
    /// <summary>The per-block scale selection rule.</summary>
    public ScaleSelection Selection { get; }

    /// <summary>
    /// Bits per entry with fixed-width storage: (8·log2 q + log2 k) / 8 — the information content;
    /// containers report what they actually store.
    /// </summary>
    public double NominalBitsPerEntry => Code.BitsPerEntry + Math.Log2(Scales.Count) / 8;

    /// <summary>
    /// Quantizes <paramref name="x"/>: digits (one per entry) and a scale index per 8-block.
    /// Returns the squared reconstruction error. <paramref name="dither"/> (lattice units, same
    /// length as x) is optional.
    /// </summary>
    public double Quantize(ReadOnlySpan<float> x, Span<byte> digits, Span<byte> scaleIndex, ReadOnlySpan<float> dither = default)
    {
        CheckLengths(x.Length, digits.Length, scaleIndex.Length, dither.Length);
        double err = 0;
        for (int b = 0; b < x.Length / 8; b++)
        {
            var u = dither.IsEmpty ? default : dither.Slice(8 * b, 8);
            err += QuantizeBlock(x.Slice(8 * b, 8), u, digits.Slice(8 * b, 8), out scaleIndex[b]);
        }
        return err;
    }

    /// <summary>Reconstructs x̂ from digits and scale indices.</summary>
    public void Dequantize(ReadOnlySpan<byte> digits, ReadOnlySpan<byte> scaleIndex, Span<float> x, ReadOnlySpan<float> dither = default)
    {
        CheckLengths(x.Length, digits.Length, scaleIndex.Length, dither.Length);
        var betas = Scales.Betas;
        for (int b = 0; b < x.Length / 8; b++)
        {
            int s = scaleIndex[b];
            if (s >= betas.Length) throw new InvalidDataException($"Scale index {s} out of range (k = {betas.Length}).");
            var u = dither.IsEmpty ? default : dither.Slice(8 * b, 8);
            Code.Decode(digits.Slice(8 * b, 8), betas[s], u, x.Slice(8 * b, 8));
        }
    }

    /// <summary>Quantizes and reconstructs in one call; returns the squared error.</summary>
    public double QuantizeDequantize(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> dither = default)
    {
        if (y.Length != x.Length) throw new ArgumentException("Output length must equal input length.", nameof(y));
        byte[] digits = new byte[x.Length];
        byte[] idx = new byte[x.Length / 8];
        double err = Quantize(x, digits, idx, dither);
        Dequantize(digits, idx, y, dither);
        return err;
    }

    /// <summary>Quantizes one 8-block, choosing its scale; returns the squared error.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public double QuantizeBlock(ReadOnlySpan<float> x, ReadOnlySpan<float> dither, Span<byte> digits, out byte scaleIndex)
    {
        var betas = Scales.Betas;
        Span<int> v = stackalloc int[8];
        Span<int> best = stackalloc int[8];
        double bestErr = double.MaxValue;
        int bestIdx = -1;
        for (int s = 0; s < betas.Length; s++)
        {
            float beta = betas[s];
            VoronoiCode.QuantizeFine(x, beta, dither, v);
            bool overloaded = Code.IsOverloaded(v);
            if (overloaded) Code.Reduce(v, v);
            double e = BlockError(x, dither, v, beta);
            if (Selection == ScaleSelection.SmallestWithoutOverload)
            {
                // betas are sorted ascending: the first non-overloaded one wins; else the largest
                if (!overloaded || s == betas.Length - 1) { bestIdx = s; bestErr = e; v.CopyTo(best); break; }
                continue;
            }
            if (e < bestErr) { bestErr = e; bestIdx = s; v.CopyTo(best); }
        }
        Code.ToDigits(best, digits);
        scaleIndex = (byte)bestIdx;
        return bestErr;
    }

    /// <summary>Squared error of every scale for one block (for fitting): err[s] = ‖x − β_s·λ̂_s‖².</summary>
    public static void BlockErrors(VoronoiCode code, ReadOnlySpan<float> x, ReadOnlySpan<float> betas, Span<float> err, Span<bool> overloaded)
    {
        Span<int> v = stackalloc int[8];
        for (int s = 0; s < betas.Length; s++)
        {
            VoronoiCode.QuantizeFine(x, betas[s], default, v);
            bool o = code.IsOverloaded(v);
            if (o) code.Reduce(v, v);
            overloaded[s] = o;
            err[s] = (float)BlockError(x, default, v, betas[s]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double BlockError(ReadOnlySpan<float> x, ReadOnlySpan<float> dither, ReadOnlySpan<int> v, float beta)
    {
        double e = 0;
        for (int i = 0; i < 8; i++)
        {
            float l = 0.5f * v[i];
            if (!dither.IsEmpty) l -= dither[i];
            double d = x[i] - beta * l;
            e += d * d;
        }
        return e;
    }

    private static void CheckLengths(int n, int digits, int idx, int dither)
    {
        if (n % 8 != 0) throw new ArgumentException($"Vector length {n} is not a multiple of 8 (pad it).");
        if (digits < n) throw new ArgumentException("Digit buffer is shorter than the vector.");
        if (idx < n / 8) throw new ArgumentException("Scale-index buffer is shorter than the number of blocks.");
        if (dither != 0 && dither < n) throw new ArgumentException("Dither is shorter than the vector.");
    }
}
