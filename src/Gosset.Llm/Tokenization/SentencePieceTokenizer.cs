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
    public static SentencePieceTokenizer Load(Stream s, string path, int vocabSize = 0)
    {
        SentencePieceTokenizer t;
        try
        {
            t = new SentencePieceTokenizer(LlamaTokenizer.Create(s, addBeginOfSentence: false, addEndOfSentence: false));
        }
        catch (Exception e) when (e is not IOException and not UnauthorizedAccessException)
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
        return _tok.EncodeToIds(text, bos, eos, considerPreTokenization: true, considerNormalization: normalize).ToArray();
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
        string p = _pieces[token] ?? "";
        if (p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) && p[5] == '>')
            return [Convert.ToByte(p.Substring(3, 2), 16)];
        p = p.Replace('\u2581', ' ');
        if (previous == BosId && p.StartsWith(' ')) p = p[1..];
        return Encoding.UTF8.GetBytes(p);
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids) => _tok.Decode(ids.ToArray()) ?? "";
}
