using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Gosset.Llm.Loading;
using Gosset.Llm.Quantization;

namespace Gosset.Tests.Llm;

/// <summary>
/// The .gqm reader on forged files: each case rewrites the JSON header of a valid file and recomputes the trailer and
/// checksum (so the checksum cannot be what catches it), and must get a typed error before any large allocation.
/// </summary>
[Collection("cli")] // one test drives the CLI, which writes to the process console
public sealed class GqmFormatTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-gqm-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A two-layer model (dim 32, vocabulary 40) with uniform random weights in [−0.5, 0.5).</summary>
    private static LlamaWeights RandomWeights(int seed)
    {
        var c = new LlamaConfig(32, 40, 2, 4, 2, 40, 64, SharedClassifier: false) { Architecture = "llama" };
        var w = new LlamaWeights(c);
        var rng = new Random(seed);
        foreach (var a in new[] { w.TokenEmbedding, w.Classifier, w.RmsFinal }.Concat(w.Wq).Concat(w.Wk).Concat(w.Wv).Concat(w.Wo).Concat(w.W1).Concat(w.W2).Concat(w.W3).Concat(w.RmsAtt).Concat(w.RmsFfn))
            for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() - 0.5);
        return w;
    }

    private string Valid()
    {
        var model = ModelQuantizer.Quantize(RandomWeights(1), QuantSpec.Parse("w4", "e8-voronoi"));
        string p = Path.Combine(_dir, "ok.gqm");
        QuantizedModelFile.Save(model, p, new QuantizedModelFile.TokenizerBlob("hf-json", Encoding.UTF8.GetBytes(ArchitectureTests.SmallTokenizer(40))));
        return p;
    }

    /// <summary>Rewrites the header through <paramref name="edit"/>, keeps the sections, and writes a consistent trailer and hash.</summary>
    private string Forge(string valid, Action<JsonObject> edit, Func<long, long, (long, long)>? trailer = null)
    {
        byte[] all = File.ReadAllBytes(valid);
        long hoff = BinaryPrimitives.ReadInt64LittleEndian(all.AsSpan(all.Length - 48)), hlen = BinaryPrimitives.ReadInt64LittleEndian(all.AsSpan(all.Length - 40));
        var header = JsonNode.Parse(all.AsSpan((int)hoff, (int)hlen))!.AsObject();
        edit(header);
        byte[] hb = Encoding.UTF8.GetBytes(header.ToJsonString());
        var ms = new MemoryStream();
        ms.Write(all, 0, (int)hoff);
        ms.Write(hb);
        var (o, l) = trailer?.Invoke(hoff, hb.Length) ?? (hoff, hb.Length);
        Span<byte> t = stackalloc byte[16];
        BinaryPrimitives.WriteInt64LittleEndian(t, o);
        BinaryPrimitives.WriteInt64LittleEndian(t[8..], l);
        ms.Write(t);
        ms.Write(SHA256.HashData(ms.ToArray()));
        string p = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".gqm");
        File.WriteAllBytes(p, ms.ToArray());
        return p;
    }

    private static JsonObject Sec(JsonObject h, string name) => h["Sections"]!.AsArray().Select(x => x!.AsObject()).First(x => (string)x["Name"]! == name);

    [Fact]
    public void ValidFileLoadsAndForgedHeadersGiveTypedErrors()
    {
        string ok = Valid();
        var (m, contents) = QuantizedModelFile.Load(ok);
        Assert.Equal(40, m.Config.VocabSize);
        Assert.Equal(39, contents.Tokenizer.EosId);
        var cases = new (string What, Action<JsonObject> Edit)[]
        {
            ("negative offset", h => Sec(h, "layers.0.wq")["Offset"] = -64),
            ("overflowing offset", h => { Sec(h, "layers.0.wq")["Offset"] = long.MaxValue - 2; Sec(h, "layers.0.wq")["Length"] = 10; }),
            ("negative length", h => Sec(h, "rms_final")["Length"] = -4),
            ("beyond the data", h => Sec(h, "layers.1.w2")["Length"] = 1L << 40),
            ("duplicate", h => h["Sections"]!.AsArray().Add(Sec(h, "rms_final").DeepClone())),
            ("overlap", h => Sec(h, "rms_final")["Offset"] = (long)Sec(h, "token_embedding")["Offset"]! + 4),
            ("missing", h => h["Sections"]!.AsArray().Remove(Sec(h, "layers.1.w3"))),
            ("short float section", h => Sec(h, "layers.0.rms_att")["Length"] = 64),
            ("short code section", h => Sec(h, "layers.0.w1")["Length"] = 3),
            ("huge vocabulary", h => h["Config"]!["VocabSize"] = 1 << 30),
            ("negative dims", h => h["Config"]!["Dim"] = -32),
            ("null sections", h => h["Sections"] = null),
            ("bad table type", h => h["TableType"] = 7),
            ("bad tokenizer", h => h["TokenizerKind"] = "nonsense"),
        };
        foreach (var (what, edit) in cases)
        {
            string p = Forge(ok, edit);
            var e = Record.Exception(() => QuantizedModelFile.Load(p));
            Assert.True(e is InvalidFileException, $"{what}: {e?.GetType().Name ?? "no exception"} {e?.Message}");
        }
        Assert.Throws<InvalidFileException>(() => QuantizedModelFile.Load(Forge(ok, _ => { }, (o, l) => (o, l + 8))));
        Assert.Throws<InvalidFileException>(() => QuantizedModelFile.Load(Forge(ok, _ => { }, (o, l) => (-5, l))));
        Assert.Throws<InvalidFileException>(() => QuantizedModelFile.Load(Forge(ok, _ => { }, (o, l) => (o, long.MaxValue))));
    }

    [Fact]
    public void TruncatedOrAlteredFilesFailTheChecksumAndOldVersionsAreNamed()
    {
        string ok = Valid();
        byte[] all = File.ReadAllBytes(ok);
        string cut = Path.Combine(_dir, "cut.gqm");
        File.WriteAllBytes(cut, all[..(all.Length / 2)]);
        Assert.Contains("checksum", Assert.Throws<InvalidFileException>(() => QuantizedModelFile.Load(cut)).Message);
        var flipped = (byte[])all.Clone();
        flipped[100] ^= 1;
        File.WriteAllBytes(cut, flipped);
        Assert.Contains("checksum", Assert.Throws<InvalidFileException>(() => QuantizedModelFile.Load(cut)).Message);
        var v2 = (byte[])all.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(v2.AsSpan(4), 2);
        File.WriteAllBytes(cut, v2);
        Assert.Contains("older", Assert.Throws<InvalidFileException>(() => QuantizedModelFile.Load(cut)).Message);
        File.WriteAllBytes(cut, new byte[10]);
        Assert.Throws<InvalidFileException>(() => QuantizedModelFile.Load(cut));
    }

    [Fact]
    public void Version3FilesWithIntRowsLoadToTheSameModel()
    {
        // Version 3 stored an INT entry as code + 1. Rewrite a version-4 file's INT sections that way (independently of the
        // reader: unpack with the codec, add 1, pack), set version 3, and recompute the checksum: same logits, bit for bit.
        var w = RandomWeights(3);
        var c = w.Config;
        string p4 = Path.Combine(_dir, "int.gqm");
        QuantizedModelFile.Save(ModelQuantizer.Quantize(w, QuantSpec.Parse("w4", "int")), p4, new QuantizedModelFile.TokenizerBlob("hf-json", Encoding.UTF8.GetBytes(ArchitectureTests.SmallTokenizer(40))));
        var (m4, _) = QuantizedModelFile.Load(p4);
        byte[] all = File.ReadAllBytes(p4);
        long hoff = BinaryPrimitives.ReadInt64LittleEndian(all.AsSpan(all.Length - 48)), hlen = BinaryPrimitives.ReadInt64LittleEndian(all.AsSpan(all.Length - 40));
        var header = JsonNode.Parse(all.AsSpan((int)hoff, (int)hlen))!.AsObject();
        int rewritten = 0;
        for (int l = 0; l < c.Layers; l++)
        {
            var b = m4.Layers[l];
            foreach (var (name, lin) in new[] { ("wq", b.Wq), ("wk", b.Wk), ("wv", b.Wv), ("wo", b.Wo), ("w1", b.W1), ("w2", b.W2), ("w3", b.W3) })
            {
                var coded = Assert.IsType<Gosset.Kernels.CodedMatrix>(lin.Weights);
                var codec = Assert.IsType<Gosset.Codes.IntCodec>(coded.Codec);
                var sec = Sec(header, $"layers.{l}.{name}");
                int off = (int)(long)sec["Offset"]!, len = (int)(long)sec["Length"]!;
                var reader = new Gosset.Coding.BitReader(all.AsSpan(off, len));
                var writer = new Gosset.Coding.BitWriter();
                var code = new byte[codec.CodeBytes];
                int groups = codec.Quantizer.GroupCount(codec.Length);
                for (int r = 0; r < lin.Out; r++)
                {
                    codec.Unpack(ref reader, code);
                    for (int j = 0; j < codec.Length; j++) code[2 * groups + j]++;
                    codec.Pack(code, writer);
                }
                byte[] v3 = writer.ToArray();
                Assert.True(v3.Length <= len);
                v3.CopyTo(all, off);
                rewritten++;
            }
        }
        Assert.Equal(7 * c.Layers, rewritten);
        BinaryPrimitives.WriteUInt32LittleEndian(all.AsSpan(4), 3);
        SHA256.HashData(all.AsSpan(0, all.Length - 32)).CopyTo(all, all.Length - 32);
        string p3 = Path.Combine(_dir, "int-v3.gqm");
        File.WriteAllBytes(p3, all);
        var (m3, _) = QuantizedModelFile.Load(p3);
        int[] tokens = [1, 7, 3, 22, 5];
        Assert.Equal(m4.ForwardWindow(tokens), m3.ForwardWindow(tokens));
        // The same bytes read as version 4 are other codes: the version decides.
        BinaryPrimitives.WriteUInt32LittleEndian(all.AsSpan(4), 4);
        SHA256.HashData(all.AsSpan(0, all.Length - 32)).CopyTo(all, all.Length - 32);
        File.WriteAllBytes(p3, all);
        var e = Record.Exception(() => QuantizedModelFile.Load(p3).Model.ForwardWindow(tokens));
        Assert.True(e is not null || !m4.ForwardWindow(tokens).SequenceEqual(QuantizedModelFile.Load(p3).Model.ForwardWindow(tokens)));
    }

    [Fact]
    public void CliGivesOneErrorLineAndExit2ForAForgedFile()
    {
        string forged = Forge(Valid(), h => Sec(h, "layers.0.wq")["Offset"] = -64);
        var (rc, _, err) = Support.CliRun.Run("generate", "--model", forged, "--prompt", "ab", "--steps", "4");
        Assert.Equal(2, rc);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains("layers.0.wq", lines[0]);
    }
}
