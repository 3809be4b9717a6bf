using System.Text;
using System.Text.Json.Nodes;
using Gosset.Llm.Loading;
using Gosset.Llm.Tokenization;

namespace Gosset.Tests.Llm;

/// <summary>Byte-level BPE tokenizer.json files built here (Llama 3 layout), checked on known splits and round trips.</summary>
public sealed class HfJsonTokenizerTests
{
    private const string Llama3Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private static string B(char c) => HfJsonTokenizer.ByteChar((byte)c).ToString();

    /// <summary>Ids 0..255 are the bytes; merges build "hello" (259) and " world" (264); 265 = "34"; 266 "xyz" unreachable by merges.</summary>
    private static byte[] Json(bool arrayMerges = false, bool ignoreMerges = false, string? normalizer = null, string model = "BPE")
    {
        var v = new JsonObject();
        for (int b = 0; b < 256; b++) v[B((char)b)] = b;
        string[][] merges =
        [
            ["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"], [B(' '), "w"], ["o", "r"], [B(' ') + "w", "or"],
            [B(' ') + "wor", "l"], [B(' ') + "worl", "d"], ["3", "4"],
        ];
        int id = 256;
        foreach (var m in merges) v[m[0] + m[1]] = id++;
        v["xyz"] = id++;
        var root = new JsonObject
        {
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = 267, ["content"] = "<|begin_of_text|>", ["special"] = true },
                new JsonObject { ["id"] = 268, ["content"] = "<|end_of_text|>", ["special"] = true }),
            ["normalizer"] = normalizer is null ? null : new JsonObject { ["type"] = normalizer },
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["behavior"] = "Isolated", ["invert"] = false, ["pattern"] = new JsonObject { ["Regex"] = Llama3Regex } },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
            },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<|begin_of_text|>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = model, ["ignore_merges"] = ignoreMerges, ["vocab"] = v,
                ["merges"] = new JsonArray(merges.Select(m => arrayMerges ? (JsonNode)new JsonArray(m[0], m[1]) : m[0] + " " + m[1]).ToArray()),
            },
        };
        return Encoding.UTF8.GetBytes(root.ToJsonString());
    }

    private static HfJsonTokenizer Tok(bool arrayMerges = false, bool ignoreMerges = false) => HfJsonTokenizer.FromBytes(Json(arrayMerges, ignoreMerges), "test", 300);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void KnownSplits(bool arrayMerges)
    {
        var t = Tok(arrayMerges);
        Assert.Equal(267, t.BosId);
        Assert.Equal(268, t.EosId);
        Assert.Equal(new[] { 267, 259, 264 }, t.Encode("hello world", bos: true, eos: false));
        Assert.Equal(new[] { 259, 264, 268 }, t.Encode("hello world", bos: false, eos: true));
        // The regex from the json cuts digits in runs of at most 3: "123" | "45", so "3 4" never merges.
        Assert.Equal(new[] { '1', '2', '3', '4', '5' }.Select(c => (int)c), t.Encode("12345", false, false));
        Assert.Equal(new[] { 265 }, t.Encode("34", false, false));
        // Added tokens inside the text are matched as themselves.
        Assert.Equal(new[] { 259, 268, 264 }, t.Encode("hello<|end_of_text|> world", false, false));
    }

    [Fact]
    public void IgnoreMergesTakesWholePiecesFromTheVocabulary()
    {
        Assert.Equal(new[] { (int)'x', 'y', 'z' }, Tok(ignoreMerges: false).Encode("xyz", false, false));
        Assert.Equal(new[] { 266 }, Tok(ignoreMerges: true).Encode("xyz", false, false));
    }

    [Theory]
    [InlineData("hello world")]
    [InlineData("  leading spaces,\ttabs\nand newlines\r\n\n")]
    [InlineData("héllo wörld ✓ 日本語 🙂 l'été 12345678")]
    public void RoundTripsThroughBytes(string text)
    {
        var t = Tok();
        int[] ids = t.Encode(text, bos: true, eos: false);
        Assert.Equal(text, t.Decode(ids.AsSpan(1)));
        // Streaming: the pieces concatenate to the UTF-8 bytes of the text.
        var bytes = new List<byte>();
        for (int i = 1; i < ids.Length; i++) bytes.AddRange(t.DecodePiece(ids[i - 1], ids[i]));
        Assert.Equal(Encoding.UTF8.GetBytes(text), bytes.ToArray());
    }

    [Fact]
    public void ByteMapIsAPermutationOfTheGpt2Table()
    {
        var chars = Enumerable.Range(0, 256).Select(b => HfJsonTokenizer.ByteChar((byte)b)).ToArray();
        Assert.Equal(256, chars.Distinct().Count());
        Assert.Equal('Ġ', HfJsonTokenizer.ByteChar((byte)' '));  // space → U+0120
        Assert.Equal('Ċ', HfJsonTokenizer.ByteChar((byte)'\n')); // newline → U+010A
        Assert.Equal('A', HfJsonTokenizer.ByteChar((byte)'A'));
    }

    [Fact]
    public void UnsupportedPartsAndMismatchedVocabulariesAreErrors()
    {
        Assert.Contains("normalizer", Assert.Throws<InvalidFileException>(() => HfJsonTokenizer.FromBytes(Json(normalizer: "Lowercase"), "t", 300)).Message);
        Assert.Contains("WordPiece", Assert.Throws<InvalidFileException>(() => HfJsonTokenizer.FromBytes(Json(model: "WordPiece"), "t", 300)).Message);
        Assert.Contains("vocabulary", Assert.Throws<InvalidFileException>(() => HfJsonTokenizer.FromBytes(Json(), "t", 100)).Message);
        Assert.Throws<InvalidFileException>(() => HfJsonTokenizer.FromBytes("{\"model\": 3"u8.ToArray(), "t", 300));
    }

    [Fact]
    public void SyntheticTokenizerLoadsWithTheModelVocabulary()
    {
        var t = HfJsonTokenizer.FromBytes(Encoding.UTF8.GetBytes(SyntheticModel.TokenizerJson(1000)), "synthetic", 1000);
        Assert.Equal(1000, t.VocabSize);
        Assert.Equal(998, t.BosId);
        int[] ids = t.Encode("the cat sat on the mat", true, false);
        Assert.True(ids.Length < 1 + "the cat sat on the mat".Length, "the merges shorten the text");
        Assert.Equal("the cat sat on the mat", t.Decode(ids.AsSpan(1)));
    }
}
