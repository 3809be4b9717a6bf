using System.Runtime.Intrinsics;
using Gosset.Llm.Inference;

namespace Gosset.Tests.Llm;

/// <summary>
/// The fused 16-bit classifier GEMV: the vector path bit-exact against its scalar specification (same summation order),
/// and the scalar specification against a double-precision product (the only difference is float32 rounding of the
/// partial sums: |error| ≤ 1e-5·Σ|w·x| for these lengths).
/// </summary>
public class Half16GemvTests
{
    private static (ushort[] W, float[] X) Random16(int rows, int cols, int tokens, TableType type, int seed)
    {
        var rng = new Random(seed);
        var w = new ushort[rows * cols];
        for (int i = 0; i < w.Length; i++)
        {
            float v = (float)(rng.NextDouble() * 2 - 1) * (i % 7 == 0 ? 8f : 0.05f);
            if (i % 97 == 3) v = 3e-6f; // f16 subnormal range
            w[i] = type == TableType.BF16 ? Gosset.IO.SafeTensors.SingleToBFloat16(v) : BitConverter.HalfToUInt16Bits((Half)v);
        }
        var x = new float[tokens * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return (w, x);
    }

    [Theory, Trait("Category", "Simd")]
    [InlineData(TableType.BF16, 1), InlineData(TableType.BF16, 3), InlineData(TableType.BF16, 6),
     InlineData(TableType.F16, 1), InlineData(TableType.F16, 4), InlineData(TableType.F16, 9)]
    public void VectorPathIsBitExactWithScalarSpecification(TableType type, int tokens)
    {
        foreach (int cols in new[] { 5, 16, 100, 2048 })
        {
            int rows = 37; // not a multiple of the 4-row pass
            var (w, x) = Random16(rows, cols, tokens, type, cols * 31 + tokens);
            var fast = new float[tokens * rows];
            var slow = new float[tokens * rows];
            Half16Gemv.Multiply(w, type, rows, cols, x, fast, tokens, threads: 2);
            Half16Gemv.MultiplyReference(w, type, rows, cols, x, slow, tokens);
            for (int i = 0; i < fast.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(fast[i]) == BitConverter.SingleToInt32Bits(slow[i]),
                    $"cols {cols}, entry {i}: {fast[i]:R} vs {slow[i]:R}");
        }
    }

    [Theory]
    [InlineData(TableType.BF16), InlineData(TableType.F16)]
    public void ScalarSpecificationMatchesDoublePrecisionProduct(TableType type)
    {
        int rows = 11, cols = 1000, tokens = 2;
        var (w, x) = Random16(rows, cols, tokens, type, 7);
        var y = new float[tokens * rows];
        Half16Gemv.MultiplyReference(w, type, rows, cols, x, y, tokens);
        for (int t = 0; t < tokens; t++)
            for (int r = 0; r < rows; r++)
            {
                double exact = 0, mag = 0;
                for (int c = 0; c < cols; c++)
                {
                    // Independent widening: bf16 as the top half of a float32, f16 through System.Half.
                    double wv = type == TableType.BF16 ? BitConverter.Int32BitsToSingle(w[r * cols + c] << 16) : (double)BitConverter.UInt16BitsToHalf(w[r * cols + c]);
                    exact += wv * x[t * cols + c];
                    mag += Math.Abs(wv * x[t * cols + c]);
                }
                Assert.True(Math.Abs(y[t * rows + r] - exact) <= 1e-5 * mag, $"row {r} token {t}: {y[t * rows + r]} vs {exact}");
            }
    }

    [Fact, Trait("Category", "Simd")]
    public void VectorHalfWideningIsExactForEveryBitPattern()
    {
        if (!Vector256.IsHardwareAccelerated) return; // the scalar path is the BCL conversion itself
        var h = new uint[8];
        for (int b = 0; b < 65536; b += 8)
        {
            for (int i = 0; i < 8; i++) h[i] = (uint)(b + i);
            var f = Half16Gemv.FromHalfBits(Vector256.Create(h));
            for (int i = 0; i < 8; i++)
            {
                float want = (float)BitConverter.UInt16BitsToHalf((ushort)(b + i));
                if (float.IsNaN(want)) Assert.True(float.IsNaN(f[i]), $"0x{b + i:X4} should be NaN");
                else Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(f[i]), $"0x{b + i:X4}: {f[i]:R} vs {want:R}");
            }
        }
    }

    [Fact]
    public void ShapeErrorsAreTyped()
    {
        Assert.Throws<ArgumentException>(() => Half16Gemv.Multiply(new ushort[10], TableType.BF16, 2, 8, new float[8], new float[2], 1));
        Assert.Throws<ArgumentException>(() => Half16Gemv.Multiply(new ushort[16], TableType.F32, 2, 8, new float[8], new float[2], 1));
    }
}

/// <summary>The attention head ops: the vector dots (one and eight rows at a time) and the weighted row sum bit-exact against its scalar specification, the axpy against a scalar FMA loop.</summary>
public class HeadOpsTests
{
    [Fact, Trait("Category", "Simd")]
    public void DotAndAxpyMatchTheirScalarSpecifications()
    {
        var rng = new Random(4);
        foreach (int n in new[] { 3, 8, 64, 80, 100, 128, 200 })
        {
            var a = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var b = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            float fast = HeadOps.Dot(a, b), slow = HeadOps.DotReference(a, b);
            Assert.Equal(BitConverter.SingleToInt32Bits(slow), BitConverter.SingleToInt32Bits(fast));
            double exact = 0, mag = 0;
            for (int i = 0; i < n; i++) { exact += (double)a[i] * b[i]; mag += Math.Abs((double)a[i] * b[i]); }
            Assert.True(Math.Abs(slow - exact) <= 1e-6 * mag, $"n {n}: {slow} vs {exact}");
            int stride = n + 5;
            var rows = Enumerable.Range(0, 8 * stride).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var d8 = new float[8];
            HeadOps.Dot8(a, rows, stride, d8);
            for (int p = 0; p < 8; p++)
                Assert.Equal(BitConverter.SingleToInt32Bits(HeadOps.DotReference(a, rows.AsSpan(p * stride, n))), BitConverter.SingleToInt32Bits(d8[p]));
            var w = Enumerable.Range(0, 8).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var sum = new float[n];
            HeadOps.WeightedSum(w, rows, stride, sum);
            var axpy = new float[n];
            for (int p = 0; p < 8; p++) HeadOps.AddScaled(w[p], rows.AsSpan(p * stride, n), axpy);
            Assert.Equal(axpy.Select(BitConverter.SingleToInt32Bits), sum.Select(BitConverter.SingleToInt32Bits));
            var y = b.ToArray();
            HeadOps.AddScaled(0.37f, a, y);
            for (int i = 0; i < n; i++) Assert.Equal(BitConverter.SingleToInt32Bits(MathF.FusedMultiplyAdd(a[i], 0.37f, b[i])), BitConverter.SingleToInt32Bits(y[i]));
        }
    }
}
