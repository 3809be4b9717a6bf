using Gosset.Codes;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using Gosset.Coding;
using Gosset.Kernels;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;
using Gosset.Llm.Tokenization;
using Gosset.Rotations;

namespace Gosset.Llm.Quantization;

/// <summary>What a .gqm file holds besides the model: its tokenizer and where it came from.</summary>
/// <param name="Tokenizer">The tokenizer stored in the file.</param>
/// <param name="Source">Path of the model it was made from (informational; never opened).</param>
/// <param name="StopIds">Token ids that end generation.</param>
/// <param name="RandomWeights">True when the source was marked as random weights (synth-model).</param>
public sealed record GqmContents(ITextTokenizer Tokenizer, string? Source, int[] StopIds, bool RandomWeights);

/// <summary>Summary of a written .gqm file.</summary>
/// <param name="Bytes">File size.</param>
/// <param name="LinearBits">Stored bits of all linear layers (side information included).</param>
/// <param name="LinearWeights">Entries of all linear layers.</param>
/// <param name="TableBits">Stored bits of the embedding table and classifier.</param>
/// <param name="Quant">The recipe, in words.</param>
public sealed record GqmWriteResult(long Bytes, long LinearBits, long LinearWeights, long TableBits, string Quant)
{
    /// <summary>Bits per weight of the linear layers as stored.</summary>
    public double BitsPerWeight => (double)LinearBits / Math.Max(1, LinearWeights);
}

/// <summary>
/// The self-contained quantized-model file (.gqm, version 4; version 3 is read too): "GQM\0", uint32 version, then the sections
/// (64-byte aligned: tokenizer bytes, embedding table and classifier at their stored precision, norms, biases,
/// each linear layer's codes packed to exactly their stated bits), then a JSON header (config, quantization
/// spec and scale sets, section table), then int64 header offset, int64 header length and a SHA-256 of all
/// bytes before it. Header last, so sections are written as they are produced. Rotations are regenerated from
/// the seed in the spec. Nothing outside the file is needed to run it.
/// </summary>
public static class QuantizedModelFile
{
    private static readonly byte[] Magic = "GQM\0"u8.ToArray();
    /// <summary>Current format version (3: self-contained, header at the end; 4: INT entries stored as the quantizer's code, not code + 1). Versions 3 and 4 are read, earlier ones refused.</summary>
    public const uint Version = 4;
    private const int Align = 64;
    private const long MaxHeaderBytes = 64L << 20;

    private sealed class Header
    {
        public required LlamaConfig Config { get; init; }
        public required QuantSpec Spec { get; init; }
        public required float[][] Betas { get; init; }
        public string? Source { get; init; }
        public float[][][]? KvAffine { get; init; }
        public BoxTableRecord?[]? BoxTables { get; init; }
        public required TableType TableType { get; init; }
        public required string TokenizerKind { get; init; }
        public int[]? StopIds { get; init; }
        public bool RandomWeights { get; init; }
        /// <summary>"e8" when the classifier section holds e8 box codes, "int8" when it holds the 8-bit matrix (ClassifierQuantizer); null or "source" otherwise.</summary>
        public string? Classifier { get; init; }
        public required List<Section> Sections { get; init; }
    }

    private sealed record Section(string Name, long Offset, long Length, long Bits);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false, IncludeFields = false };

    /// <summary>The tokenizer bytes to embed and how to read them back.</summary>
    /// <param name="Kind">"llama2c", "sentencepiece" or "hf-json".</param>
    /// <param name="Bytes">The tokenizer file's bytes.</param>
    public sealed record TokenizerBlob(string Kind, byte[] Bytes)
    {
        /// <summary>Reads a tokenizer file and infers its kind from its name.</summary>
        public static TokenizerBlob FromFile(string path)
        {
            string kind = path.EndsWith(".model", StringComparison.OrdinalIgnoreCase) ? "sentencepiece"
                : path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? "hf-json" : "llama2c";
            return new TokenizerBlob(kind, File.ReadAllBytes(path));
        }

        /// <summary>Parses the bytes as a tokenizer for a model of <paramref name="vocab"/> ids; <paramref name="source"/> names it in errors.</summary>
        public ITextTokenizer Open(string source, int vocab) => Kind switch
        {
            "sentencepiece" => SentencePieceTokenizer.Load(new MemoryStream(Bytes), source, vocab),
            "hf-json" => HfJsonTokenizer.FromBytes(Bytes, source, vocab),
            "llama2c" => Llama2cTokenizer.FromBytes(Bytes, source, vocab),
            _ => throw new InvalidFileException(source, $"unknown tokenizer kind \"{Kind}\""),
        };
    }

    /// <summary>Streams sections into a temporary file, hashing as it goes; the file appears only when complete.</summary>
    private sealed class Writer(Stream s)
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        public List<Section> Sections { get; } = new();
        public long Position { get; private set; }

        public void Raw(ReadOnlySpan<byte> b)
        {
            s.Write(b);
            _hash.AppendData(b);
            Position += b.Length;
        }

        private void Pad()
        {
            Span<byte> zero = stackalloc byte[Align];
            zero.Clear();
            int pad = (int)((Align - Position % Align) % Align);
            Raw(zero[..pad]);
        }

        public void Add(string name, long bits, Action<Stream> write)
        {
            if (Sections.Any(x => x.Name == name)) throw new InvalidOperationException($"section {name} written twice");
            Pad();
            long off = Position;
            using (var hs = new HashingStream(this)) write(hs);
            Sections.Add(new Section(name, off, Position - off, bits));
        }

        public void Floats(string name, ReadOnlySpan<float> a) { var copy = a.ToArray(); Add(name, 32L * copy.Length, st => st.Write(MemoryMarshal.AsBytes(copy.AsSpan()))); }

        public byte[] Finish(byte[] header)
        {
            Pad();
            long hoff = Position;
            Raw(header);
            Span<byte> t = stackalloc byte[16];
            BinaryPrimitives.WriteInt64LittleEndian(t, hoff);
            BinaryPrimitives.WriteInt64LittleEndian(t[8..], header.Length);
            Raw(t);
            byte[] h = _hash.GetHashAndReset();
            s.Write(h);
            return h;
        }

        private sealed class HashingStream(Writer w) : Stream
        {
            public override bool CanRead => false;
            public override bool CanSeek => false;
            public override bool CanWrite => true;
            public override long Length => throw new NotSupportedException();
            public override long Position { get => w.Position; set => throw new NotSupportedException(); }
            public override void Flush() { }
            public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
            public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
            public override void SetLength(long value) => throw new NotSupportedException();
            public override void Write(byte[] buffer, int offset, int count) => w.Raw(buffer.AsSpan(offset, count));
            public override void Write(ReadOnlySpan<byte> buffer) => w.Raw(buffer);
        }
    }

    private static void Begin(Writer w)
    {
        Span<byte> v = stackalloc byte[8];
        Magic.CopyTo(v);
        BinaryPrimitives.WriteUInt32LittleEndian(v[4..], Version);
        w.Raw(v);
    }

    private static void Table(Writer w, string name, TokenTable t, TableType type)
    {
        if (type == TableType.F32 && t.F32 is not null) { w.Add(name, t.Bits, s => s.Write(MemoryMarshal.AsBytes(t.F32.AsSpan()))); return; }
        if (type == t.Type && t.Raw16 is not null) { w.Add(name, t.Bits, s => s.Write(MemoryMarshal.AsBytes(t.Raw16.AsSpan()))); return; }
        // Conversion row by row (float32 → 16-bit rounds to nearest even; 16-bit → float32 is exact).
        int item = type == TableType.F32 ? 4 : 2;
        w.Add(name, 8L * item * t.Rows * t.Cols, s =>
        {
            var row = new float[t.Cols];
            var buf = new byte[item * t.Cols];
            for (int r = 0; r < t.Rows; r++)
            {
                t.Row(r, row);
                for (int i = 0; i < row.Length; i++)
                {
                    if (type == TableType.F32) BinaryPrimitives.WriteSingleLittleEndian(buf.AsSpan(4 * i), row[i]);
                    else BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(2 * i), type == TableType.F16
                        ? BitConverter.HalfToUInt16Bits((Half)row[i]) : Gosset.IO.SafeTensors.SingleToBFloat16(row[i]));
                }
                s.Write(buf);
            }
        });
    }

    private static long WeightSection(Writer w, string name, PackedMatrix m, E8BoxCodec? boxCodec = null)
    {
        switch (m)
        {
            case Float32Matrix d: w.Floats(name, d.Data.AsSpan(0, d.Rows * d.Cols)); break;
            case CodedMatrix cw:
                var bw = new BitWriter();
                for (int r = 0; r < cw.Rows; r++) cw.Codec.Pack(cw.Codes.AsSpan(r * cw.Codec.CodeBytes, cw.Codec.CodeBytes), bw);
                byte[] bytes = bw.ToArray();
                w.Add(name, bw.BitCount, s => s.Write(bytes));
                break;
            case PackedE8Matrix bx when boxCodec is not null:
                var bb = new BitWriter();
                boxCodec.PackCodes(bx.ToCodes(), bb);
                byte[] boxBytes = bb.ToArray();
                w.Add(name, bb.BitCount, s => s.Write(boxBytes));
                break;
            case PackedE8Matrix bx: w.Add(name, bx.StoredBits, s => bx.WriteTo(s)); break;
            default: throw new InvalidOperationException("unknown weight storage");
        }
        return m.StoredBits;
    }

    private static byte[] HeaderBytes(LlamaConfig c, QuantRecipe recipe, string? source, List<Section> sections, TableType tt, TokenizerBlob tok, int[]? stopIds, bool random,
        string classifier)
    {
        var header = new Header
        {
            Classifier = classifier == "source" ? null : classifier,
            Config = c, Spec = recipe.Spec, Source = source, Sections = sections, KvAffine = recipe.KvAffine, TableType = tt,
            TokenizerKind = tok.Kind, StopIds = stopIds, RandomWeights = random,
            Betas = [recipe.WeightBetas, recipe.ActivationBetas, recipe.KeyBetas, recipe.ValueBetas],
            BoxTables = recipe.WeightTable is null && recipe.ActivationTable is null && recipe.KeyTable is null && recipe.ValueTable is null ? null : recipe.BoxTableRecords(),
        };
        return JsonSerializer.SerializeToUtf8Bytes(header, Json);
    }

    /// <summary>Writes a quantized model (already in memory) atomically, with its tokenizer.</summary>
    public static GqmWriteResult Save(LlamaModel model, string path, TokenizerBlob tokenizer, string? source = null, TableType? tables = null,
        int[]? stopIds = null, bool randomWeights = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var recipe = model.Recipe ?? throw new GossetException("only quantized models can be saved as .gqm");
        var c = model.Config;
        var tt = tables ?? model.Embedding.Type;
        long linBits = 0, linN = 0, tableBits = 0;
        long size = 0;
        Gosset.IO.AtomicFile.Write(path, s =>
        {
            var w = new Writer(s);
            Begin(w);
            w.Add("tokenizer", 8L * tokenizer.Bytes.Length, st => st.Write(tokenizer.Bytes));
            // A tied head's 8-bit classifier is the embedding table too: written once, as the classifier section.
            if (!model.SharesInt8Table)
            {
                Table(w, "token_embedding", model.Embedding, tt);
                tableBits += w.Sections[^1].Bits;
            }
            if (model.ClassifierFormat == "e8")
                tableBits += WeightSection(w, "classifier", model.Classifier.Weights, ClassifierQuantizer.Coding(recipe, c.Dim).Codec);
            else if (model.ClassifierFormat == "int8")
            {
                var i8 = (PackedInt8Matrix)model.Classifier.Weights;
                w.Add("classifier", i8.StoredBits, st => i8.WriteTo(st));
                tableBits += i8.StoredBits;
            }
            else if (!c.SharedClassifier)
            {
                var cls = model.Classifier.Weights switch
                {
                    Float32Matrix d => new TokenTable(d.Data, d.Rows, d.Cols),
                    HalfWeights h => new TokenTable(h.Data, h.Type, h.Rows, h.Cols),
                    _ => throw new InvalidOperationException("unknown classifier storage"),
                };
                Table(w, "classifier", cls, tt);
                tableBits += w.Sections[^1].Bits;
            }
            w.Floats("rms_final", model.RmsFinal);
            for (int l = 0; l < c.Layers; l++)
            {
                var b = model.Layers[l];
                w.Floats($"layers.{l}.rms_att", b.RmsAtt);
                w.Floats($"layers.{l}.rms_ffn", b.RmsFfn);
                if (model.Bq is not null)
                {
                    w.Floats($"layers.{l}.bq", model.Bq[l]); w.Floats($"layers.{l}.bk", model.Bk![l]); w.Floats($"layers.{l}.bv", model.Bv![l]);
                }
                var lin = new[] { b.Wq, b.Wk, b.Wv, b.Wo, b.W1, b.W2, b.W3 };
                for (int i = 0; i < lin.Length; i++)
                {
                    var boxCodec = recipe.WeightTable is { } wt && lin[i].Weights is PackedE8Matrix ? new E8BoxCodec(lin[i].Weights.Cols, wt) : null;
                    linBits += WeightSection(w, $"layers.{l}.{ModelQuantizer.Names[i]}", lin[i].Weights, boxCodec);
                    linN += (long)lin[i].Out * lin[i].In;
                }
            }
            w.Finish(HeaderBytes(c, recipe, source, w.Sections, tt, tokenizer, stopIds, randomWeights, model.ClassifierFormat));
            size = w.Position + 32;
        });
        return new GqmWriteResult(size, linBits, linN, tableBits, recipe.Spec.ToString());
    }

    /// <summary>True when a spec can be quantized one tensor at a time (no calibration data, no tables fitted on the whole model).</summary>
    public static bool CanStream(QuantSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        // The kernel-native e8 tables are fitted on a sample of rotated rows read before the streaming pass.
        return !spec.Ldlq && spec.ScaleSet != ScaleSetChoice.Fitted && !spec.KvCenter && !spec.KvChannelScale && !spec.KeyQueryWeighting && !spec.KvFixedScale;
    }

    /// <summary>
    /// Quantizes a Hugging Face checkpoint one tensor at a time from its memory-mapped files into a .gqm: each linear
    /// layer is read (bf16 widened only for that tensor), rotated, encoded and written before the next is read, so the
    /// peak memory is about one float32 matrix plus the embedding table (kept at <paramref name="tables"/> precision,
    /// default: the source's). With <paramref name="classifier"/> "e8" the classifier is also written as e8 box codes
    /// (<see cref="ClassifierQuantizer"/>), encoded in chunks of rows from the 16-bit source.
    /// </summary>
    public static GqmWriteResult QuantizeStreaming(HfCheckpoint source, QuantSpec spec, string path, TokenizerBlob tokenizer,
        TableType? tables = null, int[]? stopIds = null, bool randomWeights = false, Action<int, int>? progress = null, string classifier = "source")
    {
        CheckClassifier(classifier);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (!spec.IsQuantized) throw new GossetException("--quant fp: nothing to quantize");
        spec.Validate();
        if (!CanStream(spec)) throw new GossetException("this recipe needs calibration over the whole float model; it cannot be streamed");
        var c = source.Config;
        if ((spec.Keys.Method == QuantMethod.E8 || spec.Values.Method == QuantMethod.E8) && c.KvDim % 8 != 0)
            throw new GossetException($"E8 KV quantization needs kv_dim divisible by 8 (kv_dim = {c.KvDim})");
        var recipe = FitStreamedBoxTables(source, QuantRecipe.Published(spec));
        string embName = "model.embed_tokens.weight";
        string srcType = source.DType(embName);
        var tt = tables ?? (srcType switch { "BF16" => TableType.BF16, "F16" => TableType.F16, _ => TableType.F32 });
        long linBits = 0, linN = 0, tableBits = 0, size = 0;
        string sourcePath = Path.GetFullPath(source.Directory);
        Gosset.IO.AtomicFile.Write(path, s =>
        {
            var w = new Writer(s);
            Begin(w);
            w.Add("tokenizer", 8L * tokenizer.Bytes.Length, st => st.Write(tokenizer.Bytes));
            foreach (var (name, tensor) in new[] { ("token_embedding", embName), ("classifier", "lm_head.weight") })
            {
                if (name == "classifier" && (c.SharedClassifier || classifier != "source")) continue;
                // A tied head's 8-bit classifier is the embedding table too (written once, below).
                if (name == "token_embedding" && c.SharedClassifier && classifier == "int8") continue;
                TokenTable t = SourceTable(source, tensor);
                Table(w, name, t, tt);
                tableBits += w.Sections[^1].Bits;
            }
            if (classifier == "int8")
            {
                string tensor = c.SharedClassifier ? embName : "lm_head.weight";
                TokenTable t = SourceTable(source, tensor);
                var i8 = (PackedInt8Matrix)ClassifierQuantizer.Int8Layer(c.VocabSize, c.Dim, (r, dst) => t.Row(r, dst)).Weights;
                t = null!;
                w.Add("classifier", i8.StoredBits, st => i8.WriteTo(st));
                tableBits += i8.StoredBits;
                i8 = null!;
                GC.Collect();
            }
            if (classifier == "e8")
            {
                string tensor = c.SharedClassifier ? embName : "lm_head.weight";
                TokenTable t = SourceTable(source, tensor);
                var (codec, rotation) = ClassifierQuantizer.Coding(recipe, c.Dim);
                var bw = new BitWriter();
                int chunk = 4096, cb = codec.CodeBytes;
                var buf = new byte[(long)Math.Min(chunk, c.VocabSize) * cb];
                for (int r0 = 0; r0 < c.VocabSize; r0 += chunk)
                {
                    int r1 = Math.Min(c.VocabSize, r0 + chunk);
                    ClassifierQuantizer.EncodeRows(codec, rotation, c.Dim, r0, r1, (r, dst) => t.Row(r, dst), buf);
                    for (int i = 0; i < r1 - r0; i++) codec.Pack(buf.AsSpan(i * cb, cb), bw);
                }
                t = null!;
                byte[] clsBytes = bw.ToArray();
                w.Add("classifier", bw.BitCount, st => st.Write(clsBytes));
                tableBits += bw.BitCount;
                GC.Collect();
            }
            w.Floats("rms_final", Finite(source.Read("model.norm.weight"), "model.norm.weight", source.Directory));
            // The model structure (rotations, codecs, widths) comes from the same Assemble the in-memory quantizer uses;
            // each weight is produced, written and dropped inside the callback, in layer order.
            var emptyLayers = new float[c.Layers][];
            Array.Fill(emptyLayers, Array.Empty<float>());
            int lastLayer = -1;
            ModelQuantizer.Assemble(c, [], [], [], emptyLayers, emptyLayers, recipe, calibration: false, (layer, name, codec, rotation, width) =>
            {
                if (layer != lastLayer)
                {
                    string p = $"model.layers.{layer}.";
                    w.Floats($"layers.{layer}.rms_att", Finite(source.Read(p + "input_layernorm.weight"), p + "input_layernorm.weight", source.Directory));
                    w.Floats($"layers.{layer}.rms_ffn", Finite(source.Read(p + "post_attention_layernorm.weight"), p + "post_attention_layernorm.weight", source.Directory));
                    if (c.QkvBias)
                        foreach (var b in new[] { "q", "k", "v" })
                            w.Floats($"layers.{layer}.b{b}", Finite(source.Bias(layer, b)!, p + $"self_attn.{b}_proj.bias", source.Directory));
                    lastLayer = layer;
                    progress?.Invoke(layer + 1, c.Layers);
                    // The previous layer's float matrices are garbage now; collecting here keeps the peak at about one layer.
                    GC.Collect();
                }
                var (outDim, inDim) = ModelQuantizer.Shape(c, name);
                float[] src = Finite(source.Linear(layer, name), HfCheckpoint.LinearName(layer, name), source.Directory);
                var m = QuantizeRows(spec, src, outDim, inDim, codec, rotation, width);
                src = [];
                linBits += WeightSection(w, $"layers.{layer}.{name}", m);
                linN += (long)outDim * inDim;
                return new PlaceholderWeights(outDim, width);
            });
            w.Finish(HeaderBytes(c, recipe, sourcePath, w.Sections, tt, tokenizer, stopIds, randomWeights, classifier));
            size = w.Position + 32;
        });
        return new GqmWriteResult(size, linBits, linN, tableBits, spec.ToString());
    }

    /// <summary>A [vocab][dim] table of the checkpoint at its stored precision (16-bit kept as such), checked finite.</summary>
    private static TokenTable SourceTable(HfCheckpoint source, string tensor)
    {
        var c = source.Config;
        TokenTable t = source.DType(tensor) is "BF16" or "F16"
            ? new TokenTable(source.ReadRaw16(tensor), source.DType(tensor) == "BF16" ? TableType.BF16 : TableType.F16, c.VocabSize, c.Dim)
            : new TokenTable(source.Read(tensor), c.VocabSize, c.Dim);
        CheckFinite(t, tensor, source.Directory);
        return t;
    }

    private static void CheckClassifier(string classifier)
    {
        if (!ClassifierQuantizer.Formats.Contains(classifier)) throw new GossetException($"--classifier \"{classifier}\" is not one of {string.Join(", ", ClassifierQuantizer.Formats)}");
    }

    /// <summary>
    /// The e8 box tables of a streamed checkpoint: the weight table is fitted on up to 64 evenly strided rotated rows
    /// of every linear layer of 4 evenly spaced blocks (one tensor in memory at a time), the others as without calibration.
    /// </summary>
    private static QuantRecipe FitStreamedBoxTables(HfCheckpoint source, QuantRecipe recipe)
    {
        var spec = recipe.Spec;
        var c = source.Config;
        if (!new[] { spec.Weights, spec.Activations, spec.Keys, spec.Values }.Any(t => t.Method == QuantMethod.E8Kernel)) return recipe;
        List<float[]>? rows = null;
        if (spec.Weights.Method == QuantMethod.E8Kernel)
        {
            rows = [];
            int stride = Math.Max(1, c.Layers / 4);
            var emptyLayers = new float[c.Layers][];
            Array.Fill(emptyLayers, Array.Empty<float>());
            ModelQuantizer.Assemble(c, [], [], [], emptyLayers, emptyLayers, recipe, calibration: true, (layer, name, _, rotation, width) =>
            {
                var (outDim, inDim) = ModelQuantizer.Shape(c, name);
                if (layer % stride != 0) return new PlaceholderWeights(outDim, width);
                float[] src = Finite(source.Linear(layer, name), HfCheckpoint.LinearName(layer, name), source.Directory);
                var tmp = new float[width];
                for (int r = 0; r < outDim; r += Math.Max(1, outDim / 64))
                {
                    Array.Clear(tmp);
                    src.AsSpan(r * inDim, inDim).CopyTo(tmp);
                    var row = new float[width];
                    if (rotation is null) tmp.CopyTo(row); else rotation.Apply(tmp, row);
                    rows.Add(row);
                }
                return new PlaceholderWeights(outDim, width);
            });
        }
        return ModelQuantizer.FitBoxTables(recipe, rows, c.KvDim, null);
    }

    /// <summary>One matrix quantized as <see cref="ModelQuantizer.Quantize"/> does without calibration: rows padded, rotated, encoded.</summary>
    private static PackedMatrix QuantizeRows(QuantSpec spec, float[] src, int outDim, int inDim, VectorCodec? codec, IRotation? rotation, int width)
    {
        var rows = new float[(long)outDim * width];
        Parallel.For(0, outDim, r =>
        {
            Span<float> tmp = width <= 8192 ? stackalloc float[width] : new float[width];
            tmp.Clear();
            src.AsSpan(r * inDim, inDim).CopyTo(tmp);
            if (rotation is null) tmp.CopyTo(rows.AsSpan(r * width, width));
            else rotation.Apply(tmp, rows.AsSpan(r * width, width));
        });
        if (spec.Weights.Method == QuantMethod.E8Box) return PackedE8Matrix.Quantize(rows, outDim, width);
        if (codec is null) return new Float32Matrix(rows, outDim, width);
        var codes = new byte[outDim * codec.CodeBytes];
        Parallel.For(0, outDim, o => codec.Encode(rows.AsSpan(o * width, width), codes.AsSpan(o * codec.CodeBytes, codec.CodeBytes)));
        return new CodedMatrix(codec, codes, outDim);
    }

    private sealed class PlaceholderWeights(int rows, int cols) : PackedMatrix
    {
        public override int Rows { get; } = rows;
        public override int Cols { get; } = cols;
        public override long StoredBits => 0;
        public override ReadOnlySpan<float> Row(int r, Span<float> scratch) => throw new InvalidOperationException("placeholder");
    }

    private static float[] Finite(float[] a, string name, string source)
    {
        foreach (float v in a) if (!float.IsFinite(v)) throw new InvalidFileException(source, $"tensor {name} holds NaN or infinite values (corrupt checkpoint?)");
        return a;
    }

    private static void CheckFinite(TokenTable t, string name, string source)
    {
        if (t.F32 is not null) { Finite(t.F32, name, source); return; }
        // A 16-bit value is non-finite when its exponent bits are all ones.
        ushort mask = t.Type == TableType.BF16 ? (ushort)0x7F80 : (ushort)0x7C00;
        foreach (ushort u in t.Raw16!) if ((u & mask) == mask) throw new InvalidFileException(source, $"tensor {name} holds NaN or infinite values (corrupt checkpoint?)");
    }

    /// <summary>Loads a .gqm file: the model and its tokenizer, nothing else opened.</summary>
    /// <exception cref="InvalidFileException">The file is not a valid .gqm (every offset and size is checked before allocating).</exception>
    public static (LlamaModel Model, GqmContents Contents) Load(string path)
    {
        using var fh = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long length = RandomAccess.GetLength(fh);
        Exception Bad(string why) => new InvalidFileException(path, why);
        if (length < 8 + 16 + 32) throw Bad("too short for a Gosset quantized model (.gqm)");
        Span<byte> head = stackalloc byte[8];
        RandomAccess.Read(fh, head, 0);
        if (!head[..4].SequenceEqual(Magic)) throw Bad("not a Gosset quantized model (.gqm)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(head[4..]);
        if (version != Version && version != 3)
            throw Bad(version < 3 ? $".gqm version {version} was written by an older Gosset; run quantize-model again (this build reads versions 3 and {Version})"
                : $".gqm version {version} is newer than this build reads ({Version})");
        VerifyHash(fh, length, path);
        Span<byte> tail = stackalloc byte[16];
        RandomAccess.Read(fh, tail, length - 48);
        long hoff = BinaryPrimitives.ReadInt64LittleEndian(tail), hlen = BinaryPrimitives.ReadInt64LittleEndian(tail[8..]);
        long dataEnd = length - 48;
        if (hoff < 8 || hlen <= 0 || hlen > MaxHeaderBytes || hoff > dataEnd - hlen || hoff + hlen != dataEnd) throw Bad("bad header offset or length");
        var hb = new byte[hlen];
        ReadExactly(fh, hb, hoff, path);
        Header h;
        try { h = JsonSerializer.Deserialize<Header>(hb, Json) ?? throw new JsonException("null header"); }
        catch (Exception e) when (e is JsonException or NotSupportedException or ArgumentException) { throw Bad("bad header: " + e.Message); }
        if (h.Config is null || h.Spec is null || h.Sections is null || h.Betas is not { Length: 4 } || h.Betas.Any(b => b is null)) throw Bad("bad header: fields missing");
        // JSON can null out any member of the recipe; every tensor kind must name a known method and a supported width.
        foreach (var (kind, t) in new[] { ("weights", h.Spec.Weights), ("activations", h.Spec.Activations), ("keys", h.Spec.Keys), ("values", h.Spec.Values) })
        {
            if (t is null) throw Bad($"bad header: the recipe has no {kind} entry");
            if (!Enum.IsDefined(t.Method)) throw Bad($"bad header: unknown {kind} method {(int)t.Method}");
            if (t.IsQuantized && t.Bits is < 1 or > 8) throw Bad($"bad header: {kind} use {t.Bits} bits (1 to 8 supported)");
        }
        var c = h.Config;
        c.Validate(path);
        if (!Enum.IsDefined(h.TableType)) throw Bad($"bad table type {h.TableType}");
        var map = new Dictionary<string, Section>(StringComparer.Ordinal);
        foreach (var s in h.Sections)
        {
            if (s is null || s.Name is null) throw Bad("bad section entry");
            if (s.Offset < 8 || s.Length < 0 || s.Offset > hoff - s.Length) throw Bad($"section {s.Name} lies outside the data area");
            if (!map.TryAdd(s.Name, s)) throw Bad($"section {s.Name} appears twice");
        }
        var sorted = map.Values.OrderBy(s => s.Offset).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Offset < sorted[i - 1].Offset + sorted[i - 1].Length) throw Bad($"sections {sorted[i - 1].Name} and {sorted[i].Name} overlap");
        Section Get(string name, long? exactBytes = null)
        {
            if (!map.TryGetValue(name, out var s)) throw Bad($"section {name} is missing");
            if (exactBytes is long n && s.Length != n) throw Bad($"section {name} has {s.Length} bytes, {n} expected");
            return s;
        }
        byte[] Bytes(Section s)
        {
            if (s.Length > Array.MaxLength) throw Bad($"section {s.Name} is too large");
            var b = new byte[s.Length];
            ReadExactly(fh, b, s.Offset, path);
            return b;
        }
        float[] F(string name, long count)
        {
            var s = Get(name, 4 * count);
            var a = new float[count];
            ReadExactly(fh, MemoryMarshal.AsBytes(a.AsSpan()), s.Offset, path);
            foreach (float v in a) if (!float.IsFinite(v)) throw Bad($"section {name} holds NaN or infinite values");
            return a;
        }
        TokenTable T(string name)
        {
            long n = (long)c.VocabSize * c.Dim;
            if (h.TableType == TableType.F32) return new TokenTable(F(name, n), c.VocabSize, c.Dim);
            var s = Get(name, 2 * n);
            var a = new ushort[n];
            ReadExactly(fh, MemoryMarshal.AsBytes(a.AsSpan()), s.Offset, path);
            return new TokenTable(a, h.TableType, c.VocabSize, c.Dim);
        }
        // One scratch buffer for the code sections (each is parsed into its own arrays): no second copy of the model lingers.
        byte[] scratch = [];
        ReadOnlyMemory<byte> Scratch(Section s)
        {
            if (s.Length > Array.MaxLength) throw Bad($"section {s.Name} is too large");
            if (scratch.Length < s.Length) scratch = new byte[s.Length];
            var mem = scratch.AsMemory(0, (int)s.Length);
            ReadExactly(fh, mem.Span, s.Offset, path);
            return mem;
        }
        var tokBlob = new TokenizerBlob(h.TokenizerKind ?? "", Bytes(Get("tokenizer")));
        var tokenizer = tokBlob.Open(path + " (embedded tokenizer)", c.VocabSize);
        if (h.Classifier is not (null or "source" or "e8" or "int8")) throw Bad($"bad header: unknown classifier format \"{h.Classifier}\"");
        bool clsE8 = h.Classifier == "e8", clsInt8 = h.Classifier == "int8";
        var rmsFinal = F("rms_final", c.Dim);
        var rmsAtt = Enumerable.Range(0, c.Layers).Select(l => F($"layers.{l}.rms_att", c.Dim)).ToArray();
        var rmsFfn = Enumerable.Range(0, c.Layers).Select(l => F($"layers.{l}.rms_ffn", c.Dim)).ToArray();
        float[][]? bq = null, bk = null, bv = null;
        if (c.QkvBias)
        {
            bq = Enumerable.Range(0, c.Layers).Select(l => F($"layers.{l}.bq", c.Dim)).ToArray();
            bk = Enumerable.Range(0, c.Layers).Select(l => F($"layers.{l}.bk", c.KvDim)).ToArray();
            bv = Enumerable.Range(0, c.Layers).Select(l => F($"layers.{l}.bv", c.KvDim)).ToArray();
        }
        QuantRecipe recipe;
        try { recipe = new QuantRecipe(h.Spec, h.Betas[0], h.Betas[1], h.Betas[2], h.Betas[3]) { KvAffine = h.KvAffine }.WithBoxTables(h.BoxTables); }
        catch (InvalidDataException e) { throw Bad(e.Message); }
        if (new[] { h.Spec.Weights, h.Spec.Activations, h.Spec.Keys, h.Spec.Values }.Any(t => t.Method == QuantMethod.E8Kernel)
            && (h.Spec.Weights.Method == QuantMethod.E8Kernel && recipe.WeightTable is null || h.Spec.Activations.Method == QuantMethod.E8Kernel && recipe.ActivationTable is null
                || h.Spec.Keys.Method == QuantMethod.E8Kernel && recipe.KeyTable is null || h.Spec.Values.Method == QuantMethod.E8Kernel && recipe.ValueTable is null))
            throw Bad("bad header: e8 box tables missing");
        if (h.KvAffine is not null && (h.KvAffine.Length != c.Layers || h.KvAffine.Any(a => a is not { Length: 4 } || a.Any(x => x is not null && x.Length != c.KvDim))))
            throw Bad("bad KV calibration table");
        Linear? clsLayer = null;
        if (clsE8)
        {
            try
            {
                var (codec, rotation) = ClassifierQuantizer.Coding(recipe, c.Dim);
                var s = Get("classifier");
                long need = (codec.Bits * c.VocabSize + 7) / 8;
                if (s.Length < need) throw Bad($"section classifier has {s.Length} bytes, {need} needed");
                clsLayer = ClassifierQuantizer.Layer(UnpackRows(codec, Bytes(s), c.VocabSize), codec, rotation, c.Dim);
                // Its section bytes and canonical codes (several times its packed size) are garbage now: collected before
                // the tables and layers are read, their memory is reused instead of adding to the peak.
                GC.Collect();
            }
            catch (GossetException e) when (e is not InvalidFileException) { throw Bad(e.Message); }
            catch (Exception e) when (e is InvalidDataException or ArgumentException) { throw Bad("section classifier: " + e.Message); }
        }
        if (clsInt8)
        {
            try { clsLayer = new Linear(c.Dim, PackedInt8Matrix.ReadFrom(Bytes(Get("classifier")), c.VocabSize, c.Dim)); }
            catch (InvalidDataException e) { throw Bad("section classifier: " + e.Message); }
            GC.Collect();
        }
        var emb = c.SharedClassifier && clsInt8 ? new TokenTable((PackedInt8Matrix)clsLayer!.Weights) : T("token_embedding");
        var cls = c.SharedClassifier || clsE8 || clsInt8 ? emb : T("classifier");
        LlamaModel model;
        try
        {
            int lastLayer = 0;
            model = ModelQuantizer.Assemble(c, [], [], rmsFinal, rmsAtt, rmsFfn, recipe, calibration: false, (layer, name, codec, rotation, width) =>
            {
                // The previous layer's canonical codes are garbage: collecting per layer keeps the load's peak near the model's size.
                if (layer != lastLayer) { GC.Collect(); lastLayer = layer; }
                var (outDim, _) = ModelQuantizer.Shape(c, name);
                string sname = $"layers.{layer}.{name}";
                var s = Get(sname);
                try
                {
                    if (h.Spec.Weights.Method == QuantMethod.E8Box) return PackedE8Matrix.ReadFrom(Scratch(s).Span, outDim, width);
                    if (codec is E8BoxCodec bc)
                    {
                        long needBox = (bc.Bits * outDim + 7) / 8;
                        if (s.Length < needBox) throw Bad($"section {sname} has {s.Length} bytes, {needBox} needed");
                        return PackedE8Matrix.FromCodes(UnpackRows(bc, Scratch(s), outDim), bc.Bits * outDim);
                    }
                    if (codec is null) return new Float32Matrix(F(sname, (long)outDim * width), outDim, width);
                    long need = (codec.Bits * outDim + 7) / 8;
                    if (s.Length < need) throw Bad($"section {sname} has {s.Length} bytes, {need} needed");
                    var reader = new BitReader(Scratch(s).Span);
                    var codes = new byte[(long)outDim * codec.CodeBytes];
                    for (int r = 0; r < outDim; r++)
                    {
                        var code = codes.AsSpan(r * codec.CodeBytes, codec.CodeBytes);
                        if (version == 3 && codec is IntCodec ic) UnpackIntVersion3(ic, ref reader, code); else codec.Unpack(ref reader, code);
                    }
                    return new CodedMatrix(codec, codes, outDim);
                }
                catch (InvalidDataException e) { throw Bad($"section {sname}: {e.Message}"); }
            });
        }
        catch (GossetException) { throw; }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or OverflowException)
        {
            throw Bad("inconsistent quantization header: " + e.Message);
        }
        model.SetTables(emb, ClassifierOf(cls));
        if (clsLayer is not null) model.SetClassifier(clsLayer, h.Classifier!);
        model.SetBiases(bq, bk, bv);
        int[] stops = h.StopIds is { Length: > 0 } st ? st : [tokenizer.EosId];
        return (model, new GqmContents(tokenizer, h.Source, stops, h.RandomWeights));
    }

    /// <summary>
    /// Rows written by <see cref="E8BoxCodec.PackCodes"/> read into canonical codes. Rows are fixed-rate (row r starts at
    /// bit r·codec.Bits), so chunks of rows are read on all cores, each straight into its rows.
    /// </summary>
    /// <summary>An INT row of a version-3 file, which stored each entry as the quantizer's code + 1 (never 0); version 4 stores the code (<see cref="IntCodec"/>).</summary>
    private static void UnpackIntVersion3(IntCodec codec, ref BitReader r, Span<byte> code)
    {
        int groups = codec.Quantizer.GroupCount(codec.Length);
        for (int g = 0; g < groups; g++) BinaryPrimitives.WriteUInt16LittleEndian(code[(2 * g)..], (ushort)r.Read(16));
        for (int j = 0; j < codec.Length; j++)
        {
            int v = (int)r.Read(codec.BitWidth);
            if (v == 0 || v - 1 > codec.Quantizer.MaxCode) throw new InvalidDataException($"INT code {v} at entry {j} is not a version-3 code.");
            code[2 * groups + j] = (byte)(v - 1);
        }
    }

    private static Gosset.Codes.E8BoxCodes UnpackRows(E8BoxCodec codec, ReadOnlyMemory<byte> data, int rows)
    {
        var all = new Gosset.Codes.E8BoxCodes(rows, codec.Length, codec.Table.Bits, codec.Table.BlockScales);
        InvalidDataException? error = null;
        RowParallel.For(rows, 0, (r0, r1) =>
        {
            try
            {
                var br = new BitReader(data.Span, r0 * codec.Bits);
                for (int r = r0; r < r1; r++) codec.UnpackRow(ref br, all, r);
            }
            catch (InvalidDataException e) { Interlocked.CompareExchange(ref error, e, null); }
        });
        if (error is not null) throw error;
        return all;
    }

    private static PackedMatrix ClassifierOf(TokenTable t) =>
        t.F32 is not null ? new Float32Matrix(t.F32, t.Rows, t.Cols) : t.Int8 is not null ? t.Int8 : new HalfWeights(t.Raw16!, t.Type, t.Rows, t.Cols);

    private static void ReadExactly(Microsoft.Win32.SafeHandles.SafeFileHandle fh, Span<byte> dst, long offset, string path)
    {
        while (dst.Length > 0)
        {
            int n = RandomAccess.Read(fh, dst[..Math.Min(dst.Length, 1 << 30)], offset);
            if (n <= 0) throw new InvalidFileException(path, "truncated");
            dst = dst[n..];
            offset += n;
        }
    }

    private static void VerifyHash(Microsoft.Win32.SafeHandles.SafeFileHandle fh, long length, string path)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[1 << 20];
        long pos = 0, end = length - 32;
        while (pos < end)
        {
            int n = RandomAccess.Read(fh, buf.AsSpan(0, (int)Math.Min(buf.Length, end - pos)), pos);
            if (n <= 0) throw new InvalidFileException(path, "truncated");
            hash.AppendData(buf, 0, n);
            pos += n;
        }
        Span<byte> stored = stackalloc byte[32];
        RandomAccess.Read(fh, stored, end);
        if (!hash.GetHashAndReset().AsSpan().SequenceEqual(stored)) throw new InvalidFileException(path, "checksum mismatch: the file is corrupt or truncated");
    }
}
