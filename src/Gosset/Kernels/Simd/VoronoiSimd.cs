using System.Runtime.CompilerServices;

namespace Gosset.Kernels.Simd;

/// <summary>
/// SIMD encode and decode of E8 Voronoi blocks (<see cref="Codes.VoronoiCode"/>, any q in [2, 256])
/// written once for every vector width (<see cref="IFloatVec{TF, TI}"/>: 128, 256, 512 bits), structure of arrays: one lane per block, one vector per coordinate, so
/// every step of the scalar reference (rounding, tie rules, parity fix, exact coarse quantizer)
/// becomes the same operation on Lanes blocks at once, in the same order: results are bit-exact.
/// </summary>
/// <remarks>
/// The coarse quantizer divides integers by 2q; for |dividend| &lt; 2²⁴ the float quotient
/// cannot round across an integer, so floor(a / b) in float is exact. Batches with a lattice
/// coordinate beyond 2²⁰ in magnitude (inputs near the clamp of 2²⁴) take the scalar path.
/// </remarks>
[SkipLocalsInit]
internal static unsafe class VoronoiSimd<TF, TI>
    where TF : unmanaged, IFloatVec<TF, TI> where TI : unmanaged, IIntVec<TF, TI>
{
    public static int Lanes => TI.Lanes;
    private const int Limit = 1 << 20;

    /// <summary>Encodes Lanes blocks (SoA x[8][Lanes]) at per-lane scale beta: digits[8][Lanes], overload mask. False when the batch needs the scalar path.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool EncodeBatch(float* x, float* beta, int q, int* digits, int* overload)
    {
        TF* t = stackalloc TF[8];
        TI* v = stackalloc TI[8];
        var inv = TF.Create(1f) / TF.Load(beta);
        var clamp = TF.Create((float)(1 << 24));
        for (int i = 0; i < 8; i++) t[i] = TF.Min(TF.Max(TF.Load(x + i * Lanes) * inv, -clamp), clamp);
        ClosestE8(t, v);
        var big = TI.Zero;
        for (int i = 0; i < 8; i++) big |= TI.GreaterThan(TI.Abs(v[i]), TI.Create(Limit));
        if (TI.AnyNonZero(big)) return false;
        // digits (G⁻¹λ) mod q
        TI* c = stackalloc TI[8];
        var v8 = v[7];
        c[7] = v8;
        c[6] = (v[6] - v8) >> 1;
        for (int i = 5; i >= 1; i--) c[i] = ((v[i] - v8) >> 1) + c[i + 1];
        c[0] = (((v[0] - v8) >> 1) + c[1]) >> 1;
        var qf = TF.Create((float)q);
        var qi = TI.Create(q);
        for (int i = 0; i < 8; i++)
        {
            var d = c[i] - TF.ToInt(TF.Floor(TI.ToFloat(c[i]) / qf)) * qi;
            TI.Store(d, digits + i * Lanes);
        }
        TI* w = stackalloc TI[8];
        ClosestCoarse(v, q, w);
        var any = TI.Zero;
        for (int i = 0; i < 8; i++) any |= ~TI.Equal(w[i], TI.Zero);
        TI.Store(any, overload);
        return true;
    }

    /// <summary>Decodes Lanes blocks: digits[8][Lanes] → x[8][Lanes] = β·λ̂.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DecodeBatch(int* digits, float* beta, int q, float* x)
    {
        TI* c = stackalloc TI[8];
        TI* y = stackalloc TI[8];
        TI* w = stackalloc TI[8];
        for (int i = 0; i < 8; i++) c[i] = TI.Load(digits + i * Lanes);
        var c8 = c[7];
        y[0] = (c[0] << 2) - (c[1] << 1) + c8;
        for (int i = 1; i < 6; i++) y[i] = (c[i] << 1) - (c[i + 1] << 1) + c8;
        y[6] = (c[6] << 1) + c8;
        y[7] = c8;
        ClosestCoarse(y, q, w);
        var b = TF.Load(beta);
        var qi = TI.Create(q);
        for (int i = 0; i < 8; i++)
            TF.Store(b * (TF.Create(0.5f) * TI.ToFloat(y[i] - qi * w[i])), x + i * Lanes);
    }

    /// <summary>
    /// <see cref="E8BoxCode.EncodeBlock"/> on Lanes blocks (SoA x[8][Lanes], per-lane vector scale):
    /// writes the word and scale index of every lane; returns a bit mask of the lanes that
    /// overload every scale and need the scalar path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int BoxEncodeBatch(float* x, float* s, int* words, int* index)
    {
        TF* t = stackalloc TF[8];
        TI* v = stackalloc TI[8];
        var sv = TF.Load(s);
        var clamp = TF.Create((float)(1 << 24));
        var half = TF.Create(0.5f);
        var bestErr = TF.Create(float.PositiveInfinity);
        var bestIdx = TI.Create(-1);
        var bestWord = TI.Zero;
        var scales = E8BoxCode.BlockScales;
        for (int j = 0; j < scales.Length; j++)
        {
            var beta = sv * TF.Create(scales[j]);
            var inv = TF.Create(1f) / beta;
            for (int i = 0; i < 8; i++) t[i] = TF.Min(TF.Max(TF.Load(x + i * Lanes) * inv, -clamp), clamp);
            ClosestE8(t, v);
            var p = v[0] & TI.Create(1);
            var inBox = TI.Create(-1);
            var word = TI.Zero;
            var err = TF.Zero;
            for (int i = 0; i < 8; i++)
            {
                var a = (i == 0 ? v[i] + p : v[i] - p) >> 1;
                inBox &= TI.GreaterThan(a, TI.Create(-9)) & TI.LessThan(a, TI.Create(8));
                word |= (a + TI.Create(8)) << (4 * i);
                var e = TF.Load(x + i * Lanes) - beta * (half * TI.ToFloat(v[i]));
                err += e * e;
            }
            var better = inBox & TF.LessThan(err, bestErr);
            bestErr = TF.Select(better, err, bestErr);
            bestIdx = TI.Select(better, TI.Create(j), bestIdx);
            bestWord = TI.Select(better, word, bestWord);
        }
        TI.Store(bestWord, words);
        TI.Store(bestIdx, index);
        return TI.SignBits(TI.Equal(bestIdx, TI.Create(-1)));
    }

    // E8Lattice.Closest on Lanes blocks.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ClosestE8(TF* t, TI* v)
    {
        TI* a = stackalloc TI[8];
        TI* b = stackalloc TI[8];
        var da = ClosestD8(t, 0f, a);
        var db = ClosestD8(t, 0.5f, b);
        // tie: lexicographically larger error x − v/2
        var decided = TI.Zero;
        var larger = TI.Zero;
        var half = TF.Create(0.5f);
        for (int i = 0; i < 8; i++)
        {
            var eb = t[i] - half * TI.ToFloat(b[i]);
            var ea = t[i] - half * TI.ToFloat(a[i]);
            var ne = ~TF.Equal(eb, ea);
            larger |= ne & ~decided & TF.GreaterThan(eb, ea);
            decided |= ne;
        }
        var takeB = TF.LessThan(db, da) | (TF.Equal(db, da) & larger);
        for (int i = 0; i < 8; i++) v[i] = TI.Select(takeB, b[i], a[i]);
    }

    // DnLattice-style closest point of D8 + s·𝟙 (doubled), as E8Lattice.ClosestD8Doubled.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TF ClosestD8(TF* x, float s, TI* v)
    {
        var sum = TI.Zero;
        var dist = TF.Zero;
        var worstAbs = TF.Create(-1f);
        var worstErr = TF.Zero;
        var worst = TI.Zero;
        var sv = TF.Create(s);
        var halfUp = TF.Create(0.5f);
        for (int i = 0; i < 8; i++)
        {
            var t = x[i] - sv;
            var ri = TF.Floor(t + halfUp);
            var e = t - ri;
            var r = TF.ToInt(ri);
            v[i] = r;
            sum += r;
            dist += e * e;
            var ae = TF.Abs(e);
            var gt = TF.GreaterThan(ae, worstAbs);
            worstAbs = TF.Select(gt, ae, worstAbs);
            worstErr = TF.Select(gt, e, worstErr);
            worst = TI.Select(gt, TI.Create(i), worst);
        }
        var odd = ~TI.Equal(sum & TI.Create(1), TI.Zero);
        var step = TI.Select(TF.GreaterThan(worstErr, TF.Zero), TI.Create(1), TI.Create(-1));
        var e2 = worstErr - TI.ToFloat(step);
        dist = TF.Select(odd, dist + (e2 * e2 - worstErr * worstErr), dist);
        int twoS = s == 0f ? 0 : 1;
        for (int i = 0; i < 8; i++)
        {
            var fix = odd & TI.Equal(worst, TI.Create(i));
            v[i] = ((v[i] + (step & fix)) << 1) + TI.Create(twoS);
        }
        return dist;
    }

    // E8Lattice.ClosestCoarse on Lanes blocks (|v| ≤ 2²⁰ + 2¹¹, so every quotient below is exact in float).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ClosestCoarse(TI* v, int q, TI* w)
    {
        TI* za = stackalloc TI[8];
        TI* zb = stackalloc TI[8];
        TI* ra = stackalloc TI[8];
        TI* rb = stackalloc TI[8];
        var qi = TI.Create(q);
        for (int i = 0; i < 8; i++) { za[i] = v[i]; zb[i] = v[i] - qi; }
        var da = ClosestDnExact(za, 2 * q, ra);
        var db = ClosestDnExact(zb, 2 * q, rb);
        var decided = TI.Zero;
        var larger = TI.Zero;
        for (int i = 0; i < 8; i++)
        {
            var ea = v[i] - qi * (ra[i] << 1);
            var eb = v[i] - qi * ((rb[i] << 1) + TI.Create(1));
            var ne = ~TI.Equal(ea, eb);
            larger |= ne & ~decided & TI.GreaterThan(eb, ea);
            decided |= ne;
        }
        var takeB = TI.LessThan(db, da) | (TI.Equal(db, da) & larger);
        for (int i = 0; i < 8; i++) w[i] = TI.Select(takeB, (rb[i] << 1) + TI.Create(1), ra[i] << 1);
    }

    // DnLattice.ClosestExact(z, m): closest D8 point to z/m, squared distance·m².
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TI ClosestDnExact(TI* z, int m, TI* r)
    {
        var mi = TI.Create(m);
        var twoM = TF.Create((float)(2 * m));
        var sum = TI.Zero;
        var dist = TI.Zero;
        var worstAbs = TI.Create(-1);
        var worstErr = TI.Zero;
        var worst = TI.Zero;
        for (int i = 0; i < 8; i++)
        {
            var ri = TF.ToInt(TF.Floor(TI.ToFloat((z[i] << 1) + mi) / twoM));
            var e = z[i] - mi * ri;
            r[i] = ri;
            sum += ri;
            dist += e * e;
            var ae = TI.Abs(e);
            var gt = TI.GreaterThan(ae, worstAbs);
            worstAbs = TI.Select(gt, ae, worstAbs);
            worstErr = TI.Select(gt, e, worstErr);
            worst = TI.Select(gt, TI.Create(i), worst);
        }
        var odd = ~TI.Equal(sum & TI.Create(1), TI.Zero);
        var step = TI.Select(TI.GreaterThan(worstErr, TI.Zero), TI.Create(1), TI.Create(-1));
        var e2 = worstErr - mi * step;
        dist = TI.Select(odd, dist + (e2 * e2 - worstErr * worstErr), dist);
        for (int i = 0; i < 8; i++) r[i] += step & odd & TI.Equal(worst, TI.Create(i));
        return dist;
    }
}
