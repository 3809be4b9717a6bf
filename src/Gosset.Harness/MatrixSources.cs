using Gosset.Matrix;
using Gosset.Util;

namespace Gosset.Harness;

/// <summary>Seeded synthetic matrix pairs (A, B) for rate–distortion and robustness runs.</summary>
public static class MatrixSources
{
    /// <summary>Names of the synthetic sources.</summary>
    public static readonly string[] Names = ["gaussian", "heavy-tailed", "sparse", "low-rank", "outlier-rows", "outlier-cols", "nonzero-mean", "correlated"];

    /// <summary>Generates the pair for a named source (n×a and n×b).</summary>
    public static (DenseMatrix A, DenseMatrix B) Pair(string source, int n, int a, int b, ulong seed)
    {
        var rng = new SplitMix64(seed);
        switch (source)
        {
            case "gaussian": return (Fill(n, a, ref rng, Gaussian), Fill(n, b, ref rng, Gaussian));
            case "heavy-tailed": // Student t with 3 degrees of freedom
                return (Fill(n, a, ref rng, StudentT3), Fill(n, b, ref rng, StudentT3));
            case "sparse": // 90% zeros
                return (Fill(n, a, ref rng, Sparse), Fill(n, b, ref rng, Sparse));
            case "low-rank": // rank 8 plus 1% noise
                return (LowRank(n, a, 8, ref rng), LowRank(n, b, 8, ref rng));
            case "outlier-rows": // 1% of the n coordinates are 30× larger in every column (LLM-style outlier channels)
            {
                var (x, y) = (Fill(n, a, ref rng, Gaussian), Fill(n, b, ref rng, Gaussian));
                for (int i = 0; i < n; i++)
                    if (rng.NextDouble() < 0.01) { Scale(x, i, 30f, true); Scale(y, i, 30f, true); }
                return (x, y);
            }
            case "outlier-cols": // column norms spread over 4 orders of magnitude
            {
                var (x, y) = (Fill(n, a, ref rng, Gaussian), Fill(n, b, ref rng, Gaussian));
                for (int j = 0; j < a; j++) Scale(x, j, (float)Math.Pow(10, 4 * rng.NextDouble() - 2), false);
                for (int j = 0; j < b; j++) Scale(y, j, (float)Math.Pow(10, 4 * rng.NextDouble() - 2), false);
                return (x, y);
            }
            case "nonzero-mean": // means of 100 on unit-variance columns
            {
                var (x, y) = (Fill(n, a, ref rng, Gaussian), Fill(n, b, ref rng, Gaussian));
                foreach (var m in new[] { x, y })
                    for (int j = 0; j < m.Cols; j++) { float mu = (float)(100 * (rng.NextDouble() * 2 - 1)); var c = m.Column(j); for (int i = 0; i < n; i++) c[i] += mu; }
                return (x, y);
            }
            case "correlated": // B = A's first b columns + 10% independent noise
            {
                var x = Fill(n, a, ref rng, Gaussian);
                var y = new DenseMatrix(n, b);
                for (int j = 0; j < b; j++) { var src = x.Column(j % a); var c = y.Column(j); for (int i = 0; i < n; i++) c[i] = src[i] + 0.1f * (float)rng.NextGaussian(); }
                return (x, y);
            }
            default: throw new GossetException($"Unknown source '{source}'. Known: {string.Join(", ", Names)}, or a path to a .npy file.");
        }
    }

    private delegate double Sampler(ref SplitMix64 r);

    private static double StudentT3(ref SplitMix64 r)
    {
        double z = r.NextGaussian(), c = 0;
        for (int i = 0; i < 3; i++) { double g = r.NextGaussian(); c += g * g; }
        return z / Math.Sqrt(c / 3);
    }

    private static double Gaussian(ref SplitMix64 r) => r.NextGaussian();
    private static double Sparse(ref SplitMix64 r) => r.NextDouble() < 0.1 ? r.NextGaussian() : 0;

    private static DenseMatrix Fill(int n, int cols, ref SplitMix64 rng, Sampler f)
    {
        var m = new DenseMatrix(n, cols);
        for (int k = 0; k < m.Data.Length; k++) m.Data[k] = (float)f(ref rng);
        return m;
    }

    private static void Scale(DenseMatrix m, int index, float s, bool row)
    {
        if (row) for (int j = 0; j < m.Cols; j++) m[index, j] *= s;
        else { var c = m.Column(index); for (int i = 0; i < c.Length; i++) c[i] *= s; }
    }

    private static DenseMatrix LowRank(int n, int cols, int rank, ref SplitMix64 rng)
    {
        var m = new DenseMatrix(n, cols);
        var u = new double[n * rank];
        for (int i = 0; i < u.Length; i++) u[i] = rng.NextGaussian();
        for (int j = 0; j < cols; j++)
        {
            var c = m.Column(j);
            for (int r = 0; r < rank; r++)
            {
                double w = rng.NextGaussian() / Math.Sqrt(rank);
                for (int i = 0; i < n; i++) c[i] += (float)(w * u[r * n + i]);
            }
            for (int i = 0; i < n; i++) c[i] += (float)(0.01 * rng.NextGaussian());
        }
        return m;
    }
}
