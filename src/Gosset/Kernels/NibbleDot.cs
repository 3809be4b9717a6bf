using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gosset.Kernels;

/// <summary>
/// The inner step shared by the E8 box-code and INT4 float kernels: a vector of 32-bit words holds
/// one block (or group slice) per lane, nibble j of every word is entry j, and the activations are
/// stored transposed so that entry j of all lanes is the 16-float row x[16j …]. Both formats differ
/// only in the offsets and scales applied around these sums.
/// </summary>
internal static unsafe class NibbleDot
{
    /// <summary>Σⱼ uⱼ·x[16j + lane] over the 8 nibbles uⱼ of each word (two accumulators, FMA chain).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Dot(Vector512<uint> wv, float* x, Vector512<uint> fifteen)
    {
        var s = Vector512.ConvertToSingle((wv & fifteen).AsInt32()) * Vector512.Load(x);
        var t = Vector512.ConvertToSingle(((wv >>> 4) & fifteen).AsInt32()) * Vector512.Load(x + 16);
        s = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(((wv >>> 8) & fifteen).AsInt32()), Vector512.Load(x + 32), s);
        t = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(((wv >>> 12) & fifteen).AsInt32()), Vector512.Load(x + 48), t);
        s = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(((wv >>> 16) & fifteen).AsInt32()), Vector512.Load(x + 64), s);
        t = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(((wv >>> 20) & fifteen).AsInt32()), Vector512.Load(x + 80), t);
        s = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(((wv >>> 24) & fifteen).AsInt32()), Vector512.Load(x + 96), s);
        t = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle((wv >>> 28).AsInt32()), Vector512.Load(x + 112), t);
        return s + t;
    }

    /// <summary>Σⱼ dⱼ·x[16j + lane] for entries already decoded to floats (shared by a batch).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Dot(Vector512<float> d0, Vector512<float> d1, Vector512<float> d2, Vector512<float> d3,
        Vector512<float> d4, Vector512<float> d5, Vector512<float> d6, Vector512<float> d7, float* x)
    {
        var s = d0 * Vector512.Load(x);
        var t = d1 * Vector512.Load(x + 16);
        s = Vector512.FusedMultiplyAdd(d2, Vector512.Load(x + 32), s);
        t = Vector512.FusedMultiplyAdd(d3, Vector512.Load(x + 48), t);
        s = Vector512.FusedMultiplyAdd(d4, Vector512.Load(x + 64), s);
        t = Vector512.FusedMultiplyAdd(d5, Vector512.Load(x + 80), t);
        s = Vector512.FusedMultiplyAdd(d6, Vector512.Load(x + 96), s);
        t = Vector512.FusedMultiplyAdd(d7, Vector512.Load(x + 112), t);
        return s + t;
    }

    /// <summary>Σⱼ dⱼ·x[16j + lane] at 256 bits (lanes are half of a 16-block group).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Dot(Vector256<float> d0, Vector256<float> d1, Vector256<float> d2, Vector256<float> d3,
        Vector256<float> d4, Vector256<float> d5, Vector256<float> d6, Vector256<float> d7, float* x)
    {
        var s = d0 * Vector256.Load(x);
        var t = d1 * Vector256.Load(x + 16);
        s = Vector256.FusedMultiplyAdd(d2, Vector256.Load(x + 32), s);
        t = Vector256.FusedMultiplyAdd(d3, Vector256.Load(x + 48), t);
        s = Vector256.FusedMultiplyAdd(d4, Vector256.Load(x + 64), s);
        t = Vector256.FusedMultiplyAdd(d5, Vector256.Load(x + 80), t);
        s = Vector256.FusedMultiplyAdd(d6, Vector256.Load(x + 96), s);
        t = Vector256.FusedMultiplyAdd(d7, Vector256.Load(x + 112), t);
        return s + t;
    }
}
