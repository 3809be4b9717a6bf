using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gosset.Llm.Inference;

/// <summary>
/// Dot product and axpy over one attention head (head_size floats, a few dozen): inlined so the score and value loops
/// over the cache pay no call overhead per position. The dot's summation order is fixed (8 lanes with FMA, lanes
/// reduced (j + 4), then (0+2)+(1+3), the tail last), so the vector path equals <see cref="DotReference"/> bit for bit.
/// </summary>
internal static class HeadOps
{
    /// <summary>Σ a[i]·b[i] in the documented order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (!Vector256.IsHardwareAccelerated || a.Length < 8) return DotReference(a, b);
        int n8 = a.Length & ~7;
        var acc = Vector256<float>.Zero;
        for (int i = 0; i < n8; i += 8) acc = Vector256.FusedMultiplyAdd(Vector256.Create(a.Slice(i, 8)), Vector256.Create(b.Slice(i, 8)), acc);
        var s4 = acc.GetLower() + acc.GetUpper();
        float s = (s4[0] + s4[2]) + (s4[1] + s4[3]);
        for (int i = n8; i < a.Length; i++) s = MathF.FusedMultiplyAdd(a[i], b[i], s);
        return s;
    }

    /// <summary>
    /// Eight dots of one query against eight rows (rows[p·stride …], p &lt; 8), each equal to <see cref="Dot"/> bit for bit:
    /// eight independent FMA chains (a key row per chain, the query loaded once per step), then the same reduction order.
    /// </summary>
    public static void Dot8(ReadOnlySpan<float> q, ReadOnlySpan<float> rows, int stride, Span<float> dst)
    {
        int n = q.Length;
        if (7L * stride + n > rows.Length || dst.Length < 8) throw new ArgumentException("rows or dst too short");
        if (!Vector256.IsHardwareAccelerated || !Sse.IsSupported || n < 8 || (n & 7) != 0)
        {
            for (int p = 0; p < 8; p++) dst[p] = Dot(q, rows.Slice(p * stride, n));
            return;
        }
        ref float r = ref MemoryMarshal.GetReference(rows);
        ref float qr = ref MemoryMarshal.GetReference(q);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        nuint st = (nuint)stride;
        for (nuint i = 0; i < (nuint)n; i += 8)
        {
            var qv = Vector256.LoadUnsafe(ref qr, i);
            a0 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref r, i), a0);
            a1 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref r, st + i), a1);
            a2 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref r, 2 * st + i), a2);
            a3 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref r, 3 * st + i), a3);
            a4 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref r, 4 * st + i), a4);
            a5 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref r, 5 * st + i), a5);
            a6 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref r, 6 * st + i), a6);
            a7 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref r, 7 * st + i), a7);
        }
        Reduce4(a0, a1, a2, a3).CopyTo(dst);
        Reduce4(a4, a5, a6, a7).CopyTo(dst.Slice(4));
    }

    /// <summary>The reductions of four accumulators (lanes j + j+4, then (0+2)+(1+3)) as one vector: a 4×4 transpose between.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> Reduce4(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3)
    {
        Vector128<float> t0 = a0.GetLower() + a0.GetUpper(), t1 = a1.GetLower() + a1.GetUpper();
        Vector128<float> t2 = a2.GetLower() + a2.GetUpper(), t3 = a3.GetLower() + a3.GetUpper();
        Vector128<float> u0 = Sse.UnpackLow(t0, t1), u1 = Sse.UnpackLow(t2, t3), u2 = Sse.UnpackHigh(t0, t1), u3 = Sse.UnpackHigh(t2, t3);
        Vector128<float> c0 = Sse.MoveLowToHigh(u0, u1), c1 = Sse.MoveHighToLow(u1, u0), c2 = Sse.MoveLowToHigh(u2, u3), c3 = Sse.MoveHighToLow(u3, u2);
        return (c0 + c2) + (c1 + c3);
    }

    /// <summary>
    /// dst[i] = Σₛ w[s]·rows[s·stride + i] for i &lt; dst.Length, accumulated from 0 in s order with one fused multiply-add
    /// per term (so it equals <see cref="AddScaled"/> applied for s = 0, 1, … to a cleared dst, bit for bit); 64 entries
    /// of dst stay in registers while s runs (a remainder below 64 takes the axpy path). With <paramref name="accumulate"/>
    /// the sums start from dst instead of 0, so rows given in consecutive chunks give the bits of one call over all of them.
    /// </summary>
    public static void WeightedSum(ReadOnlySpan<float> w, ReadOnlySpan<float> rows, int stride, Span<float> dst, bool accumulate = false)
    {
        int hs = dst.Length, n = w.Length, i = 0;
        if (n > 0 && (long)(n - 1) * stride + hs > rows.Length) throw new ArgumentException("rows too short", nameof(rows));
        if (Vector256.IsHardwareAccelerated)
        {
            ref float r0 = ref MemoryMarshal.GetReference(rows);
            for (; i + 64 <= hs; i += 64)
            {
                // Eight accumulators: eight FMA chains in flight (four leave the FMA units waiting on latency).
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                if (accumulate)
                {
                    var d = dst.Slice(i, 64);
                    a0 = Vector256.Create(d); a1 = Vector256.Create(d.Slice(8)); a2 = Vector256.Create(d.Slice(16)); a3 = Vector256.Create(d.Slice(24));
                    a4 = Vector256.Create(d.Slice(32)); a5 = Vector256.Create(d.Slice(40)); a6 = Vector256.Create(d.Slice(48)); a7 = Vector256.Create(d.Slice(56));
                }
                for (int s = 0; s < n; s++)
                {
                    var b = Vector256.Create(w[s]);
                    nuint o = (nuint)((long)s * stride + i);
                    a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref r0, o), b, a0);
                    a1 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref r0, o + 8), b, a1);
                    a2 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref r0, o + 16), b, a2);
                    a3 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref r0, o + 24), b, a3);
                    a4 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref r0, o + 32), b, a4);
                    a5 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref r0, o + 40), b, a5);
                    a6 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref r0, o + 48), b, a6);
                    a7 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref r0, o + 56), b, a7);
                }
                a0.CopyTo(dst.Slice(i)); a1.CopyTo(dst.Slice(i + 8)); a2.CopyTo(dst.Slice(i + 16)); a3.CopyTo(dst.Slice(i + 24));
                a4.CopyTo(dst.Slice(i + 32)); a5.CopyTo(dst.Slice(i + 40)); a6.CopyTo(dst.Slice(i + 48)); a7.CopyTo(dst.Slice(i + 56));
            }
        }
        if (i < hs)
        {
            var rest = dst.Slice(i);
            if (!accumulate) rest.Clear();
            for (int s = 0; s < n; s++) AddScaled(w[s], rows.Slice(s * stride + i, hs - i), rest);
        }
    }

    /// <summary>The scalar specification of <see cref="Dot"/>.</summary>
    public static float DotReference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Span<float> l = stackalloc float[8];
        l.Clear();
        int n8 = a.Length & ~7;
        for (int i = 0; i < n8; i++) l[i & 7] = MathF.FusedMultiplyAdd(a[i], b[i], l[i & 7]);
        for (int j = 0; j < 4; j++) l[j] += l[j + 4];
        float s = (l[0] + l[2]) + (l[1] + l[3]);
        for (int i = n8; i < a.Length; i++) s = MathF.FusedMultiplyAdd(a[i], b[i], s);
        return s;
    }

    /// <summary>y[i] += w·x[i] (one fused multiply-add per entry, elementwise, so any width gives the same bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddScaled(float w, ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var wv = Vector256.Create(w);
            for (; i + 8 <= x.Length; i += 8)
                Vector256.FusedMultiplyAdd(Vector256.Create(x.Slice(i, 8)), wv, Vector256.Create(y.Slice(i, 8))).CopyTo(y.Slice(i, 8));
        }
        for (; i < x.Length; i++) y[i] = MathF.FusedMultiplyAdd(x[i], w, y[i]);
    }
}
