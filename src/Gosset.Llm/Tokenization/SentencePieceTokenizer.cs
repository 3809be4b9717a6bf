using System.Text;
using Microsoft.ML.Tokenizers;

namespace Gosset.Llm.Tokenization;

/// <summary>A SentencePiece (Llama / HF <c>tokenizer.model</c>) tokenizer through Microsoft.ML.Tokenizers.</summary>
public sealed class SentencePieceTokenizer : ITextTokenizer
{
    private readonly LlamaTokenizer _tok;
    private readonly string[] _pieces;
    // Set when the model asks for remove_extra_whitespaces: see Encode.
    private readonly SentencePieceNormalizer? _afterSpaceRemoval;

    private SentencePieceTokenizer(LlamaTokenizer tok)
    {
        _tok = tok;
        if (tok.Normalizer is SentencePieceNormalizer { RemoveExtraWhiteSpaces: true } norm)
            _afterSpaceRemoval = new SentencePieceNormalizer(removeExtraWhiteSpaces: false, norm.AddDummyPrefix, norm.EscapeWhiteSpaces, norm.TreatWhitespaceAsSuffix, norm.SpecialTokens);
        int n = tok.Vocabulary.Values.Max() + 1;
        _pieces = new string[n];
        foreach (var (piece, id) in tok.Vocabulary) _pieces[id] = piece;
    }

    /// <summary>Loads a SentencePiece model file.</summary>
    public static SentencePieceTokenizer Load(string path)
    {
        using var s = File.OpenRead(path);
        return Load(s, path);
    }

    /// <summary>Reads a SentencePiece model from a stream (<paramref name="path"/> names it in errors), checking its vocabulary size when given.</summary>
    /// <exception cref="InvalidFileException">The stream is not a SentencePiece model this reader supports.</exception>
    public static SentencePieceTokenizer Load(Stream s, string path, int vocabSize = 0)
    {
        ArgumentNullException.ThrowIfNull(s);
        // The whole model is read and its framing checked before the protobuf library allocates anything for it.
        byte[] bytes = SentencePieceModelCheck.ReadBounded(s, path);
        SentencePieceModelCheck.Check(bytes, path);
        SentencePieceTokenizer t;
        try
        {
            t = new SentencePieceTokenizer(LlamaTokenizer.Create(new MemoryStream(bytes, writable: false), addBeginOfSentence: false, addEndOfSentence: false));
        }
        catch (Exception e) // the bytes are in memory: nothing here is an I/O error (protobuf's parse errors derive from IOException)
        {
            throw new InvalidFileException(path, "not a SentencePiece model: " + e.Message);
        }
        if (vocabSize > 0 && t.VocabSize != vocabSize)
            throw new InvalidFileException(path, $"the tokenizer has {t.VocabSize} tokens but the model has a vocabulary of {vocabSize}: they do not match");
        return t;
    }

    /// <inheritdoc/>
    public int VocabSize => _pieces.Length;
    /// <inheritdoc/>
    public int BosId => _tok.BeginningOfSentenceId;
    /// <inheritdoc/>
    public int EosId => _tok.EndOfSentenceId;

    /// <inheritdoc/>
    public int[] Encode(string text, bool bos, bool eos)
    {
        ArgumentNullException.ThrowIfNull(text);
        bool normalize = true;
        if (_afterSpaceRemoval != null)
        {
            // Microsoft.ML.Tokenizers 2.0.1 SentencePieceNormalizer with remove_extra_whitespaces turns a text that is a
            // single character after trimming spaces ("x", " x ") into "", so the character (and BOS) are lost. Trim
            // and collapse the spaces here and normalize the rest with the same settings minus the space removal (the
            // library's string normalization applies no precompiled charsmap either, so nothing else changes).
            text = _afterSpaceRemoval.Normalize(RemoveExtraSpaces(text));
            normalize = false;
        }
        if (text.Length == 0)
        {
            var ids = new List<int>(2);
            if (bos) ids.Add(BosId);
            if (eos) ids.Add(EosId);
            return ids.ToArray();
        }
        int[] result = _tok.EncodeToIds(text, bos, eos, considerPreTokenization: true, considerNormalization: normalize).ToArray();
        // The library's byte fallback computes ids from a fixed offset; a model that lacks some byte pieces then yields
        // ids past its vocabulary (a fuzz finding, gosset fuzz --seed 1): refused here, never passed on.
        foreach (int id in result)
            if ((uint)id >= (uint)_pieces.Length)
                throw new GossetException($"the SentencePiece model produced token id {id}, outside its {_pieces.Length} pieces (byte fallback without the byte pieces?)");
        return result;
    }

    /// <summary>SentencePiece's remove_extra_whitespaces: drops leading and trailing spaces and collapses runs of spaces to one.</summary>
    private static string RemoveExtraSpaces(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (char c in text)
            if (c != ' ' || (sb.Length > 0 && sb[^1] != ' ')) sb.Append(c);
        if (sb.Length > 0 && sb[^1] == ' ') sb.Length--;
        return sb.ToString();
    }

    /// <inheritdoc/>
    public int[] Encode(ReadOnlySpan<byte> utf8, bool bos, bool eos) => Encode(Encoding.UTF8.GetString(utf8), bos, eos);

    /// <inheritdoc/>
    public byte[] DecodePiece(int previous, int token)
    {
        if ((uint)token >= (uint)_pieces.Length) return [];
        string p = _pieces[token] ?? "";
        // a byte piece <0xHH>; a model may hold a look-alike that is not hex (a fuzz finding): that one is text
        if (p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) && p[5] == '>'
            && byte.TryParse(p.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out byte b))
            return [b];
        p = p.Replace('\u2581', ' ');
        if (previous == BosId && p.StartsWith(' ')) p = p[1..];
        return Encoding.UTF8.GetBytes(p);
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids) => _tok.Decode(ids.ToArray()) ?? "";
}

/// <summary>
/// Checks a SentencePiece <c>ModelProto</c> at the wire level before Microsoft.ML.Tokenizers parses it: every varint and
/// length within the bytes, only the wire types of the schema (no groups), nesting no deeper than the schema
/// (ModelProto → message → message), pieces with a known type and a finite score, special ids that name a piece, and a
/// model type the library implements. What passes is a well-framed model whose size bounds the library's work.
/// </summary>
public static class SentencePieceModelCheck
{
    /// <summary>Largest model file read (real ones are under 5 MB).</summary>
    public const int MaxBytes = 64 << 20;

    /// <summary>Reads the stream, refusing one longer than <see cref="MaxBytes"/> before buffering it.</summary>
    public static byte[] ReadBounded(Stream s, string path)
    {
        if (s.CanSeek && s.Length - s.Position > MaxBytes) throw Bad(path, $"{s.Length - s.Position} bytes is larger than a SentencePiece model can be ({MaxBytes} bytes)");
        var ms = new MemoryStream();
        var buf = new byte[81920];
        int n;
        while ((n = s.Read(buf, 0, buf.Length)) > 0)
        {
            if (ms.Length + n > MaxBytes) throw Bad(path, $"larger than a SentencePiece model can be ({MaxBytes} bytes)");
            ms.Write(buf, 0, n);
        }
        return ms.ToArray();
    }

    private const int Varint = 0, Fixed64 = 1, Len = 2, Fixed32 = 5;

    /// <summary>Throws <see cref="InvalidFileException"/> unless <paramref name="b"/> is a well-framed model this reader supports; returns the piece count.</summary>
    public static int Check(ReadOnlySpan<byte> b, string path)
    {
        int pieces = 0, p = 0;
        long unk = 0, bos = 1, eos = 2, pad = -1, modelType = 1; // the schema's defaults
        while (p < b.Length)
        {
            var (field, wire) = Key(b, ref p, path);
            if (field is >= 1 and <= 5) Expect(wire, Len, field, path);
            if (wire != Len) { Skip(b, ref p, wire, path); continue; }
            var m = Slice(b, ref p, path);
            switch (field)
            {
                case 1: CheckPiece(m, pieces, path); pieces++; break;
                case 2:
                    for (int q = 0; q < m.Length;)
                    {
                        var (f, w) = Key(m, ref q, path);
                        if (f is 3 or 40 or 41 or 42 or 43)
                        {
                            Expect(w, Varint, f, path);
                            long v = Int32Field(m, ref q, f, path);
                            if (f == 3) modelType = v; else if (f == 40) unk = v; else if (f == 41) bos = v; else if (f == 42) eos = v; else pad = v;
                        }
                        else Skip(m, ref q, w, path);
                    }
                    break;
                case 4: // SelfTestData { repeated Sample samples = 1; } with Sample { string input = 1; string expected = 2; }
                    for (int q = 0; q < m.Length;)
                    {
                        var (f, w) = Key(m, ref q, path);
                        if (f == 1) { Expect(w, Len, f, path); Flat(Slice(m, ref q, path), path); }
                        else Skip(m, ref q, w, path);
                    }
                    break;
                default: Flat(m, path); break; // normalizer / denormalizer specs: scalars and strings only
            }
        }
        if (pieces == 0) throw Bad(path, "the model has no pieces");
        if (modelType is not (1 or 2)) throw Bad(path, $"model type {modelType} is not supported (only unigram = 1 and BPE = 2)");
        if (unk < 0 || unk >= pieces) throw Bad(path, $"unk_id {unk} is not a piece (the model has {pieces})");
        foreach (var (name, id) in new[] { ("bos_id", bos), ("eos_id", eos), ("pad_id", pad) })
            if (id < -1 || id >= pieces) throw Bad(path, $"{name} {id} is not a piece (the model has {pieces})");
        return pieces;
    }

    // SentencePiece { string piece = 1; float score = 2; Type type = 3; }, Type NORMAL..BYTE = 1..6.
    private static void CheckPiece(ReadOnlySpan<byte> m, int index, string path)
    {
        for (int q = 0; q < m.Length;)
        {
            var (f, w) = Key(m, ref q, path);
            switch (f)
            {
                case 1:
                    Expect(w, Len, f, path);
                    if (System.Text.Unicode.Utf8.IsValid(Slice(m, ref q, path)) is false) throw Bad(path, $"piece {index} is not UTF-8");
                    break;
                case 2:
                    Expect(w, Fixed32, f, path);
                    if (m.Length - q < 4) throw Bad(path, "truncated score");
                    float score = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(m[q..]);
                    if (!float.IsFinite(score)) throw Bad(path, $"piece {index} has score {score}");
                    q += 4;
                    break;
                case 3:
                    Expect(w, Varint, f, path);
                    long t = Int32Field(m, ref q, f, path);
                    if (t is < 1 or > 6) throw Bad(path, $"piece {index} has type {t} (known: 1 to 6)");
                    break;
                default: Skip(m, ref q, w, path); break;
            }
        }
    }

    // A message whose fields are all scalars or strings: framing only.
    private static void Flat(ReadOnlySpan<byte> m, string path)
    {
        for (int q = 0; q < m.Length;)
        {
            var (_, w) = Key(m, ref q, path);
            Skip(m, ref q, w, path);
        }
    }

    private static (int Field, int Wire) Key(ReadOnlySpan<byte> b, ref int p, string path)
    {
        ulong k = ReadVarint(b, ref p, path);
        if (k >> 3 is 0 or > (1 << 29) - 1) throw Bad(path, $"field number {k >> 3} is invalid");
        return ((int)(k >> 3), (int)(k & 7));
    }

    private static void Expect(int wire, int expected, int field, string path)
    {
        if (wire != expected) throw Bad(path, $"field {field} has wire type {wire}, not {expected}");
    }

    // int32 fields are varints of the sign-extended value: anything outside int32 is not one.
    private static long Int32Field(ReadOnlySpan<byte> b, ref int p, int field, string path)
    {
        long v = (long)ReadVarint(b, ref p, path);
        if (v is < int.MinValue or > int.MaxValue) throw Bad(path, $"field {field} = {v} is not an int32");
        return v;
    }

    private static void Skip(ReadOnlySpan<byte> b, ref int p, int wire, string path)
    {
        switch (wire)
        {
            case Varint: ReadVarint(b, ref p, path); break;
            case Fixed64: if (b.Length - p < 8) throw Bad(path, "truncated fixed64"); p += 8; break;
            case Len: Slice(b, ref p, path); break;
            case Fixed32: if (b.Length - p < 4) throw Bad(path, "truncated fixed32"); p += 4; break;
            default: throw Bad(path, $"wire type {wire} (groups or invalid) is not allowed");
        }
    }

    private static ReadOnlySpan<byte> Slice(ReadOnlySpan<byte> b, ref int p, string path)
    {
        ulong n = ReadVarint(b, ref p, path);
        if (n > (ulong)(b.Length - p)) throw Bad(path, $"a field of {n} bytes runs past the end ({b.Length - p} left)");
        var s = b.Slice(p, (int)n);
        p += (int)n;
        return s;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> b, ref int p, string path)
    {
        ulong v = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (p >= b.Length) throw Bad(path, "truncated varint");
            byte x = b[p++];
            if (shift == 63 && x > 1) throw Bad(path, "varint overflows 64 bits (or is longer than 10 bytes)");
            v |= (ulong)(x & 0x7F) << shift;
            if (x < 0x80) return v;
        }
        throw new System.Diagnostics.UnreachableException(); // the tenth byte either ends the varint or overflows
    }

    private static InvalidFileException Bad(string path, string problem) => new(path, "not a SentencePiece model: " + problem);
}
