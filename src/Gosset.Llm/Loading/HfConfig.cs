using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gosset.Llm.Loading;

/// <summary>
/// Reads a Hugging Face <c>config.json</c> of a Llama, Mistral or Qwen2 model. Every field that would change the
/// computation and that the engine does not implement is refused with an error naming the field, rather than
/// ignored.
/// </summary>
internal static class HfConfig
{
    private const long MaxConfigBytes = 1 << 20;

    internal sealed record Parsed(LlamaConfig Config, bool? TieWordEmbeddings, int? BosTokenId, int[] EosTokenIds);

    public static Parsed Read(string configPath)
    {
        long size = new FileInfo(configPath).Length;
        if (size > MaxConfigBytes) throw new InvalidFileException(configPath, $"{size} bytes: a config.json over 1 MB is not a model configuration");
        JsonNode? root;
        byte[] bytes = File.ReadAllBytes(configPath);
        // JsonNode checks the UTF-8 of string values only when they are read (InvalidOperationException): check it here
        try { _ = new System.Text.UTF8Encoding(false, true).GetCharCount(bytes); }
        catch (System.Text.DecoderFallbackException) { throw new InvalidFileException(configPath, "not valid UTF-8"); }
        try { root = JsonNode.Parse(bytes, documentOptions: new JsonDocumentOptions { MaxDepth = 16 }); }
        catch (JsonException e) { throw new InvalidFileException(configPath, "not valid JSON: " + e.Message); }
        if (root is not JsonObject o) throw new InvalidFileException(configPath, "not a JSON object");
        try { _ = o.Count; } // JsonObject builds its dictionary lazily and throws ArgumentException on a duplicate key
        catch (ArgumentException e) { throw new InvalidFileException(configPath, "not valid JSON: " + e.Message); }
        return Parse(o, configPath);
    }

    private static Parsed Parse(JsonObject o, string path)
    {
        Exception Bad(string field, string why) => new InvalidFileException(path, $"config field \"{field}\": {why}");
        bool Present(string key) => o.TryGetPropertyValue(key, out var n) && n is not null;
        int I(string key, int? fallback = null)
        {
            if (o[key] is JsonValue v && v.TryGetValue(out int x)) return x;
            if (o[key] is JsonValue d && d.TryGetValue(out double y) && y == Math.Floor(y) && Math.Abs(y) < int.MaxValue) return (int)y;
            if (!Present(key) && fallback is int f) return f;
            throw Present(key) ? Bad(key, "not an integer") : new InvalidFileException(path, $"missing integer field \"{key}\"");
        }
        double F(JsonObject obj, string key, double fallback)
        {
            if (!obj.TryGetPropertyValue(key, out var n) || n is null) return fallback;
            if (n is JsonValue v && v.TryGetValue(out double x) && double.IsFinite(x)) return x;
            throw Bad(key, "not a number");
        }
        string? S(string key) => o[key] is JsonValue v && v.TryGetValue(out string? s) ? s : null;

        string arch = S("model_type") ?? "llama";
        if (arch is not ("llama" or "mistral" or "qwen2"))
            throw Bad("model_type", $"\"{arch}\" is not supported (llama, mistral, qwen2)");
        string act = S("hidden_act") ?? S("hidden_activation") ?? "silu";
        if (act != "silu") throw Bad("hidden_act", $"\"{act}\" is not supported (only silu, the SwiGLU of Llama)");
        if (Present("partial_rotary_factor") && F(o, "partial_rotary_factor", 1) != 1)
            throw Bad("partial_rotary_factor", "partial rotary embeddings are not supported (only 1)");
        foreach (var moe in new[] { "num_local_experts", "num_experts", "num_experts_per_tok", "n_routed_experts", "moe_intermediate_size" })
            if (Present(moe) && !(o[moe] is JsonValue mv && mv.TryGetValue(out int n) && n == 0))
                throw Bad(moe, "mixture-of-experts models are not supported");
        if (Present("quantization_config")) throw Bad("quantization_config", "pre-quantized checkpoints are not supported; start from the float weights");
        foreach (var flag in new[] { "attention_bias", "mlp_bias" })
            if (o[flag] is JsonValue bv && bv.TryGetValue(out bool b) && b)
                throw Bad(flag, "true is not supported (only Qwen2's q/k/v biases are)");
        int heads = I("num_attention_heads");
        int hidden = I("hidden_size");
        int maxPos = I("max_position_embeddings", 2048);
        // A sliding window at least as long as the context changes nothing; a shorter one is exact as long as the context
        // does not exceed it, so the usable context is capped at the window.
        bool sliding = arch == "qwen2" ? o["use_sliding_window"] is JsonValue uv && uv.TryGetValue(out bool u) && u : Present("sliding_window");
        int seq = maxPos;
        if (sliding && Present("sliding_window"))
        {
            int w = I("sliding_window");
            if (w <= 0) throw Bad("sliding_window", $"{w} is not a window length");
            seq = Math.Min(seq, w);
        }
        RopeScaling? rs = null;
        if (o["rope_scaling"] is JsonObject r)
        {
            string type = (r["rope_type"] ?? r["type"]) is JsonValue tv && tv.TryGetValue(out string? t) ? t ?? "" : "";
            if (type == "llama3")
            {
                int orig = r["original_max_position_embeddings"] is JsonValue ov && ov.TryGetValue(out int oi) ? oi
                    : throw Bad("rope_scaling.original_max_position_embeddings", "missing or not an integer");
                rs = new RopeScaling((float)F(r, "factor", double.NaN), (float)F(r, "low_freq_factor", 1), (float)F(r, "high_freq_factor", 4), orig);
                if (float.IsNaN(rs.Factor)) throw Bad("rope_scaling.factor", "missing");
            }
            else if (type != "default")
                throw Bad("rope_scaling.rope_type", $"\"{type}\" is not supported (only llama3)");
        }
        else if (Present("rope_scaling")) throw Bad("rope_scaling", "not an object");
        bool? tie = o["tie_word_embeddings"] is JsonValue tw && tw.TryGetValue(out bool tb) ? tb : null;
        var c = new LlamaConfig(hidden, I("intermediate_size"), I("num_hidden_layers"), heads,
            I("num_key_value_heads", heads), I("vocab_size"), seq, tie ?? true,
            (float)F(o, "rms_norm_eps", 1e-6), (float)F(o, "rope_theta", 10000))
        {
            RopeScaling = rs, QkvBias = arch == "qwen2", Architecture = arch,
        };
        if (Present("head_dim") && heads > 0 && I("head_dim") != hidden / heads)
            throw Bad("head_dim", $"{I("head_dim")} differs from hidden_size / num_attention_heads = {hidden / heads}");
        c.Validate(path);
        int? bos = o["bos_token_id"] is JsonValue bo && bo.TryGetValue(out int bi) ? bi : null;
        var eos = new List<int>();
        if (o["eos_token_id"] is JsonValue ev && ev.TryGetValue(out int ei)) eos.Add(ei);
        else if (o["eos_token_id"] is JsonArray ea)
            foreach (var x in ea) if (x is JsonValue xv && xv.TryGetValue(out int xi)) eos.Add(xi);
        return new Parsed(c, tie, bos, eos.ToArray());
    }

    internal static string Format(double x) => x.ToString("R", CultureInfo.InvariantCulture);
}
