using Gosset.IO;
using Gosset.Llm.Evaluation;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;
using Gosset.Llm.Tokenization;
using Gosset.Tests.Support;

namespace Gosset.Tests.Llm;

public sealed class LoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-llm-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly int[] Prompt = [1, 403, 407, 261, 378];

    [DataFact]
    public void SafetensorsInHfLayoutGivesTheSameLogits()
    {
        string hf = Path.Combine(_dir, "hf");
        HuggingFaceLoader.Save(Stories.Weights, hf);
        // The q/k rows on disk are in HF (rotate-half) order, so they differ from llama2.c's.
        using (var st = SafeTensorsFile.Open(Path.Combine(hf, "model.safetensors")))
        {
            Assert.Equal(new long[] { 64, 64 }, st.Info("model.layers.0.self_attn.q_proj.weight").Shape);
            var q = st.ReadFloats("model.layers.0.self_attn.q_proj.weight");
            Assert.NotEqual(Stories.Weights.Wq[0], q);
        }
        var w = ModelLoader.LoadWeights(hf);
        Assert.Equal(Stories.Weights.Config, w.Config);
        float[] a = Stories.Model.ForwardWindow(Prompt);
        float[] b = LlamaModel.FromWeights(w).ForwardWindow(Prompt);
        Assert.Equal(a, b);
    }

    [DataFact]
    public void UnpermutedQkInHfFileWouldGiveDifferentLogits()
    {
        // Guards the test above: if the loader skipped the permutation, logits would change.
        var w = Stories.Weights;
        var q = (float[])w.Wq[0].Clone();
        HuggingFaceLoader.Permute(q, w.Config.Heads, w.Config.HeadSize, w.Config.Dim);
        var back = (float[])q.Clone();
        HuggingFaceLoader.Unpermute(back, w.Config.Heads, w.Config.HeadSize, w.Config.Dim);
        Assert.Equal(w.Wq[0], back);
        Assert.NotEqual(w.Wq[0], q);
    }

    [DataFact]
    public void Bf16AndF16SafetensorsLoadCloseToFloat()
    {
        foreach (var dt in new[] { SafeTensorsDType.F16, SafeTensorsDType.BF16 })
        {
            string hf = Path.Combine(_dir, dt.ToString());
            HuggingFaceLoader.Save(Stories.Weights, hf, dt);
            var w = HuggingFaceLoader.Load(hf);
            double tol = dt == SafeTensorsDType.F16 ? 1e-3 : 1e-2;
            for (int i = 0; i < w.Wq[1].Length; i++)
                Assert.True(Math.Abs(w.Wq[1][i] - Stories.Weights.Wq[1][i]) <= tol * Math.Max(1, Math.Abs(Stories.Weights.Wq[1][i])));
            var r = Evaluator.Evaluate(LlamaModel.FromWeights(w), Stories.ValTokens, 128, 2, Stories.Model);
            // The rounding of the weights alone sets these figures (measured on 2 windows of 128 tokens,
            // Evaluator.Evaluate as above: F16 8.00e-7, BF16 7.70e-5); ±5 % leaves room for summation order.
            double measured = dt == SafeTensorsDType.F16 ? 8.00e-7 : 7.70e-5;
            Assert.InRange(r.Kl!.Value, 0.95 * measured, 1.05 * measured);
        }
    }

    [DataFact]
    public void TruncatedCheckpointIsRejected()
    {
        string p = Path.Combine(_dir, "trunc.bin");
        File.WriteAllBytes(p, File.ReadAllBytes(Stories.ModelPath).AsSpan(0, 100_000).ToArray());
        var e = Assert.Throws<InvalidFileException>(() => ModelLoader.LoadWeights(p));
        Assert.Contains("truncated", e.Message);
        string v1 = Path.Combine(_dir, "trunc_v1.bin");
        File.WriteAllBytes(v1, File.ReadAllBytes(Stories.V1Path).AsSpan(0, 500_000).ToArray());
        Assert.Contains("truncated", Assert.Throws<InvalidFileException>(() => ModelLoader.LoadWeights(v1)).Message);
    }

    [DataFact]
    public void GarbageAndUnknownFilesAreRejected()
    {
        string p = Path.Combine(_dir, "garbage.bin");
        File.WriteAllBytes(p, Enumerable.Range(0, 4000).Select(i => (byte)(i * 37)).ToArray());
        Assert.Throws<InvalidFileException>(() => ModelLoader.LoadWeights(p));
        string v2 = Path.Combine(_dir, "v2.bin");
        var b = File.ReadAllBytes(Stories.V1Path);
        b[4] = 2;
        File.WriteAllBytes(v2, b);
        Assert.Contains("version 2", Assert.Throws<InvalidFileException>(() => ModelLoader.LoadWeights(v2)).Message);
        string nan = Path.Combine(_dir, "nan.bin");
        var c = File.ReadAllBytes(Stories.ModelPath);
        BitConverter.TryWriteBytes(c.AsSpan(28 + 4 * 1000), float.NaN);
        File.WriteAllBytes(nan, c);
        Assert.Contains("NaN", Assert.Throws<InvalidFileException>(() => ModelLoader.LoadWeights(nan)).Message);
        Assert.Throws<FileNotFoundException>(() => ModelLoader.LoadWeights(Path.Combine(_dir, "missing.bin")));
        string badSt = Path.Combine(_dir, "badhf");
        HuggingFaceLoader.Save(Stories.Weights, badSt);
        string stPath = Path.Combine(badSt, "model.safetensors");
        File.WriteAllBytes(stPath, File.ReadAllBytes(stPath).AsSpan(0, 200_000).ToArray());
        Assert.Throws<InvalidFileException>(() => ModelLoader.LoadWeights(badSt));
    }

    [DataFact]
    public void TokenizerModelMismatchIsRejected()
    {
        var e = Assert.ThrowsAny<GossetException>(() => Llama2cTokenizer.Load(Stories.TokenizerPath, 32000));
        Assert.Contains("do not match", e.Message);
        Assert.ThrowsAny<GossetException>(() => Llama2cTokenizer.Load(Stories.TokenizerPath, 256));
    }

    [DataFact]
    public void EmptyTextAndTooLongContextAreRejected()
    {
        int[] empty = Stories.Tokenizer.Encode("", bos: true, eos: false);
        Assert.Contains("empty", Assert.Throws<GossetException>(() => Evaluator.Evaluate(Stories.Model, empty, 512, 1)).Message);
        Assert.Contains("seq_len", Assert.Throws<GossetException>(() => Evaluator.Evaluate(Stories.Model, Stories.ValTokens, 1024, 1)).Message);
        Assert.Throws<GossetException>(() => Stories.Model.CreateCache(513));
    }
}
