using System.Runtime.CompilerServices;

namespace Gosset.Kernels.Simd;

/// <summary>
/// How the digits of b bits per entry sit in a group record of <see cref="PackedE8Matrix"/> and how a
/// vector of Lanes blocks is unpacked into its digit bytes: <c>lo</c> holds digits 0, 2, 4, 6 and
/// <c>hi</c> digits 1, 3, 5, 7 of block b0 + l in the 4 bytes of lane l.
/// </summary>
internal unsafe interface IDigits
{
    /// <summary>Bits per entry b.</summary>
    static abstract int Bits { get; }
    /// <summary>Bytes of digits per 32-block group record.</summary>
    static abstract int DigitBytes { get; }
    /// <summary>Digit bytes of the Lanes blocks starting at block b0 of the group (b0 a multiple of Lanes).</summary>
    static abstract void Load<TV>(byte* rec, int b0, out TV lo, out TV hi) where TV : unmanaged, IVec<TV>;
    /// <summary>As <see cref="Load"/> with every digit byte doubled (2u), as the grouped int8 kernels multiply them.</summary>
    static abstract void LoadDoubled<TV, TOps>(byte* rec, int b0, out TV lo2, out TV hi2) where TV : unmanaged, IVec<TV> where TOps : struct, IIsaOps<TV>;
}

/// <summary>b = 4: block B's 8 nibbles are dword B (digit 2j in the low nibble of byte j, digit 2j + 1 in its high nibble).</summary>
internal readonly unsafe struct Digits4 : IDigits
{
    public static int Bits => 4;
    public static int DigitBytes => 128;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load<TV>(byte* rec, int b0, out TV lo, out TV hi) where TV : unmanaged, IVec<TV>
    {
        var v = TV.Load(rec + 4 * b0);
        var m = TV.Int(0x0F0F0F0F);
        lo = TV.And(v, m);
        hi = TV.And(TV.ShiftRight(v, 4), m);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadDoubled<TV, TOps>(byte* rec, int b0, out TV lo2, out TV hi2) where TV : unmanaged, IVec<TV> where TOps : struct, IIsaOps<TV>
        => TOps.DoubledNibbles(TV.Load(rec + 4 * b0), out lo2, out hi2);
}

/// <summary>
/// b = 2: dword d (0..15), byte j holds digit 2j of block d in bits 0–1, digit 2j + 1 of block d in
/// bits 4–5, and the same digits of block d + 16 in bits 2–3 and 6–7: every width unpacks with one
/// uniform shift.
/// </summary>
internal readonly unsafe struct Digits2 : IDigits
{
    public static int Bits => 2;
    public static int DigitBytes => 64;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load<TV>(byte* rec, int b0, out TV lo, out TV hi) where TV : unmanaged, IVec<TV>
    {
        var v = TV.Load(rec + 4 * (b0 & 15));
        if (b0 >= 16) v = TV.ShiftRight(v, 2);
        var m = TV.Int(0x03030303);
        lo = TV.And(v, m);
        hi = TV.And(TV.ShiftRight(v, 4), m);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadDoubled<TV, TOps>(byte* rec, int b0, out TV lo2, out TV hi2) where TV : unmanaged, IVec<TV> where TOps : struct, IIsaOps<TV>
    {
        var v = TV.Load(rec + 4 * (b0 & 15));
        var m = TV.Int(0x06060606);
        if (b0 >= 16)
        {
            lo2 = TV.And(TV.ShiftRight(v, 1), m);
            hi2 = TV.And(TV.ShiftRight(v, 5), m);
        }
        else
        {
            lo2 = TV.And(TV.ShiftLeft(v, 1), m);
            hi2 = TV.And(TV.ShiftRight(v, 3), m);
        }
    }
}

/// <summary>
/// b = 3: the low two bits of every digit as in <see cref="Digits2"/> (64 bytes), then a 32-byte plane
/// of high bits: dword d (0..7), byte j, bits 2m and 2m + 1 hold the high bits of digits 2j and
/// 2j + 1 of block d + 8m (m = 0..3).
/// </summary>
internal readonly unsafe struct Digits3 : IDigits
{
    public static int Bits => 3;
    public static int DigitBytes => 96;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load<TV>(byte* rec, int b0, out TV lo, out TV hi) where TV : unmanaged, IVec<TV>
    {
        Digits2.Load(rec, b0, out lo, out hi);
        TV.HighPlane(rec + 64, b0, 2, out var l2, out var h2);
        lo = TV.Or(lo, l2);
        hi = TV.Or(hi, h2);
    }
    /// <summary>The doubled low bits (<see cref="Digits2"/>) with the high bits placed straight at bit 3: no doubling add.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadDoubled<TV, TOps>(byte* rec, int b0, out TV lo2, out TV hi2) where TV : unmanaged, IVec<TV> where TOps : struct, IIsaOps<TV>
    {
        Digits2.LoadDoubled<TV, TOps>(rec, b0, out lo2, out hi2);
        TV.HighPlane(rec + 64, b0, 3, out var l2, out var h2);
        lo2 = TV.Or(lo2, l2);
        hi2 = TV.Or(hi2, h2);
    }
}

/// <summary>
/// Block-side field mode. Each block has a 4-bit side field (byte B mod 16 of the side area, low
/// nibble for blocks 0–15 and high nibble for 16–31). Narrow (k ≤ 8): scale index in bits 0–2 and
/// the digit parity in bit 3, so the kernel does not recompute it. Wide (k ≤ 16): the scale index.
/// </summary>
internal interface ISide { static abstract bool Narrow { get; } }
internal readonly struct NarrowSide : ISide { public static bool Narrow => true; }
internal readonly struct WideSide : ISide { public static bool Narrow => false; }
