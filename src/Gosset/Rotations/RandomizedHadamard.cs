using System.Numerics.Tensors;
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
    public static void Transform(Span<float> v)
    {
        int n = v.Length;
        int h = 1;
        for (; h < n && h < 8; h *= 2)
            for (int i = 0; i < n; i += 2 * h)
                for (int j = i; j < i + h; j++)
                {
                    float a = v[j], b = v[j + h];
                    v[j] = a + b; v[j + h] = a - b;
                }
        if (h >= n) return;
        Span<float> tmp = h <= 4096 ? stackalloc float[Math.Min(n / 2, 4096)] : default;
        float[]? rented = null;
        for (; h < n; h *= 2)
        {
            if (tmp.Length < h) { rented ??= new float[n / 2]; tmp = rented; }
            for (int i = 0; i < n; i += 2 * h)
            {
                Span<float> a = v.Slice(i, h), b = v.Slice(i + h, h), t = tmp[..h];
                a.CopyTo(t);
                TensorPrimitives.Add(t, b, a);
                TensorPrimitives.Subtract(t, b, b);
            }
        }
    }

    internal static bool IsPowerOfTwo(int n) => n > 0 && (n & (n - 1)) == 0;
}
