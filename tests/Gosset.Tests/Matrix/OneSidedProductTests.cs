using Gosset.Harness;
using Gosset.Matrix;

namespace Gosset.Tests.Matrix;

/// <summary>Ĉ = ÂᵀB with only A quantized: the kernel format multiplies its packed codes, the others decode.</summary>
public class OneSidedProductTests
{
    [Theory]
    [InlineData("e8", true)]
    [InlineData("e8-voronoi", false)] // centred columns: the mean term is added back
    [InlineData("int-rot", false)]
    public void Product_with_a_float_factor_equals_the_dequantized_product(string method, bool kernels)
    {
        var (a, b) = MatrixSources.Pair("nonzero-mean", 203, 37, 9, 5);
        var qa = MatrixMethod.Get(method).Encode(a, 4, 11);
        Assert.Equal(kernels, qa.RunsOnKernels);
        var c = qa.MultiplyTransposed(b);
        Assert.Equal((37, 9), (c.Rows, c.Cols));
        // Reference: the dequantized A (inverse rotation, means added) times B in double precision.
        var reference = ProductEstimator.ExactProduct(qa.Dequantize(), b);
        double err = 0, norm = 0;
        for (int j = 0; j < 9; j++)
            for (int i = 0; i < 37; i++)
            {
                double r = reference[j * 37 + i], d = r - c[i, j];
                err += d * d; norm += r * r;
            }
        Assert.True(Math.Sqrt(err / norm) < 2e-5, $"{method}: relative difference {Math.Sqrt(err / norm)}");
        // On zero-mean Gaussian factors only one side's error remains, so the error against AᵀB is below the two-sided estimate's.
        var (ga, gb) = MatrixSources.Pair("gaussian", 256, 64, 64, 6);
        var qga = MatrixMethod.Get(method).Encode(ga, 4, 11);
        double one = ProductError.Measure(ga, gb, qga.MultiplyTransposed(gb)).RelativeError;
        double two = ProductError.Measure(ga, gb, ProductEstimator.Estimate(qga, MatrixMethod.Get(method).Encode(gb, 4, 11))).RelativeError;
        Assert.True(one < two, $"{method}: one-sided {one} vs two-sided {two}");
    }

    [Theory]
    [InlineData("e8", typeof(Gosset.Kernels.PackedE8Matrix))]
    [InlineData("int-rot", typeof(Gosset.Kernels.CodedMatrix))]
    [InlineData("int-clip", typeof(Gosset.Kernels.CodedMatrix))]
    [InlineData("e8-voronoi", typeof(Gosset.Kernels.Float32Matrix))]
    public void The_packed_view_holds_each_column_as_a_row(string method, Type packed)
    {
        var (a, _) = MatrixSources.Pair("nonzero-mean", 203, 37, 9, 5);
        var qa = MatrixMethod.Get(method).Encode(a, 4, 11);
        var t = qa.Transposed;
        Assert.IsType(packed, t);
        Assert.Equal((qa.Cols, qa.RotatedLength), (t.Rows, t.Cols));
        // Row i is column i of the rotated-domain decode, exactly.
        var z = qa.DecodeRotated();
        var scratch = new float[t.Cols];
        for (int i = 0; i < qa.Cols; i++) Assert.Equal(z.Column(i).ToArray(), t.Row(i, scratch).ToArray());
        // Coded forms count their codes' bits: the matrix's stored total adds only the .gq header and the checksum.
        if (t is not Gosset.Kernels.Float32Matrix) Assert.InRange(qa.TotalBits - t.StoredBits, 1, 8 * 128);
    }

    [Fact]
    public void Mismatched_or_non_finite_factors_are_errors()
    {
        var (a, b) = MatrixSources.Pair("gaussian", 64, 4, 3, 1);
        var qa = MatrixMethod.Get("e8").Encode(a, 4, 1);
        Assert.Throws<GossetException>(() => qa.MultiplyTransposed(new DenseMatrix(65, 3)));
        b[2, 1] = float.NaN;
        Assert.Throws<GossetException>(() => qa.MultiplyTransposed(b));
    }
}
