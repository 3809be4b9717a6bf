using System.Buffers.Binary;
using System.Text;
using Gosset.Cli.Fuzzing;
using Gosset.Llm.Tokenization;
using Gosset.Tests.Support;

namespace Gosset.Tests.Llm;

/// <summary>
/// Tests the SentencePiece (<c>tokenizer.model</c>) path. The shared data has no <c>tokenizer.model</c>, so the test
/// builds one: the llama2.c tokenizer <c>tok512.bin</c> is the export of a SentencePiece BPE model (pieces with
/// '▁' written as ' ', scores kept), and this re-encodes it as a SentencePiece <c>ModelProto</c>. The expected ids come
/// from golden.json (llama2.c reference encodings), never from our code.
/// </summary>
public sealed class SentencePieceTests : IClassFixture<SentencePieceTests.ModelFile>
{
    /// <summary>The generated <c>tokenizer.model</c> in a temporary folder, deleted after the tests.</summary>
    public sealed class ModelFile : IDisposable
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("gosset-sp-").FullName;

        public ModelFile()
        {
            Path = System.IO.Path.Combine(_dir, "tokenizer.model");
            File.WriteAllBytes(Path, SentencePieceModelBuilder.FromLlama2c(Stories.Tokenizer));
            Tokenizer = SentencePieceTokenizer.Load(Path);
        }

        public string Path { get; }
        public SentencePieceTokenizer Tokenizer { get; }

        public void Dispose() => Directory.Delete(_dir, recursive: true);
    }

    private readonly SentencePieceTokenizer _sp;

    public SentencePieceTests(ModelFile model) => _sp = model.Tokenizer;

    [DataFact]
    public void GeneratedModelLoadsWithLlama2cIds()
    {
        Assert.Equal(512, _sp.VocabSize);
        Assert.Equal(1, _sp.BosId);
        Assert.Equal(2, _sp.EosId);
    }

    [DataFact]
    public void EncodesAndDecodesGoldenStrings()
    {
        int n = 0;
        foreach (var e in Stories.Golden.GetProperty("encode").EnumerateArray())
        {
            string text = e.GetProperty("text").GetString()!;
            int[] expected = Stories.Ints(e.GetProperty("ids"));
            Assert.Equal(expected, _sp.Encode(text, bos: true, eos: false));
            Assert.Equal(expected, _sp.Encode(Encoding.UTF8.GetBytes(text), bos: true, eos: false));
            Assert.Equal(text, _sp.Decode(expected.AsSpan(1)));
            Assert.Equal(text, StreamDecode(_sp, expected));
            n++;
        }
        Assert.Equal(5, n);
    }

    [DataFact]
    public void EosIsAppended()
    {
        int[] ids = _sp.Encode("Once upon a time", bos: true, eos: true);
        Assert.Equal(new[] { 1, 403, 407, 261, 378, 2 }, ids);
        Assert.Equal(new[] { 2 }, _sp.Encode("x", bos: false, eos: true)[^1..]);
    }

    public static TheoryData<string> ExtraStrings() => new()
    {
        "a  b",            // a run of spaces is kept (remove_extra_whitespaces = false, as in Llama)
        " leading space",
        "trailing space ",
        "   ",
        "tab\there",
        "line one\n\nline two\r\n",
        "12345 + 678 = 999",
        "naïve façade, Ærøskøbing, 東京, 👍🏽",
        "\u00a0non-breaking\u2009thin",
        "x",
        "The",
    };

    [DataTheory]
    [MemberData(nameof(ExtraStrings))]
    public void MatchesLlama2cOnExtraStrings(string text)
    {
        int[] expected = Stories.Tokenizer.Encode(text, bos: true, eos: false);
        Assert.Equal(expected, _sp.Encode(text, bos: true, eos: false));
        Assert.Equal(text, _sp.Decode(expected.AsSpan(1)));
        Assert.Equal(text, StreamDecode(_sp, expected));
    }

    [DataFact]
    public void MatchesLlama2cOnValidationText()
    {
        string all = File.ReadAllText(Stories.ValText);
        string head = all[..2000];
        int[] expected = Stories.Tokenizer.Encode(head, bos: true, eos: false);
        Assert.Equal(expected, _sp.Encode(head, bos: true, eos: false));
        Assert.Equal(head, _sp.Decode(expected.AsSpan(1)));
        Assert.Equal(head, StreamDecode(_sp, expected));

        // Line by line, so that a mismatch names a short input, then the whole file as `gosset eval` encodes it.
        foreach (string line in all.Split('\n'))
            Assert.Equal(Stories.Tokenizer.Encode(line, bos: true, eos: false), _sp.Encode(line, bos: true, eos: false));
        byte[] file = File.ReadAllBytes(Stories.ValText);
        Assert.Equal(Stories.ValTokens, _sp.Encode(file, bos: true, eos: false));
    }

    public static TheoryData<string, string> ExtraWhitespaceCases() => new()
    {
        { "x", "x" },              // one character: Microsoft.ML.Tokenizers 2.0.1 alone gives [] here (not even BOS)
        { "  x ", "x" },
        { "a  b", "a b" },
        { "  Once   upon a  time ", "Once upon a time" },
        { "   ", "" },
        { "", "" },
        { "tab\t  x\n", "tab\t x\n" },  // only ' ' counts as extra whitespace
    };

    /// <summary>
    /// A model with remove_extra_whitespaces (SentencePiece's default, unlike Llama's) encodes text as the llama2.c
    /// tokenizer encodes the text with leading, trailing and repeated spaces removed.
    /// </summary>
    [DataTheory]
    [MemberData(nameof(ExtraWhitespaceCases))]
    public void RemoveExtraWhitespacesModel(string text, string collapsed)
    {
        string dir = Directory.CreateTempSubdirectory("gosset-sp-").FullName;
        try
        {
            string path = Path.Combine(dir, "tokenizer.model");
            File.WriteAllBytes(path, SentencePieceModelBuilder.FromLlama2c(Stories.Tokenizer, removeExtraWhitespaces: true));
            var sp = SentencePieceTokenizer.Load(path);
            Assert.Equal(Stories.Tokenizer.Encode(collapsed, bos: true, eos: false), sp.Encode(text, bos: true, eos: false));
            Assert.Equal(Stories.Tokenizer.Encode(collapsed, bos: true, eos: true), sp.Encode(text, bos: true, eos: true));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Decodes piece by piece as generation does (the first id follows BOS).</summary>
    private static string StreamDecode(ITextTokenizer tok, int[] idsWithBos)
    {
        var bytes = new List<byte>();
        for (int i = 1; i < idsWithBos.Length; i++) bytes.AddRange(tok.DecodePiece(idsWithBos[i - 1], idsWithBos[i]));
        return Encoding.UTF8.GetString(bytes.ToArray());
    }
}

/// <summary>
/// Writes a SentencePiece <c>ModelProto</c> (sentencepiece_model.proto, proto2) by hand. Field numbers:
/// ModelProto { pieces = 1; trainer_spec = 2; normalizer_spec = 3 };
/// SentencePiece { piece = 1 (string); score = 2 (float); type = 3 (NORMAL 1, UNKNOWN 2, CONTROL 3, BYTE 6) };
/// TrainerSpec { model_type = 3 (BPE 2); vocab_size = 4; byte_fallback = 35; unk_id = 40; bos_id = 41; eos_id = 42; pad_id = 43 };
/// NormalizerSpec { name = 1; add_dummy_prefix = 3; remove_extra_whitespaces = 4; escape_whitespaces = 5 }.
/// </summary>
internal static class SentencePieceModelBuilder
{
    /// <summary>
    /// Converts a llama2.c tokenizer back into the SentencePiece BPE model it was exported from: ids 0, 1, 2 are
    /// &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt; (llama2.c stores the latter two as "\n&lt;s&gt;\n" and "\n&lt;/s&gt;\n"),
    /// ids 3..258 the byte pieces &lt;0x00&gt;..&lt;0xFF&gt;, the rest normal pieces with ' ' written as '▁' (U+2581).
    /// The normalizer is Llama's: identity, dummy prefix, no removal of extra whitespace, whitespace escaped.
    /// </summary>
    /// <remarks>
    /// <paramref name="removeExtraWhitespaces"/> = true gives SentencePiece's default normalizer instead (leading,
    /// trailing and repeated spaces removed), which llama2.c does not have.
    /// </remarks>
    public static byte[] FromLlama2c(Llama2cTokenizer tok, bool removeExtraWhitespaces = false)
    {
        var pieces = new List<SentencePieceModel.Piece>(tok.VocabSize);
        for (int id = 0; id < tok.VocabSize; id++)
        {
            string raw = Encoding.UTF8.GetString(tok.Piece(id));
            (string piece, int type) = id switch
            {
                0 => ("<unk>", SentencePieceModel.Unknown),
                1 => ("<s>", SentencePieceModel.Control),
                2 => ("</s>", SentencePieceModel.Control),
                < 259 => ($"<0x{id - 3:X2}>", SentencePieceModel.Byte),
                _ => (raw.Replace(' ', '\u2581'), SentencePieceModel.Normal),
            };
            if (id is 0 or >= 3 and < 259) Assert.Equal(piece, raw);   // the layout this conversion assumes
            if (id is 1 or 2) Assert.Equal("\n" + piece + "\n", raw);
            pieces.Add(new(piece, tok.Score(id), type));
        }
        // the fuzzer's writer (src/Gosset.Cli/Fuzzing): these golden tests also vouch for the models it builds
        return SentencePieceModel.Write(pieces, tok.VocabSize, removeExtraWhitespaces);
    }
}
