namespace Gosset.Kernels;

/// <summary>
/// Run-time dispatch for the <see cref="E8BoxCode"/> matrix kernels. Every variant stays
/// reachable through an explicit <see cref="KernelIsa"/>, so tests run all the variants the
/// machine supports against <see cref="E8GemvScalar"/>.
/// </summary>
internal static class E8Kernels
{
    /// <summary>Largest batch the small-batch kernels take in one call.</summary>
    public const int MaxBatch = 16;

    public static void Gemv(KernelIsa isa, PackedE8Matrix m, E8Activations a, int r0, int r1, float[] y)
    {
        switch (isa)
        {
            case KernelIsa.Vector512: E8GemvVector512.Gemv(m, a, r0, r1, y); break;
            case KernelIsa.Vector256: E8GemvVector256.Gemv(m, a, r0, r1, y); break;
            case KernelIsa.Vector128: E8GemvVector128.Gemv(m, a, r0, r1, y); break;
            default: E8GemvScalar.Gemv(m, a, r0, r1, y); break;
        }
    }

    public static void Decode(KernelIsa isa, PackedE8Matrix m, int r0, int r1, Span<float> dst)
    {
        if (dst.Length < (long)(r1 - r0) * m.Cols) throw new ArgumentException("Destination is too short.", nameof(dst));
        switch (isa)
        {
            case KernelIsa.Vector512: E8GemvVector512.Decode(m, r0, r1, dst); break;
            case KernelIsa.Vector256: E8GemvVector256.Decode(m, r0, r1, dst); break;
            case KernelIsa.Vector128: E8GemvVector128.Decode(m, r0, r1, dst); break;
            default: E8GemvScalar.Decode(m, r0, r1, dst); break;
        }
    }
}
