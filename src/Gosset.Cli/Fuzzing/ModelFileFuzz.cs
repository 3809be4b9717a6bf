using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Gosset.Llm.Loading;
using Gosset.Llm.Quantization;
using Gosset.Rotations;
using Gosset.Util;

namespace Gosset.Cli.Fuzzing;

/// <summary>Tiny models shared by the model-file readers under fuzz.</summary>
internal static class TinyModel
{
    public static LlamaWeights Weights(ref SplitMix64 rng, int vocab, bool shared)
    {
        int heads = 2, kv = 1 + Fuzz.Pick(ref rng, 2);
        var c = new LlamaConfig(16, 24, 1 + Fuzz.Pick(ref rng, 2), heads, kv, vocab, 32, shared);
        var w = new LlamaWeights(c);
        var r = rng;
        void Fill(float[] a, float s) { for (int i = 0; i < a.Length; i++) a[i] = s * (float)PortableNormal.Next(ref r); }
        Fill(w.TokenEmbedding, 1); Fill(w.RmsFinal, 0.1f);
        foreach (var set in new[] { w.Wq, w.Wk, w.Wv, w.Wo, w.W1, w.W2, w.W3 }) foreach (var a in set) Fill(a, 0.25f);
        foreach (var set in new[] { w.RmsAtt, w.RmsFfn }) foreach (var a in set) { Fill(a, 0.1f); for (int i = 0; i < a.Length; i++) a[i] += 1; }
        for (int i = 0; i < w.RmsFinal.Length; i++) w.RmsFinal[i] += 1;
        if (!shared) Fill(w.Classifier, 0.25f);
        rng = r;
        return w;
    }

    /// <summary>Every leaf of a JSON tree with a way to replace it (the structured generator's "fields").</summary>
    public static List<(JsonNode Parent, object Key)> Leaves(JsonNode root)
    {
        var list = new List<(JsonNode, object)>();
        void Walk(JsonNode n)
        {
            if (n is JsonObject o) foreach (var kv in o.ToList()) { if (kv.Value is JsonObject or JsonArray) Walk(kv.Value); list.Add((o, kv.Key)); }
            else if (n is JsonArray a) for (int i = 0; i < a.Count; i++) { if (a[i] is JsonObject or JsonArray) Walk(a[i]!); list.Add((a, i)); }
        }
        Walk(root);
        return list;
    }

    /// <summary>Replaces <paramref name="edits"/> leaves picked from <paramref name="leaves"/> with hostile values.</summary>
    public static void EditLeaves(ref SplitMix64 rng, List<(JsonNode Parent, object Key)> leaves, int edits)
    {
        for (int e = 0; e < edits; e++)
        {
            var (parent, key) = Fuzz.Pick(ref rng, leaves);
            if (parent is JsonObject o && key is string k && o.ContainsKey(k)) o[k] = HostileJson(ref rng, o[k]);
            else if (parent is JsonArray a && key is int i && i < a.Count) a[i] = HostileJson(ref rng, a[i]);
        }
    }

    /// <summary>A JSON object whose <paramref name="key"/> holds 65 to 100 000 nested arrays (a parser's depth bound must stop it).</summary>
    public static string DepthBomb(ref SplitMix64 rng, string key)
    {
        int d = Fuzz.Pick(ref rng, [65, 1000, 100000]);
        return "{\"" + key + "\":" + new string('[', d) + new string(']', d) + "}";
    }

    public static JsonNode? HostileJson(ref SplitMix64 rng, JsonNode? current) => Fuzz.Pick(ref rng, 14) switch
    {
        0 => JsonValue.Create(0), 1 => JsonValue.Create(-1), 2 => JsonValue.Create(int.MaxValue), 3 => JsonValue.Create(int.MinValue),
        4 => JsonValue.Create(long.MaxValue), 5 => JsonValue.Create(1L << 40), 6 => JsonValue.Create(0.5), 7 => JsonValue.Create(""),
        8 => JsonValue.Create("x"), 9 => null, 10 => new JsonArray(), 11 => new JsonObject(),
        12 => current is JsonValue v && v.TryGetValue(out long l) ? JsonValue.Create(l + 1) : JsonValue.Create(46341),
        _ => current?.DeepClone() is JsonArray arr ? Doubled(arr) : JsonValue.Create(65536),
    };

    private static JsonArray Doubled(JsonArray a)
    {
        var r = new JsonArray();
        foreach (var x in a) { r.Add(x?.DeepClone()); r.Add(x?.DeepClone()); }
        return r;
    }
}

/// <summary>.gqm: every leaf of the JSON header, the trailer (header offset and length), the version; SHA-256 recomputed.</summary>
internal sealed class GqmFuzz : FuzzReader
{
    private static readonly Lazy<byte[][]> Seeds = new(() =>
    {
        var rng = new SplitMix64(0x6A6D);
        byte[] tok = new TokenizerFuzz().Valid(ref rng);
        int vocab = new TokenizerFuzz().DefaultArg(tok);
        var list = new List<byte[]>();
        // The default 8-bit classifier on a tied (one table, no token_embedding section) and an untied head, and the source one.
        foreach (var (quant, method, classifier, shared) in new[] { ("w4", "e8", "int8", true), ("w4a8", "int", "source", false), ("w4", "e8-box", "source", true), ("w4", "e8", "int8", false) })
        {
            var w = TinyModel.Weights(ref rng, vocab, shared);
            var model = ModelQuantizer.Quantize(w, QuantSpec.Parse(quant, method));
            if (classifier != "source") ClassifierQuantizer.Quantize(model, classifier);
            string tmp = Path.Combine(Path.GetTempPath(), $"gosset-fuzz-{Guid.NewGuid():N}.gqm");
            try
            {
                QuantizedModelFile.Save(model, tmp, new QuantizedModelFile.TokenizerBlob("llama2c", tok));
                list.Add(File.ReadAllBytes(tmp));
            }
            finally { File.Delete(tmp); }
        }
        return list.ToArray();
    });

    public override string Name => "gqm";
    public override string Extension => ".gqm";
    public override IReadOnlyList<string> Fields { get; } = ["header_leaf", "header_leaves", "section_duplicate", "sections", "trailer", "version", "header_depth", "truncate"];

    public override byte[] Valid(ref SplitMix64 rng) => (byte[])Fuzz.Pick(ref rng, Seeds.Value).Clone();

    public override byte[] Fix(byte[] b)
    {
        if (b.Length < 32) return b;
        var c = (byte[])b.Clone();
        SHA256.HashData(c.AsSpan(0, c.Length - 32), c.AsSpan(c.Length - 32));
        return c;
    }

    private static (byte[] Body, JsonObject Header) Split(byte[] all)
    {
        long hoff = BinaryPrimitives.ReadInt64LittleEndian(all.AsSpan(all.Length - 48));
        long hlen = BinaryPrimitives.ReadInt64LittleEndian(all.AsSpan(all.Length - 40));
        return (all[..(int)hoff], JsonNode.Parse(all.AsSpan((int)hoff, (int)hlen))!.AsObject());
    }

    private byte[] Join(byte[] body, byte[] header, long? hoff = null, long? hlen = null)
    {
        var ms = new MemoryStream();
        ms.Write(body);
        ms.Write(header);
        Span<byte> t = stackalloc byte[16];
        BinaryPrimitives.WriteInt64LittleEndian(t, hoff ?? body.Length);
        BinaryPrimitives.WriteInt64LittleEndian(t[8..], hlen ?? header.Length);
        ms.Write(t);
        ms.Write(new byte[32]);
        return Fix(ms.ToArray());
    }

    public override FuzzCase Hostile(ref SplitMix64 rng, string field)
    {
        byte[] all = Valid(ref rng);
        var (body, header) = Split(all);
        long? hoff = null, hlen = null;
        byte[]? rawHeader = null;
        switch (field)
        {
            case "header_leaf":
            case "header_leaves":
            {
                TinyModel.EditLeaves(ref rng, TinyModel.Leaves(header), field == "header_leaf" ? 1 : 2 + Fuzz.Pick(ref rng, 4));
                break;
            }
            case "section_duplicate":
            case "sections":
            {
                var sections = header["Sections"]!.AsArray();
                var s = sections[Fuzz.Pick(ref rng, sections.Count)]!.AsObject();
                if (field == "section_duplicate") sections.Add(s.DeepClone());
                else
                {
                    string k = Fuzz.Pick(ref rng, ["Offset", "Length", "Bits", "Name"]);
                    s[k] = k == "Name" ? JsonValue.Create(Fuzz.Pick(ref rng, ["", "tokenizer", "rms_final", "x"])) : JsonValue.Create(Fuzz.Pick(ref rng, [-5L, 0L, 7L, long.MaxValue, 1L << 40, all.Length, -(1L << 62)]));
                }
                break;
            }
            case "trailer":
                hoff = Fuzz.Pick(ref rng, [-5L, 0L, 8L, long.MaxValue, body.Length + 1L, body.Length - 1L]);
                hlen = Fuzz.Pick(ref rng, 2) == 0 ? null : Fuzz.Pick(ref rng, [0L, -1L, long.MaxValue, 65L << 20, 1L]);
                break;
            case "header_depth":
                rawHeader = Encoding.UTF8.GetBytes(TinyModel.DepthBomb(ref rng, "Config"));
                break;
            default:
                break;
        }
        byte[] result = Join(body, rawHeader ?? Encoding.UTF8.GetBytes(header.ToJsonString()), hoff, hlen);
        if (field == "version") { Fuzz.Smash(ref rng, result, 4, 4); result = Fix(result); }
        if (field == "truncate") result = Fix(result.AsSpan(0, Math.Max(56, Fuzz.Pick(ref rng, result.Length))).ToArray());
        return new FuzzCase(Name, "hostile:" + field, result);
    }

    public override void Open(string path, int arg)
    {
        var (model, contents) = QuantizedModelFile.Load(path);
        int[] ids = contents.Tokenizer.Encode("hello", bos: true, eos: false);
        _ = model.ForwardWindow(ids);
    }
}

/// <summary>GGUF: every integer field of the header, the key/value table and the tensor infos (no checksum in the format).</summary>
internal sealed class GgufFuzz : FuzzReader
{
    private static readonly Lazy<byte[][]> Seeds = new(() =>
    {
        var rng = new SplitMix64(0x6767);
        var list = new List<byte[]>();
        foreach (var type in new[] { GgufWriteType.F32, GgufWriteType.F16, GgufWriteType.BF16 })
        {
            int vocab = 259 + 5;
            var w = TinyModel.Weights(ref rng, vocab, shared: type != GgufWriteType.F16);
            var tokens = new string[vocab];
            var types = new int[vocab];
            var scores = new float[vocab];
            tokens[0] = "<unk>"; tokens[1] = "<s>"; tokens[2] = "</s>";
            types[0] = GgufVocabulary.Unknown; types[1] = types[2] = GgufVocabulary.Control;
            for (int b = 0; b < 256; b++) { tokens[3 + b] = $"<0x{b:X2}>"; types[3 + b] = GgufVocabulary.Byte; }
            for (int i = 259; i < vocab; i++) { tokens[i] = i == 259 ? "\u2581" : "\u2581h" + i; types[i] = GgufVocabulary.Normal; scores[i] = -i; }
            var v = new GgufVocabulary("llama", tokens, scores, types, null, 1, 2, 0, null);
            string tmp = Path.Combine(Path.GetTempPath(), $"gosset-fuzz-{Guid.NewGuid():N}.gguf");
            try { GgufModel.Save(w, tmp, v, type); list.Add(File.ReadAllBytes(tmp)); }
            finally { File.Delete(tmp); }
        }
        return list.ToArray();
    });

    public override string Name => "gguf";
    public override string Extension => ".gguf";
    public override IReadOnlyList<string> Fields { get; } = ["version", "tensor_count", "kv_count", "kv_field", "tensor_field", "fields", "truncate"];

    public override byte[] Valid(ref SplitMix64 rng) => (byte[])Fuzz.Pick(ref rng, Seeds.Value).Clone();

    /// <summary>(offset, size) of every integer field: header counts, key/value lengths, types, counts and numbers, tensor infos.</summary>
    private static (List<(int, int)> Kv, List<(int, int)> Tensors) Walk(byte[] b)
    {
        var kv = new List<(int, int)>();
        var tensors = new List<(int, int)>();
        int p = 24;
        ulong nT = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(8)), nKv = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(16));
        int Str(List<(int, int)> f) { f.Add((p, 8)); int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(p)); p += 8 + n; return n; }
        void Value(uint t, List<(int, int)> f)
        {
            switch (t)
            {
                case 0 or 1 or 7: f.Add((p, 1)); p += 1; break;
                case 2 or 3: f.Add((p, 2)); p += 2; break;
                case 4 or 5 or 6: f.Add((p, 4)); p += 4; break;
                case 8: Str(f); break;
                case 9:
                {
                    f.Add((p, 4)); uint et = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(p)); p += 4;
                    f.Add((p, 8)); ulong n = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(p)); p += 8;
                    for (ulong i = 0; i < n; i++) Value(et, i < 4 ? f : []);
                    break;
                }
                default: f.Add((p, 8)); p += 8; break;
            }
        }
        for (ulong i = 0; i < nKv; i++)
        {
            Str(kv);
            kv.Add((p, 4)); uint t = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(p)); p += 4;
            Value(t, kv);
        }
        for (ulong i = 0; i < nT; i++)
        {
            Str(tensors);
            tensors.Add((p, 4)); uint nd = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(p)); p += 4;
            for (uint d = 0; d < nd; d++) { tensors.Add((p, 8)); p += 8; }
            tensors.Add((p, 4)); p += 4;
            tensors.Add((p, 8)); p += 8;
        }
        return (kv, tensors);
    }

    private static void Smash64(ref SplitMix64 rng, byte[] b, int at, int size)
    {
        if (size != 8) { Fuzz.Smash(ref rng, b, at, size); return; }
        ulong cur = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(at));
        ulong v = Fuzz.Pick(ref rng, 10) switch
        {
            0 => 0, 1 => ulong.MaxValue, 2 => 1UL << 63, 3 => 1UL << 32, 4 => 1UL << 40, 5 => cur + 1, 6 => cur - 1, 7 => cur * 2, 8 => (ulong)int.MaxValue + 1, _ => rng.NextUInt64(),
        };
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), v);
    }

    public override FuzzCase Hostile(ref SplitMix64 rng, string field)
    {
        byte[] b = Valid(ref rng);
        var (kv, tensors) = Walk(b);
        switch (field)
        {
            case "version": Fuzz.Smash(ref rng, b, 4, 4); break;
            case "tensor_count": Smash64(ref rng, b, 8, 8); break;
            case "kv_count": Smash64(ref rng, b, 16, 8); break;
            case "kv_field": { var (at, size) = Fuzz.Pick(ref rng, kv); Smash64(ref rng, b, at, size); break; }
            case "tensor_field": { var (at, size) = Fuzz.Pick(ref rng, tensors); Smash64(ref rng, b, at, size); break; }
            case "fields":
                for (int e = 2 + Fuzz.Pick(ref rng, 3); e > 0; e--)
                {
                    var (at, size) = Fuzz.Pick(ref rng, Fuzz.Pick(ref rng, 2) == 0 ? kv : tensors);
                    Smash64(ref rng, b, at, size);
                }
                break;
            default: b = b.AsSpan(0, Fuzz.Pick(ref rng, b.Length)).ToArray(); break;
        }
        return new FuzzCase(Name, "hostile:" + field, b);
    }

    public override void Open(string path, int arg)
    {
        var w = GgufModel.Load(path, out var vocab);
        if (vocab != null)
        {
            var t = vocab.CreateTokenizer();
            _ = t.Decode(t.Encode("hello world", bos: true, eos: false));
        }
        _ = w.Config.ParameterCount;
    }
}

/// <summary>Hugging Face config.json: every leaf, deleted keys and nesting bombs, read with a tiny checkpoint of the valid shape beside it.</summary>
internal sealed class HfConfigFuzz : FuzzReader
{
    private static readonly SyntheticModel.Shape Tiny = new("llama", 16, 24, 1, 2, 1, 300, 64, 10000, 1e-5, false);
    private static readonly Lazy<string> Checkpoint = new(() =>
    {
        string dir = Path.Combine(Path.GetTempPath(), $"gosset-fuzz-hf-{Environment.ProcessId}");
        SyntheticModel.Write(Tiny, dir, IO.SafeTensorsDType.F32, 7);
        return dir;
    });

    public override string Name => "hf-config";
    public override string Extension => ".json";
    public override IReadOnlyList<string> Fields { get; } = ["leaf", "leaves", "delete", "depth", "not_json"];

    public override byte[] Valid(ref SplitMix64 rng) => Encoding.UTF8.GetBytes(SyntheticModel.Config(Tiny).ToJsonString());

    public override FuzzCase Hostile(ref SplitMix64 rng, string field)
    {
        var o = SyntheticModel.Config(Tiny);
        string text;
        switch (field)
        {
            case "leaf":
            case "leaves":
                TinyModel.EditLeaves(ref rng, TinyModel.Leaves(o), field == "leaf" ? 1 : 2 + Fuzz.Pick(ref rng, 3));
                text = o.ToJsonString();
                break;
            case "delete":
                o.Remove(Fuzz.Pick(ref rng, o.Select(kv => kv.Key).ToList()));
                text = o.ToJsonString();
                break;
            case "depth":
                text = TinyModel.DepthBomb(ref rng, "hidden_size");
                break;
            default:
                text = Fuzz.Pick(ref rng, ["", "[]", "null", "{", "{\"hidden_size\": 16,}", "\uFEFF{}"]);
                break;
        }
        return new FuzzCase(Name, "hostile:" + field, Encoding.UTF8.GetBytes(text));
    }

    /// <summary>A checkpoint folder: the valid tiny checkpoint with <paramref name="config"/> as its config.json.</summary>
    public static void WriteFolder(string dir, byte[] config)
    {
        Directory.CreateDirectory(dir);
        foreach (string f in Directory.GetFiles(Checkpoint.Value))
            if (Path.GetFileName(f) != "config.json") File.Copy(f, Path.Combine(dir, Path.GetFileName(f)), overwrite: true);
        File.WriteAllBytes(Path.Combine(dir, "config.json"), config);
    }

    public override void Open(string path, int arg)
    {
        string dir = path + ".d"; // a folder per case
        WriteFolder(dir, File.ReadAllBytes(path));
        _ = HuggingFaceLoader.Load(dir);
        _ = HuggingFaceLoader.StopIds(dir);
    }
}

/// <summary>Hugging Face tokenizer.json: every leaf, nesting bombs, and the vocabulary size it is loaded with.</summary>
internal sealed class HfTokenizerFuzz : FuzzReader
{
    private const int Vocab = 300;

    public override string Name => "hf-tokenizer";
    public override string Extension => ".json";
    public override IReadOnlyList<string> Fields { get; } = ["leaf", "leaves", "depth", "vocab_arg", "not_json"];

    public override byte[] Valid(ref SplitMix64 rng) => Encoding.UTF8.GetBytes(SyntheticModel.TokenizerJson(Vocab));

    public override int DefaultArg(byte[] valid) => Vocab;

    public override FuzzCase Hostile(ref SplitMix64 rng, string field)
    {
        var o = JsonNode.Parse(SyntheticModel.TokenizerJson(Vocab))!;
        string text = o.ToJsonString();
        int arg = Vocab;
        switch (field)
        {
            case "leaf":
            case "leaves":
                // the vocabulary map has most of the leaves: keep a quarter of them so the other fields get hit too
                var leaves = new List<(JsonNode Parent, object Key)>();
                foreach (var l in TinyModel.Leaves(o))
                    if (!(l.Parent is JsonObject vp && vp.Parent is JsonObject m && m.ContainsKey("vocab") && ReferenceEquals(m["vocab"], vp)) || Fuzz.Pick(ref rng, 4) == 0)
                        leaves.Add(l);
                TinyModel.EditLeaves(ref rng, leaves, field == "leaf" ? 1 : 2 + Fuzz.Pick(ref rng, 3));
                text = o.ToJsonString();
                break;
            case "depth":
                text = TinyModel.DepthBomb(ref rng, "model");
                break;
            case "vocab_arg": arg = Fuzz.HostileInt(ref rng, Vocab); break;
            default: text = Fuzz.Pick(ref rng, ["", "[]", "null", "{", "{\"model\":{}}", "{\"model\":{\"type\":\"BPE\"}}"]); break;
        }
        return new FuzzCase(Name, "hostile:" + field, Encoding.UTF8.GetBytes(text), arg);
    }

    public override void Open(string path, int arg)
    {
        var t = Llm.Tokenization.HfJsonTokenizer.Load(path, arg);
        _ = t.Decode(t.Encode("hello world, é ☃", bos: true, eos: false));
    }
}
