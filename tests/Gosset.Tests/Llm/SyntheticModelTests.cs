using Gosset.IO;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;

namespace Gosset.Tests.Llm;

public sealed class SyntheticModelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-synth-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly SyntheticModel.Shape Tiny = new("qwen2", 64, 96, 2, 4, 2, 600, 128, 1000000, 1e-6, true);

    [Fact]
    public void WritesALoadableDeterministicCheckpointWithTheStatedStatistics()
    {
        string a = Path.Combine(_dir, "a"), b = Path.Combine(_dir, "b"), c = Path.Combine(_dir, "c");
        SyntheticModel.Write(Tiny, a, SafeTensorsDType.BF16, 5);
        SyntheticModel.Write(Tiny, b, SafeTensorsDType.BF16, 5);
        SyntheticModel.Write(Tiny, c, SafeTensorsDType.BF16, 6);
        byte[] fa = File.ReadAllBytes(Path.Combine(a, "model.safetensors"));
        Assert.Equal(fa, File.ReadAllBytes(Path.Combine(b, "model.safetensors")));
        Assert.NotEqual(fa, File.ReadAllBytes(Path.Combine(c, "model.safetensors")));
        Assert.True(HuggingFaceLoader.IsRandomWeights(a));
        using (var ck = HfCheckpoint.Open(a))
        {
            Assert.True(ck.Config.QkvBias);
            Assert.Equal("BF16", ck.DType("model.embed_tokens.weight"));
            var w1 = ck.Read("model.layers.1.mlp.gate_proj.weight");
            double mean = w1.Average(x => (double)x), sd = Math.Sqrt(w1.Average(x => (x - mean) * (x - mean)));
            Assert.InRange(mean, -0.001, 0.001);
            Assert.InRange(sd, 0.0196, 0.0204);
            Assert.All(ck.Read("model.layers.0.input_layernorm.weight"), x => Assert.Equal(1f, x));
        }
        var w = ModelLoader.LoadWeights(a);
        var model = LlamaModel.FromWeights(w);
        var tok = ModelLoader.LoadTokenizer(a, null, w.Config.VocabSize);
        int[] ids = tok.Encode("the cat", bos: true, eos: false);
        Assert.Equal(598, ids[0]);
        Assert.All(model.ForwardWindow(ids), x => Assert.True(float.IsFinite(x)));
    }

    [Theory]
    [InlineData("llama", false)]
    [InlineData("llama", true)]
    [InlineData("qwen2", false)]
    public void GgufHoldsTheSameModelAsTheHfFolder(string type, bool ropeScaling)
    {
        var shape = new SyntheticModel.Shape(type, 64, 96, 2, 4, 2, 600, 128, 500000, 1e-5, type == "qwen2",
            ropeScaling ? new RopeScaling(32, 1, 4, 8192) : null);
        string hf = Path.Combine(_dir, "hf"), gguf = Path.Combine(_dir, "m.gguf");
        SyntheticModel.Write(shape, hf, SafeTensorsDType.BF16, 9);
        SyntheticModel.WriteGguf(shape, gguf, SafeTensorsDType.BF16, 9);
        var a = ModelLoader.LoadWeights(hf);
        var b = GgufModel.Load(gguf, out var vocab);
        Assert.Equal(a.Config, b.Config with { SeqLen = a.Config.SeqLen });
        Assert.Equal(a.Wq[1], b.Wq[1]); // HF and GGUF row orders: the same matrix after loading
        Assert.Equal(a.Wk[0], b.Wk[0]);
        Assert.Equal(a.W2[1], b.W2[1]);
        Assert.Equal(a.Classifier, b.Classifier);
        if (type == "qwen2") Assert.Equal(a.Bq![1], b.Bq![1]);
        Assert.Equal(598, vocab!.BosId);
        int[] ids = [598, 5, 77, 300];
        Assert.Equal(LlamaModel.FromWeights(a).ForwardWindow(ids), LlamaModel.FromWeights(b).ForwardWindow(ids));
    }

    [Fact]
    public void KnownShapesAreTheirPublishedSizes()
    {
        long Params(string like) => SyntheticModel.Tensors(SyntheticModel.Known[like]).Sum(t => t.Shape.Aggregate(1L, (p, d) => p * d));
        // Parameter counts of the published checkpoints.
        Assert.Equal(1_235_814_400L, Params("llama-3.2-1b"));
        Assert.Equal(8_030_261_248L, Params("llama-3-8b"));
        Assert.Equal(494_032_768L, Params("qwen2.5-0.5b"));
        Assert.Equal(1_100_048_384L, Params("tinyllama-1.1b"));
    }
}
