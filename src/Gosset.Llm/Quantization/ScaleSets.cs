using Gosset.Codes;

namespace Gosset.Llm.Quantization;

/// <summary>Tensor kinds with their own published NestQuant scale set.</summary>
internal enum TensorKind { Weights, Activations, Keys, Values }

/// <summary>
/// E8 scale sets in lattice units for unit-RMS data (β = β₀ / q). Internal stand-in for the core
/// library's Gosset.Codes.ScaleSet, which was not on main when this was written.
/// </summary>
internal static class ScaleSets
{
    /// <summary>Published NestQuant β₀ (public NestQuant code, q = 14, rows normalised to norm √N).</summary>
    public static float[] PublishedBeta0(TensorKind kind) => kind switch
    {
        TensorKind.Weights => [4.0f, 5.5f, 7.0f, 18.0f],
        TensorKind.Activations => [3.47f, 4.74f, 6.90f, 18.11f],
        TensorKind.Keys => [3.50f, 4.58f, 6.47f, 17.06f],
        _ => [3.53f, 5.59f, 9.62f, 29.03f],
    };

    /// <summary>The published set for q (β = β₀ / q), resampled geometrically when k ≠ 4.</summary>
    public static float[] NestQuant(TensorKind kind, int q, int k)
    {
        var b0 = PublishedBeta0(kind);
        if (k == 4) return b0.Select(b => b / q).ToArray();
        var r = new float[k];
        for (int i = 0; i < k; i++)
        {
            double t = k == 1 ? 0 : (double)i / (k - 1) * 3;
            int j = Math.Min(2, (int)t);
            double f = t - j;
            r[i] = (float)(Math.Exp(Math.Log(b0[j]) * (1 - f) + Math.Log(b0[j + 1]) * f) / q);
        }
        return r;
    }

    /// <summary>Total squared error of unit-RMS 8-blocks when each picks its best β from <paramref name="betas"/>.</summary>
    public static double Error(float[] blocks, VoronoiCode code, float[] betas, double[]? perBeta = null)
    {
        int n = blocks.Length / 8;
        var errs = new double[n];
        Parallel.For(0, n, i =>
        {
            Span<byte> d = stackalloc byte[8];
            Span<float> r = stackalloc float[8];
            var u = blocks.AsSpan(8 * i, 8);
            double best = double.PositiveInfinity;
            foreach (float b in betas)
            {
                code.Encode(u, b, ReadOnlySpan<float>.Empty, d);
                code.Decode(d, b, ReadOnlySpan<float>.Empty, r);
                double e = 0;
                for (int j = 0; j < 8; j++) { double t = r[j] - u[j]; e += t * t; }
                best = Math.Min(best, e);
            }
            errs[i] = best;
        });
        return errs.Sum();
    }

    /// <summary>
    /// Fits k scales to sample blocks by coordinate descent on a multiplicative grid, starting from
    /// <paramref name="initial"/>: each β in turn moves to the grid value that minimizes the total error
    /// with best-β selection per block. Returns the sorted set.
    /// </summary>
    public static float[] Fit(float[] blocks, int q, float[] initial, int rounds = 3)
    {
        var code = new VoronoiCode(q);
        var betas = (float[])initial.Clone();
        double best = Error(blocks, code, betas);
        double[] steps = [0.7, 0.8, 0.87, 0.93, 0.97, 1.03, 1.07, 1.15, 1.25, 1.4];
        for (int round = 0; round < rounds; round++)
        {
            bool improved = false;
            for (int j = 0; j < betas.Length; j++)
            {
                float keep = betas[j];
                float bestValue = keep;
                foreach (double s in steps)
                {
                    betas[j] = (float)(keep * Math.Pow(s, 1.0 / (round + 1)));
                    double e = Error(blocks, code, betas);
                    if (e < best) { best = e; bestValue = betas[j]; improved = true; }
                }
                betas[j] = bestValue;
            }
            if (!improved) break;
        }
        Array.Sort(betas);
        return betas;
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
