using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Gosset.Llm.Tokenization;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> with a byte-level BPE model (GPT-2, Llama 3, Qwen2). Added tokens are
/// split out first (longest match), the rest is cut by the pre-tokenizer's regex (a <c>Split</c> with
/// <c>Isolated</c> behaviour, or <c>ByteLevel</c>'s own GPT-2 regex), and each piece is merged by
/// Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> in byte-level mode. <c>ignore_merges</c> (Llama 3) is honoured:
/// a piece that is itself in the vocabulary becomes that token. Other normalizers, pre-tokenizers and models are refused.
/// </summary>
public sealed class HfJsonTokenizer : ITextTokenizer
{
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    private static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly Dictionary<char, byte> CharToByte = Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _pieces;
    private readonly bool[] _special;
    private readonly Regex _split;
    private readonly Regex? _specials;
    private readonly Dictionary<string, int> _added;
    private readonly bool _ignoreMerges, _prefixSpace, _nfc;

    private HfJsonTokenizer(BpeTokenizer bpe, Dictionary<string, int> vocab, Dictionary<string, int> added, Regex split,
        bool ignoreMerges, bool prefixSpace, bool nfc, int bos, int eos)
    {
        _bpe = bpe; _vocab = vocab; _added = added; _split = split;
        _ignoreMerges = ignoreMerges; _prefixSpace = prefixSpace; _nfc = nfc;
        int n = Math.Max(vocab.Count == 0 ? 0 : vocab.Values.Max() + 1, added.Count == 0 ? 0 : added.Values.Max() + 1);
        _pieces = new string?[n];
        _special = new bool[n];
        foreach (var (p, id) in vocab) _pieces[id] = p;
        foreach (var (p, id) in added) { _pieces[id] = p; _special[id] = true; }
        if (added.Count > 0)
            _specials = new Regex(string.Join("|", added.Keys.OrderByDescending(k => k.Length).Select(Regex.Escape)), RegexOptions.CultureInvariant);
        BosId = bos;
        EosId = eos;
    }

    /// <summary>Loads a tokenizer.json file, checking that its ids fit the model's vocabulary.</summary>
    public static HfJsonTokenizer Load(string path, int vocabSize = 0) => FromBytes(File.ReadAllBytes(path), path, vocabSize);

    /// <summary>Parses tokenizer.json bytes; <paramref name="path"/> names the source in errors.</summary>
    /// <exception cref="InvalidFileException">Not a byte-level BPE tokenizer.json, or its ids exceed the vocabulary.</exception>
    public static HfJsonTokenizer FromBytes(byte[] bytes, string path, int vocabSize = 0)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        JsonObject root;
        try { root = JsonNode.Parse(bytes, documentOptions: new JsonDocumentOptions { MaxDepth = 64 }) as JsonObject ?? throw new JsonException("not an object"); }
        catch (JsonException e) { throw new InvalidFileException(path, "not a tokenizer.json: " + e.Message); }
        Exception Bad(string why) => new InvalidFileException(path, why);
        try
        {
            if (root["model"] is not JsonObject model) throw Bad("no \"model\"");
            string mtype = model["type"]?.GetValue<string>() ?? "BPE";
            if (mtype != "BPE") throw Bad($"model type \"{mtype}\" is not supported (only byte-level BPE)");
            if (model["vocab"] is not JsonObject vocabJson) throw Bad("model.vocab is missing");
            var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var (k, v) in vocabJson) vocab[k] = v!.GetValue<int>();
            var merges = new List<string>();
            if (model["merges"] is JsonArray ma)
                foreach (var m in ma)
                    merges.Add(m switch
                    {
                        JsonArray pair when pair.Count == 2 => pair[0]!.GetValue<string>() + " " + pair[1]!.GetValue<string>(),
                        JsonValue s => s.GetValue<string>(),
                        _ => throw Bad("model.merges holds an entry that is neither \"a b\" nor [a, b]"),
                    });
            bool ignoreMerges = model["ignore_merges"] is JsonValue im && im.GetValue<bool>();
            var added = new Dictionary<string, int>(StringComparer.Ordinal);
            if (root["added_tokens"] is JsonArray at)
                foreach (var t in at)
                    if (t is JsonObject o) added[o["content"]!.GetValue<string>()] = o["id"]!.GetValue<int>();
            bool nfc = false;
            if (root["normalizer"] is JsonObject norm)
            {
                string nt = norm["type"]?.GetValue<string>() ?? "";
                if (nt == "NFC") nfc = true;
                else throw Bad($"normalizer \"{nt}\" is not supported (none or NFC)");
            }
            string? pattern = null;
            bool byteLevel = false, prefixSpace = false;
            void Pre(JsonObject p)
            {
                string type = p["type"]?.GetValue<string>() ?? "";
                switch (type)
                {
                    case "Sequence":
                        foreach (var x in p["pretokenizers"] as JsonArray ?? []) if (x is JsonObject xo) Pre(xo);
                        break;
                    case "Split":
                        if (pattern is not null) throw Bad("more than one Split pre-tokenizer is not supported");
                        pattern = (p["pattern"] as JsonObject)?["Regex"]?.GetValue<string>() ?? throw Bad("Split pre-tokenizer without a Regex pattern");
                        string behavior = p["behavior"]?.GetValue<string>() ?? "Isolated";
                        if (behavior != "Isolated" || p["invert"] is JsonValue iv && iv.GetValue<bool>())
                            throw Bad($"Split behaviour \"{behavior}\" (or invert) is not supported (only Isolated)");
                        break;
                    case "ByteLevel":
                        byteLevel = true;
                        prefixSpace = p["add_prefix_space"] is JsonValue ap && ap.GetValue<bool>();
                        if (p["use_regex"] is not JsonValue ur || ur.GetValue<bool>())
                        {
                            if (pattern is not null) throw Bad("ByteLevel use_regex after a Split is not supported");
                            pattern = Gpt2Pattern;
                        }
                        break;
                    default:
                        throw Bad($"pre-tokenizer \"{type}\" is not supported (Split, ByteLevel, Sequence)");
                }
            }
            if (root["pre_tokenizer"] is JsonObject pre) Pre(pre);
            if (!byteLevel) throw Bad("only byte-level BPE tokenizers are supported (no ByteLevel pre-tokenizer found)");
            int bos = -1;
            void Post(JsonObject p)
            {
                string type = p["type"]?.GetValue<string>() ?? "";
                if (type == "Sequence") foreach (var x in p["processors"] as JsonArray ?? []) { if (x is JsonObject xo) Post(xo); }
                else if (type == "TemplateProcessing" && p["single"] is JsonArray single && single.Count > 0
                    && single[0] is JsonObject first && first["SpecialToken"] is JsonObject st)
                {
                    string id = st["id"]!.GetValue<string>();
                    bos = added.TryGetValue(id, out int b) ? b : vocab.TryGetValue(id, out b) ? b : throw Bad($"post_processor names an unknown token {id}");
                }
            }
            if (root["post_processor"] is JsonObject post) Post(post);
            int Find(params string[] names)
            {
                foreach (var n in names) if (added.TryGetValue(n, out int id) || vocab.TryGetValue(n, out id)) return id;
                return -1;
            }
            if (bos < 0) bos = Find("<|begin_of_text|>", "<s>", "<|endoftext|>");
            int eos = Find("<|end_of_text|>", "<|endoftext|>", "</s>", "<|im_end|>", "<|eot_id|>");
            if (bos < 0) throw Bad("no beginning-of-sequence token (post_processor template or <|begin_of_text|>, <s>, <|endoftext|>)");
            if (eos < 0) eos = bos;
            // ids index the piece table: check them before it is allocated (a negative or huge id is hostile)
            int limit = vocabSize > 0 ? vocabSize : 1 << 22;
            foreach (int id in vocab.Values.Concat(added.Values))
                if (id < 0 || id >= limit) throw Bad($"token id {id} is outside [0, {limit}) (the model's vocabulary)");
            var options = new BpeOptions(vocab) { Merges = merges, ByteLevel = true };
            var bpe = BpeTokenizer.Create(options);
            var tok = new HfJsonTokenizer(bpe, vocab, added, new Regex(pattern ?? Gpt2Pattern, RegexOptions.CultureInvariant),
                ignoreMerges, prefixSpace, nfc, bos, eos);
            if (vocabSize > 0 && tok.VocabSize > vocabSize)
                throw Bad($"the tokenizer has ids up to {tok.VocabSize - 1} but the model has a vocabulary of {vocabSize}: they do not match");
            return tok;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException or NullReferenceException or KeyNotFoundException)
        {
            throw Bad("not a supported tokenizer.json: " + e.Message);
        }
    }

    /// <summary>Ids the tokenizer can produce: the largest id + 1 (the model's vocabulary may be padded beyond it).</summary>
    public int VocabSize => _pieces.Length;
    /// <inheritdoc/>
    public int BosId { get; }
    /// <inheritdoc/>
    public int EosId { get; }

    /// <inheritdoc/>
    public int[] Encode(string text, bool bos, bool eos)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (_nfc) text = text.Normalize(NormalizationForm.FormC);
        var ids = new List<int>();
        if (bos) ids.Add(BosId);
        int pos = 0;
        if (_specials is not null)
            foreach (Match m in _specials.Matches(text))
            {
                EncodeOrdinary(text.AsSpan(pos, m.Index - pos), ids, pos == 0);
                ids.Add(_added[m.Value]);
                pos = m.Index + m.Length;
            }
        EncodeOrdinary(text.AsSpan(pos), ids, pos == 0);
        if (eos) ids.Add(EosId);
        return ids.ToArray();
    }

    private void EncodeOrdinary(ReadOnlySpan<char> span, List<int> ids, bool start)
    {
        if (span.IsEmpty) return;
        string text = _prefixSpace && start && span[0] != ' ' ? " " + span.ToString() : span.ToString();
        int last = 0;
        foreach (Match m in _split.Matches(text))
        {
            if (m.Index > last) Piece(text.AsSpan(last, m.Index - last), ids); // gaps are pieces too (Isolated)
            if (m.Length > 0) Piece(text.AsSpan(m.Index, m.Length), ids);
            last = m.Index + m.Length;
        }
        if (last < text.Length) Piece(text.AsSpan(last), ids);
    }

    private void Piece(ReadOnlySpan<char> piece, List<int> ids)
    {
        if (_ignoreMerges)
        {
            var bytes = Encoding.UTF8.GetBytes(piece.ToString());
            var sb = new StringBuilder(bytes.Length);
            foreach (byte b in bytes) sb.Append(ByteToChar[b]);
            if (_vocab.TryGetValue(sb.ToString(), out int id)) { ids.Add(id); return; }
        }
        ids.AddRange(_bpe.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false));
    }

    /// <inheritdoc/>
    public int[] Encode(ReadOnlySpan<byte> utf8, bool bos, bool eos) => Encode(Encoding.UTF8.GetString(utf8), bos, eos);

    /// <inheritdoc/>
    public byte[] DecodePiece(int previous, int token)
    {
        if ((uint)token >= (uint)_pieces.Length || _pieces[token] is not string p) return [];
        if (_special[token]) return token == BosId || token == EosId ? [] : Encoding.UTF8.GetBytes(p);
        var r = new List<byte>(p.Length);
        foreach (char ch in p)
            if (CharToByte.TryGetValue(ch, out byte b)) r.Add(b);
            else r.AddRange(Encoding.UTF8.GetBytes(ch.ToString()));
        return r.ToArray();
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>();
        int prev = BosId;
        foreach (int id in ids) { bytes.AddRange(DecodePiece(prev, id)); prev = id; }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>GPT-2's reversible byte → printable character map: printable Latin-1 bytes map to themselves, the rest to 256 + n.</summary>
    internal static char[] BuildByteToChar()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }

    /// <summary>The byte-level form of a byte (what vocabularies store): e.g. space → 'Ġ'.</summary>
    public static char ByteChar(byte b) => ByteToChar[b];
}
