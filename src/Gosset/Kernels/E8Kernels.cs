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

    /// <summary>
    /// Groups (128 columns) per column tile: the activations a tile needs for the whole batch stay
    /// within about 32 KiB (L1) while every row of the thread's chunk streams past them.
    /// </summary>
    public static int TileGroups(ActivationMode mode, int batch, int groups)
    {
        int bytesPerGroup = mode == ActivationMode.Float32 ? 128 * 4 + 16 * 8 : 128 + 16 * 12;
        int t = Math.Max(2, (32 << 10) / (bytesPerGroup * batch));
        // Even tiles: 112 groups at t = 51 become 3 tiles of 38 rather than 51 + 51 + 10.
        int tiles = (groups + t - 1) / t;
        return (groups + tiles - 1) / tiles;
    }

    /// <summary>Runs a kernel over rows [r0, r1) tile by tile; y (zeroed by the caller) accumulates.</summary>
    public static void Tiled(int groups, int tile, int r0, int r1, Action<int, int, int, int> kernel)
    {
        for (int g0 = 0; g0 < groups; g0 += tile) kernel(r0, r1, g0, Math.Min(groups, g0 + tile));
    }

    public static void Gemv(KernelIsa isa, PackedE8Matrix m, E8Activations a, int r0, int r1, int g0, int g1, float[] y)
    {
        switch (isa)
        {
            case KernelIsa.Vector512: E8GemvVector512.Gemv(m, a, r0, r1, g0, g1, y); break;
            case KernelIsa.Vector256: E8GemvVector256.Gemv(m, a, r0, r1, g0, g1, y); break;
            case KernelIsa.Vector128: E8GemvVector128.Gemv(m, a, r0, r1, g0, g1, y); break;
            default: E8GemvScalar.Gemv(m, a, r0, r1, g0, g1, y); break;
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
