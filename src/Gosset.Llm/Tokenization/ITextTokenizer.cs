namespace Gosset.Llm.Tokenization;

/// <summary>A tokenizer for a Llama-family model: text to ids and back, with streaming decode.</summary>
public interface ITextTokenizer
{
    /// <summary>Number of token ids.</summary>
    int VocabSize { get; }
    /// <summary>Beginning-of-sequence id.</summary>
    int BosId { get; }
    /// <summary>End-of-sequence id.</summary>
    int EosId { get; }
    /// <summary>Encodes text, optionally with BOS first and EOS last.</summary>
    int[] Encode(string text, bool bos, bool eos);
    /// <summary>Encodes raw UTF-8 bytes, optionally with BOS first and EOS last.</summary>
    int[] Encode(ReadOnlySpan<byte> utf8, bool bos, bool eos);
    /// <summary>The bytes that <paramref name="token"/> contributes when it follows <paramref name="previous"/>.</summary>
    byte[] DecodePiece(int previous, int token);
    /// <summary>Decodes ids (the first id is treated as following BOS).</summary>
    string Decode(ReadOnlySpan<int> ids);
}
