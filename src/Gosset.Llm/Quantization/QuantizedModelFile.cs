using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Gosset.Coding;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;

namespace Gosset.Llm.Quantization;

/// <summary>
/// The .gqm quantized-model file: "GQM\0", uint32 version, int64 header length, a JSON header (config,
/// quantization spec, scale sets actually used, section table), the sections (float tensors that stay
/// float, then each linear layer's weight codes packed to exactly their stated bits), and a SHA-256 of
/// everything before it. Rotations are regenerated from the seed in the spec. Loading keeps the weights
/// as codes in memory; they are decoded row by row during the forward pass. e8-box weights are stored as the
/// kernels' packed arrays (<see cref="Gosset.Kernels.PackedE8Matrix.WriteTo"/>) and multiplied by the kernels directly.
/// </summary>
public static class QuantizedModelFile
{
    private static readonly byte[] Magic = "GQM\0"u8.ToArray();
    /// <summary>Current format version (2 added e8-box sections; version 1 files are still read).</summary>
    public const uint Version = 2;

    private sealed class Header
    {
        public required LlamaConfig Config { get; init; }
        public required QuantSpec Spec { get; init; }
        public required float[][] Betas { get; init; }
        public string? Source { get; init; }
        public float[][][]? KvAffine { get; init; }
        public required List<Section> Sections { get; init; }
    }

    private sealed record Section(string Name, long Offset, long Length, long Bits);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false, IncludeFields = false };

    /// <summary>Writes a quantized model atomically; returns the file size in bytes.</summary>
    public static long Save(LlamaModel model, string path, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var recipe = model.Recipe ?? throw new GossetException("only quantized models can be saved as .gqm");
        if (recipe.WeightTable is not null || recipe.ActivationTable is not null || recipe.KeyTable is not null || recipe.ValueTable is not null)
            throw new GossetException(".gqm cannot hold the e8 box code's tables yet; use --method e8-voronoi or e8-box-fixed for quantize-model");
        var c = model.Config;
        var payload = new MemoryStream();
        var sections = new List<Section>();
        void Floats(string name, float[] a)
        {
            long off = payload.Position;
            payload.Write(MemoryMarshal.AsBytes(a.AsSpan()));
            sections.Add(new Section(name, off, payload.Position - off, 32L * a.Length));
        }
        Floats("token_embedding", model.Embedding);
        if (!c.SharedClassifier) Floats("classifier", ((DenseWeights)model.Classifier.Weights).Data);
        Floats("rms_final", model.RmsFinal);
        for (int l = 0; l < c.Layers; l++)
        {
            var b = model.Layers[l];
            Floats($"layers.{l}.rms_att", b.RmsAtt);
            Floats($"layers.{l}.rms_ffn", b.RmsFfn);
            var lin = new[] { b.Wq, b.Wk, b.Wv, b.Wo, b.W1, b.W2, b.W3 };
            for (int i = 0; i < lin.Length; i++)
            {
                string name = $"layers.{l}.{ModelQuantizer.Names[i]}";
                switch (lin[i].Weights)
                {
                    case DenseWeights d: Floats(name, d.Data); break;
                    case CodedWeights cw:
                        var bw = new BitWriter();
                        for (int r = 0; r < cw.Rows; r++) cw.Codec.Pack(cw.Codes.AsSpan(r * cw.Codec.CodeBytes, cw.Codec.CodeBytes), bw);
                        long off = payload.Position;
                        payload.Write(bw.ToArray());
                        sections.Add(new Section(name, off, payload.Position - off, bw.BitCount));
                        break;
                    case BoxWeights bx:
                        long boff = payload.Position;
                        bx.Packed.WriteTo(payload);
                        sections.Add(new Section(name, boff, payload.Position - boff, bx.Bits));
                        break;
                    default: throw new InvalidOperationException("unknown weight storage");
                }
            }
        }
        var header = new Header
        {
            Config = c, Spec = recipe.Spec, Source = source, Sections = sections, KvAffine = recipe.KvAffine,
            Betas = [recipe.WeightBetas, recipe.ActivationBetas, recipe.KeyBetas, recipe.ValueBetas],
        };
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(header, Json);
        var all = new MemoryStream();
        all.Write(Magic);
        Span<byte> tmp = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(tmp, Version); all.Write(tmp[..4]);
        BinaryPrimitives.WriteInt64LittleEndian(tmp, json.Length); all.Write(tmp);
        all.Write(json);
        payload.Position = 0;
        payload.CopyTo(all);
        byte[] body = all.ToArray();
        byte[] hash = SHA256.HashData(body);
        Gosset.IO.AtomicFile.Write(path, s => { s.Write(body); s.Write(hash); });
        return body.Length + hash.Length;
    }

    /// <summary>Loads a .gqm file; returns the model and the path of the model it was made from (for the tokenizer).</summary>
    public static (LlamaModel Model, string? Source) Load(string path)
    {
        byte[] all = File.ReadAllBytes(path);
        if (all.Length < 16 + 32 || !all.AsSpan(0, 4).SequenceEqual(Magic)) throw new InvalidFileException(path, "not a Gosset quantized model (.gqm)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(all.AsSpan(4));
        if (version is < 1 or > Version) throw new InvalidFileException(path, $".gqm version {version} is not supported (this build reads version {Version})");
        var body = all.AsSpan(0, all.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(all.AsSpan(all.Length - 32)))
            throw new InvalidFileException(path, "checksum mismatch: the file is corrupt or truncated");
        long hl = BinaryPrimitives.ReadInt64LittleEndian(all.AsSpan(8));
        if (hl <= 0 || 16 + hl > body.Length) throw new InvalidFileException(path, "bad header length");
        Header h;
        try { h = JsonSerializer.Deserialize<Header>(all.AsSpan(16, (int)hl), Json) ?? throw new JsonException("null header"); }
        catch (JsonException e) { throw new InvalidFileException(path, "bad header: " + e.Message); }
        int start = 16 + (int)hl;
        var c = h.Config;
        c.Validate(path);
        var map = h.Sections.ToDictionary(s => s.Name);
        ReadOnlySpan<byte> Bytes(string name)
        {
            if (!map.TryGetValue(name, out var s)) throw new InvalidFileException(path, $"section {name} is missing");
            if (s.Offset < 0 || start + s.Offset + s.Length > all.Length - 32) throw new InvalidFileException(path, $"section {name} lies outside the file");
            return all.AsSpan(start + (int)s.Offset, (int)s.Length);
        }
        float[] F(string name, long count)
        {
            var b = Bytes(name);
            if (b.Length != 4 * count) throw new InvalidFileException(path, $"section {name} has the wrong size");
            return MemoryMarshal.Cast<byte, float>(b).ToArray();
        }
        var emb = F("token_embedding", (long)c.VocabSize * c.Dim);
        var cls = c.SharedClassifier ? emb : F("classifier", (long)c.VocabSize * c.Dim);
        var rmsFinal = F("rms_final", c.Dim);
        var rmsAtt = Enumerable.Range(0, c.Layers).Select(l => F($"layers.{l}.rms_att", c.Dim)).ToArray();
        var rmsFfn = Enumerable.Range(0, c.Layers).Select(l => F($"layers.{l}.rms_ffn", c.Dim)).ToArray();
        var recipe = new QuantRecipe(h.Spec, h.Betas[0], h.Betas[1], h.Betas[2], h.Betas[3]) { KvAffine = h.KvAffine };
        var model = ModelQuantizer.Assemble(c, emb, cls, rmsFinal, rmsAtt, rmsFfn, recipe, calibration: false, (layer, name, codec, rotation, width) =>
        {
            var (outDim, _) = ModelQuantizer.Shape(c, name);
            string sname = $"layers.{layer}.{name}";
            if (h.Spec.Weights.Method == QuantMethod.E8Box)
            {
                try { return new BoxWeights(Gosset.Kernels.PackedE8Matrix.ReadFrom(Bytes(sname), outDim, width)); }
                catch (InvalidDataException e) { throw new InvalidFileException(path, $"section {sname}: {e.Message}"); }
            }
            if (codec is null) return new DenseWeights(F(sname, (long)outDim * width), outDim, width);
            var reader = new BitReader(Bytes(sname));
            var codes = new byte[outDim * codec.CodeBytes];
            try
            {
                for (int r = 0; r < outDim; r++) codec.Unpack(ref reader, codes.AsSpan(r * codec.CodeBytes, codec.CodeBytes));
            }
            catch (InvalidDataException e) { throw new InvalidFileException(path, $"section {sname}: {e.Message}"); }
            return new CodedWeights(codec, codes, outDim);
        });
        return (model, h.Source);
    }
}
