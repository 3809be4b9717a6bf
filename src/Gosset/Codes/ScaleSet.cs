using System.Collections.Concurrent;
using Gosset.Util;

namespace Gosset.Codes;

/// <summary>
/// The k scales β₁ &lt; … &lt; β_k an 8-block may choose from (k ∈ {1, 2, 4, 8, 16}). A scale is the
/// lattice step: a block x is coded as β·λ with λ ∈ E8. Values are for data normalised to unit RMS
/// per entry. Stored with the quantized data (k × 32 bits, counted in the rate).
/// </summary>
public sealed class ScaleSet
{
    /// <summary>Supported numbers of scales.</summary>
    public static readonly int[] SupportedCounts = [1, 2, 4, 8, 16];

    private readonly float[] _betas;

    /// <summary>Creates a scale set from positive finite scales (sorted ascending here).</summary>
    public ScaleSet(IEnumerable<float> betas)
    {
        _betas = betas.ToArray();
        if (_betas.Length == 0 || _betas.Length > 256) throw new ArgumentException("A scale set needs 1 to 256 scales.", nameof(betas));
        foreach (float b in _betas)
            if (!float.IsFinite(b) || b <= 0) throw new ArgumentException($"Scales must be positive and finite, got {b}.", nameof(betas));
        Array.Sort(_betas);
    }

    /// <summary>The scales, ascending.</summary>
    public ReadOnlySpan<float> Betas => _betas;

    /// <summary>Number of scales k.</summary>
    public int Count => _betas.Length;

    /// <summary>Bits of a fixed-width scale index: ⌈log2 k⌉.</summary>
    public int IndexBits => Count == 1 ? 0 : (int)Math.Ceiling(Math.Log2(Count));

    /// <summary>The scales times q (NestQuant's β₀ convention, scale = β₀/q).</summary>
    public float[] TimesQ(int q) => _betas.Select(b => b * q).ToArray();

    /// <inheritdoc/>
    public override string ToString() => "[" + string.Join(", ", _betas.Select(b => b.ToString("G5", System.Globalization.CultureInfo.InvariantCulture))) + "]";

    /// <summary>
    /// NestQuant's published scale sets (public NestQuant code, k = 4, defined for q = 14 on
    /// Hadamard-rotated rows normalised to norm √N), as β = β₀/q.
    /// </summary>
    public static ScaleSet NestQuant(int q, NestQuantTensor kind)
    {
        float[] b0 = kind switch
        {
            NestQuantTensor.Weights => [4.0f, 5.5f, 7.0f, 18.0f],
            NestQuantTensor.Activations => [3.47f, 4.74f, 6.90f, 18.11f],
            NestQuantTensor.Keys => [3.50f, 4.58f, 6.47f, 17.06f],
            NestQuantTensor.Values => [3.53f, 5.59f, 9.62f, 29.03f],
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return new ScaleSet(b0.Select(b => b / q));
    }

    private static readonly ConcurrentDictionary<(int, int, ScaleSelection), ScaleSet> DefaultCache = new();

    /// <summary>
    /// Tuned default scales for rotated, unit-RMS data (what a random rotation makes of most
    /// columns: iid N(0,1) entries). <see cref="Fit"/> runs on a deterministic model of the
    /// Gaussian 8-block: block norms stratified by the χ₈ distribution (equal-mass strata for the
    /// bulk, then strata of mass 10⁻³ … 10⁻¹⁰ for the tail, so rare large blocks are weighted
    /// by their true probability), 16 seeded random directions per stratum. Computed once per
    /// (q, k, rule) and cached.
    /// </summary>
    public static ScaleSet Default(int q, int k, ScaleSelection rule = ScaleSelection.LeastError)
        => DefaultCache.GetOrAdd((q, k, rule), key =>
        {
            var (blocks, weights) = GaussianModelSample();
            return Fit(blocks, key.Item1, key.Item2, key.Item3, weights: weights);
        });

    private static readonly Lazy<(float[] Blocks, double[] Weights)> GaussianModel = new(BuildGaussianModel);

    /// <summary>The weighted Gaussian block sample behind <see cref="Default"/>.</summary>
    public static (float[] Blocks, double[] Weights) GaussianModelSample() => GaussianModel.Value;

    private static (float[], double[]) BuildGaussianModel()
    {
        const int bulk = 384, dirs = 16;
        var strata = new List<(double Lo, double Hi)>();
        for (int i = 0; i < bulk - 1; i++) strata.Add((i / (double)bulk, (i + 1) / (double)bulk));
        double top = (bulk - 1) / (double)bulk;          // last bulk stratum is split into a tail
        for (int e = 3; e <= 10; e++) { double hi = 1 - Math.Pow(10, -e); strata.Add((top, Math.Max(top, hi))); top = Math.Max(top, hi); }
        strata.Add((top, 1 - 1e-12));
        var rng = new SplitMix64(0x6A55E77UL);
        var blocks = new float[strata.Count * dirs * 8];
        var weights = new double[strata.Count * dirs];
        int b = 0;
        Span<double> u = stackalloc double[8];
        foreach (var (lo, hi) in strata)
        {
            double mass = hi - lo;
            double r = Math.Sqrt(Chi2Dof8Quantile((lo + hi) / 2));
            for (int d = 0; d < dirs; d++, b++)
            {
                double norm = 0;
                for (int i = 0; i < 8; i++) { u[i] = rng.NextGaussian(); norm += u[i] * u[i]; }
                norm = Math.Sqrt(norm);
                for (int i = 0; i < 8; i++) blocks[8 * b + i] = (float)(r * u[i] / norm);
                weights[b] = mass / dirs;
            }
        }
        return (blocks, weights);
    }

    // P(χ²₈ ≤ x) = 1 − e^{−t}(1 + t + t²/2 + t³/6), t = x/2; inverted by bisection.
    private static double Chi2Dof8Quantile(double p)
    {
        static double Cdf(double x) { double t = x / 2; return 1 - Math.Exp(-t) * (1 + t + t * t / 2 + t * t * t / 6); }
        double lo = 0, hi = 400;
        for (int i = 0; i < 200; i++) { double mid = (lo + hi) / 2; if (Cdf(mid) < p) lo = mid; else hi = mid; }
        return (lo + hi) / 2;
    }

    /// <summary>
    /// Fits k scales to sample data (length a multiple of 8, normalised to unit RMS): the scale
    /// set minimising the total squared error under the selection <paramref name="rule"/>, over a
    /// geometric grid of candidates.
    /// </summary>
    /// <remarks>
    /// Step 1, dynamic programming: every block has a threshold (the smallest grid scale at which
    /// it does not overload); with k chosen scales each block uses the smallest one at or above its
    /// threshold. Sorting blocks by threshold makes the best choice an O(k·G²) DP over the grid.
    /// Step 2 (least-error rule): coordinate descent on the exact objective Σ min_s err(block, β_s),
    /// moving one scale at a time over the grid until no move helps.
    /// </remarks>
    public static ScaleSet Fit(ReadOnlySpan<float> samples, int q, int k, ScaleSelection rule = ScaleSelection.LeastError, int gridSize = 64, ReadOnlySpan<double> weights = default)
    {
        if (!SupportedCounts.Contains(k)) throw new ArgumentException($"k must be one of {string.Join(", ", SupportedCounts)}; got {k}.", nameof(k));
        if (samples.Length < 8 || samples.Length % 8 != 0) throw new ArgumentException("Samples must be whole 8-blocks.", nameof(samples));
        var code = new VoronoiCode(q);
        int n = samples.Length / 8;
        if (!weights.IsEmpty && weights.Length != n) throw new ArgumentException("One weight per block is required.", nameof(weights));
        var w = weights.IsEmpty ? Enumerable.Repeat(1.0, n).ToArray() : weights.ToArray();

        var grid = Grid(samples, q, k, gridSize);
        int g = grid.Length;
        // err[j, i] (weighted) and overload flags; one SIMD batch encode + decode of all blocks per grid scale, grid scales in parallel.
        var err = new float[n * g];
        var overloadedAt = new bool[n * g];
        var blocks = samples.ToArray();
        Parallel.For(0, g, () => (d: new byte[8 * n], o: new bool[n], x: new float[8 * n], b: new float[n]), (i, _, buf) =>
        {
            buf.b.AsSpan().Fill(grid[i]);
            Kernels.VoronoiBatch.Encode(code, blocks, buf.b, buf.d, buf.o);
            Kernels.VoronoiBatch.Decode(code, buf.d, buf.b, buf.x);
            for (int j = 0; j < n; j++)
            {
                double e = 0;
                for (int t = 0; t < 8; t++) { double d = blocks[8 * j + t] - buf.x[8 * j + t]; e += d * d; }
                err[j * g + i] = (float)(e * w[j]);
                overloadedAt[j * g + i] = buf.o[j];
            }
            return buf;
        }, _ => { });
        return Choose(err, overloadedAt, grid, n, k, rule);
    }

    /// <summary>
    /// Fits k block scales of the E8 box code of b bits (<see cref="E8BoxCodes"/>, <see cref="E8BoxEncoder"/>)
    /// to sample blocks normalised to unit RMS: the same DP + coordinate descent as <see cref="Fit"/>, with the
    /// box code's errors (an overloaded block is charged the error of its shrunk point).
    /// </summary>
    /// <param name="samples">Unit-RMS blocks.</param>
    /// <param name="bits">b ∈ {2, 3, 4}.</param>
    /// <param name="k">Number of scales.</param>
    /// <param name="rateWeight">
    /// 0: least error (every index equally cheap). &gt; 0: entropy-constrained fit — blocks choose
    /// argminⱼ err + λ·ℓⱼ with ℓⱼ = −log2 pⱼ of the current choices and λ = rateWeight·(mean error per entry),
    /// alternated with coordinate descent of the scales on that objective (2 ln 2 ≈ 1.39 is the high-rate slope).
    /// </param>
    /// <param name="gridSize">Candidate scales.</param>
    /// <param name="weights">Optional block weights.</param>
    public static ScaleSet FitBox(ReadOnlySpan<float> samples, int bits, int k, double rateWeight = 0, int gridSize = 64, ReadOnlySpan<double> weights = default)
    {
        if (k < 1 || k > E8BoxCodes.MaxScales) throw new ArgumentException($"k must be 1 to {E8BoxCodes.MaxScales}; got {k}.", nameof(k));
        if (bits is < 2 or > 4) throw new ArgumentException($"The E8 box code has b = 2, 3, 4; got {bits}.", nameof(bits));
        if (samples.Length < 8 || samples.Length % 8 != 0) throw new ArgumentException("Samples must be whole 8-blocks.", nameof(samples));
        int n = samples.Length / 8;
        if (!weights.IsEmpty && weights.Length != n) throw new ArgumentException("One weight per block is required.", nameof(weights));
        var w = weights.IsEmpty ? Enumerable.Repeat(1.0, n).ToArray() : weights.ToArray();
        var grid = Grid(samples, 1 << bits, k, gridSize);
        int g = grid.Length;
        var err = new float[n * g];
        var overloadedAt = new bool[n * g];
        var blocks = samples.ToArray();
        Parallel.For(0, g, i =>
        {
            Span<byte> u = stackalloc byte[8];
            for (int j = 0; j < n; j++)
            {
                float e = E8BoxEncoder.EncodeBlockAt(blocks.AsSpan(8 * j, 8), grid[i], bits, u, out bool o);
                err[j * g + i] = (float)(e * w[j]);
                overloadedAt[j * g + i] = o;
            }
        });
        if (!(rateWeight > 0) || k == 1) return Choose(err, overloadedAt, grid, n, k, ScaleSelection.LeastError);
        // Entropy-constrained: start from the smallest-without-overload DP (a low-entropy choice), then alternate.
        var start = Choose(err, overloadedAt, grid, n, k, ScaleSelection.SmallestWithoutOverload);
        var set = start.Betas.ToArray().Select(b => Array.IndexOf(grid, b)).ToArray();
        var pen = new double[k];
        for (int round = 0; round < 6; round++)
        {
            var count = new double[k];
            double total = 0;
            for (int j = 0; j < n; j++)
            {
                int bm = 0; double be = double.MaxValue;
                for (int m = 0; m < k; m++) { double e = err[j * g + set[m]] + pen[m]; if (e < be) { be = e; bm = m; } }
                count[bm]++; total += err[j * g + set[bm]];
            }
            double lambda = rateWeight * total / (8.0 * n);
            for (int m = 0; m < k; m++) pen[m] = lambda * -Math.Log2((count[m] + 0.5) / (n + 0.5 * k));
            set = CoordinateDescent(err, n, g, set, pen);
        }
        // Keep the scales in slot order of the final penalties (CoordinateDescent keeps slots; sort only for the set).
        return new ScaleSet(set.Select(i => grid[i]));
    }

    // Geometric grid of β₀ = β·q covering typical blocks up to the largest block in the sample (non-finite entries ignored).
    private static float[] Grid(ReadOnlySpan<float> samples, int q, int k, int gridSize)
    {
        int n = samples.Length / 8;
        double maxNorm = 0;
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int i = 0; i < 8; i++) s += samples[8 * j + i] * (double)samples[8 * j + i];
            if (double.IsFinite(s)) maxNorm = Math.Max(maxNorm, Math.Sqrt(s));
        }
        double lo = 0.8, hi = Math.Min(1e6, Math.Max(24.0, 1.6 * maxNorm));
        int g = Math.Max(gridSize, k + 1);
        var grid = new float[g];
        for (int i = 0; i < g; i++) grid[i] = (float)(lo * Math.Pow(hi / lo, i / (double)(g - 1)) / q);
        return grid;
    }

    // Thresholds (first grid index without overload, g if none), DP, then coordinate descent for least error.
    // Non-finite errors (from non-finite or extreme samples) are capped so that every comparison is defined.
    private static ScaleSet Choose(float[] err, bool[] overloadedAt, float[] grid, int n, int k, ScaleSelection rule)
    {
        int g = grid.Length;
        for (int i = 0; i < err.Length; i++) if (!float.IsFinite(err[i])) err[i] = float.MaxValue / (4f * Math.Max(1, n));
        var thr = new int[n];
        for (int j = 0; j < n; j++)
        {
            int t = g;
            for (int i = 0; i < g; i++) if (!overloadedAt[j * g + i]) { t = i; break; }
            thr[j] = t;
        }
        int[] chosen = DynamicProgram(err, thr, n, g, k);
        if (rule == ScaleSelection.LeastError) chosen = CoordinateDescent(err, n, g, chosen);
        return new ScaleSet(chosen.Select(i => grid[i]));
    }

    // P[a, h] = Σ_{j: thr_j < h} err[j, a]  (h = 0..g+1), then DP over increasing grid indices.
    private static int[] DynamicProgram(float[] err, int[] thr, int n, int g, int k)
    {
        var p = new double[g, g + 2];
        for (int j = 0; j < n; j++)
            for (int a = 0; a < g; a++) p[a, thr[j] + 1] += err[j * g + a];
        for (int a = 0; a < g; a++) for (int h = 1; h < g + 2; h++) p[a, h] += p[a, h - 1];
        // blocks with threshold in (prev, cur] use cur; cost(cur, prev) = P[cur, cur+1] − P[cur, prev+1]
        var f = new double[k, g];
        var from = new int[k, g];
        for (int c = 0; c < g; c++) f[0, c] = p[c, c + 1];
        for (int m = 1; m < k; m++)
            for (int c = 0; c < g; c++)
            {
                f[m, c] = double.MaxValue;
                for (int pr = 0; pr < c; pr++)
                {
                    if (f[m - 1, pr] == double.MaxValue) continue;
                    double v = f[m - 1, pr] + p[c, c + 1] - p[c, pr + 1];
                    if (v < f[m, c]) { f[m, c] = v; from[m, c] = pr; }
                }
            }
        int best = -1; double bestV = double.MaxValue;
        for (int c = k - 1; c < g; c++)
        {
            if (f[k - 1, c] == double.MaxValue) continue;
            double v = f[k - 1, c] + p[c, g + 1] - p[c, c + 1]; // blocks above the largest scale
            if (v < bestV) { bestV = v; best = c; }
        }
        var chosen = new int[k];
        if (best < 0)
        {
            // No finite path (cannot happen with capped errors; kept so a degenerate table never indexes out of range).
            for (int m = 0; m < k; m++) chosen[m] = (int)((long)m * (g - 1) / Math.Max(1, k - 1));
            return chosen;
        }
        for (int m = k - 1; m >= 0; m--) { chosen[m] = best; best = from[m, best]; }
        return chosen;
    }

    // Coordinate descent on Σ_blocks min_m (err[block, s_m] + penalty[m]); slots keep their penalty, no sorting.
    private static int[] PenalizedDescent(float[] err, int n, int g, int[] start, double[] penalty)
    {
        int k = start.Length;
        var s = (int[])start.Clone();
        var others = new double[n];
        for (int sweep = 0; sweep < 10; sweep++)
        {
            bool improved = false;
            for (int m = 0; m < k; m++)
            {
                for (int j = 0; j < n; j++)
                {
                    double o = double.MaxValue;
                    for (int i = 0; i < k; i++) if (i != m) o = Math.Min(o, err[j * g + s[i]] + penalty[i]);
                    others[j] = o;
                }
                double Cost(int c) { double t = 0; for (int j = 0; j < n; j++) t += Math.Min(others[j], err[j * g + c] + penalty[m]); return t; }
                int bestI = s[m]; double bestT = Cost(s[m]);
                for (int c = 0; c < g; c++)
                {
                    if (Array.IndexOf(s, c) >= 0) continue;
                    double t = Cost(c);
                    if (t < bestT - 1e-9 * Math.Abs(bestT)) { bestT = t; bestI = c; }
                }
                if (bestI != s[m]) { s[m] = bestI; improved = true; }
            }
            if (!improved) break;
        }
        return s;
    }

    private static int[] CoordinateDescent(float[] err, int n, int g, int[] start, double[]? penalty = null)
    {
        if (penalty is not null) return PenalizedDescent(err, n, g, start, penalty);
        int k = start.Length;
        var s = (int[])start.Clone();
        double Total(int[] set)
        {
            double t = 0;
            for (int j = 0; j < n; j++)
            {
                float m = float.MaxValue;
                foreach (int i in set) m = Math.Min(m, err[j * g + i]);
                t += m;
            }
            return t;
        }
        double current = Total(s);
        var others = new float[n];
        for (int sweep = 0; sweep < 10; sweep++)
        {
            bool improved = false;
            for (int m = 0; m < k; m++)
            {
                for (int j = 0; j < n; j++)
                {
                    float o = float.MaxValue;
                    for (int i = 0; i < k; i++) if (i != m) o = Math.Min(o, err[j * g + s[i]]);
                    others[j] = o;
                }
                int bestI = s[m]; double bestT = current;
                for (int c = 0; c < g; c++)
                {
                    if (Array.IndexOf(s, c) >= 0) continue;
                    double t = 0;
                    for (int j = 0; j < n; j++) t += Math.Min(others[j], err[j * g + c]);
                    if (t < bestT - 1e-9 * Math.Abs(bestT)) { bestT = t; bestI = c; }
                }
                if (bestI != s[m]) { s[m] = bestI; current = bestT; improved = true; }
            }
            if (!improved) break;
        }
        Array.Sort(s);
        return s;
    }
}
