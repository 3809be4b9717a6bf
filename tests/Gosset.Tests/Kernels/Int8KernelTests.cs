using Gosset.Kernels;

namespace Gosset.Tests.Kernels;

/// <summary>The 8-bit matrix (the LLM's 8-bit classifier): quantizer bounds, the scalar kernel against a double-precision product, every variant bit-exact with the scalar kernel, the stored form.</summary>
public class Int8KernelTests
{
    [Fact]
    public void RowsAreWithinHalfAStepOfAnFp16AbsmaxStep()
    {
        int rows = 7, cols = 600;
        var w = E8BoxKernelTests.Gaussian(rows * cols, 5);
        w[3 * cols + 300] = 40f; // an outlier sets its group's step only
        var m = PackedInt8Matrix.Quantize(w, rows, cols);
        var row = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            m.DequantizeRow(r, row);
            for (int g = 0; g < m.Groups; g++)
            {
                int c0 = 256 * g, n = Math.Min(256, cols - c0);
                float amax = 0f;
                for (int c = c0; c < c0 + n; c++) amax = MathF.Max(amax, MathF.Abs(w[r * cols + c]));
                float d = m.Steps[r * m.Groups + g];
                Assert.True(d >= amax / 127f && d <= amax / 127f * 1.001f, $"step {d} for absmax {amax}");
                Assert.Equal(d, (float)(Half)d);
                for (int c = c0; c < c0 + n; c++) Assert.True(MathF.Abs(row[c] - w[r * cols + c]) <= 0.5f * d * 1.0001f);
            }
        }
        Assert.Equal(8L * rows * cols + 16L * rows * 3, m.StoredBits);
    }

    [Fact]
    public void ScalarKernelMatchesDoubleProductOfRoundedActivations()
    {
        int rows = 9, cols = 520, batch = 3;
        var m = PackedInt8Matrix.Quantize(E8BoxKernelTests.Gaussian(rows * cols, 8), rows, cols);
        var x = E8BoxKernelTests.Gaussian(batch * cols, 9);
        var y = new float[batch * rows];
        m.Multiply(x, y, batch, E8Kernel.Scalar, 1);
        var row = new float[cols];
        for (int v = 0; v < batch; v++)
            for (int r = 0; r < rows; r++)
            {
                m.DequantizeRow(r, row);
                double want = 0;
                for (int g = 0; g < m.Groups; g++)
                {
                    int c0 = 256 * g, n = Math.Min(256, cols - c0);
                    double amax = 0;
                    for (int c = c0; c < c0 + n; c++) amax = Math.Max(amax, Math.Abs(x[v * cols + c]));
                    float xs = (float)amax / 127f;
                    for (int c = c0; c < c0 + n; c++)
                        want += (double)row[c] * Math.Clamp(Math.Round(x[v * cols + c] * (127f / (float)amax), MidpointRounding.ToEven), -127, 127) * xs;
                }
                Assert.True(Math.Abs(y[v * rows + r] - want) <= 1e-5 * (1 + Math.Abs(want)), $"v={v} r={r}: {y[v * rows + r]} vs {want}");
            }
    }

    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(E8KernelTests.Variants), MemberType = typeof(E8KernelTests))]
    public void EveryVariantIsBitExactWithScalar(string name)
    {
        var kern = E8Kernel.Get(name);
        foreach (var (rows, cols, batches) in new[] { (37, 300, new[] { 1, 2, 5 }), (5, 529, new[] { 1, 17 }), (1, 8, new[] { 1, 3 }), (70, 2048, new[] { 1 }) })
        {
            var w = E8BoxKernelTests.Gaussian(rows * cols, rows + cols);
            for (int i = 0; i < w.Length; i += 97) w[i] *= 30f; // full-range levels, ±127
            var m = PackedInt8Matrix.Quantize(w, rows, cols);
            foreach (int batch in batches)
            {
                var x = E8BoxKernelTests.Gaussian(batch * cols, batch + cols);
                var want = new float[batch * rows];
                var got = new float[batch * rows];
                m.Multiply(x, want, batch, E8Kernel.Scalar, 1);
                m.Multiply(x, got, batch, kern, 2);
                for (int i = 0; i < want.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(got[i]), $"{name} {rows}x{cols} batch={batch} at {i}: {want[i]} vs {got[i]}");
            }
        }
    }

    [Fact]
    public void StoredFormRoundTripsAndRejectsHostileFields()
    {
        int rows = 4, cols = 270;
        var m = PackedInt8Matrix.Quantize(E8BoxKernelTests.Gaussian(rows * cols, 2), rows, cols);
        var ms = new MemoryStream();
        m.WriteTo(ms);
        var bytes = ms.ToArray();
        Assert.Equal(m.SerializedLength, bytes.Length);
        Assert.Equal(m.StoredBits, 8L * bytes.Length);
        var m2 = PackedInt8Matrix.ReadFrom(bytes, rows, cols);
        var x = E8BoxKernelTests.Gaussian(cols, 3);
        var y1 = new float[rows]; var y2 = new float[rows];
        m.Multiply(x, y1); m2.Multiply(x, y2);
        Assert.Equal(y1, y2);

        Assert.Throws<InvalidDataException>(() => PackedInt8Matrix.ReadFrom(bytes.AsSpan(0, 10), rows, cols));
        Assert.Throws<InvalidDataException>(() => PackedInt8Matrix.ReadFrom(bytes, rows + 1, cols));
        Assert.Throws<InvalidDataException>(() => PackedInt8Matrix.ReadFrom(bytes, int.MaxValue, int.MaxValue));
        var bad = (byte[])bytes.Clone(); bad[^1] = 0x80; // level −128
        Assert.Throws<InvalidDataException>(() => PackedInt8Matrix.ReadFrom(bad, rows, cols));
        bad = (byte[])bytes.Clone(); bad[0] = 0x00; bad[1] = 0x7E; // fp16 NaN step
        Assert.Throws<InvalidDataException>(() => PackedInt8Matrix.ReadFrom(bad, rows, cols));
    }
}
