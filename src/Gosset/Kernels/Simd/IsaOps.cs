using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gosset.Kernels.Simd;

/// <summary>
/// The CPU-specific steps of the E8 kernels for one width <typeparamref name="TV"/>: the u8 × s8
/// dot product of 4-byte lanes and the block-scale table lookup. Defaults are portable (built from
/// <see cref="IVec{TV}"/>); an ISA struct overrides what its instructions do faster. Every
/// implementation returns the same bits.
/// </summary>
internal unsafe interface IIsaOps<TV> where TV : unmanaged, IVec<TV>
{
    /// <summary>Whether the instructions this struct uses exist on this CPU and runtime.</summary>
    static abstract bool IsSupported { get; }

    /// <summary>2·Σⱼ (uloⱼ·sloⱼ + uhiⱼ·shiⱼ) over the 4 bytes of each 32-bit lane; u unsigned digits (&lt; 16), s signed activations. Exact in int32.</summary>
    static abstract TV Dot2(TV ulo, TV slo, TV uhi, TV shi);
    /// <summary>
    /// table[raw &amp; 7] (higher bits of raw ignored); the first 8 floats of the table are t0 (and t1 when Lanes = 4).
    /// Where Lanes = 16, t0's entries 8–15 repeat 0–7 (<see cref="PackedE8Matrix"/>'s narrow tables do), so a 16-entry
    /// permute may read bit 3 of raw too.
    /// </summary>
    static abstract TV Lookup8(TV t0, TV t1, TV raw);
    /// <summary>table[idx] for idx ∈ [0, 16): the 16 floats are t0, t1, t2, t3 (as many as 16/Lanes).</summary>
    static abstract TV Lookup16(TV t0, TV t1, TV t2, TV t3, TV idx);
    /// <summary>All-ones lanes where the block's digit sum is odd (lo, hi: the block's digit bytes).</summary>
    static abstract TV ParityMask(TV lo, TV hi);
    /// <summary>
    /// s·(Σⱼ (lo2ⱼ·sloⱼ + hi2ⱼ·shiⱼ) + e₀ + e₁) per 32-bit lane: lo2/hi2 doubled digits (&lt; 32), slo/shi int8
    /// activations, e₀/e₁ the signed 16-bit halves of e, s the low 16 bits of s (≤ 4095). Exact in int32
    /// (vpmaddubsw, 16-bit add, vpmaddwd by s: every 16-bit partial stays below 2¹⁵).
    /// </summary>
    static abstract TV ScaledBlockDot(TV lo2, TV slo, TV hi2, TV shi, TV e, TV s);
    /// <summary>Per 32-bit lane: b where bit 3 of <paramref name="x"/> is set (a narrow side field's parity bit), else a.</summary>
    static abstract TV SelectBit3(TV x, TV a, TV b);
    /// <summary>
    /// <see cref="ScaledBlockDot"/> of activations read where they are used: slo at <paramref name="q"/>, shi at <paramref name="qh"/>, and e =
    /// e1[…] in the lanes where bit 31 of <paramref name="x"/> is set, else e0[…]. Where every activation is used once (one row) the loads then fold into the
    /// instructions; loaded first and passed in, each stays a separate instruction (the JIT does not fold an inlined argument),
    /// which cost the one-row AVX2 loop about 13 % (docs/benchmarks.md).
    /// </summary>
    static abstract TV ScaledBlockDotAt(TV lo2, sbyte* q, TV hi2, sbyte* qh, TV x, int* e0, int* e1, TV s);
    /// <summary>
    /// <see cref="ScaledBlockDot"/>(lo2, q[…], hi2, qh[…], e[…], s) with all three activation operands read where they are used
    /// (as in <see cref="ScaledBlockDotAt"/>): the small-batch kernels, whose decoded digits carry the block's parity, need no
    /// select (lo2/hi2 &lt; 32 still).
    /// </summary>
    static abstract TV ScaledBlockDotSum(TV lo2, sbyte* q, TV hi2, sbyte* qh, int* e, TV s);
    /// <summary>
    /// The pre-decoding GEMM's product of two blocks per 32-bit lane: s_A·(h_A + e_A) + s_B·(h_B + e_B), where h_A sums wᵢ·xᵢ over
    /// bytes 0–1 and h_B over bytes 2–3 of the lane in w0 … w3 (unsigned, &lt; 32) against the four activation vectors at
    /// x + <paramref name="o"/> (signed bytes), e is the fifth vector there (16-bit halves e_A, e_B) and s holds s_A, s_B in its
    /// 16-bit halves. Each h + e is a block's Σᵢ vᵢx̃ᵢ, |·| ≤ 17·8·127 &lt; 2¹⁵, so 16-bit sums wrap back to it exactly. Every
    /// address is x + a constant where o is one (a pointer x + o passed in took an lea and a register of its own).
    /// </summary>
    static abstract TV ScaledPairDot(TV w0, TV w1, TV w2, TV w3, byte* x, int o, TV s);
    /// <summary>
    /// Doubled digits of b = 4 digit bytes v: lo2 = 2·(v &amp; 0x0F), hi2 = 2·(v &gt;&gt; 4) in every byte
    /// (<see cref="Digits4.LoadDoubled"/>).
    /// </summary>
    static abstract void DoubledNibbles(TV v, out TV lo2, out TV hi2);
    /// <summary>Σⱼ wⱼ·xⱼ over the 4 signed bytes of each 32-bit lane (w, x ∈ [−127, 127]). Exact in int32.</summary>
    static abstract TV DotSigned(TV w, TV x);
}

/// <summary>Portable operations for any width (the cross-platform API only; runs everywhere). The other ops structs reuse what they do not accelerate.</summary>
internal readonly unsafe struct PortableOps<TV> : IIsaOps<TV> where TV : unmanaged, IVec<TV>
{
    public static bool IsSupported => true;

    /// <summary>
    /// 2·Σⱼ (uloⱼ·sloⱼ + uhiⱼ·shiⱼ) over the 4 bytes of each 32-bit lane; u unsigned (digits, &lt; 16),
    /// s signed (activations). Exact in int32.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Dot2(TV ulo, TV slo, TV uhi, TV shi)
    {
        var d = Dot(ulo, slo, uhi, shi);
        return TV.AddInt(d, d);
    }

    /// <summary>Σⱼ (uloⱼ·sloⱼ + uhiⱼ·shiⱼ) over the 4 bytes of each 32-bit lane (u unsigned bytes, s signed).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Dot(TV ulo, TV slo, TV uhi, TV shi)
    {
        var acc = TV.Int(0);
        var ff = TV.Int(0xFF);
        acc = TV.AddInt(acc, TV.MulInt(TV.And(ulo, ff), TV.ShiftRightArith(TV.ShiftLeft(slo, 24), 24)));
        acc = TV.AddInt(acc, TV.MulInt(TV.And(uhi, ff), TV.ShiftRightArith(TV.ShiftLeft(shi, 24), 24)));
        acc = TV.AddInt(acc, TV.MulInt(TV.And(TV.ShiftRight(ulo, 8), ff), TV.ShiftRightArith(TV.ShiftLeft(slo, 16), 24)));
        acc = TV.AddInt(acc, TV.MulInt(TV.And(TV.ShiftRight(uhi, 8), ff), TV.ShiftRightArith(TV.ShiftLeft(shi, 16), 24)));
        acc = TV.AddInt(acc, TV.MulInt(TV.And(TV.ShiftRight(ulo, 16), ff), TV.ShiftRightArith(TV.ShiftLeft(slo, 8), 24)));
        acc = TV.AddInt(acc, TV.MulInt(TV.And(TV.ShiftRight(uhi, 16), ff), TV.ShiftRightArith(TV.ShiftLeft(shi, 8), 24)));
        acc = TV.AddInt(acc, TV.MulInt(TV.ShiftRight(ulo, 24), TV.ShiftRightArith(slo, 24)));
        return TV.AddInt(acc, TV.MulInt(TV.ShiftRight(uhi, 24), TV.ShiftRightArith(shi, 24)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV ScaledBlockDot(TV lo2, TV slo, TV hi2, TV shi, TV e, TV s)
    {
        var d = TV.AddInt(Dot(lo2, slo, hi2, shi), TV.AddInt(TV.ShiftRightArith(TV.ShiftLeft(e, 16), 16), TV.ShiftRightArith(e, 16)));
        return TV.MulInt(d, TV.And(s, TV.Int(0xFFFF)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV SelectBit3(TV x, TV a, TV b) => TV.Xor(a, TV.And(TV.Xor(a, b), TV.ShiftRightArith(TV.ShiftLeft(x, 28), 31)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV ScaledBlockDotAt(TV lo2, sbyte* q, TV hi2, sbyte* qh, TV x, int* e0, int* e1, TV s)
    {
        TV a = TV.Load(e0);
        return ScaledBlockDot(lo2, TV.Load(q), hi2, TV.Load(qh), TV.Xor(a, TV.And(TV.Xor(a, TV.Load(e1)), TV.ShiftRightArith(x, 31))), s);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV ScaledBlockDotSum(TV lo2, sbyte* q, TV hi2, sbyte* qh, int* e, TV s) => ScaledBlockDot(lo2, TV.Load(q), hi2, TV.Load(qh), TV.Load(e), s);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV ScaledPairDot(TV w0, TV w1, TV w2, TV w3, byte* x, int o, TV s)
    {
        int n = TV.Lanes * 4;
        TV hA = TV.Int(0), hB = hA;
        HalfDots(w0, TV.Load(x + o), ref hA, ref hB);
        HalfDots(w1, TV.Load(x + (o + n)), ref hA, ref hB);
        HalfDots(w2, TV.Load(x + (o + 2 * n)), ref hA, ref hB);
        HalfDots(w3, TV.Load(x + (o + 3 * n)), ref hA, ref hB);
        var e = TV.Load(x + (o + 4 * n));
        hA = TV.AddInt(hA, TV.ShiftRightArith(TV.ShiftLeft(e, 16), 16));
        hB = TV.AddInt(hB, TV.ShiftRightArith(e, 16));
        return TV.AddInt(TV.MulInt(hA, TV.And(s, TV.Int(0xFFFF))), TV.MulInt(hB, TV.ShiftRight(s, 16)));
    }

    /// <summary>hA += u₀s₀ + u₁s₁, hB += u₂s₂ + u₃s₃ over the bytes of each lane (u from w unsigned, s from x signed).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void HalfDots(TV w, TV x, ref TV hA, ref TV hB)
    {
        var m = TV.Int(0xFF);
        var p0 = TV.MulInt(TV.And(w, m), TV.ShiftRightArith(TV.ShiftLeft(x, 24), 24));
        var p1 = TV.MulInt(TV.And(TV.ShiftRight(w, 8), m), TV.ShiftRightArith(TV.ShiftLeft(x, 16), 24));
        var p2 = TV.MulInt(TV.And(TV.ShiftRight(w, 16), m), TV.ShiftRightArith(TV.ShiftLeft(x, 8), 24));
        var p3 = TV.MulInt(TV.ShiftRight(w, 24), TV.ShiftRightArith(x, 24));
        hA = TV.AddInt(hA, TV.AddInt(p0, p1));
        hB = TV.AddInt(hB, TV.AddInt(p2, p3));
    }

    /// <summary>Shifting the dword by 1 (3) puts each low (high) nibble at bits 1–4 of its byte; bits crossing bytes are masked off.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void DoubledNibbles(TV v, out TV lo2, out TV hi2)
    {
        var m = TV.Int(0x1E1E1E1E);
        lo2 = TV.And(TV.ShiftLeft(v, 1), m);
        hi2 = TV.And(TV.ShiftRight(v, 3), m);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV DotSigned(TV w, TV x)
    {
        var acc = TV.MulInt(TV.ShiftRightArith(w, 24), TV.ShiftRightArith(x, 24));
        acc = TV.AddInt(acc, TV.MulInt(TV.ShiftRightArith(TV.ShiftLeft(w, 8), 24), TV.ShiftRightArith(TV.ShiftLeft(x, 8), 24)));
        acc = TV.AddInt(acc, TV.MulInt(TV.ShiftRightArith(TV.ShiftLeft(w, 16), 24), TV.ShiftRightArith(TV.ShiftLeft(x, 16), 24)));
        return TV.AddInt(acc, TV.MulInt(TV.ShiftRightArith(TV.ShiftLeft(w, 24), 24), TV.ShiftRightArith(TV.ShiftLeft(x, 24), 24)));
    }

    /// <summary>table[raw &amp; 7] (bits above 2 of <paramref name="raw"/> are ignored): the table's first 8 floats are t0 (and t1 when Lanes = 4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Lookup8(TV t0, TV t1, TV raw)
    {
        var idx = TV.And(raw, TV.Int(7));
        // Out-of-range shuffle indices give 0, so OR joins the halves bit-exactly (also for integer tables).
        return TV.Lanes >= 8 ? TV.ShuffleF(t0, idx) : TV.Or(TV.ShuffleF(t0, idx), TV.ShuffleF(t1, TV.AddInt(idx, TV.Int(-4))));
    }

    /// <summary>table[idx] for idx ∈ [0, 16): the 16 floats are t0, t1, t2, t3 (as many as 16/Lanes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Lookup16(TV t0, TV t1, TV t2, TV t3, TV idx)
    {
        var r = TV.ShuffleF(t0, idx);
        if (TV.Lanes == 16) return r;
        r = TV.Or(r, TV.ShuffleF(t1, TV.AddInt(idx, TV.Int(-TV.Lanes))));
        if (TV.Lanes == 8) return r;
        r = TV.Or(r, TV.ShuffleF(t2, TV.AddInt(idx, TV.Int(-8))));
        return TV.Or(r, TV.ShuffleF(t3, TV.AddInt(idx, TV.Int(-12))));
    }

    /// <summary>All-ones lanes where the block's digit sum is odd (lo, hi: the block's digit bytes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV ParityMask(TV lo, TV hi)
    {
        var x = TV.Xor(lo, hi);
        x = TV.Xor(x, TV.ShiftRight(x, 16));
        x = TV.Xor(x, TV.ShiftRight(x, 8));
        return TV.ShiftRightArith(TV.ShiftLeft(x, 31), 31);
    }
}

/// <summary>AVX2 without VNNI: vpmaddubsw (u8·s8 → s16 pairs) + vpmaddwd by 2, vpermps lookups.</summary>
internal readonly unsafe struct Avx2Ops : IIsaOps<V256>
{
    public static bool IsSupported => Avx2.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 Dot2(V256 ulo, V256 slo, V256 uhi, V256 shi)
    {
        // |u·s| ≤ 15·128, so each 16-bit pair sum and the sum of both stays below 2¹⁵.
        var m = Avx2.MultiplyAddAdjacent(ulo.V.AsByte(), slo.V.AsSByte()) + Avx2.MultiplyAddAdjacent(uhi.V.AsByte(), shi.V.AsSByte());
        return new(Avx2.MultiplyAddAdjacent(m, Vector256.Create((short)2)).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 Lookup8(V256 t0, V256 t1, V256 raw) => new(Avx2.PermuteVar8x32(t0.V.AsSingle(), raw.V.AsInt32()).AsUInt32()); // vpermps reads bits 0–2 only

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 Lookup16(V256 t0, V256 t1, V256 t2, V256 t3, V256 idx)
    {
        var a = Avx2.PermuteVar8x32(t0.V.AsSingle(), idx.V.AsInt32());
        var b = Avx2.PermuteVar8x32(t1.V.AsSingle(), idx.V.AsInt32());
        return new(Avx.BlendVariable(a, b, (idx.V << 28).AsSingle()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 ParityMask(V256 lo, V256 hi)
    {
        var s = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent((lo.V + hi.V).AsByte(), Vector256.Create((sbyte)1)), Vector256.Create((short)1));
        return new((s << 31 >> 31).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 ScaledBlockDot(V256 lo2, V256 slo, V256 hi2, V256 shi, V256 e, V256 s)
    {
        var h = Avx2.MultiplyAddAdjacent(lo2.V.AsByte(), slo.V.AsSByte()) + Avx2.MultiplyAddAdjacent(hi2.V.AsByte(), shi.V.AsSByte()) + e.V.AsInt16();
        return new(Avx2.MultiplyAddAdjacent(h, s.V.AsInt16()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 SelectBit3(V256 x, V256 a, V256 b) => new(Avx.BlendVariable(a.V.AsSingle(), b.V.AsSingle(), (x.V << 28).AsSingle()).AsUInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 ScaledBlockDotAt(V256 lo2, sbyte* q, V256 hi2, sbyte* qh, V256 x, int* e0, int* e1, V256 s)
    {
        var e = Avx.BlendVariable(Avx.LoadVector256((float*)e0), Avx.LoadVector256((float*)e1), x.V.AsSingle()).AsInt16();
        var h = Avx2.MultiplyAddAdjacent(lo2.V.AsByte(), Avx.LoadVector256(q)) + Avx2.MultiplyAddAdjacent(hi2.V.AsByte(), Avx.LoadVector256(qh)) + e;
        return new(Avx2.MultiplyAddAdjacent(h, s.V.AsInt16()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 ScaledBlockDotSum(V256 lo2, sbyte* q, V256 hi2, sbyte* qh, int* e, V256 s)
    {
        var h = Avx2.MultiplyAddAdjacent(lo2.V.AsByte(), Avx.LoadVector256(q)) + Avx2.MultiplyAddAdjacent(hi2.V.AsByte(), Avx.LoadVector256(qh)) + Avx.LoadVector256((short*)e);
        return new(Avx2.MultiplyAddAdjacent(h, s.V.AsInt16()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 ScaledPairDot(V256 w0, V256 w1, V256 w2, V256 w3, byte* x, int o, V256 s)
    {
        var h = Avx2.MultiplyAddAdjacent(w0.V.AsByte(), Avx.LoadVector256((sbyte*)(x + o))) + Avx2.MultiplyAddAdjacent(w1.V.AsByte(), Avx.LoadVector256((sbyte*)(x + (o + 32))))
              + Avx2.MultiplyAddAdjacent(w2.V.AsByte(), Avx.LoadVector256((sbyte*)(x + (o + 64)))) + Avx2.MultiplyAddAdjacent(w3.V.AsByte(), Avx.LoadVector256((sbyte*)(x + (o + 96))))
              + Avx.LoadVector256((short*)(x + (o + 128)));
        return new(Avx2.MultiplyAddAdjacent(h, s.V.AsInt16()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void DoubledNibbles(V256 v, out V256 lo2, out V256 hi2) => GfniNibbles.Doubled(v, out lo2, out hi2);

    /// <summary>vpmaddubsw of |w| and x·sign(w) (pairs ≤ 2·127² &lt; 2¹⁵), then vpmaddwd by 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 DotSigned(V256 w, V256 x)
    {
        var p = Avx2.MultiplyAddAdjacent(Avx2.Abs(w.V.AsSByte()), Avx2.Sign(x.V.AsSByte(), w.V.AsSByte()));
        return new(Avx2.MultiplyAddAdjacent(p, Vector256.Create((short)1)).AsUInt32());
    }
}

/// <summary>AVX-VNNI (256-bit vpdpbusd) with the AVX2 lookups.</summary>
internal readonly unsafe struct AvxVnniOps : IIsaOps<V256>
{
    public static bool IsSupported => AvxVnni.IsSupported && Avx2.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 Dot2(V256 ulo, V256 slo, V256 uhi, V256 shi)
    {
        var d = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ulo.V.AsByte(), slo.V.AsSByte()), uhi.V.AsByte(), shi.V.AsSByte());
        return new((d + d).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 Lookup8(V256 t0, V256 t1, V256 idx) => Avx2Ops.Lookup8(t0, t1, idx);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 Lookup16(V256 t0, V256 t1, V256 t2, V256 t3, V256 idx) => Avx2Ops.Lookup16(t0, t1, t2, t3, idx);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 ParityMask(V256 lo, V256 hi)
    {
        var s = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, (lo.V + hi.V).AsByte(), Vector256.Create((sbyte)1));
        return new((s << 31 >> 31).AsUInt32());
    }

    // The scale multiplies 16-bit partial sums (vpmaddwd), which VNNI's u8·s8 → s32 does not give: AVX2's steps.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 ScaledBlockDot(V256 lo2, V256 slo, V256 hi2, V256 shi, V256 e, V256 s) => Avx2Ops.ScaledBlockDot(lo2, slo, hi2, shi, e, s);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 SelectBit3(V256 x, V256 a, V256 b) => Avx2Ops.SelectBit3(x, a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 ScaledBlockDotAt(V256 lo2, sbyte* q, V256 hi2, sbyte* qh, V256 x, int* e0, int* e1, V256 s) => Avx2Ops.ScaledBlockDotAt(lo2, q, hi2, qh, x, e0, e1, s);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 ScaledBlockDotSum(V256 lo2, sbyte* q, V256 hi2, sbyte* qh, int* e, V256 s) => Avx2Ops.ScaledBlockDotSum(lo2, q, hi2, qh, e, s);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 ScaledPairDot(V256 w0, V256 w1, V256 w2, V256 w3, byte* x, int o, V256 s) => Avx2Ops.ScaledPairDot(w0, w1, w2, w3, x, o, s);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void DoubledNibbles(V256 v, out V256 lo2, out V256 hi2) => Avx2Ops.DoubledNibbles(v, out lo2, out hi2);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 DotSigned(V256 w, V256 x)
        => new(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.Abs(w.V.AsSByte()), Avx2.Sign(x.V.AsSByte(), w.V.AsSByte())).AsUInt32());
}

/// <summary>AVX-512 BW: 512-bit vpmaddubsw + vpmaddwd, vpermps over all 16 scales. (.NET 10 exposes no 512-bit vpdpbusd.)</summary>
internal readonly unsafe struct Avx512Ops : IIsaOps<V512>
{
    public static bool IsSupported => Avx512BW.IsSupported && Avx512F.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512 Dot2(V512 ulo, V512 slo, V512 uhi, V512 shi)
    {
        var m = Avx512BW.MultiplyAddAdjacent(ulo.V.AsByte(), slo.V.AsSByte()) + Avx512BW.MultiplyAddAdjacent(uhi.V.AsByte(), shi.V.AsSByte());
        return new(Avx512BW.MultiplyAddAdjacent(m, Vector512.Create((short)2)).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512 Lookup8(V512 t0, V512 t1, V512 raw) => new(Avx512F.PermuteVar16x32(t0.V.AsSingle(), raw.V.AsInt32()).AsUInt32()); // bits 0–3: the table repeats after 8

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512 Lookup16(V512 t0, V512 t1, V512 t2, V512 t3, V512 idx) => new(Avx512F.PermuteVar16x32(t0.V.AsSingle(), idx.V.AsInt32()).AsUInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512 ParityMask(V512 lo, V512 hi)
    {
        var s = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent((lo.V + hi.V).AsByte(), Vector512.Create((sbyte)1)), Vector512.Create((short)1));
        return new((s << 31 >> 31).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512 ScaledBlockDot(V512 lo2, V512 slo, V512 hi2, V512 shi, V512 e, V512 s)
    {
        var h = Avx512BW.MultiplyAddAdjacent(lo2.V.AsByte(), slo.V.AsSByte()) + Avx512BW.MultiplyAddAdjacent(hi2.V.AsByte(), shi.V.AsSByte()) + e.V.AsInt16();
        return new(Avx512BW.MultiplyAddAdjacent(h, s.V.AsInt16()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512 SelectBit3(V512 x, V512 a, V512 b)
    {
        // A compare feeding ConditionalSelect becomes a mask register: vptestnmd + vpblendmd.
        return new(Vector512.ConditionalSelect(Vector512.Equals(x.V & Vector512.Create(8u), Vector512<uint>.Zero), a.V, b.V));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512 ScaledBlockDotAt(V512 lo2, sbyte* q, V512 hi2, sbyte* qh, V512 x, int* e0, int* e1, V512 s)
    {
        var e = Vector512.ConditionalSelect(Vector512.LessThan(x.V.AsInt32(), Vector512<int>.Zero).AsUInt32(), Vector512.Load((uint*)e1), Vector512.Load((uint*)e0)).AsInt16();
        var h = Avx512BW.MultiplyAddAdjacent(lo2.V.AsByte(), Vector512.Load(q)) + Avx512BW.MultiplyAddAdjacent(hi2.V.AsByte(), Vector512.Load(qh)) + e;
        return new(Avx512BW.MultiplyAddAdjacent(h, s.V.AsInt16()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512 ScaledBlockDotSum(V512 lo2, sbyte* q, V512 hi2, sbyte* qh, int* e, V512 s)
    {
        var h = Avx512BW.MultiplyAddAdjacent(lo2.V.AsByte(), Vector512.Load(q)) + Avx512BW.MultiplyAddAdjacent(hi2.V.AsByte(), Vector512.Load(qh)) + Vector512.Load((short*)e);
        return new(Avx512BW.MultiplyAddAdjacent(h, s.V.AsInt16()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512 ScaledPairDot(V512 w0, V512 w1, V512 w2, V512 w3, byte* x, int o, V512 s)
    {
        var h = Avx512BW.MultiplyAddAdjacent(w0.V.AsByte(), Vector512.Load((sbyte*)(x + o))) + Avx512BW.MultiplyAddAdjacent(w1.V.AsByte(), Vector512.Load((sbyte*)(x + (o + 64))))
              + Avx512BW.MultiplyAddAdjacent(w2.V.AsByte(), Vector512.Load((sbyte*)(x + (o + 128)))) + Avx512BW.MultiplyAddAdjacent(w3.V.AsByte(), Vector512.Load((sbyte*)(x + (o + 192))))
              + Vector512.Load((short*)(x + (o + 256)));
        return new(Avx512BW.MultiplyAddAdjacent(h, s.V.AsInt16()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void DoubledNibbles(V512 v, out V512 lo2, out V512 hi2) => GfniNibbles.Doubled(v, out lo2, out hi2);

    /// <summary>As AVX2 (no vpsignb at 512 bits: x is negated where w &lt; 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512 DotSigned(V512 w, V512 x)
    {
        var ws = w.V.AsSByte(); var xs = x.V.AsSByte();
        var sx = Vector512.ConditionalSelect(Vector512.LessThan(ws, Vector512<sbyte>.Zero), Vector512<sbyte>.Zero - xs, xs);
        var p = Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(ws), sx);
        return new(Avx512BW.MultiplyAddAdjacent(p, Vector512.Create((short)1)).AsUInt32());
    }
}

/// <summary>SSSE3 (x86 128-bit): pmaddubsw + pmaddwd; portable lookups.</summary>
internal readonly unsafe struct Ssse3Ops : IIsaOps<V128>
{
    public static bool IsSupported => Ssse3.IsSupported && Sse41.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V128 Dot2(V128 ulo, V128 slo, V128 uhi, V128 shi)
    {
        var m = Ssse3.MultiplyAddAdjacent(ulo.V.AsByte(), slo.V.AsSByte()) + Ssse3.MultiplyAddAdjacent(uhi.V.AsByte(), shi.V.AsSByte());
        return new(Sse2.MultiplyAddAdjacent(m, Vector128.Create((short)2)).AsUInt32());
    }

    /// <summary>Byte indices 4·(idx mod 4) + 0..3 in every lane: pshufb then picks a float from a 4-float table.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> FloatBytes(Vector128<uint> idx)
        => Ssse3.Shuffle((idx << 2).AsByte(), Vector128.Create((byte)0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12)) + Vector128.Create(0x03020100u).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Pick(V128 t, Vector128<byte> bi) => Ssse3.Shuffle(t.V.AsByte(), bi).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V128 Lookup8(V128 t0, V128 t1, V128 raw)
    {
        var idx = raw.V & Vector128.Create(7u);
        var bi = FloatBytes(idx);
        return new(Sse41.BlendVariable(Pick(t0, bi), Pick(t1, bi), (idx << 29).AsSingle()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V128 Lookup16(V128 t0, V128 t1, V128 t2, V128 t3, V128 idx)
    {
        var bi = FloatBytes(idx.V);
        var b2 = (idx.V << 29).AsSingle();
        var lo = Sse41.BlendVariable(Pick(t0, bi), Pick(t1, bi), b2);
        var hi = Sse41.BlendVariable(Pick(t2, bi), Pick(t3, bi), b2);
        return new(Sse41.BlendVariable(lo, hi, (idx.V << 28).AsSingle()).AsUInt32());
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 ParityMask(V128 lo, V128 hi) => PortableOps<V128>.ParityMask(lo, hi);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V128 ScaledBlockDot(V128 lo2, V128 slo, V128 hi2, V128 shi, V128 e, V128 s)
    {
        var h = Ssse3.MultiplyAddAdjacent(lo2.V.AsByte(), slo.V.AsSByte()) + Ssse3.MultiplyAddAdjacent(hi2.V.AsByte(), shi.V.AsSByte()) + e.V.AsInt16();
        return new(Sse2.MultiplyAddAdjacent(h, s.V.AsInt16()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V128 SelectBit3(V128 x, V128 a, V128 b) => new(Sse41.BlendVariable(a.V.AsSingle(), b.V.AsSingle(), (x.V << 28).AsSingle()).AsUInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V128 ScaledBlockDotAt(V128 lo2, sbyte* q, V128 hi2, sbyte* qh, V128 x, int* e0, int* e1, V128 s)
    {
        var e = Sse41.BlendVariable(Sse.LoadVector128((float*)e0), Sse.LoadVector128((float*)e1), x.V.AsSingle()).AsInt16();
        var h = Ssse3.MultiplyAddAdjacent(lo2.V.AsByte(), Sse2.LoadVector128(q)) + Ssse3.MultiplyAddAdjacent(hi2.V.AsByte(), Sse2.LoadVector128(qh)) + e;
        return new(Sse2.MultiplyAddAdjacent(h, s.V.AsInt16()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V128 ScaledBlockDotSum(V128 lo2, sbyte* q, V128 hi2, sbyte* qh, int* e, V128 s)
    {
        var h = Ssse3.MultiplyAddAdjacent(lo2.V.AsByte(), Sse2.LoadVector128(q)) + Ssse3.MultiplyAddAdjacent(hi2.V.AsByte(), Sse2.LoadVector128(qh)) + Sse2.LoadVector128((short*)e);
        return new(Sse2.MultiplyAddAdjacent(h, s.V.AsInt16()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V128 ScaledPairDot(V128 w0, V128 w1, V128 w2, V128 w3, byte* x, int o, V128 s)
    {
        var h = Ssse3.MultiplyAddAdjacent(w0.V.AsByte(), Sse2.LoadVector128((sbyte*)(x + o))) + Ssse3.MultiplyAddAdjacent(w1.V.AsByte(), Sse2.LoadVector128((sbyte*)(x + (o + 16))))
              + Ssse3.MultiplyAddAdjacent(w2.V.AsByte(), Sse2.LoadVector128((sbyte*)(x + (o + 32)))) + Ssse3.MultiplyAddAdjacent(w3.V.AsByte(), Sse2.LoadVector128((sbyte*)(x + (o + 48))))
              + Sse2.LoadVector128((short*)(x + (o + 64)));
        return new(Sse2.MultiplyAddAdjacent(h, s.V.AsInt16()).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void DoubledNibbles(V128 v, out V128 lo2, out V128 hi2) => GfniNibbles.Doubled(v, out lo2, out hi2);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V128 DotSigned(V128 w, V128 x)
    {
        var p = Ssse3.MultiplyAddAdjacent(Ssse3.Abs(w.V.AsSByte()), Ssse3.Sign(x.V.AsSByte(), w.V.AsSByte()));
        return new(Sse2.MultiplyAddAdjacent(p, Vector128.Create((short)1)).AsUInt32());
    }
}

/// <summary>
/// GF(2) bit matrices for vgf2p8affineqb (result bit i of a byte is the parity of matrix byte 7 − i AND the byte):
/// <see cref="Low"/> maps bits 0–3 to bits 1–4 (2·(v &amp; 0x0F)), <see cref="High"/> bits 4–7 to bits 1–4 (2·(v &gt;&gt; 4)).
/// </summary>
internal static class GfniNibbles
{
    public const ulong Low = 0x0001020408000000;
    public const ulong High = 0x0010204080000000;

    /// <summary><see cref="IIsaOps{TV}.DoubledNibbles"/> in one GFNI affine transform per output where the width has it, else the portable shifts and masks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Doubled<TV>(TV v, out TV lo2, out TV hi2) where TV : unmanaged, IVec<TV>
    {
        if (TV.HasAffine) { lo2 = TV.Affine(v, Low); hi2 = TV.Affine(v, High); }
        else PortableOps<TV>.DoubledNibbles(v, out lo2, out hi2);
    }
}
