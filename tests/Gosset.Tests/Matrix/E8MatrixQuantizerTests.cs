using Gosset.Codes;
using Gosset.Harness;
using Gosset.IO;
using Gosset.Matrix;
using Gosset.Theory;
using Gosset.Util;

namespace Gosset.Tests.Matrix;

public class E8MatrixQuantizerTests
{
    internal static DenseMatrix Gaussian(int n, int cols, ulong seed, double mean = 0)
    {
        var rng = new SplitMix64(seed);
        var m = new DenseMatrix(n, cols);
        for (int i = 0; i < m.Data.Length; i++) m.Data[i] = (float)(mean + rng.NextGaussian());
        return m;
    }

    [Theory]
    [InlineData(IndexCoding.Entropy)]
    [InlineData(IndexCoding.Fixed)]
    public void Gq_round_trip_is_exact_and_rate_is_the_file_size(IndexCoding coding)
    {
        var a = Gaussian(200, 7, 1, mean: 3);   // 200 is not a multiple of 8: padding is counted
        var q = E8MatrixQuantizer.Quantize(a, new E8MatrixOptions { Q = 11, K = 4, IndexCoding = coding });
        string path = Path.Combine(Path.GetTempPath(), $"gq-{Guid.NewGuid():N}.gq");
        try
        {
            GqFormat.Save(path, q);
            long fileBits = new FileInfo(path).Length * 8;
            Assert.Equal(fileBits, q.TotalBits);
            Assert.Equal(fileBits / (200.0 * 7), q.BitsPerEntry, 12);
            var back = GqFormat.Load(path);
            Assert.Equal(q.DecodeRotated().Data, back.DecodeRotated().Data);
            Assert.Equal(q.Dequantize().Data, back.Dequantize().Data);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Stored_rate_accounts_for_every_part()
    {
        int n = 512, cols = 32;
        var a = Gaussian(n, cols, 2);
        var fixedQ = E8MatrixQuantizer.Quantize(a, new E8MatrixOptions { Q = 16, K = 4, IndexCoding = IndexCoding.Fixed });
        int blockBits = E8QuantizedMatrix.FixedBlockBits(16, 4);
        Assert.Equal(34, blockBits); // 8·4 + 2
        long payloadBits = ((long)cols * n / 8 * blockBits + 7) / 8 * 8;
        long sideBits = cols * 2 * 32 + 4 * 32;    // means, gains, scales
        long header = 8 * (4 + 2 + 1 + 1 + 4 + 4 + 4 + 1 + 8 + 1 + 2 + 1 + 1 + 1 + 1 + 4 + 4 + 4); // magic, version, method, orientation … payload length + crc
        Assert.Equal(payloadBits + sideBits + header, fixedQ.TotalBits);
        // entropy-coded indices cost less than 2 bits per block but digits cost their full log2 q
        var entropyQ = E8MatrixQuantizer.Quantize(a, new E8MatrixOptions { Q = 16, K = 4 });
        double digitsBits = (double)n * cols * 4;
        // Range-coded scale indices cost at most 2 bits per block; measured by this test: 3640 bits (1.78 per block), ±3 %.
        Assert.InRange(entropyQ.PayloadBytes * 8.0 - digitsBits, 3530, 3750);
    }

    [Fact]
    public void Product_estimate_at_high_rate_is_accurate_and_means_are_exact()
    {
        var a = Gaussian(256, 12, 3, mean: 50);
        var b = Gaussian(256, 9, 4, mean: -20);
        var o = new E8MatrixOptions { Q = 256, K = 4 };
        var c = ProductEstimator.Estimate(E8MatrixQuantizer.Quantize(a, o), E8MatrixQuantizer.Quantize(b, o));
        var err = ProductError.Measure(a, b, c);
        // Measured by this test (q = 256): D = 3.580e-5, relative error 3.781e-7 (the means are exact); windows ±3 %.
        Assert.InRange(err.Distortion, 3.47e-5, 3.69e-5);
        Assert.InRange(err.RelativeError, 3.67e-7, 3.89e-7);
    }

    [Fact]
    public void Gaussian_product_at_four_bits_is_close_to_gamma_and_beats_int4()
    {
        var a = Gaussian(1024, 64, 5);
        var b = Gaussian(1024, 64, 6);
        var e8 = RdHarness.Run(a, b, MatrixMethod.Get("e8-voronoi"), 4, 1);
        var int4 = RdHarness.Run(a, b, MatrixMethod.Get("int-clip-rot"), 4, 1);
        // Measured by this test: e8-voronoi stores 4.0916 bits/entry at 2.255 dB from Γ, 2.332 dB better than
        // int-clip-rot (4.1305 bits/entry); D/(mse_A + mse_B) = 0.9910. Rates ±1 %, dB and ratios ±3 %.
        Assert.InRange(e8.BitsPerEntry, 4.05, 4.13);
        Assert.InRange(e8.GapDb, 2.19, 2.32);
        Assert.True(e8.BitsPerEntry <= int4.BitsPerEntry);
        Assert.InRange(RateDistortion.Db(int4.Error.Distortion, e8.Error.Distortion), 2.26, 2.40);
        // D ≈ mse_A + mse_B for independent errors
        Assert.InRange(e8.Error.Distortion / (e8.MseA + e8.MseB), 0.961, 1.021);
    }

    [Fact]
    public void Time_sharing_codes_a_fraction_and_follows_the_tangent()
    {
        var a = Gaussian(1024, 48, 7);
        var b = Gaussian(1024, 48, 8);
        var full = RdHarness.Run(a, b, MatrixMethod.Get("e8-voronoi"), E8Method.TimeSharingBaseRate, 1);
        var half = RdHarness.Run(a, b, MatrixMethod.Get("e8-voronoi"), E8Method.TimeSharingBaseRate / 2, 1);
        // Measured by this test: rate ratio 0.5200, half-rate D = 0.7122 against the tangent's 0.6959; ±3 %, and
        // within 0.025 of the tangent.
        Assert.InRange(half.BitsPerEntry / full.BitsPerEntry, 0.505, 0.535);
        double predicted = 1 - 0.5 * (1 - full.Error.Distortion);
        Assert.InRange(half.Error.Distortion, 0.691, 0.734);
        Assert.InRange(half.Error.Distortion, predicted - 0.025, predicted + 0.025);
        // every rate from 0.25 bit/entry works; measured 0.3288 bits/entry, D = 0.9108 (±3 %)
        var low = RdHarness.Run(a, b, MatrixMethod.Get("e8-voronoi"), 0.25, 1);
        Assert.InRange(low.BitsPerEntry, 0.319, 0.339);
        Assert.InRange(low.Error.Distortion, 0.883, 0.938);
    }

    [Fact]
    public void Dithered_code_decodes_with_the_regenerated_dither()
    {
        var a = Gaussian(128, 4, 9);
        var q = E8MatrixQuantizer.Quantize(a, new E8MatrixOptions { Q = 64, K = 1, Dither = true, DitherSeed = 77 });
        var back = GqFormat.Read(ToBytes(q));
        double nmse = ProductError.NormalizedMse(a, back.Dequantize());
        // Measured by this test (q = 64, dithered): 5.289e-4; ±3 %.
        Assert.InRange(nmse, 5.13e-4, 5.45e-4);
        Assert.Equal(q.Dequantize().Data, back.Dequantize().Data);
    }

    [Fact]
    public void Products_need_the_same_rotation_and_inner_dimension()
    {
        var a = Gaussian(64, 3, 1);
        var qa = E8MatrixQuantizer.Quantize(a, new E8MatrixOptions { Seed = 1 });
        var qb = E8MatrixQuantizer.Quantize(a, new E8MatrixOptions { Seed = 2 });
        Assert.Throws<GossetException>(() => ProductEstimator.Estimate(qa, qb));
        var qc = E8MatrixQuantizer.Quantize(Gaussian(72, 3, 1), new E8MatrixOptions { Seed = 1 });
        Assert.Throws<GossetException>(() => ProductEstimator.Estimate(qa, qc));
    }

    [Fact]
    public void Bad_input_is_rejected_clearly()
    {
        var a = Gaussian(16, 2, 1);
        a[3, 1] = float.NaN;
        var e = Assert.Throws<GossetException>(() => E8MatrixQuantizer.Quantize(a, new E8MatrixOptions()));
        Assert.Contains("NaN", e.Message);
        a[3, 1] = float.PositiveInfinity;
        Assert.Throws<GossetException>(() => E8MatrixQuantizer.Quantize(a, new E8MatrixOptions()));
        Assert.Throws<GossetException>(() => E8MatrixQuantizer.Quantize(Gaussian(8, 1, 1), new E8MatrixOptions { Q = 1 }));
        Assert.Throws<GossetException>(() => E8MatrixQuantizer.Quantize(Gaussian(8, 1, 1), new E8MatrixOptions { K = 3 }));
        Assert.Throws<GossetException>(() => E8MatrixQuantizer.Quantize(new DenseMatrix(0, 3), new E8MatrixOptions()));
    }

    [Fact]
    public void Corrupt_or_truncated_gq_files_are_rejected()
    {
        var q = E8MatrixQuantizer.Quantize(Gaussian(64, 4, 1), new E8MatrixOptions());
        var bytes = ToBytes(q);
        Assert.Throws<InvalidFileException>(() => GqFormat.Read(bytes[..^9]));
        var flipped = (byte[])bytes.Clone();
        flipped[40] ^= 0x10;
        Assert.Throws<InvalidFileException>(() => GqFormat.Read(flipped));
        var magic = (byte[])bytes.Clone();
        magic[0] = (byte)'X';
        Assert.Throws<InvalidFileException>(() => GqFormat.Read(magic));
        Assert.Throws<InvalidFileException>(() => GqFormat.Read([]));
    }

    [Fact]
    public void Constant_and_zero_columns_are_coded_exactly()
    {
        var a = new DenseMatrix(24, 3);
        for (int i = 0; i < 24; i++) { a[i, 1] = 5f; a[i, 2] = -2.5f; }
        var back = E8MatrixQuantizer.Quantize(a, new E8MatrixOptions()).Dequantize();
        for (int k = 0; k < a.Data.Length; k++) Assert.Equal(a.Data[k], back.Data[k], 4);
    }

    internal static byte[] ToBytes(QuantizedMatrix q)
    {
        using var ms = new MemoryStream();
        GqFormat.Write(ms, q);
        return ms.ToArray();
    }
}

public class BoxQuantizedMatrixTests
{
    [Fact]
    public void Kernel_code_round_trips_through_gq_and_counts_its_bits()
    {
        var a = E8MatrixQuantizerTests.Gaussian(100, 6, 4);   // padded to 104
        var q = (BoxQuantizedMatrix)MatrixMethod.Get("e8-box-fixed").Encode(a, 4, 3);
        var bytes = E8MatrixQuantizerTests.ToBytes(q);
        var back = GqFormat.Read(bytes);
        Assert.Equal(q.DecodeRotated().Data, back.DecodeRotated().Data);
        Assert.Equal(bytes.Length * 8L, q.TotalBits);
        long payload = 6 * 32 + 6 * 13 * 32 + (6 * 13 * 2 + 7) / 8 * 8 + 32;
        Assert.Equal(272, q.TotalBits - payload); // the rest is the fixed 34-byte header
        // Measured by this test: normalised MSE 0.005063; ±3 %.
        Assert.InRange(ProductError.NormalizedMse(a, back.Dequantize()), 0.00491, 0.00521);
        Assert.Throws<GossetException>(() => MatrixMethod.Get("e8-box-fixed").Encode(a, 6, 3));
    }
}
