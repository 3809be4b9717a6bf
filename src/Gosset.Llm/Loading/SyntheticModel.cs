using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gosset.IO;
using Gosset.Llm.Tokenization;

namespace Gosset.Llm.Loading;

/// <summary>
/// Random-weight checkpoints with the exact shapes of public models, for speed and memory work (quality figures on
/// them mean nothing). Written as a Hugging Face folder (config.json marked <c>"gosset_random_weights": true</c>,
/// tokenizer.json, model.safetensors) streamed to disk chunk by chunk: the model is never in memory.
/// Matrices and biases are approximately N(0, 0.02²), norms 1, so activations stay finite through every layer.
/// </summary>
public static class SyntheticModel
{
    /// <summary>A public model's shape.</summary>
    public sealed record Shape(string ModelType, int Hidden, int Intermediate, int Layers, int Heads, int KvHeads, int Vocab,
        int MaxPositions, double RopeTheta, double NormEps, bool Tied, RopeScaling? Scaling = null);

    private static readonly RopeScaling Llama32Scaling = new(32, 1, 4, 8192);

    /// <summary>The shapes <c>--like</c> knows, from the models' published config.json files.</summary>
    public static IReadOnlyDictionary<string, Shape> Known { get; } = new Dictionary<string, Shape>(StringComparer.OrdinalIgnoreCase)
    {
        ["llama-3.2-1b"] = new("llama", 2048, 8192, 16, 32, 8, 128256, 131072, 500000, 1e-5, true, Llama32Scaling),
        ["llama-3.2-3b"] = new("llama", 3072, 8192, 28, 24, 8, 128256, 131072, 500000, 1e-5, true, Llama32Scaling),
        ["llama-3-8b"] = new("llama", 4096, 14336, 32, 32, 8, 128256, 8192, 500000, 1e-5, false),
        ["qwen2.5-0.5b"] = new("qwen2", 896, 4864, 24, 14, 2, 151936, 32768, 1000000, 1e-6, true),
        ["tinyllama-1.1b"] = new("llama", 2048, 5632, 22, 32, 4, 32000, 2048, 10000, 1e-5, false),
        ["mistral-7b"] = new("mistral", 4096, 14336, 32, 32, 8, 32768, 32768, 1000000, 1e-5, false),
    };

    /// <summary>The config.json of a shape (HF field names), marked as random weights.</summary>
    public static JsonObject Config(Shape s)
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(s.ModelType switch { "qwen2" => "Qwen2ForCausalLM", "mistral" => "MistralForCausalLM", _ => "LlamaForCausalLM" }),
            ["model_type"] = s.ModelType, ["hidden_size"] = s.Hidden, ["intermediate_size"] = s.Intermediate,
            ["num_hidden_layers"] = s.Layers, ["num_attention_heads"] = s.Heads, ["num_key_value_heads"] = s.KvHeads,
            ["vocab_size"] = s.Vocab, ["max_position_embeddings"] = s.MaxPositions, ["rope_theta"] = s.RopeTheta,
            ["rms_norm_eps"] = s.NormEps, ["tie_word_embeddings"] = s.Tied, ["hidden_act"] = "silu",
            ["bos_token_id"] = s.Vocab - 2, ["eos_token_id"] = s.Vocab - 1,
            ["gosset_random_weights"] = true,
        };
        if (s.Scaling is { } r)
            o["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = "llama3", ["factor"] = r.Factor, ["low_freq_factor"] = r.LowFreqFactor,
                ["high_freq_factor"] = r.HighFreqFactor, ["original_max_position_embeddings"] = r.OriginalMaxPositions,
            };
        if (s.ModelType == "qwen2") { o["use_sliding_window"] = false; o["sliding_window"] = s.MaxPositions; }
        return o;
    }

    /// <summary>Tensor names and shapes of a checkpoint in HF naming.</summary>
    public static List<(string Name, long[] Shape, bool Norm)> Tensors(Shape s)
    {
        long d = s.Hidden, h = s.Intermediate, kv = (long)s.KvHeads * (s.Hidden / s.Heads), v = s.Vocab;
        var t = new List<(string, long[], bool)> { ("model.embed_tokens.weight", [v, d], false) };
        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            t.Add((p + "input_layernorm.weight", [d], true));
            t.Add((p + "self_attn.q_proj.weight", [d, d], false));
            t.Add((p + "self_attn.k_proj.weight", [kv, d], false));
            t.Add((p + "self_attn.v_proj.weight", [kv, d], false));
            if (s.ModelType == "qwen2")
            {
                t.Add((p + "self_attn.q_proj.bias", [d], false));
                t.Add((p + "self_attn.k_proj.bias", [kv], false));
                t.Add((p + "self_attn.v_proj.bias", [kv], false));
            }
            t.Add((p + "self_attn.o_proj.weight", [d, d], false));
            t.Add((p + "post_attention_layernorm.weight", [d], true));
            t.Add((p + "mlp.gate_proj.weight", [h, d], false));
            t.Add((p + "mlp.down_proj.weight", [d, h], false));
            t.Add((p + "mlp.up_proj.weight", [h, d], false));
        }
        t.Add(("model.norm.weight", [d], true));
        if (!s.Tied) t.Add(("lm_head.weight", [v, d], false));
        return t;
    }

    /// <summary>
    /// Writes the checkpoint folder (config.json, tokenizer.json, model.safetensors); each file appears atomically.
    /// Returns the bytes written. The same seed gives the same bytes.
    /// </summary>
    public static long Write(Shape shape, string dir, SafeTensorsDType dtype, ulong seed, Action<long, long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        Directory.CreateDirectory(dir);
        var tensors = Tensors(shape);
        int item = dtype == SafeTensorsDType.F32 ? 4 : 2;
        string dt = dtype.ToString();
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt", ["gosset_random_weights"] = "true" } };
        long offset = 0;
        foreach (var (name, sh, _) in tensors)
        {
            long n = sh.Aggregate(1L, (a, b) => checked(a * b));
            header[name] = new JsonObject
            {
                ["dtype"] = dt, ["shape"] = new JsonArray(sh.Select(x => (JsonNode?)x).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + n * item),
            };
            offset += n * item;
        }
        byte[] hb = Encoding.UTF8.GetBytes(header.ToJsonString());
        int pad = (8 - hb.Length % 8) % 8;
        hb = hb.Concat(Enumerable.Repeat((byte)' ', pad)).ToArray();
        long total = 8 + hb.Length + offset, done = 0;
        AtomicFile.Write(Path.Combine(dir, "model.safetensors"), st =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)hb.Length);
            st.Write(len);
            st.Write(hb);
            const int chunk = 1 << 20;
            int par = Math.Max(1, Environment.ProcessorCount);
            var bufs = Enumerable.Range(0, par).Select(_ => new byte[chunk * item]).ToArray();
            var counts = new int[par];
            for (int ti = 0; ti < tensors.Count; ti++)
            {
                var (_, sh, norm) = tensors[ti];
                long n = sh.Aggregate(1L, (a, b) => a * b);
                long chunks = (n + chunk - 1) / chunk;
                for (long c0 = 0; c0 < chunks; c0 += par)
                {
                    int batch = (int)Math.Min(par, chunks - c0);
                    Parallel.For(0, batch, j =>
                    {
                        long c = c0 + j;
                        int cnt = (int)Math.Min(chunk, n - c * chunk);
                        counts[j] = cnt;
                        Fill(bufs[j].AsSpan(0, cnt * item), cnt, norm, dtype, Mix(seed, (ulong)ti, (ulong)c));
                    });
                    for (int j = 0; j < batch; j++) st.Write(bufs[j], 0, counts[j] * item);
                    done += (long)counts.Take(batch).Sum() * item;
                    progress?.Invoke(done, total);
                }
            }
        });
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), Config(shape).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.WriteAllText(Path.Combine(dir, "tokenizer.json"), TokenizerJson(shape.Vocab));
        return total;
    }

    private static ulong Mix(ulong a, ulong b, ulong c)
    {
        ulong x = a ^ (b * 0x9E3779B97F4A7C15UL) ^ (c * 0xC2B2AE3D27D4EB4FUL);
        return SplitMix(ref x);
    }

    private static ulong SplitMix(ref ulong s)
    {
        ulong z = s += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>
    /// n values: 1 for norms, else approximately N(0, 0.02²): the standardized sum of four 16-bit uniforms from one
    /// SplitMix64 draw (Irwin–Hall, bounded at ±3.46σ), a few instructions per value so an 8B checkpoint is written
    /// at disk speed.
    /// </summary>
    private static void Fill(Span<byte> dst, int n, bool norm, SafeTensorsDType dtype, ulong state)
    {
        const double mean = 4 * 32767.5;
        double scale = 0.02 / Math.Sqrt(4 * (65536.0 * 65536.0 - 1) / 12);
        for (int i = 0; i < n; i++)
        {
            float v = 1f;
            if (!norm)
            {
                ulong r = SplitMix(ref state);
                long sum = (long)(r & 0xFFFF) + (long)((r >> 16) & 0xFFFF) + (long)((r >> 32) & 0xFFFF) + (long)(r >> 48);
                v = (float)((sum - mean) * scale);
            }
            Put(dst, i, v, dtype);
        }
    }

    private static void Put(Span<byte> dst, int i, float v, SafeTensorsDType dtype)
    {
        switch (dtype)
        {
            case SafeTensorsDType.F32: BinaryPrimitives.WriteSingleLittleEndian(dst[(4 * i)..], v); break;
            case SafeTensorsDType.F16: BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], BitConverter.HalfToUInt16Bits((Half)v)); break;
            default: BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], SafeTensors.SingleToBFloat16(v)); break;
        }
    }

    /// <summary>
    /// A byte-level BPE tokenizer.json for a vocabulary of <paramref name="vocab"/> ids: the 256 byte tokens, a few
    /// English merges, synthetic filler tokens up to vocab − 2, then &lt;|begin_of_text|&gt; and &lt;|end_of_text|&gt;
    /// (BOS added by the post-processor, as Llama 3 does).
    /// </summary>
    public static string TokenizerJson(int vocab)
    {
        string[] mergePairs = ["Ġ t", "h e", "Ġt he", "Ġ a", "i n", "e r", "o n", "Ġ s", "r e", "a n", "Ġ w", "o u", "Ġ o", "e d", "Ġ b", "i s", "i t", "Ġ c", "a t", "e n"];
        var v = new JsonObject();
        int id = 0;
        for (int b = 0; b < 256; b++) v[HfJsonTokenizer.ByteChar((byte)b).ToString()] = id++;
        var merges = new JsonArray();
        foreach (var m in mergePairs)
        {
            var parts = m.Split(' ');
            string merged = parts[0] + parts[1];
            if (id >= vocab - 2) break;
            if (v.ContainsKey(merged)) continue;
            v[merged] = id++;
            merges.Add(m);
        }
        if (vocab < id + 2) throw new GossetException($"a synthetic tokenizer needs a vocabulary of at least {id + 2}");
        while (id < vocab - 2) { v[$"<synthetic_{id}>"] = id; id++; }
        var added = new JsonArray
        {
            new JsonObject { ["id"] = vocab - 2, ["content"] = "<|begin_of_text|>", ["special"] = true },
            new JsonObject { ["id"] = vocab - 1, ["content"] = "<|end_of_text|>", ["special"] = true },
        };
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject
                    {
                        ["type"] = "Split", ["behavior"] = "Isolated", ["invert"] = false,
                        ["pattern"] = new JsonObject { ["Regex"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+" },
                    },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
            },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<|begin_of_text|>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
            },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["ignore_merges"] = true, ["vocab"] = v, ["merges"] = merges },
        };
        return root.ToJsonString();
    }
}
