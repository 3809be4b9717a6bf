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

    public static TheoryData<KernelIsa, ActivationMode, int> Cases()
    {
        var d = new TheoryData<KernelIsa, ActivationMode, int>();
        // Scalar and Vector128 run the scalar reference itself (no 128-bit INT4 kernel): comparing them could not fail.
        // Without AVX2 there is no INT4 SIMD kernel: one Vector256 row remains and returns early (xunit 2 cannot skip at run time).
        var levels = KernelSupport.All.Where(k => k is KernelIsa.Vector256 or KernelIsa.Vector512).DefaultIfEmpty(KernelIsa.Vector256);
        foreach (var k in levels)
            foreach (var mode in new[] { ActivationMode.Float32, ActivationMode.Int8 })
                foreach (int batch in new[] { 1, 5 })
                    d.Add(k, mode, batch);
        return d;
    }

    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(Cases))]
    public void GemvMatchesScalarReference(KernelIsa isa, ActivationMode mode, int batch)
    {
        if (!KernelSupport.IsSupported(isa)) return;
        foreach (var (rows, cols) in new[] { (29, 392), (2, 40) })
            GemvCase(isa, mode, batch, rows, cols);
    }

    private static void GemvCase(KernelIsa isa, ActivationMode mode, int batch, int rows, int cols)
    {
        var w = E8BoxKernelTests.Gaussian(rows * cols, 17, 0.05f);
        var x = E8BoxKernelTests.Gaussian(batch * cols, 19);
        var m = PackedInt4Matrix.Quantize(w, rows, cols);
        var want = new float[batch * rows];
        var got = new float[batch * rows];
        m.Multiply(x, want, batch, mode, KernelIsa.Scalar);
        m.Multiply(x, got, batch, mode, isa);
        var wq = new float[cols];
        for (int c = 0; c < batch; c++)
            for (int r = 0; r < rows; r++)
            {
                m.DequantizeRow(r, wq);
                double n = 0; for (int i = 0; i < cols; i++) n += Math.Abs(wq[i] * x[c * cols + i]);
                Assert.True(Math.Abs(want[c * rows + r] - got[c * rows + r]) <= 2e-6 * n + 1e-9, $"{isa} {mode} {c} {r}: {want[c * rows + r]} vs {got[c * rows + r]}");
                if (mode == ActivationMode.Float32)
                {
                    double s = 0; for (int i = 0; i < cols; i++) s += (double)wq[i] * x[c * cols + i];
                    Assert.True(Math.Abs(s - got[c * rows + r]) <= 2e-6 * n + 1e-9);
                }
            }
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
