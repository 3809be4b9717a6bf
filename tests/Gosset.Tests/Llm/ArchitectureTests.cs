using System.Text.Json.Nodes;
using Gosset.IO;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;
using Gosset.Llm.Quantization;

namespace Gosset.Tests.Llm;

/// <summary>
/// Tiny random checkpoints of each supported variant (Llama 3 with rope scaling and an untied head, Qwen2 with
/// biases, Mistral) checked against a scalar forward pass written here in HF's own convention (rotate-half RoPE on the
/// tensors as stored), and the config fields the engine refuses.
/// </summary>
public sealed class ArchitectureTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-arch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static LlamaWeights Random(LlamaConfig c, int seed, float scale = 0.2f)
    {
        var w = new LlamaWeights(c);
        var rng = new System.Random(seed);
        void Fill(float[] a, float s, float mean = 0) { for (int i = 0; i < a.Length; i++) a[i] = mean + s * (float)(rng.NextDouble() * 2 - 1); }
        Fill(w.TokenEmbedding, 1f);
        for (int l = 0; l < c.Layers; l++)
        {
            foreach (var m in new[] { w.Wq[l], w.Wk[l], w.Wv[l], w.Wo[l], w.W1[l], w.W2[l], w.W3[l] }) Fill(m, scale);
            Fill(w.RmsAtt[l], 0.3f, 1f); Fill(w.RmsFfn[l], 0.3f, 1f);
            if (c.QkvBias) { Fill(w.Bq![l], 0.5f); Fill(w.Bk![l], 0.5f); Fill(w.Bv![l], 0.5f); }
        }
        Fill(w.RmsFinal, 0.3f, 1f);
        if (!c.SharedClassifier) Fill(w.Classifier, 0.5f);
        return w;
    }

    private static readonly LlamaConfig Llama3 = new(32, 48, 2, 4, 2, 40, 64, SharedClassifier: false, 1e-5f, 500000f)
    {
        RopeScaling = new RopeScaling(8, 1, 4, 16), Architecture = "llama",
    };
    private static readonly LlamaConfig Qwen2 = new(32, 40, 2, 4, 2, 40, 64, SharedClassifier: true, 1e-6f, 1000000f)
    {
        QkvBias = true, Architecture = "qwen2",
    };
    private static readonly LlamaConfig Mistral = new(32, 40, 2, 4, 1, 40, 64, SharedClassifier: false, 1e-5f, 1000000f) { Architecture = "mistral" };

    private static readonly int[] Tokens = [3, 17, 5, 39, 0, 22, 8, 8, 31, 12];

    /// <summary>HF forward pass in double, on the tensors as stored (HF row order, rotate-half RoPE); logits of every position.</summary>
    private static double[][] Reference(string dir, LlamaConfig c, int[] tokens)
    {
        using var st = SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors"));
        double[] T(string n) => st.ReadFloats(n).Select(x => (double)x).ToArray();
        bool Has(string n) => st.Contains(n);
        int d = c.Dim, hs = c.HeadSize, kvd = c.KvDim, hid = c.HiddenDim, group = c.Heads / c.KvHeads;
        double[] inv = c.RopeInverseFrequencies();
        double[] Mv(double[] w, double[] x, int rows)
        {
            var y = new double[rows];
            for (int r = 0; r < rows; r++) { double s = 0; for (int i = 0; i < x.Length; i++) s += w[r * x.Length + i] * x[i]; y[r] = s; }
            return y;
        }
        double[] Norm(double[] x, double[] w)
        {
            double ss = x.Sum(v => v * v) / x.Length;
            double k = 1 / Math.Sqrt(ss + c.NormEps);
            return x.Select((v, i) => v * k * w[i]).ToArray();
        }
        void RotateHalf(double[] v, int pos)
        {
            for (int h = 0; h < v.Length / hs; h++)
                for (int i = 0; i < hs / 2; i++)
                {
                    double a = pos * inv[i], x0 = v[h * hs + i], x1 = v[h * hs + i + hs / 2];
                    v[h * hs + i] = x0 * Math.Cos(a) - x1 * Math.Sin(a);
                    v[h * hs + i + hs / 2] = x1 * Math.Cos(a) + x0 * Math.Sin(a);
                }
        }
        var emb = T("model.embed_tokens.weight");
        var head = c.SharedClassifier ? emb : T("lm_head.weight");
        var keys = Enumerable.Range(0, c.Layers).Select(_ => new List<double[]>()).ToArray();
        var vals = Enumerable.Range(0, c.Layers).Select(_ => new List<double[]>()).ToArray();
        var result = new double[tokens.Length][];
        for (int pos = 0; pos < tokens.Length; pos++)
        {
            var x = emb.Skip(tokens[pos] * d).Take(d).ToArray();
            for (int l = 0; l < c.Layers; l++)
            {
                string p = $"model.layers.{l}.";
                var h = Norm(x, T(p + "input_layernorm.weight"));
                var q = Mv(T(p + "self_attn.q_proj.weight"), h, d);
                var k = Mv(T(p + "self_attn.k_proj.weight"), h, kvd);
                var v = Mv(T(p + "self_attn.v_proj.weight"), h, kvd);
                if (Has(p + "self_attn.q_proj.bias"))
                {
                    var bq = T(p + "self_attn.q_proj.bias"); var bk = T(p + "self_attn.k_proj.bias"); var bv = T(p + "self_attn.v_proj.bias");
                    for (int i = 0; i < d; i++) q[i] += bq[i];
                    for (int i = 0; i < kvd; i++) { k[i] += bk[i]; v[i] += bv[i]; }
                }
                RotateHalf(q, pos); RotateHalf(k, pos);
                keys[l].Add(k); vals[l].Add(v);
                var att = new double[d];
                for (int hh = 0; hh < c.Heads; hh++)
                {
                    int kvh = hh / group;
                    var s = new double[pos + 1];
                    for (int t = 0; t <= pos; t++)
                    {
                        double dot = 0;
                        for (int i = 0; i < hs; i++) dot += q[hh * hs + i] * keys[l][t][kvh * hs + i];
                        s[t] = dot / Math.Sqrt(hs);
                    }
                    double mx = s.Max(), sum = s.Sum(z => Math.Exp(z - mx));
                    for (int t = 0; t <= pos; t++)
                        for (int i = 0; i < hs; i++) att[hh * hs + i] += Math.Exp(s[t] - mx) / sum * vals[l][t][kvh * hs + i];
                }
                var o = Mv(T(p + "self_attn.o_proj.weight"), att, d);
                for (int i = 0; i < d; i++) x[i] += o[i];
                h = Norm(x, T(p + "post_attention_layernorm.weight"));
                var g = Mv(T(p + "mlp.gate_proj.weight"), h, hid);
                var u = Mv(T(p + "mlp.up_proj.weight"), h, hid);
                var a = g.Select((z, i) => z / (1 + Math.Exp(-z)) * u[i]).ToArray();
                var dn = Mv(T(p + "mlp.down_proj.weight"), a, d);
                for (int i = 0; i < d; i++) x[i] += dn[i];
            }
            result[pos] = Mv(head, Norm(x, T("model.norm.weight")), c.VocabSize);
        }
        return result;
    }

    private string Write(string name, LlamaConfig c, int seed)
    {
        string dir = Path.Combine(_dir, name);
        HuggingFaceLoader.Save(Random(c, seed), dir);
        return dir;
    }

    private static void AssertClose(double[][] expected, float[] actual, int vocab)
    {
        for (int t = 0; t < expected.Length; t++)
            for (int i = 0; i < vocab; i++)
                Assert.True(Math.Abs(expected[t][i] - actual[t * vocab + i]) <= 2e-4 * Math.Max(1, Math.Abs(expected[t][i])),
                    $"position {t} logit {i}: {actual[t * vocab + i]} vs reference {expected[t][i]}");
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("qwen2")]
    [InlineData("mistral")]
    public void LogitsMatchTheScalarHfReference(string variant)
    {
        var c = variant switch { "llama3" => Llama3, "qwen2" => Qwen2, _ => Mistral };
        string dir = Write(variant, c, 7);
        var w = ModelLoader.LoadWeights(dir);
        Assert.Equal(c, w.Config);
        var model = LlamaModel.FromWeights(w);
        var expected = Reference(dir, c, Tokens);
        AssertClose(expected, model.ForwardWindow(Tokens), c.VocabSize);
        // Token by token through the incremental cache and the last-logits path: the same numbers.
        var cache = model.CreateCache();
        float[] last = [];
        foreach (int id in Tokens) last = model.ForwardLast(cache, [id]).ToArray();
        AssertClose([expected[^1]], last, c.VocabSize);
        // The prompt as one batch, then one more token.
        var cache2 = model.CreateCache();
        model.ForwardLast(cache2, Tokens.AsSpan(0, 6));
        AssertClose([expected[6]], model.ForwardLast(cache2, Tokens.AsSpan(6, 1)).ToArray(), c.VocabSize);
    }

    [Fact]
    public void Qwen2BiasesChangeTheLogits()
    {
        string dir = Write("qwen-bias", Qwen2, 11);
        var with = LlamaModel.FromWeights(ModelLoader.LoadWeights(dir)).ForwardWindow(Tokens);
        var w = ModelLoader.LoadWeights(dir);
        for (int l = 0; l < Qwen2.Layers; l++) { Array.Clear(w.Bq![l]); Array.Clear(w.Bk![l]); Array.Clear(w.Bv![l]); }
        var without = LlamaModel.FromWeights(w).ForwardWindow(Tokens);
        double maxDiff = with.Zip(without, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDiff > 1e-2, $"biases moved the logits by only {maxDiff}");
    }

    [Fact]
    public void Llama3RopeScalingFollowsTheFormula()
    {
        // head size 64, θ = 500000, factor 8, low 1, high 4, original context 64: wavelengths above 64/1 are divided by 8,
        // below 64/4 = 16 kept, in between interpolated with s = (64/λ − 1)/(4 − 1).
        var c = new LlamaConfig(256, 8, 1, 4, 4, 8, 64, true, 1e-5f, 500000f) { RopeScaling = new RopeScaling(8, 1, 4, 64) };
        double[] f = c.RopeInverseFrequencies();
        Assert.Equal(32, f.Length);
        int seenLow = 0, seenHigh = 0, seenMid = 0;
        for (int j = 0; j < 32; j++)
        {
            double plain = 1 / Math.Pow(500000, 2.0 * j / 64), lambda = 2 * Math.PI / plain;
            double expected;
            if (lambda < 16) { expected = plain; seenHigh++; }
            else if (lambda > 64) { expected = plain / 8; seenLow++; }
            else { double s = (64 / lambda - 1) / 3; expected = (1 - s) * plain / 8 + s * plain; seenMid++; }
            Assert.Equal(expected, f[j], 12);
        }
        Assert.True(seenLow > 0 && seenHigh > 0 && seenMid > 0, $"regimes {seenHigh}/{seenMid}/{seenLow}");
        // Without scaling: θ^(−2j/hs).
        var plainCfg = c with { RopeScaling = null };
        Assert.Equal(Math.Pow(500000, -2.0 * 5 / 64), plainCfg.RopeInverseFrequencies()[5], 15);
    }

    private string ConfigWith(Action<JsonObject> edit)
    {
        string dir = Path.Combine(_dir, "cfg" + Guid.NewGuid().ToString("N"));
        HuggingFaceLoader.Save(Random(Llama3, 3), dir);
        string p = Path.Combine(dir, "config.json");
        var o = JsonNode.Parse(File.ReadAllText(p))!.AsObject();
        edit(o);
        File.WriteAllText(p, o.ToJsonString());
        return dir;
    }

    [Theory]
    [InlineData("hidden_act", "\"gelu\"")]
    [InlineData("partial_rotary_factor", "0.5")]
    [InlineData("num_local_experts", "8")]
    [InlineData("attention_bias", "true")]
    [InlineData("quantization_config", "{\"quant_method\":\"gptq\"}")]
    [InlineData("model_type", "\"gemma\"")]
    public void UnsupportedConfigFieldsAreNamedInTheError(string field, string json)
    {
        string dir = ConfigWith(o => o[field] = JsonNode.Parse(json));
        var e = Assert.ThrowsAny<GossetException>(() => ModelLoader.LoadWeights(dir));
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void OtherRopeScalingTypesAndMissingHeadsAreErrors()
    {
        string dir = ConfigWith(o => o["rope_scaling"] = JsonNode.Parse("{\"rope_type\":\"yarn\",\"factor\":4}"));
        Assert.Contains("rope_scaling.rope_type", Assert.ThrowsAny<GossetException>(() => ModelLoader.LoadWeights(dir)).Message);
        // Untied head declared but absent.
        string tied = Write("tied", Qwen2 with { QkvBias = false, Architecture = "llama" }, 5);
        string p = Path.Combine(tied, "config.json");
        var o = JsonNode.Parse(File.ReadAllText(p))!.AsObject();
        o["tie_word_embeddings"] = false;
        File.WriteAllText(p, o.ToJsonString());
        Assert.Contains("lm_head", Assert.ThrowsAny<GossetException>(() => ModelLoader.LoadWeights(tied)).Message);
        // A bias tensor a Llama config does not expect is refused rather than ignored.
        string qwen = Write("qwen-as-llama", Qwen2, 5);
        string qp = Path.Combine(qwen, "config.json");
        var qo = JsonNode.Parse(File.ReadAllText(qp))!.AsObject();
        qo["model_type"] = "llama";
        File.WriteAllText(qp, qo.ToJsonString());
        Assert.Contains("bias", Assert.ThrowsAny<GossetException>(() => ModelLoader.LoadWeights(qwen)).Message);
    }

    [Fact]
    public void SlidingWindowShorterThanTheContextCapsTheContext()
    {
        string dir = ConfigWith(o => { o["model_type"] = "mistral"; o["sliding_window"] = 16; o.Remove("rope_scaling"); });
        var w = ModelLoader.LoadWeights(dir);
        Assert.Equal(16, w.Config.SeqLen);
        Assert.Throws<GossetException>(() => LlamaModel.FromWeights(w).CreateCache(17));
    }

    [Fact]
    public void DeeplyNestedConfigIsRejected()
    {
        string dir = ConfigWith(_ => { });
        File.WriteAllText(Path.Combine(dir, "config.json"), new string('[', 200) + new string(']', 200));
        Assert.ThrowsAny<GossetException>(() => ModelLoader.LoadWeights(dir));
    }

    [Theory]
    [InlineData("llama3", "e8-box")]
    [InlineData("qwen2", "e8-voronoi")]
    [InlineData("llama3", "e8")] // small enough that the streamed table fit samples every row, as the in-memory fit does
    [InlineData("qwen2", "e8")]
    [InlineData("llama3", "e8", "e8")] // --classifier e8, untied (llama3) and tied (qwen2): streamed codes equal the in-memory ones
    [InlineData("qwen2", "e8", "e8")]
    [InlineData("llama3", "e8", "int8")] // --classifier int8 (the default), untied and tied (one 8-bit table for both)
    [InlineData("qwen2", "e8", "int8")]
    public void StreamedGqmMatchesTheInMemoryQuantizedModel(string variant, string method, string classifier = "source")
    {
        var c = variant == "llama3" ? Llama3 : Qwen2;
        string dir = Write("s-" + variant, c, 9);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), SmallTokenizer(c.VocabSize));
        var spec = QuantSpec.Parse("w4", method);
        string gqm = Path.Combine(_dir, variant + ".gqm");
        using (var ck = HfCheckpoint.Open(dir))
            QuantizedModelFile.QuantizeStreaming(ck, spec, gqm, QuantizedModelFile.TokenizerBlob.FromFile(Path.Combine(dir, "tokenizer.json")), TableType.F32, classifier: classifier);
        var inMemory = ModelQuantizer.Quantize(ModelLoader.LoadWeights(dir), spec);
        if (classifier != "source") ClassifierQuantizer.Quantize(inMemory, classifier);
        var (loaded, contents) = QuantizedModelFile.Load(gqm);
        Assert.Equal(inMemory.ForwardWindow(Tokens), loaded.ForwardWindow(Tokens));
        Assert.Equal(inMemory.BitsPerWeight, loaded.BitsPerWeight);
        Assert.Equal(inMemory.BitsPerParameter, loaded.BitsPerParameter);
        Assert.True(contents.Tokenizer.VocabSize <= c.VocabSize);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StackedProjectionsGiveTheLogitsOfSeparateOnes(bool qkvBias)
    {
        // q (128 rows), k and v (64 rows each), gate and up (256 rows): whole 64-row tiles, so they stack.
        var c = new LlamaConfig(128, 256, 2, 4, 2, 200, 32, SharedClassifier: true) { Architecture = qkvBias ? "qwen2" : "llama", QkvBias = qkvBias };
        var model = ModelQuantizer.Quantize(Random(c, 12), QuantSpec.Parse("w4", "e8"));
        Assert.All(model.Layers, b => { Assert.NotNull(b.Qkv); Assert.NotNull(b.GateUp); });
        var stackedLogits = model.ForwardWindow(Tokens);
        // The same weights (views of the stacks) run one product per projection.
        for (int l = 0; l < model.Layers.Length; l++)
        {
            var b = model.Layers[l];
            model.Layers[l] = new LayerBlock { RmsAtt = b.RmsAtt, RmsFfn = b.RmsFfn, Wq = b.Wq, Wk = b.Wk, Wv = b.Wv, Wo = b.Wo, W1 = b.W1, W2 = b.W2, W3 = b.W3 };
        }
        Assert.Equal(stackedLogits, model.ForwardWindow(Tokens));
        var cache = model.CreateCache(16);
        var last = model.ForwardLast(cache, Tokens.AsSpan(0, 5)).ToArray();
        Assert.Equal(stackedLogits.AsSpan(4 * c.VocabSize, c.VocabSize).ToArray(), last);
    }

    [Fact]
    public void DecodingAllocatesNoBuffersPerToken()
    {
        // Small enough that every product runs on the calling thread (so this thread's allocations are all of them). A forward pass that allocated its activations and
        // gathered the cache per token would allocate ≥ 2·pos·kv_dim·4 bytes (≈ 60 KB at position 120) per step; what
        // remains are the few delegate closures of the threading helpers.
        var c = new LlamaConfig(64, 128, 2, 4, 2, 256, 256, true);
        var m = LlamaModel.FromWeights(Random(c, 4));
        var cache = m.CreateCache(200);
        for (int t = 0; t < 20; t++) m.ForwardLast(cache, [t]);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int t = 20; t < 120; t++) m.ForwardLast(cache, [t]);
        long perToken = (GC.GetAllocatedBytesForCurrentThread() - before) / 100;
        Assert.True(perToken < 8192, $"{perToken} bytes allocated per token");
    }

    [Theory]
    [InlineData(TableType.BF16, 2e-2)]
    [InlineData(TableType.F16, 2e-3)]
    public void SixteenBitTablesStayCloseToFloatAndHalveTheirBytes(TableType type, double tol)
    {
        var w = Random(Llama3, 13);
        var model = ModelQuantizer.Quantize(w, QuantSpec.Parse("w4", "e8-box"));
        var tok = new QuantizedModelFile.TokenizerBlob("hf-json", System.Text.Encoding.UTF8.GetBytes(SmallTokenizer(Llama3.VocabSize)));
        string f32 = Path.Combine(_dir, "t32.gqm"), f16 = Path.Combine(_dir, "t16.gqm");
        var r32 = QuantizedModelFile.Save(model, f32, tok, tables: TableType.F32);
        var r16 = QuantizedModelFile.Save(model, f16, tok, tables: type);
        Assert.Equal(r32.TableBits / 2, r16.TableBits);
        var a = QuantizedModelFile.Load(f32).Model.ForwardWindow(Tokens);
        var b = QuantizedModelFile.Load(f16).Model.ForwardWindow(Tokens);
        Assert.Equal(model.ForwardWindow(Tokens), a);
        double maxRel = a.Zip(b, (x, y) => Math.Abs(x - y) / Math.Max(1, Math.Abs(x))).Max();
        Assert.True(maxRel < tol && maxRel > 0, $"max relative difference {maxRel}");
    }

    /// <summary>A byte-level tokenizer.json whose ids fit a tiny vocabulary: 30 byte tokens and two specials.</summary>
    internal static string SmallTokenizer(int vocab)
    {
        var v = new JsonObject();
        string chars = "abcdefghijklmnopqrstuvwxyz.,!" + Gosset.Llm.Tokenization.HfJsonTokenizer.ByteChar((byte)' ');
        for (int i = 0; i < chars.Length; i++) v[chars[i].ToString()] = i;
        var root = new JsonObject
        {
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = vocab - 2, ["content"] = "<|begin_of_text|>" },
                new JsonObject { ["id"] = vocab - 1, ["content"] = "<|end_of_text|>" }),
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = v, ["merges"] = new JsonArray() },
        };
        return root.ToJsonString();
    }
}
