using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Gosset.Util;

namespace Gosset.Rotations;

/// <summary>
/// Randomized Walsh–Hadamard rotation for n a power of two: y = H·D·x / √n with D a diagonal of
/// random signs drawn from the seed. O(n log n), exactly orthogonal up to float rounding.
/// </summary>
public sealed class RandomizedHadamard : IRotation
{
    private readonly float[] _signs;
    private readonly float _scale;

    /// <summary>Creates the rotation; <paramref name="length"/> must be a power of two.</summary>
    public RandomizedHadamard(int length, ulong seed)
    {
        if (length < 1 || !IsPowerOfTwo(length))
            throw new ArgumentException($"Hadamard length must be a power of two, got {length}.", nameof(length));
        Length = length;
        _scale = 1f / MathF.Sqrt(length);
        _signs = new float[length];
        var rng = SplitMix64.ForStream(seed, 0x4841444DUL, (ulong)length);
        for (int i = 0; i < length; i++) _signs[i] = rng.NextSign();
    }

    /// <inheritdoc/>
    public int Length { get; }

    /// <inheritdoc/>
    public void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        TensorPrimitives.Multiply(x[..Length], _signs, y[..Length]);
        Transform(y[..Length]);
        TensorPrimitives.Multiply(y[..Length], _scale, y[..Length]);
    }

    /// <inheritdoc/>
    public void ApplyInverse(ReadOnlySpan<float> y, Span<float> x)
    {
        y[..Length].CopyTo(x);
        Transform(x[..Length]);
        TensorPrimitives.Multiply(x[..Length], _signs, x[..Length]);
        TensorPrimitives.Multiply(x[..Length], _scale, x[..Length]);
    }

    /// <inheritdoc/>
    public string Describe() => $"hadamard({Length})";

    /// <summary>In-place unnormalized fast Walsh–Hadamard transform (Sylvester order).</summary>
    /// <remarks>Vectorised (bit-identical to <see cref="TransformReference"/>: the same additions in the same stages).</remarks>
    public static void Transform(Span<float> v)
    {
        if (v.Length >= 8 && IsPowerOfTwo(v.Length)) TransformVector(v);
        else TransformReference(v);
    }

    /// <summary>The specification: stage h = 1, 2, 4, … replaces each pair (v[j], v[j + h]) by (a + b, a − b).</summary>
    public static void TransformReference(Span<float> v)
    {
        int n = v.Length;
        for (int h = 1; h < n; h *= 2)
            for (int i = 0; i < n; i += 2 * h)
                for (int j = i; j < i + h; j++)
                {
                    float a = v[j], b = v[j + h];
                    v[j] = a + b; v[j + h] = a - b;
                }
    }

    /// <summary>
    /// Stages 1, 2, 4 inside each 8-float vector (a lane swap, then s + x·(±1): exactly a + b or a − b), then the
    /// stages h ≥ 8 two at a time (radix 4) over vectors, in place.
    /// </summary>
    private static void TransformVector(Span<float> v)
    {
        int n = v.Length;
        ref float p = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(v);
        var s1 = Vector256.Create(1f, -1f, 1f, -1f, 1f, -1f, 1f, -1f);
        var s2 = Vector256.Create(1f, 1f, -1f, -1f, 1f, 1f, -1f, -1f);
        var s4 = Vector256.Create(1f, 1f, 1f, 1f, -1f, -1f, -1f, -1f);
        for (int i = 0; i < n; i += 8)
        {
            var x = Vector256.LoadUnsafe(ref p, (nuint)i);
            x = Vector256.Shuffle(x, Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6)) + x * s1;
            x = Vector256.Shuffle(x, Vector256.Create(2, 3, 0, 1, 6, 7, 4, 5)) + x * s2;
            x = Vector256.Shuffle(x, Vector256.Create(4, 5, 6, 7, 0, 1, 2, 3)) + x * s4;
            x.StoreUnsafe(ref p, (nuint)i);
        }
        int h = 8;
        for (; 4 * h <= n; h *= 4)
            for (int i = 0; i < n; i += 4 * h)
                for (int j = i; j < i + h; j += 8)
                {
                    var a = Vector256.LoadUnsafe(ref p, (nuint)j);
                    var b = Vector256.LoadUnsafe(ref p, (nuint)(j + h));
                    var c = Vector256.LoadUnsafe(ref p, (nuint)(j + 2 * h));
                    var d = Vector256.LoadUnsafe(ref p, (nuint)(j + 3 * h));
                    Vector256<float> a1 = a + b, b1 = a - b, c1 = c + d, d1 = c - d;
                    (a1 + c1).StoreUnsafe(ref p, (nuint)j);
                    (b1 + d1).StoreUnsafe(ref p, (nuint)(j + h));
                    (a1 - c1).StoreUnsafe(ref p, (nuint)(j + 2 * h));
                    (b1 - d1).StoreUnsafe(ref p, (nuint)(j + 3 * h));
                }
        if (h < n)
            for (int j = 0; j < h; j += 8)
            {
                var a = Vector256.LoadUnsafe(ref p, (nuint)j);
                var b = Vector256.LoadUnsafe(ref p, (nuint)(j + h));
                (a + b).StoreUnsafe(ref p, (nuint)j);
                (a - b).StoreUnsafe(ref p, (nuint)(j + h));
            }
    }

    internal static bool IsPowerOfTwo(int n) => n > 0 && (n & (n - 1)) == 0;
}
