using Gosset.Kernels;
using Gosset.Baselines;
using Gosset.Codes;
using Gosset.Coding;
using Gosset.Llm.Evaluation;
using Gosset.Llm.Inference;
using Gosset.Llm.Quantization;
using Gosset.Tests.Support;

namespace Gosset.Tests.Llm;

public sealed class QuantizationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-llmq-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static float[] Gaussian(int n, int seed)
    {
        var r = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()));
        return x;
    }

    [Theory]
    [InlineData(8)]
    [InlineData(64)]
    [InlineData(172)]
    [InlineData(176)]
    public void RotationIsOrthogonal(int n)
    {
        var rot = Gosset.Rotations.Rotation.Create(n, 7);
        var x = Gaussian(n, 1);
        var y = new float[n];
        var z = new float[n];
        rot.Apply(x, y);
        rot.ApplyInverse(y, z);
        double nx = x.Sum(v => (double)v * v), ny = y.Sum(v => (double)v * v);
        Assert.True(Math.Abs(nx - ny) < 1e-4 * nx);
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(x[i] - z[i]) < 1e-4);
        // Not the identity, and inner products are kept.
        Assert.True(x.Zip(y).Count(p => Math.Abs(p.First - p.Second) > 1e-3) > n / 2);
        var w = Gaussian(n, 2);
        var wr = new float[n];
        rot.Apply(w, wr);
        double d1 = x.Zip(w).Sum(p => (double)p.First * p.Second), d2 = y.Zip(wr).Sum(p => (double)p.First * p.Second);
        Assert.True(Math.Abs(d1 - d2) < 1e-3);
    }

    [Fact]
    public void E8CodecOnGaussianBeatsInt4AndMatchesNotes()
    {
        int n = 64, vectors = 400;
        var e8 = new E8VoronoiCodec(n, 14, ScaleSets.NestQuant(TensorKind.Activations, 14, 4));
        var i4 = new IntCodec(n, 4, n);
        double me = 0, mi = 0;
        var y = new float[n];
        for (int v = 0; v < vectors; v++)
        {
            var x = Gaussian(n, 100 + v);
            e8.Roundtrip(x, y); me += x.Zip(y).Sum(p => (double)(p.First - p.Second) * (p.First - p.Second));
            i4.Roundtrip(x, y); mi += x.Zip(y).Sum(p => (double)(p.First - p.Second) * (p.First - p.Second));
        }
        me /= n * vectors; mi /= n * vectors;
        // NestQuant (arXiv 2502.09720) reports ≈0.0063 per entry on N(0,1) with the activation set (per-vector normalisation
        // adds a little). Measured by this test (seeded, double sums): E8 0.006472, INT4 absmax 0.011908; windows ±3 %.
        Assert.InRange(me, 0.00628, 0.00667);
        Assert.InRange(mi, 0.01155, 0.01227);
        Assert.Equal(16 + 8 * (31 + 2), e8.Bits);
        Assert.Equal(4 * 64 + 16, i4.Bits);
    }

    [Fact]
    public void CodesPackToTheirStatedBitsAndUnpackExactly()
    {
        // Every code behind the one interface: Voronoi, the kernel E8 code (fitted table, 3 and 4 bits), INT (the LLM's and rd's variants).
        var box4 = E8BoxTable.Fit([Gaussian(2048, 11)], 4, 4, double.NaN);
        var box3 = E8BoxTable.Fit([Gaussian(2048, 12)], 3, 8, 2.25);
        foreach (VectorCodec codec in new VectorCodec[] { new E8VoronoiCodec(176, 14, ScaleSets.NestQuant(TensorKind.Weights, 14, 4)), new E8VoronoiCodec(32, 7, ScaleSets.NestQuant(TensorKind.Keys, 7, 4)),
                     new E8BoxCodec(272, box4), new E8BoxCodec(64, box3, fixedScale: true), new IntCodec(172, 3, 64), new IntCodec(101, new IntQuantizer(5, 7, IntClipping.MseOptimal, IntLevels.MidRise)) })
        {
            var x = Gaussian(codec.Length, 5);
            var code = new byte[codec.CodeBytes];
            codec.Encode(x, code);
            var w = new BitWriter();
            codec.Pack(code, w);
            Assert.Equal(codec.Bits, w.BitCount);
            var back = new byte[codec.CodeBytes];
            var reader = new BitReader(w.ToArray());
            codec.Unpack(ref reader, back);
            Assert.Equal(code, back);
            var y = new float[codec.Length];
            var z = new float[codec.Length];
            codec.Decode(back, y);
            codec.Roundtrip(x, z);
            Assert.Equal(z, y);
        }
    }

    [Fact]
    public void LdlqLowersTheOutputErrorOnCorrelatedInputs()
    {
        int n = 64, rows = 32, samples = 2000;
        // Correlated inputs: x = A z.
        var a = Gaussian(n * n, 9);
        var xs = new float[samples * n];
        var z = new float[n];
        for (int s = 0; s < samples; s++)
        {
            Gaussian(n, 1000 + s).CopyTo(z, 0);
            for (int i = 0; i < n; i++) { double t = z[i]; for (int j = 0; j < i; j++) t += 0.3 * a[i * n + j] * z[j]; xs[s * n + i] = (float)t; }
        }
        var h = new HessianAccumulator(n);
        h.Add(xs, samples);
        var codec = new E8VoronoiCodec(n, 14, ScaleSets.NestQuant(TensorKind.Weights, 14, 4));
        var ldlq = new Ldlq(h.H, n, 0.01);
        double eRtn = 0, eLdlq = 0;
        var y = new float[n];
        for (int r = 0; r < rows; r++)
        {
            var w = Gaussian(n, 50 + r);
            var code = new byte[codec.CodeBytes];
            codec.Encode(w, code); codec.Decode(code, y); eRtn += Quadratic(h.H, w, y, n);
            ldlq.QuantizeRow(codec, w, code); codec.Decode(code, y); eLdlq += Quadratic(h.H, w, y, n);
        }
        // Measured by this test: LDLQ/RTN = 0.6918 (seeded); window ±3 %.
        Assert.InRange(eLdlq / eRtn, 0.671, 0.713);
    }

    private static double Quadratic(double[] h, float[] w, float[] y, int n)
    {
        double s = 0;
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) s += (w[i] - y[i]) * h[i * n + j] * (w[j] - y[j]);
        return s;
    }

    // KL to the float model on the first 257 validation tokens (2 windows of 128), measured by this test:
    // w4 e8 0.05499 (block scales on the 12-bit grid, int8 activations per 256-group, row-scale search), w4a4kv4 int 2.3844 (INT4 without
    // rotation on a 64-wide model is poor, and the test pins it).
    [DataTheory]
    [InlineData("fp", "e8", 0.0)]
    [InlineData("w4", "e8", 0.05499)]
    [InlineData("w4a4kv4", "int", 2.3844)]
    public void RotationOnlyModelIsExactAndQuantizedModelsStayClose(string quant, string method, double kl)
    {
        int[] tokens = Stories.ValTokens[..257];
        var spec = QuantSpec.Parse(quant, method);
        var model = ModelQuantizer.Quantize(Stories.Weights, spec);
        var r = Evaluator.Evaluate(model, tokens, 128, 2, Stories.Model);
        if (!spec.IsQuantized) Assert.Equal(0, r.Kl!.Value, 12);
        else
        {
            // ±3 % (±2 % at least for the e8 kernel format, whose block-scale table may move it by a fraction of a percent)
            Assert.InRange(r.Kl!.Value, 0.97 * kl, 1.03 * kl);
        }
        // A rotated model without quantization gives the float logits (rotations are orthogonal).
        var rotOnly = ModelQuantizer.Assemble(Stories.Weights, QuantRecipe.Published(QuantSpec.Parse("w4a4kv4", "e8-voronoi")), calibration: true,
            (layer, name, _, rotation, width) =>
            {
                var (o, i) = ModelQuantizer.Shape(Stories.Weights.Config, name);
                var src = ModelQuantizer.Matrix(Stories.Weights, layer, name);
                var rows = new float[o * width];
                var tmp = new float[width];
                for (int row = 0; row < o; row++) { Array.Clear(tmp); Array.Copy(src, row * i, tmp, 0, i); rotation!.Apply(tmp, rows.AsSpan(row * width, width)); }
                return new Float32Matrix(rows, o, width);
            });
        float[] a = Stories.Model.ForwardWindow(tokens[..16]), b = rotOnly.ForwardWindow(tokens[..16]);
        for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) < 2e-3, $"logit {i}: {a[i]} vs {b[i]}");
    }

    [DataFact]
    public void E8BeatsRotatedInt4AtW4()
    {
        int[] tokens = Stories.ValTokens[..1025];
        double Kl(string method) => Evaluator.Evaluate(ModelQuantizer.Quantize(Stories.Weights, QuantSpec.Parse("w4", method)), tokens, 512, 2, Stories.Model).Kl!.Value;
        double e8 = Kl("e8"), intRot = Kl("int-rot");
        // Measured by this test (1024 tokens, 2 windows of 512): e8 0.056655, int-rot 0.17246; windows ±3 %.
        Assert.InRange(e8, 0.05496, 0.05835);
        Assert.InRange(intRot, 0.1673, 0.1776);
    }

    [DataFact]
    public void BitsAreCountedWithSideInformation()
    {
        var c = Stories.Weights.Config;
        var e8 = ModelQuantizer.Quantize(Stories.Weights, QuantSpec.Parse("w4a4kv4", "e8-voronoi"));
        // Per row: fp16 RMS + per 8-block 31 digit bits + 2 index bits; W2 rows are padded 172 → 176.
        double rowBits(int width) => 16 + width / 8 * 33;
        long perLayer = (long)(2 * c.Dim + 2 * c.KvDim) * (long)rowBits(64) + 2L * c.HiddenDim * (long)rowBits(64) + c.Dim * (long)rowBits(176);
        long weights = (long)(2 * c.Dim * c.Dim + 2 * c.KvDim * c.Dim + 3 * c.Dim * c.HiddenDim);
        Assert.Equal((double)perLayer / weights, e8.BitsPerWeight, 9);
        // KV: per layer, K and V each one fp16 scale per token shared by the 4 heads + 4 blocks × 33 bits.
        Assert.Equal(c.Layers * 2 * (16 + 4 * 33) / 8.0, e8.KvBytesPerToken, 9);
        var i4 = ModelQuantizer.Quantize(Stories.Weights, QuantSpec.Parse("w4", "int"));
        // LLM specs name the code's width (W4, as published recipes do), not a --bits budget: INT4 with one fp16 step per
        // 64-group (a partial group pays a whole step) stores 4.2571 bits/weight here, above the rule's 4 + 0.25.
        long steps = (2L * c.Dim + 2L * c.KvDim + 2L * c.HiddenDim) * 16 + c.Dim * 16L * ((c.HiddenDim + 63) / 64);
        Assert.Equal(4 + (double)steps / weights, i4.BitsPerWeight, 9);
        Assert.True(i4.BitsPerWeight > Gosset.Harness.RateBudget.Limit(4));
        Assert.True(e8.BitsPerWeight - i4.BitsPerWeight <= 0.15, $"{e8.BitsPerWeight} vs {i4.BitsPerWeight}");
    }

    [DataFact]
    public void QuantizedModelFileRoundTripsAndDetectsCorruption()
    {
        int[] tokens = Stories.ValTokens[..300];
        var spec = QuantSpec.Parse("w4a4kv4", "e8-voronoi") with
        {
            Ldlq = true, QaLdlq = true, KvCenter = true, KeyQueryWeighting = true, KvFixedScale = true, KvScales = 8,
            Keys = new TensorQuant(QuantMethod.E8, 4) { QOverride = 16 },
        };
        var model = ModelQuantizer.Quantize(Stories.Weights, spec, Stories.ValTokens[^3000..], 512, 2);
        string p = Path.Combine(_dir, "m.gqm");
        long size = QuantizedModelFile.Save(model, p, QuantizedModelFile.TokenizerBlob.FromFile(Stories.TokenizerPath)).Bytes;
        Assert.Equal(new FileInfo(p).Length, size);
        var (loaded, _) = QuantizedModelFile.Load(p);
        Assert.Equal(model.ForwardWindow(tokens), loaded.ForwardWindow(tokens));
        Assert.Equal(model.BitsPerWeight, loaded.BitsPerWeight);
        Assert.Equal(model.KvBytesPerToken, loaded.KvBytesPerToken);
        Assert.Equal(model.Quant, loaded.Quant);
        // Fixed scales: no per-token side information. K (q=16): 4 head vectors × (32 digit bits + 3 index bits); V (q=14): 4 × (31 + 3).
        Assert.Equal(Stories.Weights.Config.Layers * (4 * 35 + 4 * 34) / 8.0, model.KvBytesPerToken, 9);
        var bytes = File.ReadAllBytes(p);
        bytes[bytes.Length / 2] ^= 0x10;
        string bad = Path.Combine(_dir, "bad.gqm");
        File.WriteAllBytes(bad, bytes);
        Assert.Contains("checksum", Assert.Throws<InvalidFileException>(() => QuantizedModelFile.Load(bad)).Message);
        File.WriteAllBytes(bad, File.ReadAllBytes(p)[..1000]);
        Assert.Throws<InvalidFileException>(() => QuantizedModelFile.Load(bad));
    }

    [Fact]
    public void SpecParsing()
    {
        var s = QuantSpec.Parse("w4a4kv4", "int-rot");
        Assert.Equal(new TensorQuant(QuantMethod.IntRot, 4), s.Weights);
        Assert.Equal(new TensorQuant(QuantMethod.IntRot, 4), s.Keys);
        Assert.Equal(14, QuantSpec.Parse("w4", "e8-voronoi").Weights.E8Q);
        Assert.Equal(7, QuantSpec.Parse("w3a3kv3", "e8-voronoi").Activations.E8Q);
        var w = QuantSpec.Parse("w4k4v8", "e8-voronoi");
        Assert.Equal(8, w.Values.Bits);
        Assert.False(w.Activations.IsQuantized);
        Assert.False(QuantSpec.Parse("fp").IsQuantized);
        Assert.Throws<GossetException>(() => QuantSpec.Parse("w9"));
        Assert.Throws<GossetException>(() => QuantSpec.Parse("x4"));
        Assert.Throws<GossetException>(() => QuantSpec.Parse("w4", "pq"));
    }
}
