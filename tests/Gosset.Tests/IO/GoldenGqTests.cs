using Gosset.IO;
using Gosset.Matrix;
using Gosset.Rotations;

namespace Gosset.Tests.IO;

/// <summary>
/// Small .gq files committed in Golden/ (format version 2) that every later build must keep reading
/// and decoding to the same values. If a test here fails, the format or a decoder changed: bump the
/// version and keep reading the old one instead of editing these files.
/// </summary>
public class GoldenGqTests
{
    private static string G(string name) => Path.Combine(AppContext.BaseDirectory, "Golden", name);

    private static DenseMatrix F(int r, int c, Func<int, int, double> f)
    {
        var m = new DenseMatrix(r, c);
        for (int i = 0; i < r; i++) for (int j = 0; j < c; j++) m[i, j] = (float)f(i, j);
        return m;
    }

    [Fact]
    public void Int4_without_rotation_decodes_exactly_to_its_grid_input()
    {
        // every group of 8 holds ±1.875 = 7.5·0.25, so the fp16 step is exactly 0.25 and these odd
        // multiples of 0.125 are reconstruction levels: the decode is the input, bit for bit
        var file = GqFormat.LoadFile(G("int4-g8-norot.gq"));
        Assert.Equal(new GqHeader(2, GqMethod.Int, GqOrientation.Columns, 16, 2, 16, RotationKind.None, 0, false), file.Header);
        var expected = F(16, 2, (i, j) => (((i * 7 + j * 3) % 16) - 7.5) * 0.25);
        Assert.Equal(expected.Data, file.Dequantize().Data);
        Assert.Equal(69 * 8, file.Matrix.TotalBits);
    }

    [Fact]
    public void E8_voronoi_with_a_kronecker_rotation_keeps_decoding_the_same()
    {
        // 20 rows padded to 24 = 3·8: the 3×3 dense factor comes from the portable normal draw;
        // stored with orientation Rows, so the decode is 3×20
        var file = GqFormat.LoadFile(G("e8-voronoi-kron24-rows.gq"));
        Assert.Equal(new GqHeader(2, GqMethod.E8Voronoi, GqOrientation.Rows, 20, 3, 24, RotationKind.Hadamard, 5, true), file.Header);
        var y = file.Dequantize();
        var pinned = Npy.Read(G("e8-voronoi-kron24-rows.expected.npy"));
        Assert.Equal((3, 20), (y.Rows, y.Cols));
        for (int k = 0; k < y.Data.Length; k++) Assert.Equal(pinned.Data[k], y.Data[k], 5e-6f);
        // and the pinned values are a 4-bit-quality reconstruction of the input they were made from
        var x = F(20, 3, (i, j) => Math.Sin(0.37 * (i + 1) * (j + 2)) + 0.1 * j);
        double err = 0, norm = 0;
        for (int i = 0; i < 20; i++) for (int j = 0; j < 3; j++) { double d = y[j, i] - x[i, j]; err += d * d; norm += x[i, j] * (double)x[i, j]; }
        Assert.InRange(Math.Sqrt(err / norm), 0.0468, 0.0497); // pinned decode: relative error 0.04829, ±3 %
    }

    [Fact]
    public void E8_box_keeps_decoding_the_same()
    {
        var file = GqFormat.LoadFile(G("e8-box-had16.gq"));
        Assert.Equal(new GqHeader(2, GqMethod.E8Box, GqOrientation.Columns, 16, 2, 16, RotationKind.Hadamard, 3, false), file.Header);
        var y = file.Dequantize();
        var pinned = Npy.Read(G("e8-box-had16.expected.npy"));
        for (int k = 0; k < y.Data.Length; k++) Assert.Equal(pinned.Data[k], y.Data[k], 5e-6f);
        var x = F(16, 2, (i, j) => Math.Cos(0.5 * i + j) * (1 + j));
        double err = 0, norm = 0;
        for (int k = 0; k < x.Data.Length; k++) { double d = y.Data[k] - x.Data[k]; err += d * d; norm += x.Data[k] * (double)x.Data[k]; }
        Assert.InRange(Math.Sqrt(err / norm), 0.0704, 0.0748); // pinned decode: relative error 0.07257, ±3 %
    }
}
