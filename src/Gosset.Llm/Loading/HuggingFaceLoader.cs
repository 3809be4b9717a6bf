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

    /// <summary>Loads a checkpoint from a folder (or a file inside it).</summary>
    public static LlamaWeights Load(string path)
    {
        string dir = Directory.Exists(path) ? path : System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        string configPath = System.IO.Path.Combine(dir, "config.json");
        if (!File.Exists(configPath)) throw new InvalidFileException(dir, "no config.json beside the safetensors files");
        var config = ReadConfig(configPath);
        var files = Directory.GetFiles(dir, "*.safetensors").OrderBy(f => f, StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new InvalidFileException(dir, "no *.safetensors files");
        var opened = new List<SafeTensorsFile>();
        try
        {
            var byName = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (var f in files)
            {
                var st = SafeTensorsFile.Open(f);
                opened.Add(st);
                foreach (var t in st.Tensors) byName[t.Name] = st;
            }
            bool shared = !byName.ContainsKey("lm_head.weight");
            config = config with { SharedClassifier = shared };
            var w = new LlamaWeights(config);
            int d = config.Dim, h = config.HiddenDim, kv = config.KvDim;
            void R(string name, float[] dst, params long[] shape)
            {
                if (!byName.TryGetValue(name, out var st)) throw new InvalidFileException(dir, $"tensor {name} is missing");
                var info = st.Info(name);
                if (!info.Shape.SequenceEqual(shape))
                    throw new InvalidFileException(st.Path, $"tensor {name} has shape {info.ShapeText}, expected [{string.Join(", ", shape)}]");
                if (info.DType is not ("F32" or "F16" or "BF16" or "F64"))
                    throw new InvalidFileException(st.Path, $"tensor {name}: dtype {info.DType} is not supported (F32, F16, BF16, F64)");
                st.ReadFloats(info, dst);
            }
            R("model.embed_tokens.weight", w.TokenEmbedding, config.VocabSize, d);
            var tmp = new float[Math.Max(d * d, kv * d)];
            for (int l = 0; l < config.Layers; l++)
            {
                string p = $"model.layers.{l}.";
                R(p + "input_layernorm.weight", w.RmsAtt[l], d);
                R(p + "self_attn.q_proj.weight", w.Wq[l], d, d);
                R(p + "self_attn.k_proj.weight", w.Wk[l], kv, d);
                Unpermute(w.Wq[l], config.Heads, config.HeadSize, d);
                Unpermute(w.Wk[l], config.KvHeads, config.HeadSize, d);
                R(p + "self_attn.v_proj.weight", w.Wv[l], kv, d);
                R(p + "self_attn.o_proj.weight", w.Wo[l], d, d);
                R(p + "post_attention_layernorm.weight", w.RmsFfn[l], d);
                R(p + "mlp.gate_proj.weight", w.W1[l], h, d);
                R(p + "mlp.down_proj.weight", w.W2[l], d, h);
                R(p + "mlp.up_proj.weight", w.W3[l], h, d);
            }
            R("model.norm.weight", w.RmsFinal, d);
            if (!shared) R("lm_head.weight", w.Classifier, config.VocabSize, d);
            w.CheckFinite(dir);
            return w;
        }
        finally
        {
            foreach (var st in opened) st.Dispose();
        }
    }

    /// <summary>Parses the fields of a HF Llama config.json that the engine needs.</summary>
    public static LlamaConfig ReadConfig(string configPath)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(configPath)); }
        catch (JsonException e) { throw new InvalidFileException(configPath, "not valid JSON: " + e.Message); }
        if (root is not JsonObject o) throw new InvalidFileException(configPath, "not a JSON object");
        int I(string key, int? fallback = null)
        {
            if (o[key] is JsonValue v && v.TryGetValue(out int x)) return x;
            if (fallback is int f) return f;
            throw new InvalidFileException(configPath, $"missing integer field \"{key}\"");
        }
        float F(string key, float fallback) =>
            o[key] is JsonValue v && v.TryGetValue(out double x) ? (float)x : fallback;
        string? arch = o["model_type"]?.GetValue<string>();
        if (arch is not null && arch is not ("llama" or "mistral" or "qwen2"))
            throw new InvalidFileException(configPath, $"model_type \"{arch}\" is not a Llama-family model");
        if (o["rope_scaling"] is JsonObject)
            throw new InvalidFileException(configPath, "rope_scaling is not supported");
        int heads = I("num_attention_heads");
        var c = new LlamaConfig(I("hidden_size"), I("intermediate_size"), I("num_hidden_layers"), heads,
            I("num_key_value_heads", heads), I("vocab_size"), I("max_position_embeddings"), true,
            F("rms_norm_eps", 1e-6f), F("rope_theta", 10000f));
        if (o["head_dim"] is JsonValue hd && hd.TryGetValue(out int headDim) && headDim != c.HeadSize)
            throw new InvalidFileException(configPath, $"head_dim {headDim} differs from hidden_size / num_attention_heads");
        c.Validate(configPath);
        return c;
    }

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

    /// <summary>Writes weights as a HF Llama folder (config.json + model.safetensors), q/k permuted to HF order.</summary>
    internal static void Save(LlamaWeights w, string dir, SafeTensorsDType dtype = SafeTensorsDType.F32)
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
            ["tie_word_embeddings"] = c.SharedClassifier,
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
