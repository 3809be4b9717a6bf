using Gosset.Harness;
using Gosset.Matrix;

namespace Gosset.Tests.Matrix;

/// <summary>
/// The product estimate against the exact product (double precision) where it used to go wrong:
/// one factor centred and the other not, and columns that are subnormal, all zero or near float.MaxValue.
/// </summary>
public sealed class ProductEstimatorEdgeTests
{
    private static double RelativeError(DenseMatrix a, DenseMatrix b, DenseMatrix c)
    {
        double[] exact = ProductEstimator.ExactProduct(a, b);
        double err = 0, norm = 0;
        for (int j = 0; j < b.Cols; j++)
            for (int i = 0; i < a.Cols; i++)
            {
                double e = exact[(long)j * a.Cols + i];
                err += (c[i, j] - e) * (c[i, j] - e); norm += e * e;
            }
        return Math.Sqrt(err / norm);
    }

    [Theory]
    // Relative errors measured by this test: 0.005925, 0.006364, 0.005190.
    [InlineData("e8-voronoi", "int-rot", 0.005925)]
    [InlineData("int-rot", "e8-voronoi", 0.006364)]
    [InlineData("e8-voronoi", "e8-box-fixed", 0.005190)]
    public void Mixed_centring_adds_the_cross_term(string methodA, string methodB, double measured)
    {
        // Means 5 and 3 dominate the product: without the cross term μA·(1ᵀB) the relative error was 1.0.
        var a = E8MatrixQuantizerTests.Gaussian(256, 12, 1, mean: 5);
        var b = E8MatrixQuantizerTests.Gaussian(256, 9, 2, mean: 3);
        var qa = MatrixMethod.Get(methodA).Encode(a, 4, 7);
        var qb = MatrixMethod.Get(methodB).Encode(b, 4, 7);
        Assert.NotEqual(qa.Centered, qb.Centered);
        double rel = RelativeError(a, b, ProductEstimator.Estimate(qa, qb));
        // 4-bit codes of both factors: the error is the quantization noise (±3 % of the measured figure).
        Assert.InRange(rel, 0.97 * measured, 1.03 * measured);
    }

    [Theory]
    [InlineData("e8", 1e37f)]
    [InlineData("e8", 3e36f)]
    [InlineData("e8", 1f)]
    [InlineData("int-rot", 1f)]
    [InlineData("int", 1f)]
    public void Subnormal_zero_and_huge_columns_give_finite_correct_products(string method, float huge)
    {
        const int n = 64;
        var a = E8MatrixQuantizerTests.Gaussian(n, 5, 3);
        var g = E8MatrixQuantizerTests.Gaussian(n, 4, 4);
        for (int i = 0; i < n; i++)
        {
            a[i, 1] = g[i, 0] * 1e-39f;          // subnormal column (crashed the scale fitting)
            a[i, 2] = 0f;                        // all-zero column
            a[i, 3] = g[i, 1] * huge;            // ~1e37: near float.MaxValue for e8 (INT: fp16 steps, below)
        }
        var b = E8MatrixQuantizerTests.Gaussian(n, 3, 5);
        var m = MatrixMethod.Get(method);
        var qa = m.Encode(a, 6, 11);
        var qb = m.Encode(b, 6, 11);
        var back = qa.Dequantize();
        for (int j = 0; j < a.Cols; j++)
            for (int i = 0; i < n; i++) Assert.True(float.IsFinite(back[i, j]), $"x̂[{i},{j}] = {back[i, j]}");
        for (int i = 0; i < n; i++) Assert.Equal(0f, back[i, 2]);
        var c = ProductEstimator.Estimate(qa, qb);
        double[] exact = ProductEstimator.ExactProduct(a, b);
        for (int j = 0; j < b.Cols; j++)
            for (int i = 0; i < a.Cols; i++)
            {
                double e = exact[(long)j * a.Cols + i], scale = ColumnNorm(a, i) * ColumnNorm(b, j);
                Assert.True(float.IsFinite(c[i, j]), $"Ĉ[{i},{j}] = {c[i, j]}");
                // INT steps are fp16: a subnormal column is below their range and decodes to 0 (error |exact|, ~1e-39).
                double slack = method.StartsWith("int", StringComparison.Ordinal) && i == 1 ? 1.01 * Math.Abs(e) : 0;
                // Each entry within a few percent of ‖a_i‖‖b_j‖ (6-bit codes), the tiny and huge columns included.
                Assert.True(Math.Abs(c[i, j] - e) <= 0.05 * scale + slack, $"Ĉ[{i},{j}] = {c[i, j]}, exact {e}, ‖a‖‖b‖ {scale}");
            }
    }

    [Theory]
    [InlineData("int")]
    [InlineData("int-rot")]
    public void Int_steps_out_of_fp16_range_are_a_clear_error(string method)
    {
        var a = E8MatrixQuantizerTests.Gaussian(64, 2, 3);
        for (int i = 0; i < 64; i++) a[i, 1] *= 1e37f;
        var e = Record.Exception(() => MatrixMethod.Get(method).Encode(a, 4, 1));
        Assert.IsType<GossetException>(e is AggregateException ag ? ag.InnerExceptions[0] : e);
        Assert.Contains("fp16", e.InnerException?.Message ?? e.Message);
    }

    private static double ColumnNorm(DenseMatrix m, int j)
    {
        double s = 0;
        for (int i = 0; i < m.Rows; i++) s += (double)m[i, j] * m[i, j];
        return Math.Sqrt(s);
    }
}
