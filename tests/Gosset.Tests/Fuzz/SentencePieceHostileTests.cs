using Gosset.Cli.Fuzzing;
using Gosset.Llm.Tokenization;

namespace Gosset.Tests.Fuzz;

/// <summary>Named hostile SentencePiece models (the fuzzer's cases, pinned): each is the typed error or a correct result.</summary>
public sealed class SentencePieceHostileTests
{
    private static readonly string[] Merges = ["\u2581", "h", "e", "l", "o", "\u2581h", "ll", "\u2581hello"];

    private static SentencePieceTokenizer Load(byte[] b, int vocab = 0) => SentencePieceTokenizer.Load(new MemoryStream(b), "t.model", vocab);

    private static void Refused(byte[] b, string words)
    {
        var e = Assert.Throws<InvalidFileException>(() => Load(b));
        Assert.Contains(words, e.Message);
    }

    [Fact]
    public void A_valid_model_from_the_writer_encodes_and_decodes()
    {
        var pieces = SentencePieceModel.LlamaLayout(Merges);
        var t = Load(SentencePieceModel.Write(pieces, pieces.Count, false), pieces.Count);
        Assert.Equal(267, t.VocabSize);
        int[] ids = t.Encode("hello é", bos: true, eos: false);
        // BPE by score (-id): "▁h" (264) before "ll" (265); "▁hello" needs "▁he", which the model lacks; é is two byte pieces
        Assert.Equal([1, 264, 261, 265, 263, 259, 3 + 0xC3, 3 + 0xA9], ids);
        Assert.Equal("hello é", t.Decode(ids.AsSpan(1)));
    }

    [Fact]
    public void A_byte_piece_look_alike_that_is_not_hex_decodes_as_text()
    {
        // fuzz finding (gosset fuzz --seed 20261204): "<0xZ1>" made DecodePiece throw FormatException (exit 70)
        var pieces = SentencePieceModel.LlamaLayout(Merges);
        pieces[3 + 0x41] = new("<0xZ1>", 0, SentencePieceModel.Byte);
        var t = Load(SentencePieceModel.Write(pieces, pieces.Count, false));
        Assert.Equal("<0xZ1>"u8.ToArray(), t.DecodePiece(5, 3 + 0x41));
        Assert.Equal([0x42], t.DecodePiece(5, 3 + 0x42));
    }

    [Fact]
    public void Byte_fallback_without_the_byte_pieces_is_a_typed_error_not_an_id_past_the_vocabulary()
    {
        // fuzz finding (gosset fuzz --seed 1, 2026-12-02): the library's byte fallback computes ids from a fixed offset, so a
        // model with only the first 64 byte pieces encoded "é" as ids past its vocabulary and DecodePiece indexed past its pieces
        var pieces = SentencePieceModel.LlamaLayout(Merges);
        var cut = pieces.Take(3 + 64).Concat(pieces.Skip(3 + 256)).ToList();
        var t = Load(SentencePieceModel.Write(cut, cut.Count, false));
        Assert.Equal(cut.Count, t.VocabSize);
        Assert.Contains("outside its", Assert.Throws<GossetException>(() => t.Encode("hello é", bos: true, eos: false)).Message);
        Assert.Empty(t.DecodePiece(1, cut.Count + 5));
    }

    [Fact]
    public void Hostile_framing_and_fields_are_typed_errors()
    {
        var pieces = SentencePieceModel.LlamaLayout(Merges);
        byte[] valid = SentencePieceModel.Write(pieces, pieces.Count, false);
        // a piece message whose length runs past the end of the file
        Refused([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x0A], "runs past the end");
        // an 11-byte varint, and a 10-byte one that overflows 64 bits (in an unknown field 6)
        Refused([0x30, .. Enumerable.Repeat((byte)0xFF, 10), 0x01], "overflows 64 bits (or is longer than 10 bytes)");
        Refused([0x30, .. Enumerable.Repeat((byte)0xFF, 9), 0x7F], "overflows 64 bits");
        // 100 000 start-group tags after a valid model: refused by the framing walk, not by recursion
        Refused([.. valid, .. Enumerable.Repeat((byte)0x23, 100000)], "wire type 3");
        // pieces field with a varint wire type; no pieces; unknown piece type; NaN score; ids that name no piece; model type WORD
        Refused([0x08, 0x01], "field 1 has wire type 0");
        Refused(SentencePieceModel.Write([], 0, false), "no pieces");
        Refused(SentencePieceModel.Write([.. pieces[..^1], pieces[^1] with { Type = 9 }], pieces.Count, false), "type 9");
        Refused(SentencePieceModel.Write([.. pieces[..^1], pieces[^1] with { Score = float.NaN }], pieces.Count, false), "score NaN");
        Refused(SentencePieceModel.Write(pieces, pieces.Count, false, unk: pieces.Count), "unk_id 267");
        Refused(SentencePieceModel.Write(pieces, pieces.Count, false, eos: int.MinValue), "eos_id");
        Refused(SentencePieceModel.Write(pieces, pieces.Count, false, modelType: 3), "model type 3");
        Refused(SentencePieceModel.Write([.. pieces[..^1], pieces[^1] with { Text = [0xC3] }], pieces.Count, false), "not UTF-8");
        // a duplicate piece reaches the library, whose error is typed too
        Assert.Throws<InvalidFileException>(() => Load(SentencePieceModel.Write([.. pieces, pieces[^1]], pieces.Count + 1, false)));
        // the vocabulary the model asks for
        Assert.Throws<InvalidFileException>(() => Load(valid, pieces.Count + 1));
    }

    [Fact]
    public void A_stream_longer_than_any_model_is_refused_before_it_is_read()
    {
        var s = new LongStream(SentencePieceModelCheck.MaxBytes + 1L);
        Assert.Throws<InvalidFileException>(() => SentencePieceTokenizer.Load(s, "big.model"));
        Assert.Equal(0, s.Reads);
    }

    private sealed class LongStream(long length) : Stream
    {
        public int Reads { get; private set; }
        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get; set; }
        public override int Read(byte[] buffer, int offset, int count) { Reads++; return 0; }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
