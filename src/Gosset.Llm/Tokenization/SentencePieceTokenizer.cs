using System.Text;
using Microsoft.ML.Tokenizers;

namespace Gosset.Llm.Tokenization;

/// <summary>A SentencePiece (Llama / HF <c>tokenizer.model</c>) tokenizer through Microsoft.ML.Tokenizers.</summary>
public sealed class SentencePieceTokenizer : ITextTokenizer
{
    private readonly LlamaTokenizer _tok;
    private readonly string[] _pieces;

    private SentencePieceTokenizer(LlamaTokenizer tok)
    {
        _tok = tok;
        int n = tok.Vocabulary.Values.Max() + 1;
        _pieces = new string[n];
        foreach (var (piece, id) in tok.Vocabulary) _pieces[id] = piece;
    }

    /// <summary>Loads a SentencePiece model file.</summary>
    public static SentencePieceTokenizer Load(string path)
    {
        try
        {
            using var s = File.OpenRead(path);
            return new SentencePieceTokenizer(LlamaTokenizer.Create(s, addBeginOfSentence: false, addEndOfSentence: false));
        }
        catch (Exception e) when (e is not IOException and not UnauthorizedAccessException)
        {
            throw new InvalidFileException(path, "not a SentencePiece model: " + e.Message);
        }
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
        if (text.Length == 0) return bos ? [BosId] : [];
        return _tok.EncodeToIds(text, bos, eos, considerPreTokenization: true, considerNormalization: true).ToArray();
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
