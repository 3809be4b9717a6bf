using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gosset.Llm.Tokenization;

namespace Gosset.Llm.Loading;

/// <summary>
/// The tokenizer stored in a GGUF file (<c>tokenizer.ggml.*</c>): a SentencePiece-like vocabulary
/// (<c>"llama"</c>: pieces with scores, '▁' for spaces, <c>&lt;0xHH&gt;</c> byte pieces) or a byte-level BPE one
/// (<c>"gpt2"</c>: pieces and merges).
/// </summary>
/// <param name="Model">tokenizer.ggml.model: "llama" or "gpt2".</param>
/// <param name="Tokens">Piece text per id.</param>
/// <param name="Scores">Merge scores per id (SentencePiece), or null.</param>
/// <param name="TokenTypes">Per id: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte; or null.</param>
/// <param name="Merges">BPE merges ("a b"), or null.</param>
/// <param name="BosId">Beginning-of-sequence id.</param>
/// <param name="EosId">End-of-sequence id.</param>
/// <param name="UnknownId">Unknown-token id, or null.</param>
/// <param name="Pre">tokenizer.ggml.pre (the BPE pre-tokenizer name), or null.</param>
public sealed record GgufVocabulary(string Model, string[] Tokens, float[]? Scores, int[]? TokenTypes, string[]? Merges,
    int BosId, int EosId, int? UnknownId, string? Pre)
{
    /// <summary>Token type ids as GGUF numbers them.</summary>
    public const int Normal = 1, Unknown = 2, Control = 3, Byte = 6;

    /// <summary>Reads the tokenizer metadata of a GGUF file, or returns null when it has none.</summary>
    public static GgufVocabulary? Read(GgufFile f)
    {
        ArgumentNullException.ThrowIfNull(f);
        string? model = f.GetString("tokenizer.ggml.model");
        if (model is null) return null;
        if (f.Metadata.GetValueOrDefault("tokenizer.ggml.tokens") is not string[] tokens)
            throw new InvalidFileException(f.Path, "tokenizer.ggml.tokens is missing or not an array of strings");
        float[]? scores = f.Metadata.GetValueOrDefault("tokenizer.ggml.scores") as float[];
        int[]? types = f.Metadata.GetValueOrDefault("tokenizer.ggml.token_type") as int[];
        string[]? merges = f.Metadata.GetValueOrDefault("tokenizer.ggml.merges") as string[];
        if (scores is not null && scores.Length != tokens.Length) throw new InvalidFileException(f.Path, $"{scores.Length} scores for {tokens.Length} tokens");
        if (types is not null && types.Length != tokens.Length) throw new InvalidFileException(f.Path, $"{types.Length} token types for {tokens.Length} tokens");
        int Id(string key, int fallback)
        {
            long v = f.GetInt(key) ?? fallback;
            return v >= 0 && v < tokens.Length ? (int)v : throw new InvalidFileException(f.Path, $"{key} = {v} is outside the vocabulary of {tokens.Length}");
        }
        int? unk = f.GetInt("tokenizer.ggml.unknown_token_id") is long u ? Id("tokenizer.ggml.unknown_token_id", 0) : null;
        return new GgufVocabulary(model, tokens, scores, types, merges,
            Id("tokenizer.ggml.bos_token_id", 1), Id("tokenizer.ggml.eos_token_id", 2), unk, f.GetString("tokenizer.ggml.pre"));
    }

    /// <summary>The vocabulary of a llama2.c tokenizer (SentencePiece export: spaces as ' ', bytes as &lt;0xHH&gt;).</summary>
    public static GgufVocabulary FromLlama2c(Llama2cTokenizer tok)
    {
        ArgumentNullException.ThrowIfNull(tok);
        int n = tok.VocabSize;
        var tokens = new string[n];
        var scores = new float[n];
        var types = new int[n];
        for (int i = 0; i < n; i++)
        {
            string piece = Encoding.UTF8.GetString(tok.Piece(i));
            tokens[i] = piece.Replace(' ', '\u2581');
            scores[i] = tok.Score(i);
            types[i] = i == 0 ? Unknown
                : i == tok.BosId || i == tok.EosId ? Control
                : piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>' ? Byte
                : Normal;
        }
        return new GgufVocabulary("llama", tokens, scores, types, null, tok.BosId, tok.EosId, 0, null);
    }

    /// <summary>The vocabulary of any tokenizer Gosset can convert (llama2.c today; others give a clear error).</summary>
    public static GgufVocabulary FromTokenizer(ITextTokenizer tok) => tok switch
    {
        Llama2cTokenizer l => FromLlama2c(l),
        GgufTextTokenizer g => g.Vocabulary,
        null => throw new ArgumentNullException(nameof(tok)),
        _ => throw new GossetException($"writing a {tok.GetType().Name} into GGUF is not supported (llama2.c and GGUF tokenizers are)"),
    };

    /// <summary>
    /// The vocabulary of a tokenizer file next to a model: llama2.c <c>.bin</c> or a byte-level BPE <c>tokenizer.json</c>
    /// (written as a GGUF "gpt2" vocabulary, padded with unused pieces up to <paramref name="vocabSize"/>).
    /// </summary>
    public static GgufVocabulary FromFile(string path, int vocabSize)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return FromTokenizerJson(path, vocabSize);
        if (path.EndsWith(".model", StringComparison.OrdinalIgnoreCase))
            throw new GossetException($"{path}: writing a SentencePiece .model into GGUF is not supported (llama2.c .bin and tokenizer.json are)");
        return FromLlama2c(Llama2cTokenizer.Load(path, vocabSize));
    }

    private static GgufVocabulary FromTokenizerJson(string path, int vocabSize)
    {
        var tok = HfJsonTokenizer.Load(path, vocabSize); // validates the file and finds BOS / EOS
        var root = JsonNode.Parse(File.ReadAllBytes(path), documentOptions: new JsonDocumentOptions { MaxDepth = 64 })!.AsObject();
        var model = root["model"]!.AsObject();
        var tokens = new string?[vocabSize];
        var types = new int[vocabSize];
        foreach (var (k, v) in model["vocab"]!.AsObject()) { int id = v!.GetValue<int>(); tokens[id] = k; types[id] = Normal; }
        if (root["added_tokens"] is JsonArray at)
            foreach (var t in at.OfType<JsonObject>())
            {
                int id = t["id"]!.GetValue<int>();
                tokens[id] = t["content"]!.GetValue<string>();
                types[id] = t["special"] is JsonValue sp && sp.GetValue<bool>() ? Control : 4;
            }
        for (int i = 0; i < vocabSize; i++)
            if (tokens[i] is null) { tokens[i] = $"[PAD{i}]"; types[i] = 5; }
        var merges = (model["merges"] as JsonArray ?? []).Select(m => m switch
        {
            JsonArray pair => pair[0]!.GetValue<string>() + " " + pair[1]!.GetValue<string>(),
            _ => m!.GetValue<string>(),
        }).ToArray();
        // Name the pre-tokenizer for llama.cpp when its regex is one llama.cpp knows by name.
        string? regex = FindSplitRegex(root["pre_tokenizer"]);
        string pre = regex == Llama3Pattern ? "llama-bpe" : regex == Qwen2Pattern ? "qwen2" : "default";
        return new GgufVocabulary("gpt2", tokens!, null, types, merges, tok.BosId, tok.EosId, null, pre);
    }

    private static string? FindSplitRegex(JsonNode? pre) => pre switch
    {
        JsonObject o when o["type"]?.GetValue<string>() == "Split" => (o["pattern"] as JsonObject)?["Regex"]?.GetValue<string>(),
        JsonObject o when o["pretokenizers"] is JsonArray a => a.Select(FindSplitRegex).FirstOrDefault(r => r is not null),
        _ => null,
    };

    /// <summary>Placeholder pieces (unk, BOS, EOS, the 256 bytes, then numbered pieces) for models whose tokenizer cannot be converted.</summary>
    public static GgufVocabulary Placeholder(int size)
    {
        if (size < 259) throw new GossetException($"a placeholder vocabulary needs at least 259 ids, the model has {size}");
        var tokens = new string[size];
        var types = new int[size];
        var scores = new float[size];
        tokens[0] = "<unk>"; tokens[1] = "<s>"; tokens[2] = "</s>";
        types[0] = Unknown; types[1] = types[2] = Control;
        for (int b = 0; b < 256; b++) { tokens[3 + b] = $"<0x{b:X2}>"; types[3 + b] = Byte; }
        for (int i = 259; i < size; i++) { tokens[i] = "\u2581p" + i.ToString(System.Globalization.CultureInfo.InvariantCulture); types[i] = Normal; scores[i] = -i; }
        return new GgufVocabulary("llama", tokens, scores, types, null, 1, 2, 0, null);
    }

    /// <summary>A tokenizer that encodes and decodes with this vocabulary.</summary>
    public ITextTokenizer CreateTokenizer()
    {
        if (Model == "gpt2") return new GgufTextTokenizer(Gpt2Tokenizer(), this);
        if (Model != "llama")
            throw new GossetException($"GGUF tokenizer model \"{Model}\" is not supported for encoding (\"llama\" is); pass --tokenizer");
        if (Scores is null) throw new GossetException("GGUF \"llama\" tokenizer without tokenizer.ggml.scores");
        // The llama2.c merge algorithm is SentencePiece's BPE with byte fallback at id byte + 3.
        if (Tokens.Length < 259 || BosId != 1 || EosId != 2 || Tokens[3] != "<0x00>" || Tokens[258] != "<0xFF>")
            throw new GossetException("GGUF \"llama\" tokenizer without the Llama layout (BOS 1, EOS 2, bytes at 3..258) is not supported");
        var pieces = Tokens.Select(t => Encoding.UTF8.GetBytes(t.Replace('\u2581', ' '))).ToArray();
        return new GgufTextTokenizer(new Llama2cTokenizer(pieces, Scores), this);
    }

    // Pre-tokenizer patterns of the BPE vocabularies llama.cpp names in tokenizer.ggml.pre.
    private const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    // A "gpt2" vocabulary runs through the tokenizer.json reader: the same byte-level BPE, rebuilt as its JSON.
    private HfJsonTokenizer Gpt2Tokenizer()
    {
        if (Merges is null) throw new GossetException("GGUF \"gpt2\" tokenizer without tokenizer.ggml.merges");
        var vocab = new JsonObject();
        var added = new JsonArray();
        for (int i = 0; i < Tokens.Length; i++)
        {
            int type = TokenTypes?[i] ?? Normal;
            if (type is Control or 4) added.Add(new JsonObject { ["id"] = i, ["content"] = Tokens[i], ["special"] = type == Control });
            else if (type != 5 && !vocab.ContainsKey(Tokens[i])) vocab[Tokens[i]] = i;
        }
        string? pattern = Pre switch { "llama-bpe" or "llama3" => Llama3Pattern, "qwen2" => Qwen2Pattern, _ => null };
        JsonNode pre = pattern is null
            ? new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true }
            : new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = pattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
            };
        var root = new JsonObject
        {
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray(Merges.Select(m => (JsonNode?)m).ToArray()) },
            ["added_tokens"] = added,
            ["pre_tokenizer"] = pre,
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = Tokens[BosId] } }),
            },
        };
        return HfJsonTokenizer.FromBytes(Encoding.UTF8.GetBytes(root.ToJsonString()), "GGUF tokenizer", Tokens.Length);
    }
}

/// <summary>A tokenizer read from a GGUF file; remembers its vocabulary so it can be written back.</summary>
public sealed class GgufTextTokenizer : ITextTokenizer
{
    private readonly ITextTokenizer _inner;

    internal GgufTextTokenizer(ITextTokenizer inner, GgufVocabulary vocabulary)
    {
        _inner = inner;
        Vocabulary = vocabulary;
    }

    /// <summary>The GGUF vocabulary this tokenizer came from.</summary>
    public GgufVocabulary Vocabulary { get; }
    /// <inheritdoc/>
    public int VocabSize => _inner.VocabSize;
    /// <inheritdoc/>
    public int BosId => _inner.BosId;
    /// <inheritdoc/>
    public int EosId => _inner.EosId;
    /// <inheritdoc/>
    public int[] Encode(string text, bool bos, bool eos) => _inner.Encode(text, bos, eos);
    /// <inheritdoc/>
    public int[] Encode(ReadOnlySpan<byte> utf8, bool bos, bool eos) => _inner.Encode(utf8, bos, eos);
    /// <inheritdoc/>
    public byte[] DecodePiece(int previous, int token) => _inner.DecodePiece(previous, token);
    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids) => _inner.Decode(ids);
}
