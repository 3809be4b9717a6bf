using Gosset.Kernels;

namespace Gosset.Tests.Kernels;

/// <summary><see cref="PackedMatrix"/>: the default product (rows decoded once) against a double-precision product, and stored bits through stacking.</summary>
public class PackedMatrixTests
{
    /// <summary>Rows w[r, c] = sin(r + 0.37c) decoded on demand, counting the decodes.</summary>
    private sealed class SineRows(int rows, int cols) : PackedMatrix
    {
        private int _decodes;
        public int Decodes => _decodes;
        public override int Rows { get; } = rows;
        public override int Cols { get; } = cols;
        public override long StoredBits => 32L * Rows * Cols;
        public override ReadOnlySpan<float> Row(int r, Span<float> scratch)
        {
            Interlocked.Increment(ref _decodes);
            for (int c = 0; c < Cols; c++) scratch[c] = MathF.Sin(r + 0.37f * c);
            return scratch[..Cols];
        }
    }

    [Theory]
    [InlineData(1), InlineData(0)]
    public void DefaultMultiplyDecodesEachRowOnceAndMatchesADoubleProduct(int threads)
    {
        const int rows = 301, cols = 77, batch = 3;
        var m = new SineRows(rows, cols);
        var x = E8BoxKernelTests.Gaussian(batch * cols, 5);
        var y = new float[batch * rows + 1];
        y[^1] = 42f; // past batch·rows: untouched
        m.Multiply(x, y, batch, ActivationMode.Float32, threads);
        Assert.Equal(rows, m.Decodes);
        Assert.Equal(42f, y[^1]);
        for (int t = 0; t < batch; t++)
            for (int r = 0; r < rows; r++)
            {
                double want = 0, mag = 0;
                for (int c = 0; c < cols; c++) { double p = Math.Sin(r + 0.37f * c) * x[t * cols + c]; want += p; mag += Math.Abs(p); }
                Assert.True(Math.Abs(y[t * rows + r] - want) <= 1e-5 * mag + 1e-6, $"t {t} r {r}: {y[t * rows + r]} vs {want}");
            }
    }

    [Fact]
    public void DefaultMultiplyRejectsQuantizedActivationsAndShortSpans()
    {
        var m = new SineRows(4, 8);
        Assert.Throws<ArgumentException>(() => m.Multiply(new float[8], new float[4], 1, ActivationMode.Int8, 1));
        Assert.Throws<ArgumentException>(() => m.Multiply(new float[15], new float[8], 2, ActivationMode.Float32, 1));
        Assert.Throws<ArgumentException>(() => m.Multiply(new float[16], new float[7], 2, ActivationMode.Float32, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Multiply(new float[16], new float[8], 0, ActivationMode.Float32, 1));
    }

    [Fact]
    public void KernelFormatsMultiplyThroughTheBaseTypeAsTheirOwnKernel()
    {
        // Through PackedMatrix, the E8 format runs its kernel: the same bits as the explicit call, and near the product of
        // its decoded rows (fp32 activations are exact up to float rounding).
        var e8 = PackedE8Matrix.FromCodes(E8KernelTests.RandomCodes(70, 600, 4, 4, 9));
        PackedMatrix m = e8;
        var x = E8BoxKernelTests.Gaussian(2 * 600, 6);
        var viaBase = new float[2 * 70];
        var direct = new float[2 * 70];
        m.Multiply(x, viaBase, 2, ActivationMode.Float32, 1);
        e8.Multiply(E8Kernel.Best, x, direct, 2, ActivationMode.Float32, 1);
        Assert.Equal(direct, viaBase);
        var row = new float[600];
        for (int t = 0; t < 2; t++)
            for (int r = 0; r < 70; r++)
            {
                var w = m.Row(r, row);
                double want = 0, mag = 0;
                for (int c = 0; c < 600; c++) { want += (double)w[c] * x[t * 600 + c]; mag += Math.Abs((double)w[c] * x[t * 600 + c]); }
                Assert.True(Math.Abs(viaBase[t * 70 + r] - want) <= 1e-5 * mag, $"t {t} r {r}");
            }
        // The int8 format takes float activations only at this interface (it quantizes them itself).
        var i8 = PackedInt8Matrix.Quantize(E8BoxKernelTests.Gaussian(70 * 600, 8), 70, 600);
        Assert.Throws<ArgumentException>(() => ((PackedMatrix)i8).Multiply(x, viaBase, 1, ActivationMode.Int8Group, 1));
    }

    [Fact]
    public void StoredBitsOfCodesKeptInAnotherFormFollowTheStack()
    {
        var codes = new[] { E8KernelTests.RandomCodes(64, 300, 4, 4, 1), E8KernelTests.RandomCodes(37, 300, 4, 4, 2) };
        var told = new[] { PackedE8Matrix.FromCodes(codes[0], 1000), PackedE8Matrix.FromCodes(codes[1], 2000) };
        var (stack, views) = PackedE8Matrix.Stack(told)!.Value;
        Assert.Equal(1000, views[0].StoredBits);
        Assert.Equal(2000, views[1].StoredBits);
        Assert.Equal(3000, stack.StoredBits);
        // Without a stored form, the layout's own bits: what the kernels stream.
        var own = codes.Select(c => PackedE8Matrix.FromCodes(c)).ToArray();
        Assert.Equal(8 * own[0].BytesRead, own[0].StoredBits);
        var (s2, v2) = PackedE8Matrix.Stack(own)!.Value;
        Assert.Equal(8 * v2[1].BytesRead, v2[1].StoredBits);
        Assert.Equal(8 * s2.BytesRead, s2.StoredBits);
        Assert.Throws<ArgumentOutOfRangeException>(() => PackedE8Matrix.FromCodes(codes[0], -1));
    }
}
