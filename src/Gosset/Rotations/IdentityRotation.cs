namespace Gosset.Rotations;

/// <summary>The identity (no rotation), for ablations and baselines.</summary>
public sealed class IdentityRotation(int length) : IRotation
{
    /// <inheritdoc/>
    public int Length { get; } = length;
    /// <inheritdoc/>
    public void Apply(ReadOnlySpan<float> x, Span<float> y) => x[..Length].CopyTo(y);
    /// <inheritdoc/>
    public void ApplyInverse(ReadOnlySpan<float> y, Span<float> x) => y[..Length].CopyTo(x);
    /// <inheritdoc/>
    public string Describe() => $"identity({Length})";
}
