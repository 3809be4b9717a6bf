using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Gosset.IO;
using Microsoft.Win32.SafeHandles;

namespace Gosset.Llm.Loading;

/// <summary>
/// An opened Hugging Face checkpoint folder: the parsed config.json and its memory-mapped safetensors files.
/// Every tensor the configuration implies is checked (present, shape, dtype) when the folder is opened, before
/// anything is allocated; tensors are then read one at a time, so a caller can stream a model larger than RAM.
/// Matrices come back in the engine's layout (llama2.c RoPE pair order for the query and key rows).
/// </summary>
public sealed class HfCheckpoint : IDisposable
{
    private readonly List<SafeTensorsFile> _files = new();
    private readonly Dictionary<string, (SafeTensorsFile File, SafeTensorInfo Info, long DataStart)> _byName = new(StringComparer.Ordinal);

    private HfCheckpoint(string dir, LlamaConfig config)
    {
        Directory = dir;
        Config = config;
    }

    /// <summary>The checkpoint folder.</summary>
    public string Directory { get; }

    /// <summary>The model's hyper-parameters.</summary>
    public LlamaConfig Config { get; private set; }

    /// <summary>Opens a folder (or a file inside it) and checks every tensor the configuration needs.</summary>
    /// <exception cref="InvalidFileException">config.json or the safetensors files do not describe a supported model.</exception>
    public static HfCheckpoint Open(string path)
    {
        string dir = System.IO.Directory.Exists(path) ? path : System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        string configPath = System.IO.Path.Combine(dir, "config.json");
        if (!File.Exists(configPath)) throw new InvalidFileException(dir, "no config.json beside the safetensors files");
        var parsed = HfConfig.Read(configPath);
        var files = System.IO.Directory.GetFiles(dir, "*.safetensors").OrderBy(f => f, StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new InvalidFileException(dir, "no *.safetensors files");
        var ck = new HfCheckpoint(dir, parsed.Config);
        try
        {
            foreach (var f in files)
            {
                var st = SafeTensorsFile.Open(f);
                ck._files.Add(st);
                long dataStart = 8 + HeaderLength(f);
                foreach (var t in st.Tensors)
                    if (!ck._byName.TryAdd(t.Name, (st, t, dataStart)))
                        throw new InvalidFileException(f, $"tensor {t.Name} appears in two safetensors files");
            }
            bool hasHead = ck._byName.ContainsKey("lm_head.weight");
            bool shared = parsed.TieWordEmbeddings ?? !hasHead;
            if (!shared && !hasHead)
                throw new InvalidFileException(configPath, "tie_word_embeddings is false but the checkpoint has no lm_head.weight");
            ck.Config = parsed.Config with { SharedClassifier = shared };
            ck.CheckTensors();
            return ck;
        }
        catch
        {
            ck.Dispose();
            throw;
        }
    }

    private static long HeaderLength(string file)
    {
        Span<byte> b = stackalloc byte[8];
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read);
        fs.ReadExactly(b);
        return (long)BinaryPrimitives.ReadUInt64LittleEndian(b); // SafeTensorsFile.Open has bounded it by the file length
    }

    /// <summary>Every tensor name the configuration implies, with its expected shape.</summary>
    public IEnumerable<(string Name, long[] Shape)> ExpectedTensors()
    {
        var c = Config;
        long d = c.Dim, h = c.HiddenDim, kv = c.KvDim, v = c.VocabSize;
        yield return ("model.embed_tokens.weight", [v, d]);
        for (int l = 0; l < c.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            yield return (p + "input_layernorm.weight", [d]);
            yield return (p + "self_attn.q_proj.weight", [d, d]);
            yield return (p + "self_attn.k_proj.weight", [kv, d]);
            yield return (p + "self_attn.v_proj.weight", [kv, d]);
            if (c.QkvBias)
            {
                yield return (p + "self_attn.q_proj.bias", [d]);
                yield return (p + "self_attn.k_proj.bias", [kv]);
                yield return (p + "self_attn.v_proj.bias", [kv]);
            }
            yield return (p + "self_attn.o_proj.weight", [d, d]);
            yield return (p + "post_attention_layernorm.weight", [d]);
            yield return (p + "mlp.gate_proj.weight", [h, d]);
            yield return (p + "mlp.down_proj.weight", [d, h]);
            yield return (p + "mlp.up_proj.weight", [h, d]);
        }
        yield return ("model.norm.weight", [d]);
        if (!c.SharedClassifier) yield return ("lm_head.weight", [v, d]);
    }

    private void CheckTensors()
    {
        foreach (var (name, shape) in ExpectedTensors())
        {
            if (!_byName.TryGetValue(name, out var e)) throw new InvalidFileException(Directory, $"tensor {name} is missing");
            if (!e.Info.Shape.SequenceEqual(shape))
                throw new InvalidFileException(e.File.Path, $"tensor {name} has shape {e.Info.ShapeText}, expected [{string.Join(", ", shape)}]");
            if (e.Info.DType is not ("F32" or "F16" or "BF16" or "F64"))
                throw new InvalidFileException(e.File.Path, $"tensor {name}: dtype {e.Info.DType} is not supported (F32, F16, BF16, F64)");
        }
        // Biases the configuration does not expect would be silently ignored: refuse them.
        foreach (var name in _byName.Keys)
            if (name.EndsWith(".bias", StringComparison.Ordinal) && !(Config.QkvBias && name.Contains("self_attn.", StringComparison.Ordinal) && !name.Contains("o_proj", StringComparison.Ordinal)))
                throw new InvalidFileException(Directory, $"tensor {name}: this engine has no such bias for model_type \"{Config.Architecture}\" (attention_bias / mlp_bias are not supported)");
    }

    /// <summary>The dtype of a tensor as stored ("F32", "F16", "BF16", "F64").</summary>
    public string DType(string name) => Entry(name).Info.DType;

    /// <summary>Bytes of the tensors the model uses, as stored.</summary>
    public long StoredBytes => ExpectedTensors().Sum(t => Entry(t.Name).Info.End - Entry(t.Name).Info.Begin);

    private (SafeTensorsFile File, SafeTensorInfo Info, long DataStart) Entry(string name) =>
        _byName.TryGetValue(name, out var e) ? e : throw new InvalidFileException(Directory, $"tensor {name} is missing");

    /// <summary>A tensor converted to float32 (C order).</summary>
    public float[] Read(string name)
    {
        var e = Entry(name);
        var a = new float[e.Info.ElementCount];
        Read(name, a);
        return a;
    }

    /// <summary>
    /// A tensor converted to float32 into <paramref name="dst"/>. Read with positioned reads, not through the memory map:
    /// mapped pages would stay in this process's resident set and a streamed model would end up resident in full.
    /// </summary>
    public void Read(string name, Span<float> dst)
    {
        var e = Entry(name);
        if (dst.Length != e.Info.ElementCount) throw new ArgumentException($"destination has {dst.Length} entries, tensor {name} has {e.Info.ElementCount}");
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        using SafeFileHandle h = File.OpenHandle(e.File.Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long off = e.DataStart + e.Info.Begin;
        string dt = e.Info.DType;
        if (dt == "F32") { ReadAt(h, MemoryMarshal.AsBytes(dst), off, e.File.Path, name); return; }
        int item = dt == "F64" ? 8 : 2;
        const int chunk = 1 << 16;
        var buf = System.Buffers.ArrayPool<byte>.Shared.Rent(chunk * item);
        try
        {
            for (int i = 0; i < dst.Length; i += chunk)
            {
                int n = Math.Min(chunk, dst.Length - i);
                var b = buf.AsSpan(0, n * item);
                ReadAt(h, b, off + (long)i * item, e.File.Path, name);
                var d = dst.Slice(i, n);
                switch (dt)
                {
                    case "BF16": Inference.Half16.ToSingle(MemoryMarshal.Cast<byte, ushort>(b), d, Inference.TableType.BF16); break;
                    case "F16": Inference.Half16.ToSingle(MemoryMarshal.Cast<byte, ushort>(b), d, Inference.TableType.F16); break;
                    default:
                        var f64 = MemoryMarshal.Cast<byte, double>(b);
                        for (int j = 0; j < n; j++) d[j] = (float)f64[j];
                        break;
                }
            }
        }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(buf); }
    }

    private static void ReadAt(SafeFileHandle h, Span<byte> dst, long off, string path, string name)
    {
        while (dst.Length > 0)
        {
            int n = RandomAccess.Read(h, dst[..Math.Min(dst.Length, 1 << 30)], off);
            if (n <= 0) throw new InvalidFileException(path, $"tensor {name} is truncated");
            dst = dst[n..];
            off += n;
        }
    }

    /// <summary>The raw 16-bit values of an F16 or BF16 tensor (no conversion).</summary>
    public ushort[] ReadRaw16(string name)
    {
        var e = Entry(name);
        if (e.Info.DType is not ("F16" or "BF16")) throw new InvalidOperationException($"{name} is {e.Info.DType}, not a 16-bit tensor");
        var a = new ushort[e.Info.ElementCount];
        using SafeFileHandle h = File.OpenHandle(e.File.Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        ReadAt(h, MemoryMarshal.AsBytes(a.AsSpan()), e.DataStart + e.Info.Begin, e.File.Path, name);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        return a;
    }

    /// <summary>HF tensor name of a linear layer ("wq" … "w3").</summary>
    public static string LinearName(int layer, string name) => $"model.layers.{layer}." + name switch
    {
        "wq" => "self_attn.q_proj.weight", "wk" => "self_attn.k_proj.weight", "wv" => "self_attn.v_proj.weight",
        "wo" => "self_attn.o_proj.weight", "w1" => "mlp.gate_proj.weight", "w2" => "mlp.down_proj.weight",
        "w3" => "mlp.up_proj.weight", _ => throw new ArgumentException($"unknown linear layer {name}", nameof(name)),
    };

    /// <summary>A linear layer's float32 weights [out][in] in the engine's row order (q and k rows un-permuted).</summary>
    public float[] Linear(int layer, string name)
    {
        var a = Read(LinearName(layer, name));
        if (name == "wq") HuggingFaceLoader.Unpermute(a, Config.Heads, Config.HeadSize, Config.Dim);
        if (name == "wk") HuggingFaceLoader.Unpermute(a, Config.KvHeads, Config.HeadSize, Config.Dim);
        return a;
    }

    /// <summary>Query, key or value bias ("q", "k", "v") in the engine's order, or null when the model has none.</summary>
    public float[]? Bias(int layer, string which)
    {
        if (!Config.QkvBias) return null;
        var a = Read($"model.layers.{layer}.self_attn.{which}_proj.bias");
        if (which == "q") HuggingFaceLoader.Unpermute(a, Config.Heads, Config.HeadSize, 1);
        if (which == "k") HuggingFaceLoader.Unpermute(a, Config.KvHeads, Config.HeadSize, 1);
        return a;
    }

    /// <summary>Releases the memory maps.</summary>
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
    }
}
