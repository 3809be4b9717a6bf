using Gosset.Kernels;
using System.Text;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;
using Gosset.Llm.Quantization;

namespace Gosset.Tests.Llm;

/// <summary>
/// <c>--classifier e8</c>: the classifier's rows coded with the e8 box code after a rotation, checked against the source
/// rows (error of a 4-bit code, not of a wrong rotation), stored and reloaded bit-identically, and counted.
/// </summary>
public sealed class ClassifierQuantizerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-cls-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static LlamaWeights Random(bool shared, int seed = 3)
    {
        var c = new LlamaConfig(64, 96, 2, 4, 2, 200, 32, SharedClassifier: shared) { Architecture = "llama" };
        var w = new LlamaWeights(c);
        var rng = new Random(seed);
        foreach (var a in new[] { w.TokenEmbedding, w.Classifier, w.RmsFinal }.Concat(w.Wq).Concat(w.Wk).Concat(w.Wv).Concat(w.Wo).Concat(w.W1).Concat(w.W2).Concat(w.W3).Concat(w.RmsAtt).Concat(w.RmsFfn))
            for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() - 0.5);
        return w;
    }

    [Theory]
    [InlineData(true), InlineData(false)]
    public void RowsAreCodedWithTheErrorOfAFourBitCode(bool shared)
    {
        var w = Random(shared);
        var c = w.Config;
        var model = ModelQuantizer.Quantize(w, QuantSpec.Parse("w4", "e8"));
        ClassifierQuantizer.Quantize(model);
        Assert.Equal("e8", model.ClassifierFormat);
        Assert.EndsWith("classifier e8", model.Quant);
        var cls = model.Classifier;
        var box = Assert.IsType<PackedE8Matrix>(cls.Weights);
        Assert.NotNull(cls.Rotation);
        // Decode each row, undo the rotation, compare with the source row: uniform(-½, ½) at 4 bits has a relative MSE
        // near 2^-8·(a few); a wrong rotation or row order gives ≈ 2.
        var rot = new float[cls.Width];
        var back = new float[cls.Width];
        double err = 0, energy = 0;
        for (int r = 0; r < c.VocabSize; r++)
        {
            box.DequantizeRow(r, rot);
            cls.Rotation!.ApplyInverse(rot, back);
            for (int i = 0; i < c.Dim; i++)
            {
                double d = back[i] - w.Classifier[r * c.Dim + i];
                err += d * d;
                energy += (double)w.Classifier[r * c.Dim + i] * w.Classifier[r * c.Dim + i];
            }
        }
        // measured by this test: 0.0051514 (both cases, every vector width); ±3 %
        Assert.InRange(err / energy, 0.004997, 0.005306);
        // The token lookup keeps the source table.
        var row = new float[c.Dim];
        model.Embedding.Row(7, row);
        Assert.Equal(w.TokenEmbedding.AsSpan(7 * c.Dim, c.Dim).ToArray(), row);
        // Bits per parameter: linear layers + the float32 embedding + the coded copy, over linear entries + vocab·dim (+ vocab·dim untied).
        long linBits = model.Layers.SelectMany(b => b.Linears).Sum(l => l.Weights.StoredBits);
        long linN = model.Layers.SelectMany(b => b.Linears).Sum(l => (long)l.Out * l.In);
        long table = (long)c.VocabSize * c.Dim;
        double want = (double)(linBits + 32 * table + box.StoredBits) / (linN + table + (shared ? 0 : table));
        Assert.Equal(want, model.BitsPerParameter, 12);
        Assert.True(box.StoredBits < 6L * table, "the coded classifier is stored at about 4.3 bits per entry");
    }

    [Theory]
    [InlineData(true), InlineData(false)]
    public void GqmStoresTheCodedClassifierAndReloadsItBitIdentically(bool shared)
    {
        var w = Random(shared, 5);
        var model = ModelQuantizer.Quantize(w, QuantSpec.Parse("w4", "e8"));
        ClassifierQuantizer.Quantize(model);
        string p = Path.Combine(_dir, $"m{shared}.gqm");
        var res = QuantizedModelFile.Save(model, p, new QuantizedModelFile.TokenizerBlob("hf-json", Encoding.UTF8.GetBytes(ArchitectureTests.SmallTokenizer(w.Config.VocabSize))));
        Assert.Equal(32L * w.Config.VocabSize * w.Config.Dim + model.Classifier.Weights.StoredBits, res.TableBits);
        var (loaded, _) = QuantizedModelFile.Load(p);
        Assert.Equal("e8", loaded.ClassifierFormat);
        int[] ids = [1, 5, 9, 33, 2, 150, 7];
        var a = model.ForwardWindow(ids);
        var b = loaded.ForwardWindow(ids);
        Assert.Equal(a, b);
        // And the coded classifier is what runs: the logits differ from the source classifier's.
        var plain = ModelQuantizer.Quantize(w, QuantSpec.Parse("w4", "e8"));
        Assert.NotEqual(a, plain.ForwardWindow(ids));
    }

    [Theory]
    [InlineData(true), InlineData(false)]
    public void Int8ClassifierIsWithinHalfAStepAndATiedTableIsStoredOnce(bool shared)
    {
        var w = Random(shared, 7);
        var c = w.Config;
        var model = ModelQuantizer.Quantize(w, QuantSpec.Parse("w4", "int-rot"));
        ClassifierQuantizer.Quantize(model, "int8");
        Assert.Equal("int8", model.ClassifierFormat);
        var i8 = Assert.IsType<PackedInt8Matrix>(model.Classifier.Weights);
        var row = new float[c.Dim];
        for (int r = 0; r < c.VocabSize; r++)
        {
            i8.DequantizeRow(r, row);
            float amax = 0f;
            for (int i = 0; i < c.Dim; i++) amax = MathF.Max(amax, MathF.Abs(w.Classifier[r * c.Dim + i]));
            for (int i = 0; i < c.Dim; i++) Assert.True(MathF.Abs(row[i] - w.Classifier[r * c.Dim + i]) <= 0.5f * amax / 127f * 1.001f);
        }
        // Tied: lookups read the same 8-bit table (counted once); untied: the float32 embedding table stays.
        var emb = new float[c.Dim];
        model.Embedding.Row(11, emb);
        i8.DequantizeRow(11, row);
        if (shared) Assert.Equal(row, emb);
        else Assert.Equal(w.TokenEmbedding.AsSpan(11 * c.Dim, c.Dim).ToArray(), emb);
        long linBits = model.Layers.SelectMany(b => b.Linears).Sum(l => l.Weights.StoredBits);
        long linN = model.Layers.SelectMany(b => b.Linears).Sum(l => (long)l.Out * l.In);
        long table = (long)c.VocabSize * c.Dim;
        Assert.Equal(8 * table + 16L * c.VocabSize, i8.StoredBits);
        double want = (double)(linBits + i8.StoredBits + (shared ? 0 : 32 * table)) / (linN + table + (shared ? 0 : table));
        Assert.Equal(want, model.BitsPerParameter, 12);
        // Saved and reloaded: a tied model has no token_embedding section and gives the same logits.
        string p = Path.Combine(_dir, $"i8{shared}.gqm");
        var res = QuantizedModelFile.Save(model, p, new QuantizedModelFile.TokenizerBlob("hf-json", Encoding.UTF8.GetBytes(ArchitectureTests.SmallTokenizer(c.VocabSize))));
        Assert.Equal(i8.StoredBits + (shared ? 0 : 32 * table), res.TableBits);
        var (loaded, _) = QuantizedModelFile.Load(p);
        Assert.Equal("int8", loaded.ClassifierFormat);
        int[] ids = [1, 5, 9, 33, 2, 150, 7];
        Assert.Equal(model.ForwardWindow(ids), loaded.ForwardWindow(ids));
        Assert.Equal(model.BitsPerParameter, loaded.BitsPerParameter, 12);
    }

    [Fact]
    public void NeedsE8Weights()
    {
        var model = ModelQuantizer.Quantize(Random(true), QuantSpec.Parse("w4", "int-rot"));
        Assert.Contains("--classifier e8", Assert.Throws<GossetException>(() => ClassifierQuantizer.Quantize(model)).Message);
        Assert.Throws<GossetException>(() => ClassifierQuantizer.Quantize(LlamaModel.FromWeights(Random(true))));
    }
}
