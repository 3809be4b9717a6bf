using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Gosset.Llm.Loading;

/// <summary>
/// Reads llama2.c checkpoints: the legacy version 0 (7 int32 header, negative vocab size = separate
/// classifier, legacy RoPE tables after rms_final that are skipped) and the version 1 "ak42" export.
/// </summary>
public static class Llama2cLoader
{
    /// <summary>Magic number of llama2.c export versions ≥ 1 ("ak42" little-endian).</summary>
    public const uint Magic = 0x616b3432;

    /// <summary>Loads a llama2.c checkpoint (version 0 or 1), checking its size against its header.</summary>
    /// <exception cref="InvalidFileException">The file is not a llama2.c checkpoint, is truncated, or holds non-finite values.</exception>
    public static LlamaWeights Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"File not found: {path}", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        long length = fs.Length;
        if (length < 28) throw new InvalidFileException(path, $"only {length} bytes; too short for a llama2.c checkpoint");
        Span<byte> head = stackalloc byte[36];
        ReadExactly(fs, head[..(int)Math.Min(36, length)], path);
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(head);
        if (magic == Magic)
        {
            int version = BinaryPrimitives.ReadInt32LittleEndian(head[4..]);
            if (version != 1)
                throw new InvalidFileException(path, $"llama2.c export version {version} is not supported (only 0 and 1; version 2 is llama2.c's own int8 format)");
            return LoadV1(fs, path, head, length);
        }
        return LoadV0(fs, path, head, length);
    }

    private static LlamaConfig ReadHeader(ReadOnlySpan<byte> h, string path, out bool shared, bool v0)
    {
        int dim = BinaryPrimitives.ReadInt32LittleEndian(h);
        int hidden = BinaryPrimitives.ReadInt32LittleEndian(h[4..]);
        int layers = BinaryPrimitives.ReadInt32LittleEndian(h[8..]);
        int heads = BinaryPrimitives.ReadInt32LittleEndian(h[12..]);
        int kvHeads = BinaryPrimitives.ReadInt32LittleEndian(h[16..]);
        int vocab = BinaryPrimitives.ReadInt32LittleEndian(h[20..]);
        int seq = BinaryPrimitives.ReadInt32LittleEndian(h[24..]);
        shared = vocab > 0;
        // v0 marks a separate classifier with a negative vocab; int.MinValue has no absolute value
        if (v0 && vocab < 0) vocab = vocab == int.MinValue ? 0 : -vocab;
        var c = new LlamaConfig(dim, hidden, layers, heads, kvHeads, vocab, seq, shared);
        c.Validate(path);
        // LlamaWeights allocates one array per tensor: each must fit an array (products in 64 bits)
        long d = c.Dim, largest = Math.Max(Math.Max(d * d, (long)c.HiddenDim * d), Math.Max((long)c.KvDim * d, (long)c.VocabSize * d));
        if (largest > Array.MaxLength)
            throw new InvalidFileException(path, $"a tensor of {largest} entries (dim {c.Dim}, hidden {c.HiddenDim}, vocab {c.VocabSize}) does not fit an array");
        return c;
    }

    private static LlamaWeights LoadV0(FileStream fs, string path, ReadOnlySpan<byte> head, long length)
    {
        var c = ReadHeader(head, path, out bool shared, v0: true);
        c = c with { SharedClassifier = shared };
        long ropeFloats = 2L * c.SeqLen * (c.HeadSize / 2);
        long expected = 28 + 4 * (c.ParameterCount + ropeFloats);
        if (length != expected)
            throw new InvalidFileException(path, length < expected
                ? $"truncated: {length} bytes, the header (dim {c.Dim}, {c.Layers} layers, vocab {c.VocabSize}) needs {expected}"
                : $"{length} bytes, the header (dim {c.Dim}, {c.Layers} layers, vocab {c.VocabSize}) needs {expected}; not a llama2.c v0 checkpoint?");
        fs.Position = 28;
        var w = new LlamaWeights(c);
        ReadFloats(fs, w.TokenEmbedding, path);
        ReadAll(fs, w.RmsAtt, path); ReadAll(fs, w.Wq, path); ReadAll(fs, w.Wk, path); ReadAll(fs, w.Wv, path); ReadAll(fs, w.Wo, path);
        ReadAll(fs, w.RmsFfn, path); ReadAll(fs, w.W1, path); ReadAll(fs, w.W2, path); ReadAll(fs, w.W3, path);
        ReadFloats(fs, w.RmsFinal, path);
        fs.Position += 4 * ropeFloats; // legacy freq_cis_real and freq_cis_imag tables
        if (!shared) ReadFloats(fs, w.Classifier, path);
        w.CheckFinite(path);
        return w;
    }

    private static LlamaWeights LoadV1(FileStream fs, string path, ReadOnlySpan<byte> head, long length)
    {
        if (length < 256) throw new InvalidFileException(path, "truncated: the 256-byte v1 header is incomplete");
        fs.Position = 8;
        Span<byte> h = stackalloc byte[29];
        ReadExactly(fs, h, path);
        var c = ReadHeader(h, path, out _, v0: false);
        if (h[28] > 1) throw new InvalidFileException(path, $"shared-classifier flag is {h[28]}, expected 0 or 1");
        bool shared = h[28] != 0;
        c = c with { SharedClassifier = shared };
        long expected = 256 + 4 * c.ParameterCount;
        if (length != expected)
            throw new InvalidFileException(path, length < expected
                ? $"truncated: {length} bytes, the header needs {expected}"
                : $"{length} bytes, the header needs {expected}; not a llama2.c v1 checkpoint?");
        fs.Position = 256;
        var w = new LlamaWeights(c);
        ReadAll(fs, w.RmsAtt, path); ReadAll(fs, w.RmsFfn, path); ReadFloats(fs, w.RmsFinal, path);
        ReadFloats(fs, w.TokenEmbedding, path);
        ReadAll(fs, w.Wq, path); ReadAll(fs, w.Wk, path); ReadAll(fs, w.Wv, path); ReadAll(fs, w.Wo, path);
        ReadAll(fs, w.W1, path); ReadAll(fs, w.W2, path); ReadAll(fs, w.W3, path);
        if (!shared) ReadFloats(fs, w.Classifier, path);
        w.CheckFinite(path);
        return w;
    }

    private static void ReadAll(FileStream fs, float[][] arrays, string path)
    {
        foreach (var a in arrays) ReadFloats(fs, a, path);
    }

    private static void ReadFloats(FileStream fs, float[] a, string path)
    {
        ReadExactly(fs, MemoryMarshal.AsBytes(a.AsSpan()), path);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
    }

    private static void ReadExactly(FileStream fs, Span<byte> dst, string path)
    {
        try { fs.ReadExactly(dst); }
        catch (EndOfStreamException) { throw new InvalidFileException(path, "truncated checkpoint"); }
    }

    /// <summary>Writes weights as a llama2.c version 1 checkpoint (atomically).</summary>
    public static void SaveV1(LlamaWeights w, string path)
    {
        ArgumentNullException.ThrowIfNull(w);
        var c = w.Config;
        Gosset.IO.AtomicFile.Write(path, s =>
        {
            var header = new byte[256];
            BinaryPrimitives.WriteUInt32LittleEndian(header, Magic);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), 1);
            int[] hp = [c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KvHeads, c.VocabSize, c.SeqLen];
            for (int i = 0; i < hp.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8 + 4 * i), hp[i]);
            header[36] = c.SharedClassifier ? (byte)1 : (byte)0;
            s.Write(header);
            void W(float[] a) => s.Write(MemoryMarshal.AsBytes(a.AsSpan()));
            void WA(float[][] a) { foreach (var x in a) W(x); }
            WA(w.RmsAtt); WA(w.RmsFfn); W(w.RmsFinal); W(w.TokenEmbedding);
            WA(w.Wq); WA(w.Wk); WA(w.Wv); WA(w.Wo); WA(w.W1); WA(w.W2); WA(w.W3);
            if (!c.SharedClassifier) W(w.Classifier);
        });
    }
}
