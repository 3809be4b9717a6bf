namespace Gosset.Rotations;

/// <summary>An orthogonal transform of ℝⁿ shared by encoders (and inverted by decoders).</summary>
public interface IRotation
{
    /// <summary>Length n of the vectors it acts on.</summary>
    int Length { get; }

    /// <summary>y = R·x. <paramref name="x"/> and <paramref name="y"/> may be the same span.</summary>
    void Apply(ReadOnlySpan<float> x, Span<float> y);

    /// <summary>x = Rᵀ·y (the inverse). The spans may be the same.</summary>
    void ApplyInverse(ReadOnlySpan<float> y, Span<float> x);

    /// <summary>Short description (kind and factors), e.g. "hadamard(4096)".</summary>
    string Describe();
}
