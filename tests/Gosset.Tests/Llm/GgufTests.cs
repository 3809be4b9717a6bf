using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;
using Gosset.Tests.Peer;
using Gosset.Tests.Support;

namespace Gosset.Tests.Llm;

public class GgufTests
{
    private static LlamaWeights Tiny => TinyModels.RandomLlama(dim: 64, hidden: 96, layers: 1, heads: 4, kvHeads: 2, vocab: 300, shared: true, seed: 1);

    private static string Temp(string name) => Path.Combine(Path.GetTempPath(), $"gosset-gguf-{Environment.ProcessId}-{Guid.NewGuid():N}-{name}");

    [DataFact]
    public void Stories_F32RoundTrip_GivesIdenticalLogits_AndGoldenLogits()
    {
        string path = Temp("stories.gguf");
        try
        {
            GgufModel.Save(Stories.Weights, path, GgufVocabulary.FromLlama2c(Stories.Tokenizer), GgufWriteType.F32);
            var w = GgufModel.Load(path, out var vocab);
            Assert.Equal(Stories.Weights.Config, w.Config);
            var g = Stories.Golden.GetProperty("logits");
            int[] input = Stories.Ints(g.GetProperty("input_ids"));
            float[] expected = Stories.Model.ForwardWindow(input);
            float[] actual = LlamaModel.FromWeights(w).ForwardWindow(input);
            Assert.Equal(expected, actual); // f32 storage is lossless: bit-identical logits
            int pos = g.GetProperty("position").GetInt32(), vocabSize = w.Config.VocabSize;
            float[] golden = g.GetProperty("logits_at_position").EnumerateArray().Select(x => x.GetSingle()).ToArray();
            for (int i = 0; i < vocabSize; i++) Assert.True(Math.Abs(actual[pos * vocabSize + i] - golden[i]) <= 1e-4);

            // The tokenizer stored in the GGUF encodes the golden texts to the golden ids.
            Assert.NotNull(vocab);
            var tok = vocab!.CreateTokenizer();
            foreach (var e in Stories.Golden.GetProperty("encode").EnumerateArray())
                Assert.Equal(Stories.Ints(e.GetProperty("ids")), tok.Encode(e.GetProperty("text").GetString()!, bos: true, eos: false));
        }
        finally { File.Delete(path); }
    }

    [DataTheory]
    [InlineData(GgufWriteType.F16)]
    [InlineData(GgufWriteType.BF16)]
    public void HalfPrecisionRoundTrip_RoundsEachWeightToNearest(GgufWriteType type)
    {
        string path = Temp("half.gguf");
        try
        {
            GgufModel.Save(Stories.Weights, path, null, type);
            var w = GgufModel.Load(path);
            float Round(float v) => type == GgufWriteType.F16 ? (float)(Half)v : BitConverter.UInt32BitsToSingle(
                (BitConverter.SingleToUInt32Bits(v) + 0x7FFF + ((BitConverter.SingleToUInt32Bits(v) >> 16) & 1)) & 0xFFFF0000u);
            for (int l = 0; l < w.Config.Layers; l++)
            {
                Assert.Equal(Stories.Weights.W2[l].Select(Round), w.W2[l]);
                Assert.Equal(Stories.Weights.RmsAtt[l], w.RmsAtt[l]); // norms stay f32
            }
            Assert.Equal(Stories.Weights.TokenEmbedding.Select(Round), w.TokenEmbedding);
        }
        finally { File.Delete(path); }
    }

    [DataFact]
    public void ReadsFileOpenedByModelLoader()
    {
        string path = Temp("ml.gguf");
        try
        {
            GgufModel.Save(Stories.Weights, path, GgufVocabulary.FromLlama2c(Stories.Tokenizer), GgufWriteType.F32);
            var w = ModelLoader.LoadWeights(path);
            Assert.Equal(Stories.Weights.Wq[3], w.Wq[3]);
            var tok = ModelLoader.LoadTokenizer(path, null, w.Config.VocabSize);
            Assert.Equal("Once upon a time", tok.Decode(Stories.Tokenizer.Encode("Once upon a time", true, false).AsSpan(1)));
        }
        finally { File.Delete(path); }
    }

    // ---- hostile headers ----

    private static byte[] Header(uint version, ulong tensors, ulong kvs, Action<BinaryWriter>? body = null)
    {
        var ms = new MemoryStream();
        var bw = new BinaryWriter(ms);
        bw.Write(GgufFile.Magic); bw.Write(version); bw.Write(tensors); bw.Write(kvs);
        body?.Invoke(bw);
        bw.Flush();
        return ms.ToArray();
    }

    private static void Str(BinaryWriter bw, string s) { var b = Encoding.UTF8.GetBytes(s); bw.Write((ulong)b.Length); bw.Write(b); }

    private static byte[] OneTensor(ulong[] dims, uint type, ulong offset, int dataBytes)
    {
        var h = Header(3, 1, 0, bw =>
        {
            Str(bw, "t"); bw.Write((uint)dims.Length); foreach (var d in dims) bw.Write(d); bw.Write(type); bw.Write(offset);
        });
        int start = (h.Length + 31) / 32 * 32;
        var all = new byte[start + dataBytes];
        h.CopyTo(all, 0);
        return all;
    }

    public static TheoryData<string, byte[]> Hostile() => new()
    {
        { "bad magic", [.. Encoding.ASCII.GetBytes("GGUX"), .. new byte[40]] },
        { "version 1", Header(1, 0, 0) },
        { "version 99", Header(99, 0, 0) },
        { "huge tensor count", Header(3, ulong.MaxValue, 0) },
        { "huge kv count", Header(3, 0, 1UL << 60) },
        { "huge key length", Header(3, 0, 1, bw => bw.Write(ulong.MaxValue)) },
        { "huge array", Header(3, 0, 1, bw => { Str(bw, "a"); bw.Write((uint)9); bw.Write((uint)8); bw.Write(1UL << 61); }) },
        { "unknown value type", Header(3, 0, 1, bw => { Str(bw, "a"); bw.Write(77u); bw.Write(0UL); }) },
        { "nested array", Header(3, 0, 1, bw => { Str(bw, "a"); bw.Write((uint)9); bw.Write((uint)9); bw.Write(1UL); bw.Write(0UL); }) },
        { "bad alignment", Header(3, 0, 1, bw => { Str(bw, "general.alignment"); bw.Write((uint)4); bw.Write(3u); }) },
        { "truncated kv", Header(3, 0, 1, bw => { Str(bw, "a"); bw.Write((uint)8); bw.Write(100UL); }) },
        { "dims overflow", OneTensor([1UL << 40, 1UL << 40, 1UL << 40], 0, 0, 64) },
        { "zero dim", OneTensor([0, 4], 0, 0, 64) },
        { "five dims", OneTensor([1, 1, 1, 1, 1], 0, 0, 64) },
        { "data past end", OneTensor([64, 64], 0, 0, 64) },
        { "huge offset", OneTensor([4], 0, ulong.MaxValue - 31, 64) },
        { "misaligned offset", OneTensor([4], 0, 4, 64) },
        { "row not a block multiple", OneTensor([31], 2, 0, 64) },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public void HostileHeaders_GiveTypedErrorsQuickly(string what, byte[] bytes)
    {
        string path = Temp("hostile.gguf");
        try
        {
            File.WriteAllBytes(path, bytes);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var sw = Stopwatch.StartNew();
            var e = Assert.ThrowsAny<GossetException>(() => { using var f = GgufFile.Open(path); });
            Assert.True(sw.ElapsedMilliseconds < 2000, what);
            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20, $"{what}: allocated too much");
            Assert.Contains(path, e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void UnknownTensorType_IsTypedError()
    {
        string path = Temp("type.gguf");
        try
        {
            File.WriteAllBytes(path, OneTensor([32], 16 /* IQ2_XXS */, 0, 64));
            var e = Assert.Throws<UnsupportedGgufTypeException>(() => GgufFile.Open(path));
            Assert.Equal(16u, e.TypeId);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void UnsupportedArchitectureAndFields_NameTheKey()
    {
        string path = Temp("arch.gguf");
        try
        {
            GgufModel.Save(Tiny, path, null, GgufWriteType.F32);
            byte[] b = File.ReadAllBytes(path);
            // Same-length patch of the architecture string: "llama" -> "gemma".
            int at = IndexOf(b, Encoding.ASCII.GetBytes("llama"), IndexOf(b, Encoding.ASCII.GetBytes("general.architecture"), 0));
            Encoding.ASCII.GetBytes("gemma").CopyTo(b, at);
            File.WriteAllBytes(path, b);
            var e = Assert.Throws<InvalidFileException>(() => GgufModel.Load(path));
            Assert.Contains("general.architecture", e.Message);
        }
        finally { File.Delete(path); }
    }

    private static int IndexOf(byte[] hay, byte[] needle, int from)
    {
        for (int i = from; i <= hay.Length - needle.Length; i++)
            if (hay.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        throw new InvalidOperationException("not found");
    }

    [Fact]
    public void TruncatedFile_IsTypedError()
    {
        string path = Temp("trunc.gguf");
        try
        {
            GgufModel.Save(Tiny, path, null, GgufWriteType.F32);
            byte[] b = File.ReadAllBytes(path);
            File.WriteAllBytes(path, b[..(b.Length - 100)]);
            var e = Assert.Throws<InvalidFileException>(() => GgufModel.Load(path));
            Assert.Contains("truncated", e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void IqAndKGrids_DequantizeHandBuiltBlocks()
    {
        // Q4_0 block: d = 2, nibbles j (low) and 15 - j (high): values (j - 8)·2 and (7 - j)·2.
        var blk = new byte[18];
        BinaryPrimitives.WriteUInt16LittleEndian(blk, BitConverter.HalfToUInt16Bits((Half)2));
        for (int j = 0; j < 16; j++) blk[2 + j] = (byte)(j | ((15 - j) << 4));
        var y = new float[32];
        GgufTypes.Dequantize(GgufTensorType.Q4_0, blk, y);
        for (int j = 0; j < 16; j++) { Assert.Equal((j - 8) * 2f, y[j]); Assert.Equal((7 - j) * 2f, y[j + 16]); }
        // IQ4_NL block: d = 1, all nibbles 0 → -127, then 15 → 113.
        blk.AsSpan(2).Fill(0xF0);
        BinaryPrimitives.WriteUInt16LittleEndian(blk, BitConverter.HalfToUInt16Bits((Half)1));
        GgufTypes.Dequantize(GgufTensorType.IQ4_NL, blk, y);
        Assert.All(y[..16], v => Assert.Equal(-127f, v));
        Assert.All(y[16..], v => Assert.Equal(113f, v));
    }
}
