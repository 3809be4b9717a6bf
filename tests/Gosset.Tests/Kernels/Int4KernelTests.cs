using Gosset.Kernels;

namespace Gosset.Tests.Kernels;

public class Int4KernelTests
{
    [Fact]
    public void RateAndRoundTrip()
    {
        var w = E8BoxKernelTests.Gaussian(4 * 300, 2);
        var m = PackedInt4Matrix.Quantize(w, 4, 300); // 10 groups of 32 (320 columns stored)
        Assert.Equal(4L * 320 * 4 + 4L * 10 * 16, m.StoredBits);
        Assert.Equal(4.5 * 320 / 300, m.BitsPerWeight, 12);
        var row = new float[300];
        for (int r = 0; r < 4; r++)
        {
            m.DequantizeRow(r, row);
            for (int i = 0; i < 300; i++)
            {
                int g = i / 32;
                float amax = 0; for (int j = 32 * g; j < Math.Min(300, 32 * g + 32); j++) amax = Math.Max(amax, Math.Abs(w[r * 300 + j]));
                Assert.True(Math.Abs(row[i] - w[r * 300 + i]) <= amax / 7f * 0.5f * 1.01f + 1e-6f);
            }
        }
        var x = E8BoxKernelTests.Gaussian(8192, 3);
        var y = new float[x.Length];
        PackedInt4Matrix.QuantizeDequantize(x, y);
        double e = 0; for (int i = 0; i < x.Length; i++) e += (x[i] - y[i]) * (double)(x[i] - y[i]);
        Assert.InRange(e / x.Length, 0.005, 0.015);
    }

    [Theory]
    [InlineData(ActivationMode.Float32)]
    [InlineData(ActivationMode.Int8)]
    public void ScalarKernelMatchesDoubleProduct(ActivationMode mode)
    {
        // The reference against an independent product: dequantized weights times the activations as the mode rounds
        // them (fp32: x itself; int8: the per-8-block absmax rounding), summed in double.
        int rows = 9, cols = 700, batch = 3; // 3 kernel groups, the last one partial (a partial group of 32 too)
        var w = E8BoxKernelTests.Gaussian(rows * cols, 17, 0.05f);
        var x = E8BoxKernelTests.Gaussian(batch * cols, 19);
        var m = PackedInt4Matrix.Quantize(w, rows, cols);
        var y = new float[batch * rows];
        m.Multiply(x, y, batch, mode, E8Kernel.Scalar, 1);
        var xa = mode == ActivationMode.Int8 ? Int8Activations.Quantize(x, batch, cols) : null;
        var wq = new float[cols];
        for (int v = 0; v < batch; v++)
            for (int r = 0; r < rows; r++)
            {
                m.DequantizeRow(r, wq);
                double want = 0, mag = 0;
                for (int i = 0; i < cols; i++)
                {
                    double xi = xa is null ? x[v * cols + i] : xa[v, i];
                    want += wq[i] * xi;
                    mag += Math.Abs(wq[i] * xi);
                }
                Assert.True(Math.Abs(y[v * rows + r] - want) <= 1e-6 * mag, $"{mode} v={v} r={r}: {y[v * rows + r]} vs {want}");
            }
    }

    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(E8KernelTests.Variants), MemberType = typeof(E8KernelTests))]
    public void EveryVariantIsBitExactWithScalar(string name)
    {
        var kern = E8Kernel.Get(name);
        // The last shape: several GEMM row tiles (8200 columns decode to 5 rows per tile at 16 lanes).
        foreach (var (rows, cols, batches) in new[] { (29, 392, new[] { 1, 2, 5, 9 }), (2, 40, new[] { 1, 3 }), (18, 1300, new[] { 1, 17 }), (13, 8200, new[] { 5 }) })
        {
            var w = E8BoxKernelTests.Gaussian(rows * cols, rows + cols, 0.05f);
            for (int i = 0; i < Math.Min(64, cols); i++) w[i] *= 1e-4f; // two tiny groups of 32 in row 0: subnormal fp16 steps
            var m = PackedInt4Matrix.Quantize(w, rows, cols);
            foreach (var mode in new[] { ActivationMode.Float32, ActivationMode.Int8, ActivationMode.E8Box4 })
                foreach (int batch in batches)
                {
                    var x = E8BoxKernelTests.Gaussian(batch * cols, batch + cols);
                    var want = new float[batch * rows];
                    var got = new float[batch * rows];
                    m.Multiply(x, want, batch, mode, E8Kernel.Scalar, 1);
                    m.Multiply(x, got, batch, mode, kern, 2);
                    for (int i = 0; i < want.Length; i++)
                        Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(got[i]), $"{name} {mode} {rows}x{cols} batch={batch} at {i}: {want[i]} vs {got[i]}");
                }
        }
    }

    [Fact]
    public void SubnormalStepsAreStoredAndRead()
    {
        // A group whose absmax/7 is below fp16's smallest normal (6.1e-5) gets a subnormal step; the kernels' exact
        // fp16 conversion must read it (the SIMD variants are compared with this in EveryVariantIsBitExactWithScalar).
        var w = new float[64];
        for (int i = 0; i < 32; i++) w[i] = 1e-5f * (i - 16);
        for (int i = 32; i < 64; i++) w[i] = 0.1f * (i - 48);
        var m = PackedInt4Matrix.Quantize(w, 1, 64);
        Assert.True(m.HalfStep(0, 0) < 6.1e-5f / 2 && m.HalfStep(0, 0) > 0f);
        var row = new float[64];
        m.DequantizeRow(0, row);
        for (int i = 0; i < 32; i++) Assert.True(Math.Abs(row[i] - w[i]) <= m.HalfStep(0, 0) * 1.0001f);
        var x = E8BoxKernelTests.Gaussian(64, 4);
        var y = new float[1];
        m.Multiply(x, y, 1, ActivationMode.Float32, E8Kernel.Scalar, 1);
        double want = 0; for (int i = 0; i < 64; i++) want += (double)row[i] * x[i];
        Assert.Equal(want, y[0], 4);
    }

    [Fact]
    public void DenseGemvMatchesDouble()
    {
        int rows = 50, cols = 100, batch = 3;
        var w = E8BoxKernelTests.Gaussian(rows * cols, 1);
        var x = E8BoxKernelTests.Gaussian(batch * cols, 2);
        var y = new float[batch * rows];
        DenseGemv.Multiply(w, rows, cols, x, y, batch);
        for (int c = 0; c < batch; c++)
            for (int r = 0; r < rows; r++)
            {
                double s = 0; for (int i = 0; i < cols; i++) s += (double)w[r * cols + i] * x[c * cols + i];
                Assert.Equal(s, y[c * rows + r], 3);
            }
    }
}

public class KernelArgumentTests
{
    [Fact]
    public void NonFiniteWeightsAreRejected()
    {
        var w = new float[64]; w[3] = float.NaN;
        Assert.Throws<ArgumentException>(() => PackedE8Matrix.Quantize(w, 2, 32));
        Assert.Throws<ArgumentException>(() => PackedInt4Matrix.Quantize(w, 2, 32));
    }

    [Fact]
    public void ShortBuffersAreRejected()
    {
        var m = PackedE8Matrix.Quantize(new float[64], 2, 32);
        Assert.Throws<ArgumentException>(() => m.Multiply(new float[31], new float[2]));
        Assert.Throws<ArgumentException>(() => m.Multiply(new float[32], new float[1]));
    }
}
