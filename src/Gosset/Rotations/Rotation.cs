namespace Gosset.Rotations;

/// <summary>Factory for the rotations both encoders of a product must share.</summary>
public static class Rotation
{
    /// <summary>
    /// The default seeded rotation for vectors of <paramref name="length"/>: randomized Hadamard for
    /// powers of two, <see cref="KroneckerRotation"/> otherwise. Same (length, seed) → same rotation.
    /// </summary>
    public static IRotation Create(int length, ulong seed)
        => RandomizedHadamard.IsPowerOfTwo(length)
            ? new RandomizedHadamard(length, seed)
            : new KroneckerRotation(length, seed);

    /// <summary>Creates the rotation of the given kind ("hadamard"/"random" or "none").</summary>
    public static IRotation Create(RotationKind kind, int length, ulong seed)
        => kind == RotationKind.None ? new IdentityRotation(length) : Create(length, seed);
}

/// <summary>Whether vectors are rotated before quantization.</summary>
public enum RotationKind
{
    /// <summary>No rotation.</summary>
    None = 0,
    /// <summary>Seeded randomized Hadamard (Kronecker with a random orthogonal factor for other lengths).</summary>
    Hadamard = 1,
}
