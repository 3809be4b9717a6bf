using Gosset.Llm.Inference;
using Gosset.Llm.Loading;
using Gosset.Llm.Tokenization;
using Gosset.Peer;
using Gosset.Tests.Llm;
using Gosset.Tests.Support;

namespace Gosset.Tests.Peer;

/// <summary>llama.cpp (through LLamaSharp and ggml) as an independent reference for the GGUF code and the engine.</summary>
[Trait("Category", "Peer")]
public class LlamaCppTests
{
    private static string Temp(string name) => Path.Combine(Path.GetTempPath(), $"gosset-peer-{Environment.ProcessId}-{Guid.NewGuid():N}-{name}");

    private static float[] Gaussian(int n, int seed)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return a;
    }

    public static TheoryData<GgufTensorType> QuantTypes() =>
    [
        GgufTensorType.Q4_0, GgufTensorType.Q4_1, GgufTensorType.Q5_0, GgufTensorType.Q5_1, GgufTensorType.Q8_0,
        GgufTensorType.Q2_K, GgufTensorType.Q3_K, GgufTensorType.Q4_K, GgufTensorType.Q5_K, GgufTensorType.Q6_K,
        GgufTensorType.IQ4_NL, GgufTensorType.IQ4_XS,
    ];

    [Theory]
    [MemberData(nameof(QuantTypes))]
    public void Dequantization_MatchesGgmlOwnToFloat(GgufTensorType type)
    {
        const int rows = 4, cols = 512;
        float[] x = Gaussian(rows * cols, 7 + (int)type);
        byte[] q = GgmlReference.Quantize(type, x, rows, cols);
        float[] mine = new float[x.Length], ggml = new float[x.Length];
        GgufTypes.Dequantize(type, q, mine);
        GgmlReference.ToFloat(type, q, ggml);
        for (int i = 0; i < x.Length; i++)
            Assert.True(Math.Abs(mine[i] - ggml[i]) <= 1e-6f * Math.Max(1f, Math.Abs(ggml[i])), $"{type} element {i}: {mine[i]} vs ggml {ggml[i]}");
        // And the codes are a quantization of x: relative RMS error within the type's resolution.
        double err = 0, sig = 0;
        for (int i = 0; i < x.Length; i++) { err += (mine[i] - x[i]) * (double)(mine[i] - x[i]); sig += x[i] * (double)x[i]; }
        // Measured by this test per type (ggml's reference quantizer, seeded input); ±3 %.
        double expected = type switch
        {
            GgufTensorType.Q4_0 => 0.08645, GgufTensorType.Q4_1 => 0.08079, GgufTensorType.Q5_0 => 0.04260, GgufTensorType.Q5_1 => 0.03733,
            GgufTensorType.Q8_0 => 0.005477, GgufTensorType.Q2_K => 0.2939, GgufTensorType.Q3_K => 0.1506, GgufTensorType.Q4_K => 0.07266,
            GgufTensorType.Q5_K => 0.03618, GgufTensorType.Q6_K => 0.01765, GgufTensorType.IQ4_NL => 0.07821, GgufTensorType.IQ4_XS => 0.07588,
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
        Assert.InRange(Math.Sqrt(err / sig), 0.97 * expected, 1.03 * expected);
    }

    [Fact]
    public void LlamaQuantizer_OutputReadBack_CloseToTheF32Original()
    {
        var w = TinyModels.RandomLlama(dim: 256, hidden: 512, layers: 1, heads: 4, kvHeads: 2, vocab: 300, shared: false, seed: 3);
        string f32 = Temp("f32.gguf"), q4 = Temp("q4km.gguf");
        try
        {
            GgufModel.Save(w, f32, TinyModels.ByteVocab(300), GgufWriteType.F32);
            LlamaCppRuntime.Quantize(f32, q4, LlamaCppQuant.Q4_K_M, 2);
            using (var f = GgufFile.Open(q4))
                Assert.Contains(f.Tensors, t => t.Type == GgufTensorType.Q4_K);
            var back = GgufModel.Load(q4);
            // Relative RMS errors measured by this test (Q4_K_M; W2 falls back to a 6-bit type): wq 0.07126, w1 0.07101,
            // w2 0.01770; ±5 % (llama.cpp's quantizer is the native library's).
            void Near(float[] a, float[] b, double expected)
            {
                double e = 0, s = 0;
                for (int i = 0; i < a.Length; i++) { e += (a[i] - b[i]) * (double)(a[i] - b[i]); s += a[i] * (double)a[i]; }
                Assert.InRange(Math.Sqrt(e / s), 0.95 * expected, 1.05 * expected);
            }
            Near(w.Wq[0], back.Wq[0], 0.07126);
            Near(w.W1[0], back.W1[0], 0.07101);
            Near(w.W2[0], back.W2[0], 0.01770);
        }
        finally { File.Delete(f32); File.Delete(q4); }
    }

    [DataFact]
    public void Stories_LlamaCppOnGossetGguf_ReproducesGoldenMeanNll()
    {
        string path = Temp("stories.gguf");
        try
        {
            GgufModel.Save(Stories.Weights, path, GgufVocabulary.FromLlama2c(Stories.Tokenizer), GgufWriteType.F32);
            using var m = new LlamaCppModel(path, 512, 2);
            var p = Stories.Golden.GetProperty("perplexity");
            double expected = p.GetProperty("mean_nll").GetDouble();
            int[] tokens = Stories.ValTokens;
            Assert.Equal(Stories.Ints(p.GetProperty("first_tokens")), tokens[..32]);
            double nll = 0; int n = 0;
            for (int win = 0; win < 8; win++)
            {
                var ids = tokens.AsSpan(512 * win, 512);
                float[] logits = m.WindowLogits(ids);
                for (int t = 0; t < 512; t++) { nll += Nll(logits.AsSpan(t * m.VocabSize, m.VocabSize), tokens[512 * win + t + 1]); n++; }
            }
            Assert.True(Math.Abs(nll / n - expected) <= 1e-3, $"llama.cpp mean NLL {nll / n:F6} vs golden {expected:F6}");
        }
        finally { File.Delete(path); }
    }

    internal static double Nll(ReadOnlySpan<float> logits, int target)
    {
        double max = double.NegativeInfinity;
        foreach (float v in logits) max = Math.Max(max, v);
        double s = 0;
        foreach (float v in logits) s += Math.Exp(v - max);
        return max + Math.Log(s) - logits[target];
    }

    [Theory]
    [InlineData(false, 4, 2)] // untied head, GQA
    [InlineData(true, 4, 4)]  // tied head, MHA
    public void TinyLlama_GossetFloatLogits_MatchLlamaCpp(bool shared, int heads, int kvHeads)
    {
        var w = TinyModels.RandomLlama(dim: 128, hidden: 320, layers: 2, heads: heads, kvHeads: kvHeads, vocab: 300, shared: shared, seed: 11);
        string path = Temp("tiny.gguf");
        try
        {
            GgufModel.Save(w, path, TinyModels.ByteVocab(300), GgufWriteType.F32);
            using var m = new LlamaCppModel(path, 64, 2);
            int[] ids = Enumerable.Range(0, 48).Select(i => (i * 37 + 5) % 300).ToArray();
            float[] theirs = m.WindowLogits(ids);
            float[] ours = LlamaModel.FromWeights(w).ForwardWindow(ids);
            // Both run f32 weights; llama.cpp keeps the KV cache in f16 (relative error 2^-11 per entry) and
            // sums in a different order, so logits agree to about 1e-3 of their spread, not bit for bit.
            double maxAbs = ours.Max(Math.Abs), maxDiff = 0;
            for (int i = 0; i < ours.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(ours[i] - theirs[i]));
            Assert.True(maxDiff <= 2e-3 * maxAbs, $"max |Δlogit| {maxDiff:G4} vs max |logit| {maxAbs:G4}");
            // A wrong RoPE order or head mapping moves logits by far more than that.
            Assert.True(maxAbs > 0.5);
        }
        finally { File.Delete(path); }
    }

    public static TheoryData<string> Variants() => ["llama3", "qwen2", "mistral"];

    private static LlamaConfig Variant(string v) => v switch
    {
        "llama3" => TinyModels.Llama3,
        "qwen2" => TinyModels.Qwen2,
        _ => TinyModels.Mistral,
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Architectures_GossetFloatLogits_MatchLlamaCpp_AndGgufRoundTrips(string variant)
    {
        var w = TinyModels.Random(Variant(variant), seed: 5);
        string path = Temp(variant + ".gguf");
        try
        {
            GgufModel.Save(w, path, TinyModels.ByteVocab(300), GgufWriteType.F32);
            var back = GgufModel.Load(path);
            Assert.Equal(w.Config with { Architecture = "x" }, back.Config with { Architecture = "x" });
            Assert.Equal(variant == "qwen2" ? "qwen2" : "llama", back.Config.Architecture);
            Assert.Equal(w.Wq[1], back.Wq[1]);
            Assert.Equal(w.Wk[0], back.Wk[0]);
            if (w.Config.QkvBias) { Assert.Equal(w.Bq![1], back.Bq![1]); Assert.Equal(w.Bk![0], back.Bk![0]); }

            using var m = new LlamaCppModel(path, 256, 2);
            // Positions up to 200 so that the scaled (long-wavelength) RoPE frequencies matter.
            int[] ids = Enumerable.Range(0, 200).Select(i => 3 + (i * 37 + 5) % 297).ToArray();
            float[] theirs = m.WindowLogits(ids);
            float[] ours = LlamaModel.FromWeights(w).ForwardWindow(ids);
            double maxAbs = ours.Max(Math.Abs), maxDiff = 0;
            for (int i = 0; i < ours.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(ours[i] - theirs[i]));
            Assert.True(maxDiff <= 2e-3 * maxAbs, $"{variant}: max |Δlogit| {maxDiff:G4} vs max |logit| {maxAbs:G4}");
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Gpt2Vocabulary_FromTokenizerJson_TokenizesLikeHfJsonAndLlamaCpp()
    {
        string json = Temp("tokenizer.json"), gguf = Temp("bpe.gguf");
        try
        {
            File.WriteAllText(json, SyntheticModel.TokenizerJson(300));
            var vocab = GgufVocabulary.FromFile(json, 300);
            Assert.Equal("gpt2", vocab.Model);
            Assert.Equal("llama-bpe", vocab.Pre);
            GgufModel.Save(TinyModels.Random(TinyModels.Llama3, seed: 2), gguf, vocab, GgufWriteType.F16);
            GgufModel.Load(gguf, out var back);
            const string text = "The cat sat on the mat, then it ran in the street! 123 4567 ünïcödé";
            int[] expected = HfJsonTokenizer.Load(json, 300).Encode(text, bos: true, eos: false);
            Assert.Equal(expected, back!.CreateTokenizer().Encode(text, bos: true, eos: false));
            using var m = new LlamaCppModel(gguf, 64, 1);
            Assert.Equal(expected, m.Tokenize(text, addBos: true));
        }
        finally { File.Delete(json); File.Delete(gguf); }
    }

    [Fact]
    public void Llama3RopeScaling_IsWhatLlamaCppApplies()
    {
        // Same weights with and without the scaling: llama.cpp must follow the change (its logits move with ours).
        var c = TinyModels.Llama3;
        var w = TinyModels.Random(c, seed: 9);
        var plain = TinyModels.Random(c with { RopeScaling = null }, seed: 9);
        string p1 = Temp("scaled.gguf"), p2 = Temp("plain.gguf");
        try
        {
            GgufModel.Save(w, p1, TinyModels.ByteVocab(300), GgufWriteType.F32);
            GgufModel.Save(plain, p2, TinyModels.ByteVocab(300), GgufWriteType.F32);
            int[] ids = Enumerable.Range(0, 200).Select(i => 3 + (i * 53 + 1) % 297).ToArray();
            using var m1 = new LlamaCppModel(p1, 256, 2);
            float[] scaled = m1.WindowLogits(ids);
            using var m2 = new LlamaCppModel(p2, 256, 2);
            float[] unscaled = m2.WindowLogits(ids);
            double moved = 0;
            for (int i = 0; i < scaled.Length; i++) moved = Math.Max(moved, Math.Abs(scaled[i] - unscaled[i]));
            // Ten times the cross-engine tolerance of the test above, so that test could not pass with the scaling ignored.
            double maxAbs = scaled.Max(Math.Abs);
            Assert.True(moved > 10 * 2e-3 * maxAbs, $"RoPE scaling changed llama.cpp's logits by only {moved:G3} (max |logit| {maxAbs:G3})");
        }
        finally { File.Delete(p1); File.Delete(p2); }
    }

    [Fact]
    public void GgmlGemv_ComputesTheProduct()
    {
        const int rows = 64, cols = 256;
        float[] w = Gaussian(rows * cols, 1), x = Gaussian(cols, 2);
        using var f32 = new GgmlMulMat(GgmlType.F32, rows, cols, 1, 2, w, x);
        f32.Run();
        float[] y = f32.Result();
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int c = 0; c < cols; c++) s += w[r * cols + c] * (double)x[c];
            Assert.True(Math.Abs(y[r] - s) < 1e-3, $"row {r}: {y[r]} vs {s}");
        }
        using var q4 = new GgmlMulMat(GgmlType.Q4_0, rows, cols, 1, 2, w, x);
        q4.Run();
        float[] yq = q4.Result();
        double e = 0, sig = 0;
        for (int r = 0; r < rows; r++) { e += (yq[r] - y[r]) * (double)(yq[r] - y[r]); sig += y[r] * (double)y[r]; }
        // Measured by this test: relative error 0.10252 (Q4_0 weights and ggml's q8 activations); ±5 % since ggml's
        // dot products sum in the order of the CPU variant it loads.
        Assert.InRange(Math.Sqrt(e / sig), 0.0974, 0.1077);
    }

    [Fact]
    public void GgmlGemv_RepacksQ4_0LikeLlamaCpp()
    {
        using var q4 = new GgmlMulMat(GgmlType.Q4_0, 64, 256, 1, 2, Gaussian(64 * 256, 1), Gaussian(256, 2));
        // ggml's CPU backend repacks q4_0 into interleaved rows on AVX2 and wider.
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) Assert.Equal("CPU_REPACK", q4.Layout);
        using var q8 = new GgmlMulMat(GgmlType.Q8_0, 64, 256, 1, 2, Gaussian(64 * 256, 1), Gaussian(256, 2));
        Assert.Equal("CPU", q8.Layout);
    }
}
