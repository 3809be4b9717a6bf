using Gosset.Codes;
using Gosset.Kernels;
using Gosset.Lattices;

namespace Gosset.Tests.Kernels;

public class E8BoxKernelTests
{
    internal static float[] Gaussian(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return x;
    }

    [Fact]
    public void EveryWordDecodesToAnE8PointInTheBoxAndPacksBack()
    {
        var rng = new Random(3);
        Span<int> v = stackalloc int[8];
        for (int t = 0; t < 20000; t++)
        {
            uint w = (uint)rng.NextInt64(0, 1L << 32);
            if (t < 16) w = t % 2 == 0 ? (uint)t * 0x11111111u : 0xFFFFFFFFu - (uint)t;
            E8BoxCode.DecodeDoubled(w, v);
            Assert.True(E8Lattice.Contains(v));
            Assert.True(E8BoxCode.TryPack(v, out uint back));
            Assert.Equal(w, back);
        }
    }

    [Fact]
    public void EncodeIsTheBestInBoxScaleAndDecodesConsistently()
    {
        var x = Gaussian(8 * 2000, 5);
        float s = E8BoxCode.VectorScale(x);
        Span<int> v = stackalloc int[8];
        Span<float> y = stackalloc float[8];
        for (int b = 0; b < 2000; b++)
        {
            var blk = x.AsSpan(8 * b, 8);
            int j = E8BoxCode.EncodeBlock(blk, s, out uint w);
            E8BoxCode.DecodeBlock(w, j, s, y);
            float err = 0; for (int i = 0; i < 8; i++) err += (blk[i] - y[i]) * (blk[i] - y[i]);
            // no in-box scale does better
            for (int k = 0; k < E8BoxCode.ScaleCount; k++)
            {
                float beta = s * E8BoxCode.BlockScales[k];
                VoronoiCode.QuantizeFine(blk, beta, default, v);
                if (!E8BoxCode.TryPack(v, out _)) continue;
                float e2 = 0; for (int i = 0; i < 8; i++) { float d = blk[i] - beta * 0.5f * v[i]; e2 += d * d; }
                Assert.True(err <= e2 * (1 + 1e-5f) + 1e-12f);
            }
        }
    }

    [Fact]
    public void OutliersAreShrunkIntoTheBox()
    {
        float[] x = [100f, -3f, 0.5f, 0f, 0f, 1f, 2f, -80f];
        int j = E8BoxCode.EncodeBlock(x, 1f, out uint w);
        Assert.Equal(3, j);
        Span<int> v = stackalloc int[8];
        E8BoxCode.DecodeDoubled(w, v);
        Assert.True(v[0] > 0 && v[7] < 0);
    }

    [Fact]
    public void GaussianMseAtItsRate()
    {
        var x = Gaussian(8 * 8192, 11);
        var y = new float[x.Length];
        E8BoxCode.QuantizeDequantize(x, y);
        double e = 0; for (int i = 0; i < x.Length; i++) e += (x[i] - y[i]) * (double)(x[i] - y[i]);
        double mse = e / x.Length;
        Assert.InRange(mse, 0.004, 0.0062); // ≈ 0.0054 at 4.25 bits/entry (+32 bits per vector)
    }

    public static TheoryData<KernelIsa> Isas()
    {
        var d = new TheoryData<KernelIsa>();
        foreach (var k in KernelSupport.All) d.Add(k);
        return d;
    }

    [Fact, Trait("Category", "Simd")]
    public void AllSupportedLevelsAreListed()
    {
        Assert.Contains(KernelIsa.Scalar, KernelSupport.All);
        Assert.Contains(KernelSupport.Best, KernelSupport.All);
        foreach (var k in Enum.GetValues<KernelIsa>())
            if (!KernelSupport.IsSupported(k)) Assert.Throws<PlatformNotSupportedException>(() => KernelSupport.Require(k));
    }

    public static TheoryData<ActivationMode, int> GemvCases()
    {
        var d = new TheoryData<ActivationMode, int>();
        // Int8Group needs grid scales, which this fixed-scale code does not have: E8KernelTests covers it.
        foreach (var mode in Enum.GetValues<ActivationMode>().Where(m => m != ActivationMode.Int8Group))
            foreach (int batch in new[] { 1, 3, 16 })
                d.Add(mode, batch);
        return d;
    }

    /// <summary>The 4-bit encoder's matrices through the default kernel, every activation mode, against a double product of what the kernel sees.</summary>
    [Theory]
    [MemberData(nameof(GemvCases))]
    public void GemvMatchesDoubleReference(ActivationMode mode, int batch)
    {
        foreach (var (rows, cols) in new[] { (37, 520), (3, 72) }) // partial groups
            GemvCase(mode, batch, rows, cols);
    }

    private static void GemvCase(ActivationMode mode, int batch, int rows, int cols)
    {
        var w = Gaussian(rows * cols, 7, 0.05f);
        var x = Gaussian(batch * cols, 9 + batch);
        var m = PackedE8Matrix.Quantize(w, rows, cols);
        var wq = new float[rows * cols];
        for (int r = 0; r < rows; r++) m.DequantizeRow(r, wq.AsSpan(r * cols, cols));
        // The activation the kernel sees: x itself (fp32) or its quantized form.
        var xa = mode == ActivationMode.Float32 ? x : QuantizedActivations(x, batch, cols, mode);
        var y = new float[batch * rows];
        m.Multiply(x, y, batch, mode);
        for (int c = 0; c < batch; c++)
            for (int r = 0; r < rows; r++)
            {
                double s = 0, n = 0;
                for (int i = 0; i < cols; i++) { s += (double)wq[r * cols + i] * xa[c * cols + i]; n += Math.Abs((double)wq[r * cols + i] * xa[c * cols + i]); }
                Assert.True(Math.Abs(s - y[c * rows + r]) <= 2e-6 * n + 1e-9, $"{mode} c={c} r={r}: {s} vs {y[c * rows + r]}");
            }
    }

    private static float[] QuantizedActivations(float[] x, int batch, int cols, ActivationMode mode)
    {
        var a = mode == ActivationMode.Int8 ? Int8Activations.Quantize(x, batch, cols) : PackedE8Matrix.E8BoxActivations(x, batch, cols);
        var r = new float[batch * cols];
        for (int c = 0; c < batch; c++)
            for (int i = 0; i < cols; i++)
                r[c * cols + i] = a[c, i];
        return r;
    }

    [Fact]
    public void QuantizedActivationsAreClose()
    {
        int cols = 1024;
        var x = Gaussian(cols, 4);
        foreach (var (mode, tol) in new[] { (ActivationMode.Int8, 1e-4), (ActivationMode.E8Box4, 0.0062) })
        {
            var xa = QuantizedActivations(x, 1, cols, mode);
            double e = 0; for (int i = 0; i < cols; i++) e += (x[i] - xa[i]) * (double)(x[i] - xa[i]);
            Assert.True(e / cols < tol, $"{mode}: {e / cols}");
        }
    }
}

public class E8BoxEncoderTests
{
    public static TheoryData<KernelIsa> Isas()
    {
        var d = new TheoryData<KernelIsa>();
        foreach (var k in KernelSupport.All) if (k != KernelIsa.Scalar) d.Add(k);
        return d;
    }

    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(Isas))]
    public void EncoderIsBitExactWithScalar(KernelIsa isa)
    {
        int rows = 7, cols = 300;
        var w = E8BoxKernelTests.Gaussian(rows * cols, 21);
        w[5] = 1e6f; w[301] = -40f; w[302] = 35f; // outliers: shrink path
        for (int i = 600; i < 640; i++) w[i] = 0f;   // zero blocks
        var a = PackedE8Matrix.Quantize(w, rows, cols, KernelIsa.Scalar).ToCodes();
        var b = PackedE8Matrix.Quantize(w, rows, cols, isa).ToCodes();
        Assert.Equal(a.U, b.U);
        Assert.Equal(a.ScaleIndex, b.ScaleIndex);
        Assert.Equal(a.RowScale, b.RowScale);
    }
}

public class LargeBatchTests
{
    [Fact]
    public void BatchesAbove16RunInSlices()
    {
        int rows = 20, cols = 256, batch = 37;
        var w = E8BoxKernelTests.Gaussian(rows * cols, 1, 0.1f);
        var x = E8BoxKernelTests.Gaussian(batch * cols, 2);
        var m = PackedE8Matrix.Quantize(w, rows, cols);
        var i4 = PackedInt4Matrix.Quantize(w, rows, cols);
        var y = new float[batch * rows];
        var y1 = new float[rows];
        var z = new float[batch * rows];
        m.Multiply(x, y, batch);
        i4.Multiply(x, z, batch);
        for (int c = 0; c < batch; c++)
        {
            m.Multiply(x.AsSpan(c * cols, cols), y1);
            for (int r = 0; r < rows; r++) Assert.True(Math.Abs(y1[r] - y[c * rows + r]) < 2e-4f * (1 + Math.Abs(y1[r])));
            i4.Multiply(x.AsSpan(c * cols, cols), y1);
            for (int r = 0; r < rows; r++) Assert.True(Math.Abs(y1[r] - z[c * rows + r]) < 2e-4f * (1 + Math.Abs(y1[r])));
        }
    }
}
