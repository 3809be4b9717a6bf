using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gosset.Codes;

/// <summary>
/// Scalar encoder of the E8 box code (<see cref="E8BoxCodes"/>) at b ∈ {2, 3, 4} bits per entry:
/// per 8-block the closest E8 point of x/β, kept when it lies in the box (digits u ∈ [0, q)⁸),
/// else shrunk towards 0 until it does. This file is the specification of the encoder
/// (<see cref="EncodeBlockAtScalar"/>); the 8-lane version computes the same numbers in the same order.
/// </summary>
public static class E8BoxEncoder
{
    /// <summary>Digits of the E8 point v (doubled coordinates) in the box of b bits, or false when v is outside it.</summary>
    public static bool TryDigits(ReadOnlySpan<int> v, int bits, Span<byte> u)
    {
        int half = 1 << (bits - 1);
        int p = v[0] & 1;
        for (int i = 0; i < 8; i++)
        {
            int a = (v[i] - p * (i == 0 ? -1 : 1)) >> 1;
            if (a < -half || a >= half) return false;
            u[i] = (byte)(a + half);
        }
        return true;
    }

    /// <summary>
    /// Codes one block x at lattice step <paramref name="beta"/> (entry = β·v/2) with the closest E8 point
    /// inside the box: writes the digits and returns the squared error Σ(x − x̂)². <paramref name="overloaded"/>
    /// is true when the box clipped a coordinate (the unconstrained closest point may lie outside).
    /// </summary>
    /// <remarks>
    /// Exact constrained search: E8 ∩ box is the union of two cosets a + p·h (p = 0, 1) with a in the integer box
    /// [−q/2, q/2)⁸ and Σa ≡ p (mod 2). Per coset the squared distance is separable: round each coordinate
    /// to the nearest allowed integer; if the parity is wrong, move the one coordinate whose next-best allowed
    /// integer costs least (one move suffices, since every move flips parity). Keep the closer coset (ties: p = 0).
    /// </remarks>
    public static float EncodeBlockAt(ReadOnlySpan<float> x, float beta, int bits, Span<byte> u, out bool overloaded)
        => Vector256.IsHardwareAccelerated && beta > 0 && float.IsFinite(beta)
            ? EncodeBlockAtVector(x, beta, bits, u, out overloaded)
            : EncodeBlockAtScalar(x, beta, bits, u, out overloaded);

    /// <summary>The scalar specification of <see cref="EncodeBlockAt"/>.</summary>
    [SkipLocalsInit]
    internal static float EncodeBlockAtScalar(ReadOnlySpan<float> x, float beta, int bits, Span<byte> u, out bool overloaded)
    {
        int half = 1 << (bits - 1);
        overloaded = false;
        if (!(beta > 0) || !float.IsFinite(beta))
        {
            u[..8].Fill((byte)half);
            float z = 0f;
            for (int i = 0; i < 8; i++) z += x[i] * x[i];
            overloaded = true;
            return z;
        }
        Span<int> best = stackalloc int[8];
        Span<int> a = stackalloc int[8];
        float inv = 1f / beta;
        float bestDist = float.PositiveInfinity;
        bool bestClipped = false;
        int bestP = 0;
        for (int p = 0; p < 2; p++)
        {
            float dist = 0f, worstDelta = float.PositiveInfinity;
            int sum = 0, worst = 0, worstAlt = 0;
            bool clipped = false;
            for (int i = 0; i < 8; i++)
            {
                float hcoord = p == 0 ? 0f : (i == 0 ? -0.5f : 0.5f);
                float y = x[i] * inv - hcoord;
                float r = MathF.Round(y);
                int ai;
                if (!(r >= -half)) { ai = -half; clipped = true; }          // also catches NaN
                else if (r > half - 1) { ai = half - 1; clipped = true; }
                else ai = (int)r;
                float c0 = (y - ai) * (y - ai);
                // Next-best allowed integer (opposite parity): a − 1 or a + 1 within the box.
                int alt = y >= ai ? ai + 1 : ai - 1;
                if (alt > half - 1) alt = ai - 1;
                if (alt < -half) alt = ai + 1;
                float c1 = (y - alt) * (y - alt);
                if (c1 - c0 < worstDelta) { worstDelta = c1 - c0; worst = i; worstAlt = alt; }
                a[i] = ai; sum += ai; dist += c0;
            }
            if ((sum & 1) != p) { a[worst] = worstAlt; dist += worstDelta; }
            if (dist < bestDist) { bestDist = dist; a.CopyTo(best); bestClipped = clipped; bestP = p; }
        }
        overloaded = bestClipped;
        for (int i = 0; i < 8; i++) u[i] = (byte)(best[i] + half);
        // The error from the decoded point (the scalar specification), not from the search's own sums.
        Span<int> v = stackalloc int[8];
        for (int i = 0; i < 8; i++) v[i] = 2 * best[i] + bestP * (i == 0 ? -1 : 1);
        return Error(x, beta, v);
    }

    /// <summary>
    /// <see cref="EncodeBlockAtScalar"/> with the 8 coordinates in one vector (β finite and positive): every per-coordinate
    /// value is the scalar one (same operations, no FMA); sums of floats, the parity move and the coset choice run in
    /// the scalar order, so digits, error and overload flag are bit-identical.
    /// </summary>
    [SkipLocalsInit]
    internal static float EncodeBlockAtVector(ReadOnlySpan<float> x, float beta, int bits, Span<byte> u, out bool overloaded)
    {
        int half = 1 << (bits - 1);
        var xv = Vector256.Create(x[..8]);
        var inv = Vector256.Create(1f / beta);
        var lo = Vector256.Create((float)-half);
        var hi = Vector256.Create((float)(half - 1));
        var one = Vector256.Create(1f);
        Span<float> c0s = stackalloc float[8];
        Span<float> ds = stackalloc float[8];
        Span<float> alts = stackalloc float[8];
        Span<int> a = stackalloc int[8];
        Span<int> best = stackalloc int[8];
        float bestDist = float.PositiveInfinity;
        bool bestClipped = false;
        int bestP = 0;
        for (int p = 0; p < 2; p++)
        {
            var y = p == 0 ? xv * inv - Vector256<float>.Zero : xv * inv - Vector256.Create(-0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f);
            var af = NearestInBox(y, lo, hi, one, out var c0, out var alt, out var delta, out var clip);
            bool clipped = Vector256.ExtractMostSignificantBits(clip) != 0;
            delta.CopyTo(ds);
            c0.CopyTo(c0s);
            alt.CopyTo(alts);
            var ai = Vector256.ConvertToInt32(af);
            ai.CopyTo(a);
            int sum = Vector256.Sum(ai);
            float dist = 0f, worstDelta = float.PositiveInfinity;
            int worst = 0;
            for (int i = 0; i < 8; i++)
            {
                if (ds[i] < worstDelta) { worstDelta = ds[i]; worst = i; }
                dist += c0s[i];
            }
            if ((sum & 1) != p) { a[worst] = (int)alts[worst]; dist += worstDelta; }
            if (dist < bestDist) { bestDist = dist; a.CopyTo(best); bestClipped = clipped; bestP = p; }
        }
        overloaded = bestClipped;
        for (int i = 0; i < 8; i++) u[i] = (byte)(best[i] + half);
        var bv = Vector256.Create<int>(best);
        var v = bv + bv + (bestP == 0 ? Vector256<int>.Zero : Vector256.Create(-1, 1, 1, 1, 1, 1, 1, 1));
        var e = xv - Vector256.Create(beta) * (Vector256.Create(0.5f) * Vector256.ConvertToSingle(v));
        (e * e).CopyTo(c0s);
        float err = 0f;
        for (int i = 0; i < 8; i++) err += c0s[i];
        return err;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Error(ReadOnlySpan<float> x, float beta, ReadOnlySpan<int> v)
    {
        float err = 0f;
        for (int i = 0; i < 8; i++) { float e = x[i] - beta * (0.5f * v[i]); err += e * e; }
        return err;
    }

    /// <summary>
    /// Codes one block at each step β_j = rowScale·blockScales[j]: writes the k errors and the k digit
    /// blocks (8 per scale). The building block of rate-constrained index choices.
    /// </summary>
    public static void EncodeCandidates(ReadOnlySpan<float> x, float rowScale, ReadOnlySpan<float> blockScales, int bits, Span<float> err, Span<byte> digits)
    {
        for (int j = 0; j < blockScales.Length; j++)
            err[j] = EncodeBlockAt(x, rowScale * blockScales[j], bits, digits.Slice(8 * j, 8), out _);
    }

    /// <summary>
    /// <see cref="EncodeCandidates(ReadOnlySpan{float}, float, ReadOnlySpan{float}, int, Span{float}, Span{byte})"/> for <paramref name="blocks"/> consecutive blocks (err [blocks][k], digits [blocks][k][8]):
    /// eight blocks at a time with one block per vector lane (every per-coordinate step of <see cref="EncodeBlockAtScalar"/>
    /// on eight blocks at once, the sums over coordinates in the scalar order), the rest one by one. Bit-identical.
    /// </summary>
    /// <param name="x">The blocks, 8·<paramref name="blocks"/> entries.</param>
    /// <param name="blocks">Number of consecutive blocks.</param>
    /// <param name="rowScale">Row scale; block scale j gives the step β_j = rowScale·blockScales[j].</param>
    /// <param name="blockScales">The k candidate block scales.</param>
    /// <param name="bits">Bits per entry, 2 to 4.</param>
    /// <param name="err">Receives the squared error of block t at scale j in [t·k + j].</param>
    /// <param name="digits">Receives the 8 digits of block t at scale j from (t·k + j)·8.</param>
    /// <exception cref="ArgumentOutOfRangeException">A span is shorter than the blocks need.</exception>
    public static void EncodeCandidates(ReadOnlySpan<float> x, int blocks, float rowScale, ReadOnlySpan<float> blockScales, int bits, Span<float> err, Span<byte> digits)
    {
        int k = blockScales.Length, t = 0;
        // Every block of the call shares the k steps; a degenerate one (zero, negative, not finite) is the scalar code's case.
        bool vector = Vector256.IsHardwareAccelerated;
        for (int j = 0; j < k && vector; j++) { float beta = rowScale * blockScales[j]; vector = beta > 0 && float.IsFinite(beta); }
        if (vector)
            for (; t + 8 <= blocks; t += 8)
                for (int j = 0; j < k; j++)
                    EncodeEightAt(x.Slice(8 * t, 64), rowScale * blockScales[j], bits, err.Slice(t * k + j), k, digits.Slice(8 * (t * k + j)), 8 * k);
        for (; t < blocks; t++)
            EncodeCandidates(x.Slice(8 * t, 8), rowScale, blockScales, bits, err.Slice(t * k, k), digits.Slice(8 * t * k, 8 * k));
    }

    /// <summary>
    /// Eight blocks (x [8][8]) at one step β: err[b·errStride] and digits[b·digitStride …] for block b, the numbers of
    /// <see cref="EncodeBlockAtScalar"/> (lane b is block b; coordinate i is one vector of all eight blocks).
    /// </summary>
    [SkipLocalsInit]
    private static void EncodeEightAt(ReadOnlySpan<float> x, float beta, int bits, Span<float> err, int errStride, Span<byte> digits, int digitStride)
    {
        int half = 1 << (bits - 1);
        // Transpose: xt[i] holds coordinate i of the eight blocks.
        Span<Vector256<float>> xt = stackalloc Vector256<float>[8];
        Transpose8(x, xt);
        var inv = Vector256.Create(1f / beta);
        var lo = Vector256.Create((float)-half);
        var hi = Vector256.Create((float)(half - 1));
        var one = Vector256.Create(1f);
        Span<Vector256<float>> a = stackalloc Vector256<float>[8];
        Span<Vector256<float>> best = stackalloc Vector256<float>[8];
        best.Clear();
        var bestDist = Vector256.Create(float.PositiveInfinity);
        var bestP = Vector256<float>.Zero; // all-ones where the p = 1 coset won
        for (int p = 0; p < 2; p++)
        {
            var dist = Vector256<float>.Zero;
            var worstDelta = Vector256.Create(float.PositiveInfinity);
            var worst = Vector256<int>.Zero;
            var worstAlt = Vector256<float>.Zero;
            var sum = Vector256<int>.Zero;
            for (int i = 0; i < 8; i++)
            {
                float hcoord = p == 0 ? 0f : (i == 0 ? -0.5f : 0.5f);
                var y = xt[i] * inv - Vector256.Create(hcoord);
                var af = NearestInBox(y, lo, hi, one, out var c0, out var alt, out var delta, out _);
                var m = Vector256.LessThan(delta, worstDelta);
                worstDelta = Vector256.ConditionalSelect(m, delta, worstDelta);
                worst = Vector256.ConditionalSelect(m.AsInt32(), Vector256.Create(i), worst);
                worstAlt = Vector256.ConditionalSelect(m, alt, worstAlt);
                a[i] = af;
                sum += Vector256.ConvertToInt32(af);
                dist += c0;
            }
            // Wrong parity: move the cheapest coordinate to its next-best integer.
            var fix = Vector256.Equals(sum & Vector256<int>.One, Vector256.Create(1 - p)).AsSingle();
            for (int i = 0; i < 8; i++)
                a[i] = Vector256.ConditionalSelect(fix & Vector256.Equals(worst, Vector256.Create(i)).AsSingle(), worstAlt, a[i]);
            dist = Vector256.ConditionalSelect(fix, dist + worstDelta, dist);
            var better = Vector256.LessThan(dist, bestDist);
            bestDist = Vector256.ConditionalSelect(better, dist, bestDist);
            for (int i = 0; i < 8; i++) best[i] = Vector256.ConditionalSelect(better, a[i], best[i]);
            if (p == 1) bestP = better;
        }
        // The error from the decoded point, v = 2a + p·(−1, 1, …, 1), summed over coordinates in order.
        var e2 = Vector256<float>.Zero;
        var bv = Vector256.Create(beta);
        var halfV = Vector256.Create(0.5f);
        Span<int> u = stackalloc int[64]; // [i][b]
        for (int i = 0; i < 8; i++)
        {
            var ai = Vector256.ConvertToInt32(best[i]);
            var pv = (bestP.AsInt32() & Vector256.Create(i == 0 ? -1 : 1));
            var v = ai + ai + pv;
            var e = xt[i] - bv * (halfV * Vector256.ConvertToSingle(v));
            e2 += e * e;
            (ai + Vector256.Create(half)).CopyTo(u.Slice(8 * i, 8));
        }
        for (int b = 0; b < 8; b++)
        {
            err[b * errStride] = e2.GetElement(b);
            var d = digits.Slice(b * digitStride, 8);
            for (int i = 0; i < 8; i++) d[i] = (byte)u[8 * i + b];
        }
    }

    /// <summary>
    /// Per lane, the scalar specification's coordinate step: the nearest integer a of y in [lo, hi] (NaN → lo), its
    /// squared distance c0, the next-best allowed integer alt (opposite parity) and delta = (y − alt)² − c0; clip marks
    /// the lanes where the box clipped.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> NearestInBox(Vector256<float> y, Vector256<float> lo, Vector256<float> hi, Vector256<float> one,
        out Vector256<float> c0, out Vector256<float> alt, out Vector256<float> delta, out Vector256<float> clip)
    {
        var r = Vector256.Round(y);
        var inLo = Vector256.GreaterThanOrEqual(r, lo); // false for NaN, as !(r >= −half) in the scalar code
        var overHi = Vector256.GreaterThan(r, hi);
        var af = Vector256.ConditionalSelect(inLo, Vector256.ConditionalSelect(overHi, hi, r), lo);
        clip = ~inLo | overHi;
        var d0 = y - af;
        c0 = d0 * d0;
        alt = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(y, af), af + one, af - one);
        alt = Vector256.ConditionalSelect(Vector256.GreaterThan(alt, hi), af - one, alt);
        alt = Vector256.ConditionalSelect(Vector256.LessThan(alt, lo), af + one, alt);
        var d1 = y - alt;
        delta = d1 * d1 - c0;
        return af;
    }

    /// <summary>xt[i] = (x[i], x[8 + i], …, x[56 + i]): coordinate i of eight consecutive blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8(ReadOnlySpan<float> x, Span<Vector256<float>> xt)
    {
        Span<float> col = stackalloc float[8];
        for (int i = 0; i < 8; i++)
        {
            for (int b = 0; b < 8; b++) col[b] = x[8 * b + i];
            xt[i] = Vector256.Create<float>(col);
        }
    }

    /// <summary>Codes one block with the least-error scale; returns the scale index (ties: the smaller index).</summary>
    [SkipLocalsInit]
    public static int EncodeBlock(ReadOnlySpan<float> x, float rowScale, ReadOnlySpan<float> blockScales, int bits, Span<byte> u)
    {
        Span<byte> d = stackalloc byte[8];
        int best = 0; float bestErr = float.PositiveInfinity;
        for (int j = 0; j < blockScales.Length; j++)
        {
            float e = EncodeBlockAt(x, rowScale * blockScales[j], bits, d, out _);
            if (j == 0 || e < bestErr) { bestErr = e; best = j; d.CopyTo(u); }
        }
        return best;
    }

    /// <summary>Decodes one block: x̂ᵢ = β·vᵢ/2 with β = rowScale·blockScale (the scalar specification of <see cref="E8BoxCodes.DequantizeRow"/>).</summary>
    [SkipLocalsInit]
    public static void DecodeBlock(ReadOnlySpan<byte> u, int bits, float beta, Span<float> x)
    {
        Span<int> v = stackalloc int[8];
        E8BoxCodes.DoubledCoordinates(u, 1 << bits, v);
        float half = 0.5f * beta;
        for (int i = 0; i < 8; i++) x[i] = half * v[i];
    }
}
