using System.Numerics.Tensors;
using Gosset.Codes;
using Gosset.Coding;
using Gosset.Rotations;
using Gosset.Util;

namespace Gosset.Matrix;

/// <summary>
/// Encodes a matrix column by column with the E8 Voronoi code (see <see cref="E8QuantizedMatrix"/>).
/// Every column is coded independently of the other factor of a product.
/// </summary>
public static class E8MatrixQuantizer
{
    /// <summary>Most blocks used to fit the scales (a seeded sample plus the largest-norm blocks).</summary>
    public const int FitSampleBlocks = 16384;

    /// <summary>Quantizes <paramref name="m"/> (n×a, columns are coded).</summary>
    /// <exception cref="GossetException">NaN/Inf, empty matrix or invalid options.</exception>
    public static E8QuantizedMatrix Quantize(DenseMatrix m, E8MatrixOptions options)
    {
        ArgumentNullException.ThrowIfNull(m);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (m.Rows == 0 || m.Cols == 0) throw new GossetException($"Cannot quantize an empty {m.Rows}×{m.Cols} matrix.");
        m.ThrowIfNotFinite("Matrix");

        int n = m.Rows, cols = m.Cols;
        int np = (n + 7) / 8 * 8;
        int totalBlocks = np / 8;
        int coded = Math.Clamp((int)Math.Ceiling(options.CodedFraction * totalBlocks - 1e-9), 1, totalBlocks);
        var rot = Rotation.Create(options.Rotation, np, options.Seed);

        // 1. centre, pad, rotate, normalise to unit RMS
        var means = new float[options.Center ? cols : 0];
        var rms = new float[cols];
        var u = new float[(long)np * cols];
        Parallel.For(0, cols, j =>
        {
            var x = m.Column(j);
            var buf = new float[np];
            x.CopyTo(buf);
            if (options.Center)
            {
                double s = 0;
                foreach (float v in x) s += v;
                means[j] = (float)(s / n);
                TensorPrimitives.Subtract(buf.AsSpan(0, n), means[j], buf.AsSpan(0, n));
            }
            var dst = u.AsSpan(j * np, np);
            // Rotate and normalise at a power-of-two scale that brings the largest entry to [1, 2):
            // exact for normal floats (the same bits as unscaled), and subnormal or near-float.MaxValue
            // columns neither flush to zero, overflow in the rotation, nor give 1/rms = ∞.
            float absMax = MathF.Abs(TensorPrimitives.MaxMagnitude(buf.AsSpan()));
            if (!(absMax > 0)) { rms[j] = 0; dst.Clear(); return; }
            int exp = Math.ILogB(absMax);
            double down = Math.ScaleB(1.0, -exp);
            for (int i = 0; i < n; i++) buf[i] = (float)(buf[i] * down);
            rot.Apply(buf, dst);
            double e = 0;
            foreach (float v in dst) e += (double)v * v;
            float scaledRms = (float)Math.Sqrt(e / np);
            rms[j] = (float)Math.ScaleB(scaledRms, exp);
            if (!(float.IsFinite(rms[j]) && float.IsFinite(rms[j] * MathF.Abs(TensorPrimitives.MaxMagnitude(dst)) / scaledRms)))
                throw new GossetException($"Column {j} has values too large to rotate in float32 (|x| up to {absMax:G3}).");
            TensorPrimitives.Multiply(dst, 1f / scaledRms, dst);
        });

        // 2. scales
        ScaleSet scales = options.CustomScales ?? options.Scales switch
        {
            ScaleSource.Default => ScaleSet.Default(options.Q, options.K, options.Selection),
            ScaleSource.NestQuant when options.K == 4 => ScaleSet.NestQuant(options.Q, NestQuantTensor.Activations),
            ScaleSource.NestQuant => throw new GossetException("NestQuant's published scale sets have k = 4."),
            _ => FitScales(u, np, cols, coded, options),
        };

        // 3. code every column; the gain rescales the decoded unit-RMS column (GainMode)
        var vq = new E8VectorQuantizer(new VoronoiCode(options.Q), scales, options.Selection);
        var digits = new byte[(long)cols * coded * 8];
        var idx = new byte[(long)cols * coded];
        var gains = new float[cols];
        Parallel.For(0, cols, j =>
        {
            var x = u.AsSpan(j * np, coded * 8);
            float[]? dither = null;
            if (options.Dither) { dither = new float[coded * 8]; E8Dither.Fill(options.DitherSeed, j, coded, dither); }
            var d = digits.AsSpan(j * coded * 8, coded * 8);
            var s = idx.AsSpan(j * coded, coded);
            var xh = new float[coded * 8];
            if (dither == null && options.Selection == ScaleSelection.LeastError)
            {
                // SIMD path (bit-exact with VoronoiCode per block; least error over the k scales)
                Kernels.VoronoiBatch.EncodeBest(vq.Code, x, scales.Betas, d, s, xh);
            }
            else
            {
                vq.Quantize(x, d, s, dither);
                vq.Dequantize(d, s, xh, dither);
            }
            double xy = 0, yy = 0, xx = 0;
            for (int i = 0; i < xh.Length; i++) { xy += (double)x[i] * xh[i]; yy += (double)xh[i] * xh[i]; xx += (double)x[i] * x[i]; }
            double g = options.Gain == GainMode.LeastSquares ? (yy > 0 ? xy / yy : 0) : (xy > 0 ? xx / xy : 0);
            gains[j] = (float)((double)rms[j] * g);
        });

        // 4. store the codes
        uint[]? freq = null;
        byte[] payload;
        int k = scales.Count;
        if (options.IndexCoding == IndexCoding.Entropy)
        {
            FrequencyTable? table = null;
            if (k > 1)
            {
                var counts = new long[k];
                foreach (byte b in idx) counts[b]++;
                table = FrequencyTable.FromCounts(counts);
                freq = table.Frequencies.ToArray();
            }
            var enc = new RangeEncoder();
            for (long b = 0; b < idx.LongLength; b++)
            {
                table?.Encode(enc, idx[b]);
                for (int i = 0; i < 8; i++) enc.EncodeUniform(digits[8 * b + i], (uint)options.Q);
            }
            payload = enc.Finish();
        }
        else
        {
            int bits = E8QuantizedMatrix.FixedBlockBits(options.Q, k);
            var w = new BitWriter();
            for (long b = 0; b < idx.LongLength; b++)
            {
                UInt128 v = idx[b];
                for (int i = 7; i >= 0; i--) v = v * (uint)options.Q + digits[8 * b + i];
                if (bits > 64) { w.Write((ulong)v, 64); w.Write((ulong)(v >> 64), bits - 64); }
                else w.Write((ulong)v, bits);
            }
            payload = w.ToArray();
        }
        return new E8QuantizedMatrix(n, cols, np, options.Rotation, options.Seed, options.Center, options.Q, scales,
            options.Selection, options.IndexCoding, options.Dither, options.DitherSeed, coded, freq, means, gains, payload);
    }

    // A seeded sample of blocks (weighted to stand for all blocks) plus the largest-norm blocks
    // (weight 1 each), so the largest scale is fitted to the blocks that would overload.
    private static ScaleSet FitScales(float[] u, int np, int cols, int coded, E8MatrixOptions o)
    {
        long total = (long)cols * coded;
        var blockAt = (long b) => u.AsSpan((int)((b / coded) * np + (b % coded) * 8), 8);
        if (total <= FitSampleBlocks)
        {
            var all = new float[total * 8];
            for (long b = 0; b < total; b++) blockAt(b).CopyTo(all.AsSpan((int)(8 * b), 8));
            return ScaleSet.Fit(all, o.Q, o.K, o.Selection);
        }
        const int top = 256;
        var norms = new float[total];
        for (long b = 0; b < total; b++) { var x = blockAt(b); norms[b] = TensorPrimitives.SumOfSquares(x); }
        var order = Enumerable.Range(0, (int)total).OrderByDescending(i => norms[i]).Take(top).ToHashSet();
        var rng = new SplitMix64(o.Seed ^ 0x5CA1E5UL);
        int sample = FitSampleBlocks - top;
        var blocks = new float[(sample + top) * 8];
        var weights = new double[sample + top];
        int c = 0;
        foreach (int b in order) { blockAt(b).CopyTo(blocks.AsSpan(8 * c, 8)); weights[c++] = 1; }
        double w = (double)(total - top) / sample;
        while (c < sample + top)
        {
            long b = (long)(rng.NextDouble() * total);
            if (order.Contains((int)b)) continue;
            blockAt(b).CopyTo(blocks.AsSpan(8 * c, 8));
            weights[c++] = w;
        }
        return ScaleSet.Fit(blocks, o.Q, o.K, o.Selection, weights: weights);
    }
}
