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
