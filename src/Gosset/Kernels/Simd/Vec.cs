using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gosset.Kernels.Simd;

/// <summary>
/// Width trait of the E8 kernels: one vector of <see cref="Lanes"/> 32-bit lanes, viewed as bytes,
/// int32, uint32 or float as each operation needs. Implemented by <see cref="V128"/>, <see cref="V256"/>
/// and <see cref="V512"/> on the cross-platform <c>Vector128/256/512</c> API only, so every width runs
/// (slowly, in software) even where it is not hardware accelerated; instructions that need a given
/// CPU live in the <see cref="IIsaOps{TV}"/> structs.
/// </summary>
internal unsafe interface IVec<TV> where TV : unmanaged, IVec<TV>
{
    /// <summary>32-bit lanes per vector: 4, 8 or 16.</summary>
    static abstract int Lanes { get; }
    /// <summary>Loads 4·Lanes bytes (unaligned).</summary>
    static abstract TV Load(void* p);
    /// <summary>Loads Lanes bytes and zero-extends each to a 32-bit lane.</summary>
    static abstract TV LoadWidenBytes(byte* p);
    /// <summary>Loads Lanes bytes and sign-extends each to a 32-bit lane (bit 7 of byte l in bits 7–31 of lane l).</summary>
    static abstract TV LoadWidenSignedBytes(byte* p);
    /// <summary>Every 32-bit lane = v.</summary>
    static abstract TV Int(int v);
    /// <summary>Every lane = v (float).</summary>
    static abstract TV Float(float v);
    static abstract TV And(TV a, TV b);
    static abstract TV Or(TV a, TV b);
    static abstract TV Xor(TV a, TV b);
    /// <summary>Lane-wise int32 addition.</summary>
    static abstract TV AddInt(TV a, TV b);
    /// <summary>Lane-wise int32 multiplication (low 32 bits).</summary>
    static abstract TV MulInt(TV a, TV b);
    /// <summary>Byte-wise addition (mod 256).</summary>
    static abstract TV AddBytes(TV a, TV b);
    /// <summary>Logical right shift of each 32-bit lane.</summary>
    static abstract TV ShiftRight(TV a, [ConstantExpected] int n);
    /// <summary>Left shift of each 32-bit lane.</summary>
    static abstract TV ShiftLeft(TV a, [ConstantExpected] int n);
    /// <summary>Arithmetic right shift of each 32-bit lane.</summary>
    static abstract TV ShiftRightArith(TV a, [ConstantExpected] int n);
    /// <summary>int32 → float, lane-wise (exact for the integers the kernels form).</summary>
    static abstract TV ToFloat(TV a);
    static abstract TV AddF(TV a, TV b);
    static abstract TV MulF(TV a, TV b);
    /// <summary>a·b + c with one rounding.</summary>
    static abstract TV Fma(TV a, TV b, TV c);
    /// <summary>table[idx] per lane for idx ∈ [0, Lanes); 0 for any other index.</summary>
    static abstract TV ShuffleF(TV table, TV idx);
    /// <summary>Lanes [0, Lanes/2) from <paramref name="low"/>, [Lanes/2, Lanes) from <paramref name="high"/>.</summary>
    static abstract TV Halves(TV low, TV high);

    /// <summary>
    /// The canonical sum of the 16 accumulator lanes L (a0 lanes first, then a1, a2, a3 as the width
    /// needs: 16/Lanes vectors): s8ᵢ = Lᵢ + Lᵢ₊₈, s4ᵢ = s8ᵢ + s8ᵢ₊₄, s = (s4₀ + s4₂) + (s4₁ + s4₃).
    /// Every width and the scalar reference add in this order, so results are bit-identical.
    /// </summary>
    static abstract float Reduce16(TV a0, TV a1, TV a2, TV a3);

    /// <summary>
    /// The b = 3 high-bit plane for the Lanes blocks from <paramref name="b0"/> (see <c>Digits3</c>), each digit's high bit
    /// at bit <paramref name="to"/> of its byte (2: the digit's own bit; 3: the doubled digit's), other bits 0: block B's bits
    /// sit at bits 2m (even digits) and 2m + 1 (odd digits) of dword B mod 8, m = B / 8. Widths up to 8 lanes use
    /// <see cref="Plane.HighBits{TV}"/>.
    /// </summary>
    static abstract void HighPlane(byte* plane, int b0, int to, out TV lo, out TV hi);
    /// <summary>Whether <see cref="Affine"/> runs (GFNI at this width).</summary>
    static abstract bool HasAffine { get; }
    /// <summary>vgf2p8affineqb: every byte times the 8×8 GF(2) bit matrix m (one per qword); only where <see cref="HasAffine"/>.</summary>
    static abstract TV Affine(TV v, ulong m);
}

/// <summary>The b = 3 high-bit plane read for widths of at most 8 lanes (one m per vector).</summary>
internal static unsafe class Plane
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void HighBits<TV>(byte* plane, int b0, int to, out TV lo, out TV hi) where TV : unmanaged, IVec<TV>
    {
        var v = TV.Load(plane + 4 * (b0 & 7));
        int m = b0 >> 3;
        var mask = TV.Int(0x01010101 << to);
        lo = TV.And(BitTo(v, 2 * m, to), mask);
        hi = TV.And(BitTo(v, 2 * m + 1, to), mask);
    }

    /// <summary>Moves bit s of every byte to bit <paramref name="to"/> (2 or 3; other bits are garbage the caller masks off).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV BitTo<TV>(TV v, int s, int to) where TV : unmanaged, IVec<TV> => (s - to) switch
    {
        -3 => TV.ShiftLeft(v, 3),
        -2 => TV.ShiftLeft(v, 2),
        -1 => TV.ShiftLeft(v, 1),
        0 => v,
        1 => TV.ShiftRight(v, 1),
        2 => TV.ShiftRight(v, 2),
        3 => TV.ShiftRight(v, 3),
        4 => TV.ShiftRight(v, 4),
        _ => TV.ShiftRight(v, 5),
    };
}

/// <summary>Reduce16's last steps on four floats (s4): (s4₀ + s4₂) + (s4₁ + s4₃).</summary>
internal static class Reduce
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Last4(Vector128<float> s4) => (s4.GetElement(0) + s4.GetElement(2)) + (s4.GetElement(1) + s4.GetElement(3));
}

/// <summary>128-bit width: 4 lanes.</summary>
internal readonly unsafe struct V128(Vector128<uint> v) : IVec<V128>
{
    public readonly Vector128<uint> V = v;
    public static int Lanes => 4;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Load(void* p) => new(Vector128.Load((uint*)p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V128 LoadWidenBytes(byte* p)
    {
        var b = Vector128.CreateScalar(*(uint*)p).AsByte();
        return new(Vector128.WidenLower(Vector128.WidenLower(b)));
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V128 LoadWidenSignedBytes(byte* p)
    {
        if (System.Runtime.Intrinsics.X86.Sse41.IsSupported) return new(System.Runtime.Intrinsics.X86.Sse41.ConvertToVector128Int32((sbyte*)p).AsUInt32());
        var b = Vector128.CreateScalar(*(uint*)p).AsSByte();
        return new(Vector128.WidenLower(Vector128.WidenLower(b)).AsUInt32());
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Int(int v) => new(Vector128.Create(v).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Float(float v) => new(Vector128.Create(v).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 And(V128 a, V128 b) => new(a.V & b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Or(V128 a, V128 b) => new(a.V | b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Xor(V128 a, V128 b) => new(a.V ^ b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 AddInt(V128 a, V128 b) => new(a.V + b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 MulInt(V128 a, V128 b) => new((a.V.AsInt32() * b.V.AsInt32()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 AddBytes(V128 a, V128 b) => new((a.V.AsByte() + b.V.AsByte()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 ShiftRight(V128 a, [ConstantExpected] int n) => new(a.V >>> n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 ShiftLeft(V128 a, [ConstantExpected] int n) => new(a.V << n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 ShiftRightArith(V128 a, [ConstantExpected] int n) => new((a.V.AsInt32() >> n).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 ToFloat(V128 a) => new(Vector128.ConvertToSingle(a.V.AsInt32()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 AddF(V128 a, V128 b) => new((a.V.AsSingle() + b.V.AsSingle()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 MulF(V128 a, V128 b) => new((a.V.AsSingle() * b.V.AsSingle()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Fma(V128 a, V128 b, V128 c) => new(Vector128.FusedMultiplyAdd(a.V.AsSingle(), b.V.AsSingle(), c.V.AsSingle()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 ShuffleF(V128 table, V128 idx) => new(Vector128.Shuffle(table.V.AsSingle(), idx.V.AsInt32()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Halves(V128 low, V128 high) => new(Vector128.Create(low.V.GetLower(), high.V.GetUpper()));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void HighPlane(byte* plane, int b0, int to, out V128 lo, out V128 hi) => Plane.HighBits(plane, b0, to, out lo, out hi);
    public static bool HasAffine => System.Runtime.Intrinsics.X86.Gfni.IsSupported;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V128 Affine(V128 v, ulong m) => new(System.Runtime.Intrinsics.X86.Gfni.GaloisFieldAffineTransform(v.V.AsByte(), Vector128.Create(m).AsByte(), 0).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Reduce16(V128 a0, V128 a1, V128 a2, V128 a3)
    {
        // s8 = (a0 + a2 | a1 + a3); s4 = (a0 + a2) + (a1 + a3).
        var s4 = (a0.V.AsSingle() + a2.V.AsSingle()) + (a1.V.AsSingle() + a3.V.AsSingle());
        return Reduce.Last4(s4);
    }
}

/// <summary>256-bit width: 8 lanes.</summary>
internal readonly unsafe struct V256(Vector256<uint> v) : IVec<V256>
{
    public readonly Vector256<uint> V = v;
    public static int Lanes => 8;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Load(void* p) => new(Vector256.Load((uint*)p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 LoadWidenBytes(byte* p)
    {
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) return new(System.Runtime.Intrinsics.X86.Avx2.ConvertToVector256Int32(p).AsUInt32());
        var b = Vector128.CreateScalar(*(ulong*)p).AsByte();
        var w = Vector128.WidenLower(b);
        return new(Vector256.Create(Vector128.WidenLower(w), Vector128.WidenUpper(w)));
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 LoadWidenSignedBytes(byte* p)
    {
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) return new(System.Runtime.Intrinsics.X86.Avx2.ConvertToVector256Int32((sbyte*)p).AsUInt32());
        var b = Vector128.CreateScalar(*(ulong*)p).AsSByte();
        var w = Vector128.WidenLower(b);
        return new(Vector256.Create(Vector128.WidenLower(w), Vector128.WidenUpper(w)).AsUInt32());
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Int(int v) => new(Vector256.Create(v).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Float(float v) => new(Vector256.Create(v).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 And(V256 a, V256 b) => new(a.V & b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Or(V256 a, V256 b) => new(a.V | b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Xor(V256 a, V256 b) => new(a.V ^ b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 AddInt(V256 a, V256 b) => new(a.V + b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 MulInt(V256 a, V256 b) => new((a.V.AsInt32() * b.V.AsInt32()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 AddBytes(V256 a, V256 b) => new((a.V.AsByte() + b.V.AsByte()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 ShiftRight(V256 a, [ConstantExpected] int n) => new(a.V >>> n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 ShiftLeft(V256 a, [ConstantExpected] int n) => new(a.V << n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 ShiftRightArith(V256 a, [ConstantExpected] int n) => new((a.V.AsInt32() >> n).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 ToFloat(V256 a) => new(Vector256.ConvertToSingle(a.V.AsInt32()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 AddF(V256 a, V256 b) => new((a.V.AsSingle() + b.V.AsSingle()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 MulF(V256 a, V256 b) => new((a.V.AsSingle() * b.V.AsSingle()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Fma(V256 a, V256 b, V256 c) => new(Vector256.FusedMultiplyAdd(a.V.AsSingle(), b.V.AsSingle(), c.V.AsSingle()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 ShuffleF(V256 table, V256 idx) => new(Vector256.Shuffle(table.V.AsSingle(), idx.V.AsInt32()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Halves(V256 low, V256 high) => new(Vector256.Create(low.V.GetLower(), high.V.GetUpper()));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void HighPlane(byte* plane, int b0, int to, out V256 lo, out V256 hi) => Plane.HighBits(plane, b0, to, out lo, out hi);
    public static bool HasAffine => System.Runtime.Intrinsics.X86.Gfni.V256.IsSupported;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256 Affine(V256 v, ulong m) => new(System.Runtime.Intrinsics.X86.Gfni.V256.GaloisFieldAffineTransform(v.V.AsByte(), Vector256.Create(m).AsByte(), 0).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Reduce16(V256 a0, V256 a1, V256 a2, V256 a3)
    {
        var s8 = a0.V.AsSingle() + a1.V.AsSingle();
        return Reduce.Last4(s8.GetLower() + s8.GetUpper());
    }
}

/// <summary>512-bit width: 16 lanes.</summary>
internal readonly unsafe struct V512(Vector512<uint> v) : IVec<V512>
{
    public readonly Vector512<uint> V = v;
    public static int Lanes => 16;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Load(void* p) => new(Vector512.Load((uint*)p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512 LoadWidenBytes(byte* p)
    {
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return new(System.Runtime.Intrinsics.X86.Avx512F.ConvertToVector512UInt32(Vector128.Load(p)));
        var b = Vector128.Load(p);
        var lo = Vector128.WidenLower(b); var hi = Vector128.WidenUpper(b);
        return new(Vector512.Create(
            Vector256.Create(Vector128.WidenLower(lo), Vector128.WidenUpper(lo)),
            Vector256.Create(Vector128.WidenLower(hi), Vector128.WidenUpper(hi))));
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512 LoadWidenSignedBytes(byte* p)
    {
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return new(System.Runtime.Intrinsics.X86.Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)p)).AsUInt32());
        var b = Vector128.Load((sbyte*)p);
        var lo = Vector128.WidenLower(b); var hi = Vector128.WidenUpper(b);
        return new(Vector512.Create(
            Vector256.Create(Vector128.WidenLower(lo), Vector128.WidenUpper(lo)),
            Vector256.Create(Vector128.WidenLower(hi), Vector128.WidenUpper(hi))).AsUInt32());
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Int(int v) => new(Vector512.Create(v).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Float(float v) => new(Vector512.Create(v).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 And(V512 a, V512 b) => new(a.V & b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Or(V512 a, V512 b) => new(a.V | b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Xor(V512 a, V512 b) => new(a.V ^ b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 AddInt(V512 a, V512 b) => new(a.V + b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 MulInt(V512 a, V512 b) => new((a.V.AsInt32() * b.V.AsInt32()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 AddBytes(V512 a, V512 b) => new((a.V.AsByte() + b.V.AsByte()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 ShiftRight(V512 a, [ConstantExpected] int n) => new(a.V >>> n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 ShiftLeft(V512 a, [ConstantExpected] int n) => new(a.V << n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 ShiftRightArith(V512 a, [ConstantExpected] int n) => new((a.V.AsInt32() >> n).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 ToFloat(V512 a) => new(Vector512.ConvertToSingle(a.V.AsInt32()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 AddF(V512 a, V512 b) => new((a.V.AsSingle() + b.V.AsSingle()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 MulF(V512 a, V512 b) => new((a.V.AsSingle() * b.V.AsSingle()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Fma(V512 a, V512 b, V512 c) => new(Vector512.FusedMultiplyAdd(a.V.AsSingle(), b.V.AsSingle(), c.V.AsSingle()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 ShuffleF(V512 table, V512 idx) => new(Vector512.Shuffle(table.V.AsSingle(), idx.V.AsInt32()).AsUInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Halves(V512 low, V512 high) => new(Vector512.Create(low.V.GetLower(), high.V.GetUpper()));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Reduce16(V512 a0, V512 a1, V512 a2, V512 a3)
    {
        var a = a0.V.AsSingle();
        var s8 = a.GetLower() + a.GetUpper();
        return Reduce.Last4(s8.GetLower() + s8.GetUpper());
    }

    public static bool HasAffine => System.Runtime.Intrinsics.X86.Gfni.V512.IsSupported;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512 Affine(V512 v, ulong m) => new(System.Runtime.Intrinsics.X86.Gfni.V512.GaloisFieldAffineTransform(v.V.AsByte(), Vector512.Create(m).AsByte(), 0).AsUInt32());

    /// <summary>16 lanes span two m values: lanes 0–7 read bits 2m/2m+1, lanes 8–15 bits 2m+2/2m+3 of the same 8 dwords.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void HighPlane(byte* plane, int b0, int to, out V512 lo, out V512 hi)
    {
        var h = Vector256.Load((uint*)plane);
        var w = Vector512.Create(h, h);
        int m = b0 >> 3; // 0 or 2
        var mask = Vector512.Create(0x01010101u << to);
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            // Per-half shift counts (vpsllvd/vpsrlvd): bit s of each byte to bit `to` (lanes 8–15 read bits two higher).
            var c8 = Vector512.Create(0u, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
            uint t = (uint)to;
            if (m == 0)
            {
                lo = new(System.Runtime.Intrinsics.X86.Avx512F.ShiftLeftLogicalVariable(w, Vector512.Create(t) - c8) & mask);
                hi = new(System.Runtime.Intrinsics.X86.Avx512F.ShiftRightLogicalVariable(w << (to - 1), c8) & mask);
            }
            else
            {
                lo = new(System.Runtime.Intrinsics.X86.Avx512F.ShiftRightLogicalVariable(w, Vector512.Create(4 - t) + c8) & mask);
                hi = new(System.Runtime.Intrinsics.X86.Avx512F.ShiftRightLogicalVariable(w, Vector512.Create(5 - t) + c8) & mask);
            }
            return;
        }
        var v = new V512(w);
        var mk = new V512(mask);
        // m = 0: bits 0,1 (lanes 0–7) and 2,3 (lanes 8–15); m = 2: bits 4,5 and 6,7.
        lo = And(Halves(Plane.BitTo(v, 2 * m, to), Plane.BitTo(v, 2 * m + 2, to)), mk);
        hi = And(Halves(Plane.BitTo(v, 2 * m + 1, to), Plane.BitTo(v, 2 * m + 3, to)), mk);
    }
}
