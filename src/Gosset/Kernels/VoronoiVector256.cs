// Generated from VoronoiVector512.cs (the template): same text, aliases and lane count changed.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using V = System.Runtime.Intrinsics.Vector256;
using VF = System.Runtime.Intrinsics.Vector256<float>;
using VI = System.Runtime.Intrinsics.Vector256<int>;

namespace Gosset.Kernels;

/// <summary>
/// SIMD encode and decode of E8 Voronoi blocks (<see cref="Codes.VoronoiCode"/>, any q in [2, 256])
/// with 256-bit vectors, structure of arrays: one lane per block, one vector per coordinate, so
/// every step of the scalar reference (rounding, tie rules, parity fix, exact coarse quantizer)
/// becomes the same operation on 8 blocks at once, in the same order: results are bit-exact.
/// </summary>
/// <remarks>
/// The coarse quantizer divides integers by 2q; for |dividend| &lt; 2²⁴ the float quotient
/// cannot round across an integer, so floor(a / b) in float is exact. Batches with a lattice
/// coordinate beyond 2²⁰ in magnitude (inputs near the clamp of 2²⁴) take the scalar path.
/// </remarks>
[SkipLocalsInit]
internal static unsafe class VoronoiVector256
{
    public const int Lanes = 8;
    private const int Limit = 1 << 20;

    public static bool IsSupported => V.IsHardwareAccelerated;

    /// <summary>Encodes Lanes blocks (SoA x[8][Lanes]) at per-lane scale beta: digits[8][Lanes], overload mask. False when the batch needs the scalar path.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool EncodeBatch(float* x, float* beta, int q, int* digits, int* overload)
    {
        VF* t = stackalloc VF[8];
        VI* v = stackalloc VI[8];
        var inv = V.Create(1f) / V.Load(beta);
        var clamp = V.Create((float)(1 << 24));
        for (int i = 0; i < 8; i++) t[i] = V.Min(V.Max(V.Load(x + i * Lanes) * inv, -clamp), clamp);
        ClosestE8(t, v);
        var big = VI.Zero;
        for (int i = 0; i < 8; i++) big |= V.GreaterThan(V.Abs(v[i]), V.Create(Limit));
        if (big != VI.Zero) return false;
        // digits (G⁻¹λ) mod q
        VI* c = stackalloc VI[8];
        var v8 = v[7];
        c[7] = v8;
        c[6] = (v[6] - v8) >> 1;
        for (int i = 5; i >= 1; i--) c[i] = ((v[i] - v8) >> 1) + c[i + 1];
        c[0] = (((v[0] - v8) >> 1) + c[1]) >> 1;
        var qf = V.Create((float)q);
        var qi = V.Create(q);
        for (int i = 0; i < 8; i++)
        {
            var d = c[i] - V.ConvertToInt32(V.Floor(V.ConvertToSingle(c[i]) / qf)) * qi;
            V.Store(d, digits + i * Lanes);
        }
        VI* w = stackalloc VI[8];
        ClosestCoarse(v, q, w);
        var any = VI.Zero;
        for (int i = 0; i < 8; i++) any |= ~V.Equals(w[i], VI.Zero);
        V.Store(any, overload);
        return true;
    }

    /// <summary>Decodes Lanes blocks: digits[8][Lanes] → x[8][Lanes] = β·λ̂.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DecodeBatch(int* digits, float* beta, int q, float* x)
    {
        VI* c = stackalloc VI[8];
        VI* y = stackalloc VI[8];
        VI* w = stackalloc VI[8];
        for (int i = 0; i < 8; i++) c[i] = V.Load(digits + i * Lanes);
        var c8 = c[7];
        y[0] = (c[0] << 2) - (c[1] << 1) + c8;
        for (int i = 1; i < 6; i++) y[i] = (c[i] << 1) - (c[i + 1] << 1) + c8;
        y[6] = (c[6] << 1) + c8;
        y[7] = c8;
        ClosestCoarse(y, q, w);
        var b = V.Load(beta);
        var qi = V.Create(q);
        for (int i = 0; i < 8; i++)
            V.Store(b * (V.Create(0.5f) * V.ConvertToSingle(y[i] - qi * w[i])), x + i * Lanes);
    }

    /// <summary>
    /// <see cref="E8BoxCode.EncodeBlock"/> on Lanes blocks (SoA x[8][Lanes], per-lane vector scale):
    /// writes the word and scale index of every lane; returns a bit mask of the lanes that
    /// overload every scale and need the scalar path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int BoxEncodeBatch(float* x, float* s, int* words, int* index)
    {
        VF* t = stackalloc VF[8];
        VI* v = stackalloc VI[8];
        var sv = V.Load(s);
        var clamp = V.Create((float)(1 << 24));
        var half = V.Create(0.5f);
        var bestErr = V.Create(float.PositiveInfinity);
        var bestIdx = V.Create(-1);
        var bestWord = VI.Zero;
        var scales = E8BoxCode.BlockScales;
        for (int j = 0; j < scales.Length; j++)
        {
            var beta = sv * V.Create(scales[j]);
            var inv = V.Create(1f) / beta;
            for (int i = 0; i < 8; i++) t[i] = V.Min(V.Max(V.Load(x + i * Lanes) * inv, -clamp), clamp);
            ClosestE8(t, v);
            var p = v[0] & V.Create(1);
            var inBox = V.Create(-1);
            var word = VI.Zero;
            var err = VF.Zero;
            for (int i = 0; i < 8; i++)
            {
                var a = (i == 0 ? v[i] + p : v[i] - p) >> 1;
                inBox &= V.GreaterThan(a, V.Create(-9)) & V.LessThan(a, V.Create(8));
                word |= (a + V.Create(8)) << (4 * i);
                var e = V.Load(x + i * Lanes) - beta * (half * V.ConvertToSingle(v[i]));
                err += e * e;
            }
            var better = inBox & V.LessThan(err, bestErr).AsInt32();
            bestErr = V.ConditionalSelect(better.AsSingle(), err, bestErr);
            bestIdx = V.ConditionalSelect(better, V.Create(j), bestIdx);
            bestWord = V.ConditionalSelect(better, word, bestWord);
        }
        V.Store(bestWord, words);
        V.Store(bestIdx, index);
        return (int)V.ExtractMostSignificantBits(V.Equals(bestIdx, V.Create(-1)));
    }

    // E8Lattice.Closest on Lanes blocks.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ClosestE8(VF* t, VI* v)
    {
        VI* a = stackalloc VI[8];
        VI* b = stackalloc VI[8];
        var da = ClosestD8(t, 0f, a);
        var db = ClosestD8(t, 0.5f, b);
        // tie: lexicographically larger error x − v/2
        var decided = VI.Zero;
        var larger = VI.Zero;
        var half = V.Create(0.5f);
        for (int i = 0; i < 8; i++)
        {
            var eb = t[i] - half * V.ConvertToSingle(b[i]);
            var ea = t[i] - half * V.ConvertToSingle(a[i]);
            var ne = ~V.Equals(eb, ea).AsInt32();
            larger |= ne & ~decided & V.GreaterThan(eb, ea).AsInt32();
            decided |= ne;
        }
        var takeB = V.LessThan(db, da).AsInt32() | (V.Equals(db, da).AsInt32() & larger);
        for (int i = 0; i < 8; i++) v[i] = V.ConditionalSelect(takeB, b[i], a[i]);
    }

    // DnLattice-style closest point of D8 + s·𝟙 (doubled), as E8Lattice.ClosestD8Doubled.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VF ClosestD8(VF* x, float s, VI* v)
    {
        var sum = VI.Zero;
        var dist = VF.Zero;
        var worstAbs = V.Create(-1f);
        var worstErr = VF.Zero;
        var worst = VI.Zero;
        var sv = V.Create(s);
        var halfUp = V.Create(0.5f);
        for (int i = 0; i < 8; i++)
        {
            var t = x[i] - sv;
            var ri = V.Floor(t + halfUp);
            var e = t - ri;
            var r = V.ConvertToInt32(ri);
            v[i] = r;
            sum += r;
            dist += e * e;
            var ae = V.Abs(e);
            var gt = V.GreaterThan(ae, worstAbs);
            worstAbs = V.ConditionalSelect(gt, ae, worstAbs);
            worstErr = V.ConditionalSelect(gt, e, worstErr);
            worst = V.ConditionalSelect(gt.AsInt32(), V.Create(i), worst);
        }
        var odd = ~V.Equals(sum & V.Create(1), VI.Zero);
        var step = V.ConditionalSelect(V.GreaterThan(worstErr, VF.Zero).AsInt32(), V.Create(1), V.Create(-1));
        var e2 = worstErr - V.ConvertToSingle(step);
        dist = V.ConditionalSelect(odd.AsSingle(), dist + (e2 * e2 - worstErr * worstErr), dist);
        int twoS = s == 0f ? 0 : 1;
        for (int i = 0; i < 8; i++)
        {
            var fix = odd & V.Equals(worst, V.Create(i));
            v[i] = ((v[i] + (step & fix)) << 1) + V.Create(twoS);
        }
        return dist;
    }

    // E8Lattice.ClosestCoarse on Lanes blocks (|v| ≤ 2²⁰ + 2¹¹, so every quotient below is exact in float).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ClosestCoarse(VI* v, int q, VI* w)
    {
        VI* za = stackalloc VI[8];
        VI* zb = stackalloc VI[8];
        VI* ra = stackalloc VI[8];
        VI* rb = stackalloc VI[8];
        var qi = V.Create(q);
        for (int i = 0; i < 8; i++) { za[i] = v[i]; zb[i] = v[i] - qi; }
        var da = ClosestDnExact(za, 2 * q, ra);
        var db = ClosestDnExact(zb, 2 * q, rb);
        var decided = VI.Zero;
        var larger = VI.Zero;
        for (int i = 0; i < 8; i++)
        {
            var ea = v[i] - qi * (ra[i] << 1);
            var eb = v[i] - qi * ((rb[i] << 1) + V.Create(1));
            var ne = ~V.Equals(ea, eb);
            larger |= ne & ~decided & V.GreaterThan(eb, ea);
            decided |= ne;
        }
        var takeB = V.LessThan(db, da) | (V.Equals(db, da) & larger);
        for (int i = 0; i < 8; i++) w[i] = V.ConditionalSelect(takeB, (rb[i] << 1) + V.Create(1), ra[i] << 1);
    }

    // DnLattice.ClosestExact(z, m): closest D8 point to z/m, squared distance·m².
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VI ClosestDnExact(VI* z, int m, VI* r)
    {
        var mi = V.Create(m);
        var twoM = V.Create((float)(2 * m));
        var sum = VI.Zero;
        var dist = VI.Zero;
        var worstAbs = V.Create(-1);
        var worstErr = VI.Zero;
        var worst = VI.Zero;
        for (int i = 0; i < 8; i++)
        {
            var ri = V.ConvertToInt32(V.Floor(V.ConvertToSingle((z[i] << 1) + mi) / twoM));
            var e = z[i] - mi * ri;
            r[i] = ri;
            sum += ri;
            dist += e * e;
            var ae = V.Abs(e);
            var gt = V.GreaterThan(ae, worstAbs);
            worstAbs = V.ConditionalSelect(gt, ae, worstAbs);
            worstErr = V.ConditionalSelect(gt, e, worstErr);
            worst = V.ConditionalSelect(gt, V.Create(i), worst);
        }
        var odd = ~V.Equals(sum & V.Create(1), VI.Zero);
        var step = V.ConditionalSelect(V.GreaterThan(worstErr, VI.Zero), V.Create(1), V.Create(-1));
        var e2 = worstErr - mi * step;
        dist = V.ConditionalSelect(odd, dist + (e2 * e2 - worstErr * worstErr), dist);
        for (int i = 0; i < 8; i++) r[i] += step & odd & V.Equals(worst, V.Create(i));
        return dist;
    }
}
