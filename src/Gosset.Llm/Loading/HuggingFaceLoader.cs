using System.Text.Json;
using Gosset.IO;
using System.Text.Json.Nodes;

namespace Gosset.Llm.Loading;

/// <summary>
/// Loads Hugging Face Llama-family checkpoints: a folder with <c>config.json</c> and one or more
/// <c>*.safetensors</c> files (F32, F16 or BF16) with HF tensor names. The files are memory-mapped and
/// converted tensor by tensor. HF stores the query and key projections with each head's rows permuted
/// for its "rotate half" RoPE; they are permuted back to the llama2.c adjacent-pair order here.
/// </summary>
public static class HuggingFaceLoader
{
    /// <summary>True when <paramref name="path"/> is a folder with a config.json, or a config.json / .safetensors file.</summary>
    public static bool IsHuggingFace(string path) =>
        Directory.Exists(path) && File.Exists(System.IO.Path.Combine(path, "config.json"))
        || path.EndsWith("config.json", StringComparison.OrdinalIgnoreCase)
        || path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);

    /// <summary>Loads a checkpoint from a folder (or a file inside it) into float32 arrays.</summary>
    public static LlamaWeights Load(string path)
    {
        using var ck = HfCheckpoint.Open(path);
        var config = ck.Config;
        var w = new LlamaWeights(config);
        ck.Read("model.embed_tokens.weight", w.TokenEmbedding);
        for (int l = 0; l < config.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            ck.Read(p + "input_layernorm.weight", w.RmsAtt[l]);
            ck.Read(p + "post_attention_layernorm.weight", w.RmsFfn[l]);
            foreach (var name in new[] { "wq", "wk", "wv", "wo", "w1", "w2", "w3" })
            {
                float[] dst = name switch
                {
                    "wq" => w.Wq[l], "wk" => w.Wk[l], "wv" => w.Wv[l], "wo" => w.Wo[l], "w1" => w.W1[l], "w2" => w.W2[l], _ => w.W3[l],
                };
                ck.Read(HfCheckpoint.LinearName(l, name), dst);
                if (name == "wq") Unpermute(dst, config.Heads, config.HeadSize, config.Dim);
                if (name == "wk") Unpermute(dst, config.KvHeads, config.HeadSize, config.Dim);
            }
            if (config.QkvBias)
            {
                ck.Bias(l, "q")!.CopyTo(w.Bq![l], 0);
                ck.Bias(l, "k")!.CopyTo(w.Bk![l], 0);
                ck.Bias(l, "v")!.CopyTo(w.Bv![l], 0);
            }
        }
        ck.Read("model.norm.weight", w.RmsFinal);
        if (!config.SharedClassifier) ck.Read("lm_head.weight", w.Classifier);
        w.CheckFinite(ck.Directory);
        return w;
    }

    private static string ConfigPath(string path) =>
        System.IO.Path.Combine(Directory.Exists(path) ? path : System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!, "config.json");

    /// <summary>True when config.json carries <c>"gosset_random_weights": true</c> (written by synth-model).</summary>
    public static bool IsRandomWeights(string path)
    {
        string cp = ConfigPath(path);
        if (!File.Exists(cp)) return false;
        try { return JsonNode.Parse(File.ReadAllText(cp))?["gosset_random_weights"] is JsonValue v && v.TryGetValue(out bool b) && b; }
        catch (JsonException) { return false; }
    }

    /// <summary>The config's eos_token_id(s), or null when it names none.</summary>
    public static int[]? StopIds(string path)
    {
        var ids = HfConfig.Read(ConfigPath(path)).EosTokenIds;
        return ids.Length > 0 ? ids : null;
    }

    /// <summary>Parses a HF config.json (Llama, Mistral, Qwen2); unsupported fields are refused with an error naming them.</summary>
    public static LlamaConfig ReadConfig(string configPath) => HfConfig.Read(configPath).Config;

    /// <summary>
    /// HF row order within a head is (half b, pair a) = b·hs/2 + a; llama2.c order is 2a + b.
    /// Converts a [heads·hs][cols] matrix from HF order to llama2.c order in place.
    /// </summary>
    internal static void Unpermute(float[] w, int heads, int hs, int cols) => Reorder(w, heads, hs, cols, toHf: false);

    /// <summary>Inverse of <see cref="Unpermute"/>: llama2.c order to HF order.</summary>
    internal static void Permute(float[] w, int heads, int hs, int cols) => Reorder(w, heads, hs, cols, toHf: true);

    private static void Reorder(float[] w, int heads, int hs, int cols, bool toHf)
    {
        var copy = (float[])w.Clone();
        for (int hh = 0; hh < heads; hh++)
            for (int a = 0; a < hs / 2; a++)
                for (int b = 0; b < 2; b++)
                {
                    long hf = (long)(hh * hs + b * (hs / 2) + a) * cols, l2c = (long)(hh * hs + 2 * a + b) * cols;
                    if (toHf) Array.Copy(copy, l2c, w, hf, cols);
                    else Array.Copy(copy, hf, w, l2c, cols);
                }
    }

    /// <summary>Writes weights as a HF folder (config.json + model.safetensors, in memory: small models), q/k permuted to HF order.</summary>
    public static void Save(LlamaWeights w, string dir, SafeTensorsDType dtype = SafeTensorsDType.F32)
    {
        var c = w.Config;
        Directory.CreateDirectory(dir);
        var cfg = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["hidden_size"] = c.Dim, ["intermediate_size"] = c.HiddenDim, ["num_hidden_layers"] = c.Layers,
            ["num_attention_heads"] = c.Heads, ["num_key_value_heads"] = c.KvHeads, ["vocab_size"] = c.VocabSize,
            ["max_position_embeddings"] = c.SeqLen, ["rms_norm_eps"] = c.NormEps, ["rope_theta"] = c.RopeTheta,
            ["tie_word_embeddings"] = c.SharedClassifier, ["hidden_act"] = "silu",
        };
        if (c.Architecture is "mistral" or "qwen2") cfg["model_type"] = c.Architecture;
        if (c.RopeScaling is { } rs)
            cfg["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = "llama3", ["factor"] = rs.Factor, ["low_freq_factor"] = rs.LowFreqFactor,
                ["high_freq_factor"] = rs.HighFreqFactor, ["original_max_position_embeddings"] = rs.OriginalMaxPositions,
            };
        Gosset.IO.AtomicFile.WriteAllText(System.IO.Path.Combine(dir, "config.json"), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        int d = c.Dim, h = c.HiddenDim, kv = c.KvDim;
        var t = new List<(string, long[], float[])> { ("model.embed_tokens.weight", [c.VocabSize, d], w.TokenEmbedding) };
        for (int l = 0; l < c.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            var q = (float[])w.Wq[l].Clone(); Permute(q, c.Heads, c.HeadSize, d);
            var k = (float[])w.Wk[l].Clone(); Permute(k, c.KvHeads, c.HeadSize, d);
            t.Add((p + "input_layernorm.weight", [d], w.RmsAtt[l]));
            t.Add((p + "self_attn.q_proj.weight", [d, d], q));
            t.Add((p + "self_attn.k_proj.weight", [kv, d], k));
            t.Add((p + "self_attn.v_proj.weight", [kv, d], w.Wv[l]));
            if (c.QkvBias)
            {
                var bq = (float[])w.Bq![l].Clone(); Permute(bq, c.Heads, c.HeadSize, 1);
                var bk = (float[])w.Bk![l].Clone(); Permute(bk, c.KvHeads, c.HeadSize, 1);
                t.Add((p + "self_attn.q_proj.bias", [d], bq));
                t.Add((p + "self_attn.k_proj.bias", [kv], bk));
                t.Add((p + "self_attn.v_proj.bias", [kv], w.Bv![l]));
            }
            t.Add((p + "self_attn.o_proj.weight", [d, d], w.Wo[l]));
            t.Add((p + "post_attention_layernorm.weight", [d], w.RmsFfn[l]));
            t.Add((p + "mlp.gate_proj.weight", [h, d], w.W1[l]));
            t.Add((p + "mlp.down_proj.weight", [d, h], w.W2[l]));
            t.Add((p + "mlp.up_proj.weight", [h, d], w.W3[l]));
        }
        t.Add(("model.norm.weight", [d], w.RmsFinal));
        if (!c.SharedClassifier) t.Add(("lm_head.weight", [c.VocabSize, d], w.Classifier));
        SafeTensors.WriteFlat(System.IO.Path.Combine(dir, "model.safetensors"), t, dtype, new Dictionary<string, string> { ["format"] = "pt" });
    }
}
