using Gosset.Codes;

namespace Gosset.Llm.Quantization;

/// <summary>Tensor kinds with their own published NestQuant scale set.</summary>
internal enum TensorKind { Weights, Activations, Keys, Values }

/// <summary>
/// E8 scale sets in lattice units for unit-RMS data (β = β₀ / q). Thin adapter over the core library's
/// <see cref="ScaleSet"/>.
/// </summary>
internal static class ScaleSets
{
    /// <summary>The published NestQuant set for q (β = β₀ / q; k = 4), or the core library's Gaussian-tuned default for other k.</summary>
    public static float[] NestQuant(TensorKind kind, int q, int k) => k == 4
        ? ScaleSet.NestQuant(q, kind switch { TensorKind.Weights => NestQuantTensor.Weights, TensorKind.Activations => NestQuantTensor.Activations, TensorKind.Keys => NestQuantTensor.Keys, _ => NestQuantTensor.Values }).Betas.ToArray()
        : ScaleSet.Default(q, k).Betas.ToArray();

    /// <summary>The core library's default set tuned on a Gaussian block model (rotated, unit-RMS data).</summary>
    public static float[] Gaussian(int q, int k) => ScaleSet.Default(q, k).Betas.ToArray();

    /// <summary>Fits k scales to unit-RMS sample blocks (the core library's DP + coordinate descent, least-error selection).</summary>
    public static float[] Fit(float[] blocks, int q, int k) => ScaleSet.Fit(blocks, q, k).Betas.ToArray();

    /// <summary>Splits vectors into 8-blocks as they are (already normalised); at most <paramref name="maxBlocks"/> blocks, evenly strided.</summary>
    public static float[] RawBlocks(IReadOnlyList<float[]> vectors, int maxBlocks)
    {
        var all = vectors.SelectMany(v => v.Take(v.Length / 8 * 8)).ToArray();
        int blocks = all.Length / 8;
        if (blocks <= maxBlocks) return all;
        var r = new float[maxBlocks * 8];
        for (int i = 0; i < maxBlocks; i++) Array.Copy(all, 8 * (int)((long)i * blocks / maxBlocks), r, 8 * i, 8);
        return r;
    }

    /// <summary>Splits vectors into 8-blocks after dividing each vector by its RMS; at most <paramref name="maxBlocks"/> blocks, evenly strided.</summary>
    public static float[] NormalizedBlocks(IReadOnlyList<float[]> vectors, int maxBlocks)
    {
        var all = new List<float>();
        foreach (var v in vectors)
        {
            double ss = 0;
            foreach (float x in v) ss += (double)x * x;
            float rms = (float)Math.Sqrt(ss / v.Length);
            if (rms == 0) continue;
            for (int i = 0; i < v.Length / 8 * 8; i++) all.Add(v[i] / rms);
        }
        int blocks = all.Count / 8;
        if (blocks <= maxBlocks) return all.Take(blocks * 8).ToArray();
        var r = new float[maxBlocks * 8];
        for (int i = 0; i < maxBlocks; i++)
        {
            int src = (int)((long)i * blocks / maxBlocks);
            for (int j = 0; j < 8; j++) r[8 * i + j] = all[8 * src + j];
        }
        return r;
    }
}
