using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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

    /// <summary>Four dots against one shared vector <paramref name="k"/> (four independent FMA chains, one load of k);
    /// each result equals <see cref="Dot"/> of its pair bit for bit. The four query vectors are q[0..n), q[n..2n), ….</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Dot4(ReadOnlySpan<float> q, ReadOnlySpan<float> k, Span<float> dst)
    {
        int n = k.Length;
        if (!Vector256.IsHardwareAccelerated || n < 8 || (n & 7) != 0)
        {
            for (int j = 0; j < 4; j++) dst[j] = Dot(q.Slice(j * n, n), k);
            return;
        }
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int i = 0; i < n; i += 8)
        {
            var kv = Vector256.Create(k.Slice(i, 8));
            a0 = Vector256.FusedMultiplyAdd(Vector256.Create(q.Slice(i, 8)), kv, a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.Create(q.Slice(n + i, 8)), kv, a1);
            a2 = Vector256.FusedMultiplyAdd(Vector256.Create(q.Slice(2 * n + i, 8)), kv, a2);
            a3 = Vector256.FusedMultiplyAdd(Vector256.Create(q.Slice(3 * n + i, 8)), kv, a3);
        }
        dst[0] = Reduce(a0); dst[1] = Reduce(a1); dst[2] = Reduce(a2); dst[3] = Reduce(a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Reduce(Vector256<float> acc)
    {
        var s4 = acc.GetLower() + acc.GetUpper();
        return (s4[0] + s4[2]) + (s4[1] + s4[3]);
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
