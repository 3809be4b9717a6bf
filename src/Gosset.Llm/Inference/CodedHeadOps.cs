using Gosset.Codes;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gosset.Llm.Inference;

/// <summary>
/// Reads cached heads that are stored as block codes: per entry a small integer v (sbyte) and per 8-block one float
/// scale s (how <see cref="VectorCodec.ToBlockInt8"/> unpacks an E8 or INT code). Attention unpacks a few
/// dozen positions at a time into a buffer that stays in L1 and runs the float head operations (<see cref="HeadOps"/>)
/// on it: the cache holds 1.5 bytes per entry instead of a 4-byte float copy, each code is unpacked once for all query
/// heads of its group, and without a per-channel affine the scores and sums are bit for bit those of attention over the
/// decoded rows (the affine is applied to the query and the output instead of to every cached row).
/// </summary>
internal static class CodedHeadOps
{
    /// <summary>Whether the vector path runs (else the reference does).</summary>
    public static bool IsAccelerated => Avx2.IsSupported;

    /// <summary>dst[p·hs + i] = s[p, i/8]·v[p, i] for rows p &lt; rows: values at p·valueStride, scales at p·scaleStride.</summary>
    /// <param name="values">Code values of row 0 onwards.</param>
    /// <param name="valueStride">Entries between rows of <paramref name="values"/>.</param>
    /// <param name="scales">Block scales of row 0 onwards.</param>
    /// <param name="scaleStride">Entries between rows of <paramref name="scales"/>.</param>
    /// <param name="dst">[rows, hs], hs = dst.Length / rows a multiple of 8.</param>
    /// <param name="rows">Rows to unpack.</param>
    /// <exception cref="ArgumentException">A length does not fit.</exception>
    public static void Unpack(ReadOnlySpan<sbyte> values, int valueStride, ReadOnlySpan<float> scales, int scaleStride, Span<float> dst, int rows)
    {
        int hs = Check(values, valueStride, scales, scaleStride, dst, rows);
        if (!IsAccelerated) { UnpackReference(values, valueStride, scales, scaleStride, dst, rows); return; }
        ref sbyte vr = ref MemoryMarshal.GetReference(values);
        ref float sr = ref MemoryMarshal.GetReference(scales);
        ref float dr = ref MemoryMarshal.GetReference(dst);
        int blocks = hs / 8;
        for (int p = 0; p < rows; p++)
        {
            ref sbyte v = ref Unsafe.Add(ref vr, p * valueStride);
            ref float sc = ref Unsafe.Add(ref sr, p * scaleStride);
            ref float d = ref Unsafe.Add(ref dr, p * hs);
            for (int b = 0; b < blocks; b++)
                (Vector256.Create(Unsafe.Add(ref sc, b)) * Widen(ref v, 8 * b)).StoreUnsafe(ref d, (nuint)(8 * b));
        }
    }

    /// <summary>The scalar specification of <see cref="Unpack"/>.</summary>
    public static void UnpackReference(ReadOnlySpan<sbyte> values, int valueStride, ReadOnlySpan<float> scales, int scaleStride, Span<float> dst, int rows)
    {
        int hs = Check(values, valueStride, scales, scaleStride, dst, rows);
        for (int p = 0; p < rows; p++)
            for (int i = 0; i < hs; i++) dst[p * hs + i] = scales[p * scaleStride + i / 8] * values[p * valueStride + i];
    }

    /// <summary>Eight code values at <paramref name="offset"/> as floats (vpmovsxbd, vcvtdq2ps).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen(ref sbyte v, int offset)
        => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.As<sbyte, byte>(ref Unsafe.Add(ref v, offset)))).AsSByte()));

    private static int Check(ReadOnlySpan<sbyte> values, int valueStride, ReadOnlySpan<float> scales, int scaleStride, Span<float> dst, int rows)
    {
        if (rows <= 0 || dst.Length % rows != 0) throw new ArgumentException("dst is not rows × head size", nameof(dst));
        int hs = dst.Length / rows;
        if (hs % 8 != 0) throw new ArgumentException("head size is not a multiple of 8", nameof(dst));
        if ((long)(rows - 1) * valueStride + hs > values.Length || (long)(rows - 1) * scaleStride + hs / 8 > scales.Length)
            throw new ArgumentException("codes too short");
        return hs;
    }
}
