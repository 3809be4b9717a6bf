using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Gosset.Coding;
using Gosset.IO;
using Gosset.Kernels;
using Gosset.Llm.Loading;
using Gosset.Llm.Tokenization;
using Gosset.Matrix;
using Gosset.Rotations;
using Gosset.Util;

namespace Gosset.Cli.Fuzzing;

/// <summary>How a reader answered one fuzz case.</summary>
internal enum FuzzOutcome
{
    /// <summary>The file was read (and decoded) without error.</summary>
    Accepted,
    /// <summary>The format's typed error (<see cref="GossetException"/> or <see cref="InvalidDataException"/>).</summary>
    TypedError,
    /// <summary>Another exception that the CLI still maps to exit 2 (ArgumentException, IOException): a missing check.</summary>
    UntypedError,
    /// <summary>An exception the CLI does not catch: the process would abort.</summary>
    Crash,
}

/// <summary>One generated input: the bytes of a file, what produced them, and the reader's extra argument.</summary>
/// <param name="Reader">Reader name.</param>
/// <param name="Kind">"hostile:FIELD" (structured, checksums valid) or "mutation" (random bytes).</param>
/// <param name="Bytes">File content.</param>
/// <param name="Arg">Reader argument (the vocabulary size a tokenizer is loaded with).</param>
internal sealed record FuzzCase(string Reader, string Kind, byte[] Bytes, int Arg = 0);

/// <summary>What one case did.</summary>
internal sealed record FuzzResult(FuzzCase Case, FuzzOutcome Outcome, double Seconds, long AllocatedBytes, string? Message)
{
    /// <summary>Time limit per case in the suite and in <c>gosset fuzz</c>.</summary>
    public const double MaxSeconds = 2.0;
    /// <summary>Allocation limit per case.</summary>
    public const long MaxAllocated = 400L << 20;

    /// <summary>A finding: anything but a correct answer or the typed error within the limits.</summary>
    public bool IsFinding => Outcome is FuzzOutcome.UntypedError or FuzzOutcome.Crash || Seconds > MaxSeconds || AllocatedBytes > MaxAllocated;
}

/// <summary>
/// One file format under fuzz: small valid files, structured hostile variants (one header field
/// at a time or a few together, checksums recomputed so the reader gets past them), and how the
/// CLI opens it.
/// </summary>
internal abstract class FuzzReader
{
    /// <summary>Short name (also the prefix of saved reproducers).</summary>
    public abstract string Name { get; }
    /// <summary>File extension the CLI dispatches on.</summary>
    public abstract string Extension { get; }
    /// <summary>Header fields the structured generator attacks.</summary>
    public abstract IReadOnlyList<string> Fields { get; }
    /// <summary>A small valid file.</summary>
    public abstract byte[] Valid(ref SplitMix64 rng);
    /// <summary>A hostile variant attacking <paramref name="field"/>.</summary>
    public abstract FuzzCase Hostile(ref SplitMix64 rng, string field);
    /// <summary>Recomputes the format's checksum, if it has one.</summary>
    public virtual byte[] Fix(byte[] b) => b;
    /// <summary>The reader argument for a valid file.</summary>
    public virtual int DefaultArg(byte[] valid) => 0;
    /// <summary>Reads the file as the CLI does (decoding included).</summary>
    public abstract void Open(string path, int arg);

    /// <summary>A structured hostile case on a random field.</summary>
    public FuzzCase Hostile(ref SplitMix64 rng) => Hostile(ref rng, Fields[Fuzz.Pick(ref rng, Fields.Count)]);

    /// <summary>Random byte-level mutations of a valid file (half of them with the checksum recomputed).</summary>
    public FuzzCase Mutation(ref SplitMix64 rng)
    {
        byte[] v = Valid(ref rng);
        int arg = DefaultArg(v);
        byte[] b = Fuzz.Mutate(ref rng, v);
        bool fix = (rng.NextUInt64() & 1) == 0;
        return new FuzzCase(Name, fix ? "mutation+checksum" : "mutation", fix ? Fix(b) : b, arg);
    }
}

/// <summary>Helpers shared by the readers under fuzz.</summary>
internal static class Fuzz
{
    public static int Pick(ref SplitMix64 rng, int n) => (int)(rng.NextUInt64() % (ulong)n);

    public static T Pick<T>(ref SplitMix64 rng, IReadOnlyList<T> items) => items[Pick(ref rng, items.Count)];

    /// <summary>Integers that break size arithmetic: zero, negatives, limits, overflowing products, near misses.</summary>
    public static int HostileInt(ref SplitMix64 rng, int current) => Pick(ref rng, 18) switch
    {
        0 => 0, 1 => -1, 2 => int.MinValue, 3 => int.MaxValue, 4 => int.MaxValue - 7, 5 => 1 << 20, 6 => 1 << 24,
        7 => 1 << 28, 8 => 1 << 30, 9 => 2001, 10 => 65536, 11 => current + 1, 12 => current - 1,
        13 => unchecked(current * 2), 14 => unchecked(current * 8), 15 => unchecked(-current), 16 => 46341, // 46341² > int.MaxValue
        _ => (int)rng.NextUInt64(),
    };

    public static byte HostileByte(ref SplitMix64 rng, byte current) => Pick(ref rng, 8) switch
    {
        0 => 0, 1 => 1, 2 => 2, 3 => 3, 4 => 255, 5 => (byte)(current + 1), 6 => (byte)(current - 1), _ => (byte)rng.NextUInt64(),
    };

    public static float HostileFloat(ref SplitMix64 rng) => Pick(ref rng, 8) switch
    {
        0 => float.NaN, 1 => float.PositiveInfinity, 2 => float.NegativeInfinity, 3 => -1f, 4 => 0f, 5 => float.MaxValue,
        6 => 1e-40f, _ => BitConverter.Int32BitsToSingle((int)rng.NextUInt64()),
    };

    /// <summary>Overwrites a field of 1, 2, 4 or 8 bytes at <paramref name="offset"/> with a hostile value.</summary>
    public static void Smash(ref SplitMix64 rng, byte[] b, int offset, int size, bool isFloat = false)
    {
        if (offset < 0 || offset + size > b.Length) return;
        var s = b.AsSpan(offset, size);
        switch (size)
        {
            case 1: s[0] = HostileByte(ref rng, s[0]); break;
            case 2: BinaryPrimitives.WriteUInt16LittleEndian(s, Pick(ref rng, 4) switch { 0 => 0, 1 => 1, 2 => ushort.MaxValue, _ => (ushort)rng.NextUInt64() }); break;
            case 4 when isFloat: BinaryPrimitives.WriteSingleLittleEndian(s, HostileFloat(ref rng)); break;
            case 4: BinaryPrimitives.WriteInt32LittleEndian(s, HostileInt(ref rng, BinaryPrimitives.ReadInt32LittleEndian(s))); break;
            default: BinaryPrimitives.WriteUInt64LittleEndian(s, Pick(ref rng, 3) switch { 0 => 0, 1 => ulong.MaxValue, _ => rng.NextUInt64() }); break;
        }
    }

    /// <summary>1–4 random edits: bit flips, random bytes, insertions, deletions, truncation, duplication.</summary>
    public static byte[] Mutate(ref SplitMix64 rng, byte[] v)
    {
        var b = new List<byte>(v);
        int edits = 1 + Pick(ref rng, 4);
        for (int e = 0; e < edits; e++)
        {
            int n = b.Count;
            int at = n == 0 ? 0 : Pick(ref rng, n);
            switch (Pick(ref rng, 7))
            {
                case 0 when n > 0: b[at] ^= (byte)(1 << Pick(ref rng, 8)); break;
                case 1 when n > 0: b[at] = (byte)rng.NextUInt64(); break;
                case 2: for (int k = Pick(ref rng, 16); k >= 0; k--) b.Insert(at, (byte)rng.NextUInt64()); break;
                case 3 when n > 0: b.RemoveRange(at, Math.Min(n - at, 1 + Pick(ref rng, 16))); break;
                case 4 when n > 0: b.RemoveRange(at, n - at); break;
                case 5 when n > 0: b.InsertRange(at, b.GetRange(at, Math.Min(n - at, 1 + Pick(ref rng, 64)))); break;
                case 6 when n >= 4: BinaryPrimitives.WriteInt32LittleEndian(CollectionsMarshalSpan(b, at & ~3, 4), HostileInt(ref rng, 0)); break;
                default: break;
            }
        }
        return b.ToArray();
    }

    private static Span<byte> CollectionsMarshalSpan(List<byte> b, int at, int n)
    {
        at = Math.Min(at, b.Count - n);
        return System.Runtime.InteropServices.CollectionsMarshal.AsSpan(b).Slice(at, n);
    }

    public static float[] Gaussian(ref SplitMix64 rng, int n)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)PortableNormal.Next(ref rng);
        return x;
    }
}

/// <summary>.npy: header dict text (descr, fortran_order, shape), version, header length, data length.</summary>
internal sealed class NpyFuzz : FuzzReader
{
    public override string Name => "npy";
    public override string Extension => ".npy";
    public override IReadOnlyList<string> Fields { get; } = ["descr", "fortran_order", "shape", "keys", "version", "header_length", "data_length", "depth"];

    public override byte[] Valid(ref SplitMix64 rng)
    {
        int r = 1 + Fuzz.Pick(ref rng, 9), c = 1 + Fuzz.Pick(ref rng, 5);
        string descr = Fuzz.Pick(ref rng, ["<f4", "<f8", ">f4", ">f8"]);
        return Build(1, descr, Fuzz.Pick(ref rng, 2) == 0 ? "False" : "True", $"({r}, {c})", (long)r * c * (descr[2] - '0'), ref rng);
    }

    private static byte[] Build(int major, string descr, string fortran, string shape, long dataBytes, ref SplitMix64 rng, string? dictOverride = null, long? headerLenOverride = null)
    {
        string dict = dictOverride ?? $"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}";
        int prefix = major == 1 ? 10 : 12;
        int total = (prefix + Encoding.UTF8.GetByteCount(dict) + 1 + 63) / 64 * 64;
        var ms = new MemoryStream();
        ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0]);
        long hl = headerLenOverride ?? total - prefix;
        Span<byte> len = stackalloc byte[4];
        if (major == 1) { BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)hl); ms.Write(len[..2]); }
        else { BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)hl); ms.Write(len); }
        byte[] text = Encoding.UTF8.GetBytes(dict);
        ms.Write(text);
        while (ms.Length < total - 1) ms.WriteByte((byte)' ');
        ms.WriteByte((byte)'\n');
        long n = Math.Clamp(dataBytes, 0, 1 << 16);
        Span<byte> f = stackalloc byte[4];
        for (long i = 0; i < n; i += 4)
        {
            BinaryPrimitives.WriteSingleLittleEndian(f, (float)PortableNormal.Next(ref rng));
            ms.Write(f[..(int)Math.Min(4, n - i)]);
        }
        return ms.ToArray();
    }

    public override FuzzCase Hostile(ref SplitMix64 rng, string field)
    {
        string descr = "<f4", fortran = "False", shape = "(3, 2)";
        int major = 1;
        long data = 24;
        string? dict = null;
        long? headerLen = null;
        switch (field)
        {
            case "descr": descr = Fuzz.Pick(ref rng, ["<f2", "|b1", "<i4", "O", "<f16", "", "<f4'", "\u00e9"]); break;
            case "fortran_order": fortran = Fuzz.Pick(ref rng, ["None", "1", "'x'", "(1,)", "Tru"]); break;
            case "shape":
                shape = Fuzz.Pick(ref rng, ["(-1,)", "(2147483648,)", "(2147483647, 2147483647)", "(0,)", "(0, 5)", "()", "(1, 2, 3)",
                    "(99999999999999999999999,)", "[3, 2]", "(3, 'a')", "(46341, 46341)", "(1073741824, 2)", "(3,,)"]);
                data = Fuzz.Pick(ref rng, 2) == 0 ? 24 : 0;
                break;
            case "keys":
                dict = Fuzz.Pick(ref rng, ["{'descr': '<f4', 'shape': (3, 2), }", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), 'x': 1}",
                    "{'descr': '<f4', 'descr': '<f4', 'shape': (3, 2)}", "{}", "[]", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2)", "{1: 2}"]);
                break;
            case "version": major = Fuzz.Pick(ref rng, [0, 2, 3, 4, 255]); break;
            case "header_length": headerLen = Fuzz.Pick(ref rng, [0L, 1L, 65535L, 9L, 4294967295L, 1L << 31, 1L << 20]); major = headerLen > 65535 ? 2 : 1; break;
            case "data_length": data = Fuzz.Pick(ref rng, [0L, 23L, 25L, 48L, 1L << 16]); break;
            default: // depth bomb
                int d = Fuzz.Pick(ref rng, [9, 100, 5000, 100000]);
                shape = new string('(', d) + "1," + new string(')', d);
                if (Fuzz.Pick(ref rng, 2) == 0) shape = new string('[', d) + new string(']', d);
                break;
        }
        return new FuzzCase(Name, "hostile:" + field, Build(major, descr, fortran, shape, data, ref rng, dict, headerLen));
    }

    public override void Open(string path, int arg) => MatrixFiles.Read(path);
}

/// <summary>safetensors: header length, JSON structure and depth, dtype, shape, data_offsets, data length.</summary>
internal sealed class SafeTensorsFuzz : FuzzReader
{
    public override string Name => "safetensors";
    public override string Extension => ".safetensors";
    public override IReadOnlyList<string> Fields { get; } = ["header_length", "dtype", "shape", "data_offsets", "json", "depth", "metadata", "data_length", "utf8"];

    public override byte[] Valid(ref SplitMix64 rng)
    {
        int r = 1 + Fuzz.Pick(ref rng, 6), c = 1 + Fuzz.Pick(ref rng, 6);
        string dtype = Fuzz.Pick(ref rng, ["F32", "F16", "BF16", "F64"]);
        int size = dtype == "F64" ? 8 : dtype == "F32" ? 4 : 2;
        return Build($"{{\"w\":{{\"dtype\":\"{dtype}\",\"shape\":[{r},{c}],\"data_offsets\":[0,{r * c * size}]}}}}", r * c * size, ref rng);
    }

    private static byte[] Build(string json, long dataBytes, ref SplitMix64 rng, ulong? lengthOverride = null, byte[]? rawHeader = null)
    {
        byte[] h = rawHeader ?? Encoding.UTF8.GetBytes(json);
        var ms = new MemoryStream();
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, lengthOverride ?? (ulong)h.Length);
        ms.Write(len);
        ms.Write(h);
        long n = Math.Clamp(dataBytes, 0, 1 << 16);
        for (long i = 0; i < n; i++) ms.WriteByte((byte)(rng.NextUInt64() & 0x3F)); // small exponents: finite values
        return ms.ToArray();
    }

    public override FuzzCase Hostile(ref SplitMix64 rng, string field)
    {
        string dtype = "F32", shape = "[3,2]", offsets = "[0,24]";
        long data = 24;
        string? json = null;
        ulong? len = null;
        byte[]? raw = null;
        switch (field)
        {
            case "header_length": len = Fuzz.Pick(ref rng, [0UL, 1UL, ulong.MaxValue, 1UL << 40, 100UL << 20, (100UL << 20) + 1, 70UL, 71UL]); break;
            case "dtype": dtype = Fuzz.Pick(ref rng, ["X", "", "I8", "BOOL", "F8_E4M3", "f32", "F32 "]); break;
            case "shape":
                shape = Fuzz.Pick(ref rng, ["[-1]", "[4611686018427387904,4]", "[1099511627776,1099511627776]", "[]", "[0,5]", "[2147483648,1]",
                    "[3.5,2]", "[\"3\",2]", "[3,2,1,1,1,1,1,1,1]", "{}", "[9223372036854775807,2]", "[46341,46341]"]);
                break;
            case "data_offsets":
                offsets = Fuzz.Pick(ref rng, ["[0,1099511627776]", "[-1,23]", "[24,0]", "[1,25]", "[0]", "[0,24,48]", "[0.0,24.0]",
                    "[9223372036854775807,9223372036854775807]", "[0,9223372036854775807]", "\"0,24\""]);
                break;
            case "json":
                json = Fuzz.Pick(ref rng, ["[]", "1", "null", "{\"w\":1}", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]},\"w\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]}}",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]},\"b\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]}}",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},\"b\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,20]}}",
                    "{", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]}", "{\"w\":{}}"]);
                break;
            case "depth":
                int d = Fuzz.Pick(ref rng, [9, 65, 1000, 100000]);
                json = Fuzz.Pick(ref rng, 2) == 0
                    ? "{\"w\":" + new string('[', d) + new string(']', d) + "}"
                    : string.Concat(Enumerable.Repeat("{\"a\":", d)) + "1" + new string('}', d);
                break;
            case "metadata":
                json = Fuzz.Pick(ref rng, ["{\"__metadata__\":{\"a\":1}}", "{\"__metadata__\":[]}", "{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}", "{\"__metadata__\":\"x\"}"]);
                data = 0;
                break;
            case "data_length": data = Fuzz.Pick(ref rng, [0L, 23L, 25L, 48L, 1L << 16]); break;
            default: // invalid UTF-8 inside the header
                raw = Encoding.UTF8.GetBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]}}");
                raw[Fuzz.Pick(ref rng, raw.Length)] = (byte)(0x80 | rng.NextUInt64());
                break;
        }
        json ??= $"{{\"w\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":{offsets}}}}}";
        return new FuzzCase(Name, "hostile:" + field, Build(json, data, ref rng, len, raw));
    }

    public override void Open(string path, int arg)
    {
        using var f = SafeTensorsFile.Open(path);
        foreach (var t in f.Tensors)
        {
            if (t.DType is "F32" or "F16" or "BF16" or "F64") _ = f.ReadFloats(t.Name);
            // a record edited by a caller must not move the read (the file's own table wins or it is refused)
            var forged = t with { Begin = t.Begin + (1L << 40), End = t.End + (1L << 40) };
            try { f.ReadFloats(forged, new float[t.ElementCount]); throw new InvalidOperationException("a forged tensor record was read"); }
            catch (GossetException) { }
        }
        if (f.Tensors.Count == 1 && f.Tensors[0].Shape.Length is 1 or 2) _ = MatrixFiles.Read(path);
    }
}

/// <summary>.gq: every header and body field of the three methods, CRC recomputed.</summary>
internal sealed class GqFuzz : FuzzReader
{
    public override string Name => "gq";
    public override string Extension => ".gq";
    public override IReadOnlyList<string> Fields { get; } =
        ["version", "method", "orientation", "rows", "cols", "rotated_length", "rotation", "centered", "body", "shape_combo", "truncate", "e8_q", "e8_k", "e8_coded_blocks", "e8_payload_length", "int_bits", "int_group", "int_payload_length"];

    public override byte[] Valid(ref SplitMix64 rng)
    {
        int rows = 1 + Fuzz.Pick(ref rng, 40), cols = 1 + Fuzz.Pick(ref rng, 4);
        var x = new DenseMatrix(rows, cols, Fuzz.Gaussian(ref rng, rows * cols));
        QuantizedMatrix q = Fuzz.Pick(ref rng, 5) switch
        {
            0 => E8MatrixQuantizer.Quantize(x, new E8MatrixOptions { Q = 2 + Fuzz.Pick(ref rng, 15), K = 4, Seed = rng.NextUInt64(), Dither = Fuzz.Pick(ref rng, 2) == 0, CodedFraction = Fuzz.Pick(ref rng, 2) == 0 ? 1.0 : 0.5 }),
            1 => E8MatrixQuantizer.Quantize(x, new E8MatrixOptions { Q = 16, K = 2, IndexCoding = IndexCoding.Fixed, Center = false }),
            2 => IntQuantizedMatrix.Quantize(x, new Baselines.IntQuantizer(2 + Fuzz.Pick(ref rng, 7), 1 + Fuzz.Pick(ref rng, 32)), RotationKind.Hadamard, rng.NextUInt64()),
            3 => IntQuantizedMatrix.Quantize(x, new Baselines.IntQuantizer(4, 8), RotationKind.None, 0),
            _ => BoxQuantizedMatrix.Quantize(x, RotationKind.Hadamard, rng.NextUInt64()),
        };
        using var ms = new MemoryStream();
        GqFormat.Write(ms, q, Fuzz.Pick(ref rng, 2) == 0 ? GqOrientation.Columns : GqOrientation.Rows);
        return ms.ToArray();
    }

    public override byte[] Fix(byte[] b)
    {
        if (b.Length < 8) return b;
        var c = (byte[])b.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(c.Length - 4), Crc32.Compute(c.AsSpan(0, c.Length - 4)));
        return c;
    }

    public override FuzzCase Hostile(ref SplitMix64 rng, string field)
    {
        byte[] b = Valid(ref rng);
        byte method = b[6];
        switch (field)
        {
            case "version": Fuzz.Smash(ref rng, b, 4, 2); break;
            case "method": Fuzz.Smash(ref rng, b, 6, 1); break;
            case "orientation": Fuzz.Smash(ref rng, b, 7, 1); break;
            case "rows": Fuzz.Smash(ref rng, b, 8, 4); break;
            case "cols": Fuzz.Smash(ref rng, b, 12, 4); break;
            case "rotated_length": Fuzz.Smash(ref rng, b, 16, 4); break;
            case "rotation": Fuzz.Smash(ref rng, b, 20, 1); break;
            case "centered": Fuzz.Smash(ref rng, b, 29, 1); break;
            case "shape_combo": // consistent-looking but huge: rows, cols and rotated length together
                int rows = Fuzz.Pick(ref rng, [2001, 1 << 20, int.MaxValue, 16001, 8184, 65536]);
                BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(8), rows);
                BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(12), Fuzz.Pick(ref rng, [1, 2, 1 << 10, int.MaxValue]));
                BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(16), Fuzz.Pick(ref rng, 2) == 0 ? rows : (int)Math.Min(int.MaxValue, (rows + 7L) / 8 * 8));
                break;
            case "truncate": b = b.AsSpan(0, Math.Max(12, Fuzz.Pick(ref rng, b.Length))).ToArray(); break;
            case "e8_q" when method == 1: Fuzz.Smash(ref rng, b, 30, 2); break;
            case "e8_k" when method == 1: Fuzz.Smash(ref rng, b, 32, 1); break;
            case "e8_coded_blocks" when method == 1: Fuzz.Smash(ref rng, b, E8CodedBlocksOffset(b), 4); break;
            case "e8_payload_length" when method == 1: Fuzz.Smash(ref rng, b, b.Length - 4 - PayloadLengthFromEnd(b) - 4, 4); break;
            case "int_bits" when method == 2: Fuzz.Smash(ref rng, b, 30, 1); break;
            case "int_group" when method == 2: Fuzz.Smash(ref rng, b, 31, 4); break;
            case "int_payload_length" when method == 2: Fuzz.Smash(ref rng, b, 37, 4); break;
            default: // any 4-byte-aligned body field, as an integer or a float
                int at = 30 + Fuzz.Pick(ref rng, Math.Max(1, (b.Length - 34) / 4)) * 4;
                Fuzz.Smash(ref rng, b, at, 4, isFloat: Fuzz.Pick(ref rng, 2) == 0);
                break;
        }
        // a second field now and then: hostile combinations
        if (Fuzz.Pick(ref rng, 4) == 0) Fuzz.Smash(ref rng, b, 8 + 4 * Fuzz.Pick(ref rng, 3), 4);
        return new FuzzCase(Name, "hostile:" + field, Fix(b));
    }

    private static int E8CodedBlocksOffset(byte[] b)
    {
        int k = b[32];
        int p = 33 + 4 * k + 2; // betas, selection, coding
        bool dither = b[p] == 1;
        return p + 1 + (dither ? 8 : 0);
    }

    // the payload length field is followed by the payload and the CRC: find it by scanning from the end
    private static int PayloadLengthFromEnd(byte[] b)
    {
        for (int len = 0; len + 38 < b.Length; len++)
            if (BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(b.Length - 8 - len)) == len) return len;
        return 0;
    }

    public override void Open(string path, int arg) => GqFormat.LoadFile(path).Dequantize();
}

/// <summary>llama2.c checkpoints (v0 and v1): the seven header integers, the shared flag, the file size.</summary>
internal sealed class Llama2cFuzz : FuzzReader
{
    public override string Name => "llama2c";
    public override string Extension => ".bin";
    public override IReadOnlyList<string> Fields { get; } = ["magic", "version", "dim", "hidden_dim", "layers", "heads", "kv_heads", "vocab", "seq_len", "shared", "combo_resized", "truncate"];

    private static LlamaConfig SmallConfig(ref SplitMix64 rng)
    {
        int heads = 1 + Fuzz.Pick(ref rng, 2);
        return new LlamaConfig(8 * heads, 12, 1 + Fuzz.Pick(ref rng, 2), heads, heads, 16 + Fuzz.Pick(ref rng, 8), 8, Fuzz.Pick(ref rng, 2) == 0);
    }

    public override byte[] Valid(ref SplitMix64 rng)
    {
        var c = SmallConfig(ref rng);
        var w = new LlamaWeights(c);
        var r = rng;
        void Fill(float[] a) { for (int i = 0; i < a.Length; i++) a[i] = 0.1f * (float)PortableNormal.Next(ref r); }
        Fill(w.TokenEmbedding); Fill(w.RmsFinal);
        foreach (var set in new[] { w.RmsAtt, w.Wq, w.Wk, w.Wv, w.Wo, w.RmsFfn, w.W1, w.W2, w.W3 }) foreach (var a in set) Fill(a);
        if (!c.SharedClassifier) Fill(w.Classifier);
        rng = r;
        return Fuzz.Pick(ref rng, 2) == 0 ? V1(w) : V0(w);
    }

    private static byte[] V1(LlamaWeights w)
    {
        string tmp = Path.Combine(Path.GetTempPath(), $"gosset-fuzz-{Guid.NewGuid():N}.bin");
        try { Llama2cLoader.SaveV1(w, tmp); return File.ReadAllBytes(tmp); }
        finally { File.Delete(tmp); }
    }

    // llama2.c v0 (legacy) layout, written here because Gosset only writes v1
    private static byte[] V0(LlamaWeights w)
    {
        var c = w.Config;
        var ms = new MemoryStream();
        var bw = new BinaryWriter(ms);
        foreach (int v in new[] { c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KvHeads, c.SharedClassifier ? c.VocabSize : -c.VocabSize, c.SeqLen }) bw.Write(v);
        void W(float[] a) { foreach (float f in a) bw.Write(f); }
        void WA(float[][] a) { foreach (var x in a) W(x); }
        W(w.TokenEmbedding); WA(w.RmsAtt); WA(w.Wq); WA(w.Wk); WA(w.Wv); WA(w.Wo); WA(w.RmsFfn); WA(w.W1); WA(w.W2); WA(w.W3); W(w.RmsFinal);
        for (int i = 0; i < 2 * c.SeqLen * (c.HeadSize / 2); i++) bw.Write(0f);
        if (!c.SharedClassifier) W(w.Classifier);
        bw.Flush();
        return ms.ToArray();
    }

    public override FuzzCase Hostile(ref SplitMix64 rng, string field)
    {
        byte[] b = Valid(ref rng);
        bool v1 = BinaryPrimitives.ReadUInt32LittleEndian(b) == Llama2cLoader.Magic;
        int h = v1 ? 8 : 0;
        int idx = field switch { "dim" => 0, "hidden_dim" => 1, "layers" => 2, "heads" => 3, "kv_heads" => 4, "vocab" => 5, "seq_len" => 6, _ => -1 };
        switch (field)
        {
            case "magic": BinaryPrimitives.WriteUInt32LittleEndian(b, Fuzz.Pick(ref rng, 2) == 0 ? Llama2cLoader.Magic : 0x616b3433); break;
            case "version" when v1: Fuzz.Smash(ref rng, b, 4, 4); break;
            case "shared" when v1: Fuzz.Smash(ref rng, b, 36, 1); break;
            case "truncate": b = b.AsSpan(0, Fuzz.Pick(ref rng, b.Length)).ToArray(); break;
            case "combo_resized":
                // a consistent but hostile header with the file resized to what it claims (when that is small)
                for (int k = 0; k < 7; k++) if (Fuzz.Pick(ref rng, 3) == 0) Fuzz.Smash(ref rng, b, h + 4 * k, 4);
                b = Resize(b, v1, ref rng);
                break;
            default:
                if (idx >= 0) { Fuzz.Smash(ref rng, b, h + 4 * idx, 4); if (Fuzz.Pick(ref rng, 2) == 0) b = Resize(b, v1, ref rng); }
                else Fuzz.Smash(ref rng, b, h + 4 * Fuzz.Pick(ref rng, 7), 4);
                break;
        }
        return new FuzzCase(Name, "hostile:" + field, b);
    }

    private static byte[] Resize(byte[] b, bool v1, ref SplitMix64 rng)
    {
        int h = v1 ? 8 : 0;
        var p = new int[7];
        for (int k = 0; k < 7; k++) p[k] = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(h + 4 * k));
        bool shared = v1 ? b[36] != 0 : p[5] > 0;
        long vocab = Math.Abs((long)p[5]);
        if (p[0] <= 0 || p[3] <= 0 || p[4] <= 0) return b;
        var c = new LlamaConfig(p[0], p[1], p[2], p[3], p[4], (int)Math.Min(int.MaxValue, vocab), p[6], shared);
        long count;
        try { count = checked(c.ParameterCount + (v1 ? 0 : 2L * c.SeqLen * (c.HeadSize / 2))); } catch (OverflowException) { return b; }
        if (count < 0 || count > 1 << 20) return b; // (ParameterCount itself may wrap for absurd headers)
        long size = (v1 ? 256 : 28) + 4 * count;
        var r = new byte[size];
        b.AsSpan(0, (int)Math.Min(b.Length, size)).CopyTo(r);
        if (Fuzz.Pick(ref rng, 3) == 0 && size > 300) BinaryPrimitives.WriteSingleLittleEndian(r.AsSpan((int)(size - 4)), float.NaN);
        return r;
    }

    public override void Open(string path, int arg) => ModelLoader.LoadWeights(path);
}

/// <summary>llama2.c tokenizers: max token length, piece lengths and scores, and the vocabulary size they are loaded with.</summary>
internal sealed class TokenizerFuzz : FuzzReader
{
    public override string Name => "tokenizer";
    public override string Extension => ".bin";
    public override IReadOnlyList<string> Fields { get; } = ["max_length", "piece_length", "score", "vocab_arg", "truncate"];

    public override byte[] Valid(ref SplitMix64 rng)
    {
        var pieces = new List<string> { "<unk>", "<s>", "</s>" };
        for (int i = 0; i < 256; i++) pieces.Add($"<0x{i:X2}>");
        foreach (string s in new[] { " ", "a", "b", "e", "h", "l", "o", "w", "r", "d", "ab", " a", "he", "ll", "lo", " w", "or", "ld", "hel", "hell", "hello", " wor", " world" })
            pieces.Add(s);
        int extra = Fuzz.Pick(ref rng, 8);
        for (int i = 0; i < extra; i++) pieces.Add("x" + i.ToString(CultureInfo.InvariantCulture));
        var ms = new MemoryStream();
        var bw = new BinaryWriter(ms);
        bw.Write(16);
        for (int i = 0; i < pieces.Count; i++)
        {
            byte[] p = Encoding.UTF8.GetBytes(pieces[i]);
            bw.Write(i < 259 ? 0f : -(float)i);
            bw.Write(p.Length);
            bw.Write(p);
        }
        bw.Flush();
        return ms.ToArray();
    }

    public override int DefaultArg(byte[] valid) => Count(valid);

    private static int Count(byte[] b)
    {
        int p = 4, n = 0;
        while (p + 8 <= b.Length)
        {
            int len = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(p + 4));
            if (len < 0 || p + 8L + len > b.Length) break;
            p += 8 + len;
            n++;
        }
        return n;
    }

    public override FuzzCase Hostile(ref SplitMix64 rng, string field)
    {
        byte[] b = Valid(ref rng);
        int count = Count(b), arg = count;
        switch (field)
        {
            case "max_length": Fuzz.Smash(ref rng, b, 0, 4); break;
            case "piece_length":
            case "score":
            {
                int target = Fuzz.Pick(ref rng, count), p = 4;
                for (int i = 0; i < target; i++) p += 8 + BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(p + 4));
                Fuzz.Smash(ref rng, b, field == "score" ? p : p + 4, 4, isFloat: field == "score");
                break;
            }
            case "vocab_arg": arg = Fuzz.HostileInt(ref rng, count); break;
            default: b = b.AsSpan(0, Fuzz.Pick(ref rng, b.Length)).ToArray(); break;
        }
        return new FuzzCase(Name, "hostile:" + field, b, arg);
    }

    public override void Open(string path, int arg)
    {
        var t = Llama2cTokenizer.Load(path, arg);
        int[] ids = t.Encode("hello world, é ☃ \u0001", bos: true, eos: false);
        _ = t.Decode(ids);
    }
}

/// <summary>A packed matrix as stored in containers: a shape (rows, cols: int32 each) from a header, then the matrix's bytes.</summary>
internal abstract class PackedMatrixFuzz : FuzzReader
{
    /// <summary>Writes a valid matrix of the shape.</summary>
    protected abstract void Write(ref SplitMix64 rng, int rows, int cols, Stream s);
    /// <summary>Reads the bytes and dequantizes the last row (what a loader would touch).</summary>
    protected abstract void Read(ReadOnlySpan<byte> bytes, int rows, int cols);
    /// <summary>Largest column count of a valid case.</summary>
    protected abstract int MaxCols { get; }
    /// <summary>Breaks a field past the shape header (fields other than rows, cols and length).</summary>
    protected abstract void Break(ref SplitMix64 rng, byte[] b, string field);

    public override byte[] Valid(ref SplitMix64 rng)
    {
        int rows = 1 + Fuzz.Pick(ref rng, 6), cols = 1 + Fuzz.Pick(ref rng, MaxCols);
        var ms = new MemoryStream();
        Span<byte> h = stackalloc byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(h, rows);
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], cols);
        ms.Write(h);
        Write(ref rng, rows, cols, ms);
        return ms.ToArray();
    }

    public override FuzzCase Hostile(ref SplitMix64 rng, string field)
    {
        byte[] b = Valid(ref rng);
        switch (field)
        {
            case "rows": Fuzz.Smash(ref rng, b, 0, 4); break;
            case "cols": Fuzz.Smash(ref rng, b, 4, 4); break;
            case "length": b = b.AsSpan(0, 8 + Fuzz.Pick(ref rng, b.Length - 8)).ToArray(); break;
            default: Break(ref rng, b, field); break;
        }
        return new FuzzCase(Name, "hostile:" + field, b);
    }

    public override void Open(string path, int arg)
    {
        byte[] b = File.ReadAllBytes(path);
        if (b.Length < 8) throw new InvalidDataException("no shape header");
        Read(b.AsSpan(8), BinaryPrimitives.ReadInt32LittleEndian(b), BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(4)));
    }
}

/// <summary>The packed E8 box-code matrix (the e8-box weight sections).</summary>
internal sealed class PackedE8Fuzz : PackedMatrixFuzz
{
    public override string Name => "packed-e8";
    public override string Extension => ".pe8";
    public override IReadOnlyList<string> Fields { get; } = ["rows", "cols", "length", "row_scale"];
    protected override int MaxCols => 300;
    protected override void Write(ref SplitMix64 rng, int rows, int cols, Stream s) => PackedE8Matrix.Quantize(Fuzz.Gaussian(ref rng, rows * cols), rows, cols).WriteTo(s);
    protected override void Break(ref SplitMix64 rng, byte[] b, string field) => Fuzz.Smash(ref rng, b, b.Length - 4, 4, isFloat: true);
    protected override void Read(ReadOnlySpan<byte> bytes, int rows, int cols)
    {
        var m = PackedE8Matrix.ReadFrom(bytes, rows, cols);
        m.DequantizeRow(m.Rows - 1, new float[m.Cols]);
    }
}

/// <summary>The 8-bit matrix (the LLM's int8 classifier section).</summary>
internal sealed class PackedInt8Fuzz : PackedMatrixFuzz
{
    public override string Name => "packed-int8";
    public override string Extension => ".pi8";
    public override IReadOnlyList<string> Fields { get; } = ["rows", "cols", "length", "step", "level"];
    protected override int MaxCols => 600;
    protected override void Write(ref SplitMix64 rng, int rows, int cols, Stream s) => PackedInt8Matrix.Quantize(Fuzz.Gaussian(ref rng, rows * cols), rows, cols).WriteTo(s);
    protected override void Break(ref SplitMix64 rng, byte[] b, string field)
    {
        if (field == "step") Fuzz.Smash(ref rng, b, 8, 2);
        else b[^1] = 0x80; // level −128
    }
    protected override void Read(ReadOnlySpan<byte> bytes, int rows, int cols)
    {
        var m = PackedInt8Matrix.ReadFrom(bytes, rows, cols);
        m.DequantizeRow(m.Rows - 1, new float[m.Cols]);
    }
}

/// <summary>Runs fuzz cases in-process and classifies what the reader did.</summary>
internal static class FuzzRunner
{
    /// <summary>Every reader under fuzz.</summary>
    public static IReadOnlyList<FuzzReader> Readers { get; } =
        [new NpyFuzz(), new SafeTensorsFuzz(), new GqFuzz(), new Llama2cFuzz(), new TokenizerFuzz(), new PackedE8Fuzz(), new PackedInt8Fuzz(), new GqmFuzz(), new GgufFuzz(), new HfConfigFuzz(), new HfTokenizerFuzz(), new SentencePieceFuzz()];

    /// <summary>Writes the case to <paramref name="dir"/> and opens it, measuring time and bytes allocated (all threads).</summary>
    public static FuzzResult Run(FuzzReader reader, FuzzCase c, string dir)
    {
        string path = Path.Combine(dir, "case-" + reader.Name + reader.Extension);
        File.WriteAllBytes(path, c.Bytes);
        long a0 = GC.GetTotalAllocatedBytes(precise: true);
        var sw = Stopwatch.StartNew();
        FuzzOutcome outcome = FuzzOutcome.Accepted;
        string? message = null;
        try { reader.Open(path, c.Arg); }
        catch (Exception e)
        {
            var inner = e is AggregateException { InnerExceptions.Count: > 0 } a ? a.InnerExceptions[0] : e;
            message = inner.GetType().Name + ": " + inner.Message;
            outcome = inner is GossetException or InvalidDataException ? FuzzOutcome.TypedError
                : CliApp.UserError(inner) != null ? FuzzOutcome.UntypedError : FuzzOutcome.Crash;
            if (outcome != FuzzOutcome.TypedError) message += "\n" + inner.StackTrace;
        }
        double seconds = sw.Elapsed.TotalSeconds;
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - a0;
        return new FuzzResult(c, outcome, seconds, allocated, message);
    }
}
