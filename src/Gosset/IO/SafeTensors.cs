using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;
using Gosset.Matrix;

namespace Gosset.IO;

/// <summary>Element types the safetensors writer can store.</summary>
public enum SafeTensorsDType
{
    /// <summary>IEEE binary32 (4 bytes).</summary>
    F32,
    /// <summary>IEEE binary16 (2 bytes), rounded to nearest even by <see cref="Half"/>.</summary>
    F16,
    /// <summary>bfloat16: the top 16 bits of binary32, rounded to nearest even (2 bytes).</summary>
    BF16,
}

/// <summary>One tensor listed in a safetensors header.</summary>
/// <param name="Name">The tensor's key in the header.</param>
/// <param name="DType">The dtype string as written in the file (e.g. <c>F32</c>, <c>BF16</c>).</param>
/// <param name="Shape">Dimensions, outermost first (empty for a scalar).</param>
/// <param name="Begin">First byte of the data, relative to the start of the data section.</param>
/// <param name="End">One past the last byte of the data, relative to the start of the data section.</param>
public sealed record SafeTensorInfo(string Name, string DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (product of <see cref="Shape"/>).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>The shape written like <c>[4096, 11008]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// A safetensors file opened for reading through a memory map. The header is validated when the
/// file is opened; tensors are converted to float32 on request.
/// </summary>
/// <remarks>
/// Layout: an unsigned 64-bit little-endian header length N, N bytes of UTF-8 JSON mapping each
/// tensor name to <c>{"dtype", "shape", "data_offsets": [begin, end]}</c> (plus an optional
/// <c>__metadata__</c> map of strings), then the data section: little-endian, C-order tensors. The
/// tensors must cover the data section exactly, with no gap and no overlap (checked after sorting
/// by offset, since the JSON key order need not follow the data order).
/// F32, F16, BF16 and F64 convert to float32; other known dtypes can be listed but not read.
/// </remarks>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    private static readonly Dictionary<string, int> KnownDTypes = new(StringComparer.Ordinal)
    {
        ["BOOL"] = 1, ["U8"] = 1, ["I8"] = 1, ["F8_E4M3"] = 1, ["F8_E5M2"] = 1, ["F8_E8M0"] = 1,
        ["I16"] = 2, ["U16"] = 2, ["F16"] = 2, ["BF16"] = 2,
        ["I32"] = 4, ["U32"] = 4, ["F32"] = 4,
        ["I64"] = 8, ["U64"] = 8, ["F64"] = 8,
    };

    private const long MaxHeaderLength = 100L << 20;
    // root → tensor → shape/offsets arrays is depth 3; anything much deeper is not a safetensors header
    private const int MaxJsonDepth = 8;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafeTensorInfo> _byName;
    private bool _disposed;

    /// <summary>The file's path as given to <see cref="Open"/>.</summary>
    public string Path { get; }

    /// <summary>The tensors in data order (by offset).</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>The optional <c>__metadata__</c> map (empty if absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafeTensorsFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePtr, long dataStart,
        List<SafeTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePtr;
        _dataStart = dataStart;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Metadata = metadata;
    }

    /// <summary>Opens and validates a safetensors file.</summary>
    /// <exception cref="InvalidFileException">The file is truncated or its header is invalid.</exception>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"File not found: {path}", path);
        long length = new FileInfo(path).Length;
        if (length < 8) throw new InvalidFileException(path, $"truncated: {length} bytes, too short for a safetensors header length");
        Span<byte> lenBytes = stackalloc byte[8];
        byte[] headerBytes;
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            fs.ReadExactly(lenBytes);
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
            if (n > (ulong)(length - 8)) throw new InvalidFileException(path, $"header length {n} goes beyond the end of the file ({length} bytes)");
            if (n > MaxHeaderLength) throw new InvalidFileException(path, $"header length {n} exceeds the 100 MB limit");
            if (n < 2) throw new InvalidFileException(path, "header is empty");
            headerBytes = new byte[n];
            fs.ReadExactly(headerBytes);
        }
        long dataStart = 8 + headerBytes.Length;
        long dataLength = length - dataStart;
        var (tensors, metadata) = ParseHeader(path, headerBytes, dataLength);

        if (dataLength == 0) return new SafeTensorsFile(path, null, null, null, dataStart, tensors, metadata);
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            p += view.PointerOffset;
            return new SafeTensorsFile(path, map, view, p, dataStart, tensors, metadata);
        }
        catch
        {
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    private static (List<SafeTensorInfo>, Dictionary<string, string>) ParseHeader(string path, byte[] headerBytes, long dataLength)
    {
        var tensors = new List<SafeTensorInfo>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            _ = new UTF8Encoding(false, true).GetCharCount(headerBytes); // throws on invalid UTF-8
            int n = headerBytes.Length;
            while (n > 0 && headerBytes[n - 1] == (byte)' ') n--; // the format pads with spaces
            using var doc = JsonDocument.Parse(headerBytes.AsMemory(0, n), new JsonDocumentOptions { MaxDepth = MaxJsonDepth });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidFileException(path, "header is not a JSON object");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw new InvalidFileException(path, $"duplicate tensor name '{prop.Name}'");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw new InvalidFileException(path, "__metadata__ is not an object");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw new InvalidFileException(path, $"__metadata__ value '{m.Name}' is not a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                tensors.Add(ParseTensor(path, prop));
            }
        }
        catch (JsonException e) { throw new InvalidFileException(path, $"header is not valid JSON: {e.Message}"); }
        catch (DecoderFallbackException) { throw new InvalidFileException(path, "header is not valid UTF-8"); }

        tensors.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long expect = 0;
        foreach (var t in tensors)
        {
            if (t.Begin < expect) throw new InvalidFileException(path, $"tensor '{t.Name}' data [{t.Begin}, {t.End}) overlaps the previous tensor (ends at {expect})");
            if (t.Begin > expect) throw new InvalidFileException(path, $"gap in the data section before tensor '{t.Name}' (bytes {expect}..{t.Begin}); data must be contiguous");
            if (t.End > dataLength) throw new InvalidFileException(path, $"tensor '{t.Name}' data [{t.Begin}, {t.End}) lies beyond the end of the data section ({dataLength} bytes); the file may be truncated");
            expect = t.End;
        }
        if (expect != dataLength) throw new InvalidFileException(path, $"{dataLength - expect} bytes at the end of the data section belong to no tensor");
        return (tensors, metadata);
    }

    private static SafeTensorInfo ParseTensor(string path, JsonProperty prop)
    {
        string name = prop.Name;
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object) throw new InvalidFileException(path, $"entry '{name}' is not an object");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new InvalidFileException(path, $"tensor '{name}' has no dtype");
        string dtype = dt.GetString()!;
        if (!KnownDTypes.TryGetValue(dtype, out int itemSize))
            throw new InvalidFileException(path, $"tensor '{name}' has unknown dtype '{dtype}'");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new InvalidFileException(path, $"tensor '{name}' has no shape");
        var shape = new long[sh.GetArrayLength()];
        int k = 0;
        long count = 1;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new InvalidFileException(path, $"tensor '{name}' has an invalid shape entry {d}");
            shape[k++] = dim;
            count = dim == 0 ? 0 : (count > long.MaxValue / dim ? throw new InvalidFileException(path, $"tensor '{name}' is too large") : count * dim);
        }
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new InvalidFileException(path, $"tensor '{name}' has no data_offsets [begin, end]");
        if (!off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new InvalidFileException(path, $"tensor '{name}' has invalid data_offsets {off}");
        if (count > long.MaxValue / itemSize || end - begin != count * itemSize)
            throw new InvalidFileException(path, $"tensor '{name}' data_offsets [{begin}, {end}) hold {end - begin} bytes, but {dtype} {("[" + string.Join(", ", shape) + "]")} needs {count * itemSize}");
        return new SafeTensorInfo(name, dtype, shape, begin, end);
    }

    /// <summary>Finds a tensor by name.</summary>
    /// <exception cref="GossetException">No tensor has that name; the message lists the available ones.</exception>
    public SafeTensorInfo Info(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_byName.TryGetValue(name, out var info)) return info;
        var names = Tensors.Select(t => t.Name).ToList();
        string list = names.Count == 0 ? "the file has no tensors" : "available: " + string.Join(", ", names.Take(50)) + (names.Count > 50 ? $", … ({names.Count} in all)" : "");
        throw new GossetException($"{Path}: no tensor named '{name}'; {list}");
    }

    /// <summary>Whether a tensor of that name exists.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>
    /// The entries of a tensor converted to float32, flat in C (row-major) order.
    /// Supported dtypes: F32, F16, BF16, F64.
    /// </summary>
    public float[] ReadFloats(string name)
    {
        var info = Info(name);
        if (info.ElementCount > Array.MaxLength) throw new GossetException($"{Path}: tensor '{name}' is too large to load ({info.ElementCount} elements)");
        var result = new float[info.ElementCount];
        ReadFloats(info, result);
        return result;
    }

    /// <summary>
    /// Converts a tensor's entries to float32 into <paramref name="destination"/> (C order, length = element count).
    /// The tensor is looked up by <paramref name="info"/>'s name in this file's own table, and the record must
    /// match that entry: a record edited or made by the caller never selects the bytes that are read.
    /// </summary>
    /// <exception cref="GossetException">No tensor of that name, or the record differs from the file's.</exception>
    public void ReadFloats(SafeTensorInfo info, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(info);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var own = Info(info.Name);
        if (!ReferenceEquals(own, info) && (own.DType != info.DType || own.Begin != info.Begin || own.End != info.End || !own.Shape.AsSpan().SequenceEqual(info.Shape)))
            throw new GossetException($"{Path}: the record for tensor '{info.Name}' does not match the file's header (dtype {own.DType}, shape {own.ShapeText}, offsets [{own.Begin}, {own.End}))");
        info = own;
        if (destination.Length != info.ElementCount) throw new ArgumentException($"Destination has {destination.Length} entries, tensor '{info.Name}' has {info.ElementCount}.", nameof(destination));
        if (destination.Length == 0) return;
        byte* src = _base + _dataStart + info.Begin;
        int n = destination.Length;
        switch (info.DType)
        {
            case "F32" when BitConverter.IsLittleEndian:
                new ReadOnlySpan<float>(src, n).CopyTo(destination); // unaligned reads are fine on x64/arm64
                break;
            case "F32":
                for (int i = 0; i < n; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(new ReadOnlySpan<byte>(src + 4L * i, 4));
                break;
            case "F64":
                for (int i = 0; i < n; i++) destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(new ReadOnlySpan<byte>(src + 8L * i, 8));
                break;
            case "F16":
                for (int i = 0; i < n; i++) destination[i] = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(src + 2L * i, 2)));
                break;
            case "BF16":
                for (int i = 0; i < n; i++) destination[i] = SafeTensors.BFloat16ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(src + 2L * i, 2)));
                break;
            default:
                throw new GossetException($"{Path}: tensor '{info.Name}' has dtype {info.DType}; only F32, F16, BF16 and F64 can be read as floats");
        }
    }

    /// <summary>
    /// A 2-D tensor of shape [r, c] as an r×c float32 matrix (a 1-D tensor [n] becomes n×1).
    /// </summary>
    /// <exception cref="GossetException">The tensor is missing, has another rank, or an unsupported dtype.</exception>
    public DenseMatrix ReadMatrix(string name)
    {
        var info = Info(name);
        if (info.Shape.Length is < 1 or > 2)
            throw new GossetException($"{Path}: tensor '{name}' has shape {info.ShapeText}; only 1-D and 2-D tensors can be read as a matrix");
        if (info.Shape.Any(d => d > int.MaxValue)) throw new GossetException($"{Path}: tensor '{name}' is too large");
        int rows = (int)info.Shape[0];
        int cols = info.Shape.Length == 2 ? (int)info.Shape[1] : 1;
        float[] flat = ReadFloats(name);
        if (rows <= 1 || cols <= 1) return new DenseMatrix(rows, cols, flat);
        return DenseMatrix.FromRowMajor(rows, cols, flat);
    }

    /// <summary>Releases the memory map.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_view != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }
}

/// <summary>Reading and writing safetensors files; conversions between float32 and 16-bit formats.</summary>
public static class SafeTensors
{
    /// <summary>Lists the tensors of a file (name, dtype, shape, offsets) in data order.</summary>
    public static IReadOnlyList<SafeTensorInfo> List(string path)
    {
        using var f = SafeTensorsFile.Open(path);
        return f.Tensors;
    }

    /// <summary>Reads one tensor by name as a float32 matrix (see <see cref="SafeTensorsFile.ReadMatrix"/>).</summary>
    public static DenseMatrix Read(string path, string name)
    {
        using var f = SafeTensorsFile.Open(path);
        return f.ReadMatrix(name);
    }

    /// <summary>
    /// Writes matrices atomically, each as a 2-D tensor [Rows, Cols] in C order, in the given order
    /// and with the given element type. The header is padded with spaces to a multiple of 8 bytes.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, DenseMatrix>> tensors,
        SafeTensorsDType dtype = SafeTensorsDType.F32, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.Select(kv => (kv.Key, Shape: new long[] { kv.Value.Rows, kv.Value.Cols }, Data: kv.Value.ToRowMajor())).ToList();
        WriteFlat(path, list, dtype, metadata);
    }

    /// <summary>
    /// Writes tensors of any shape atomically; each <c>Data</c> holds the entries in C order
    /// (its length must equal the product of <c>Shape</c>).
    /// </summary>
    public static void WriteFlat(string path, IReadOnlyList<(string Name, long[] Shape, float[] Data)> tensors,
        SafeTensorsDType dtype = SafeTensorsDType.F32, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        int itemSize = dtype == SafeTensorsDType.F32 ? 4 : 2;
        string dtypeName = dtype.ToString();
        var names = new HashSet<string>(StringComparer.Ordinal);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var kv in metadata) w.WriteString(kv.Key, kv.Value);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, shape, data) in tensors)
            {
                if (string.IsNullOrEmpty(name) || name == "__metadata__") throw new ArgumentException($"Invalid tensor name '{name}'.", nameof(tensors));
                if (!names.Add(name)) throw new ArgumentException($"Duplicate tensor name '{name}'.", nameof(tensors));
                long count = shape.Aggregate(1L, (a, d) => a * d);
                if (count != data.Length) throw new ArgumentException($"Tensor '{name}': shape needs {count} entries, data has {data.Length}.", nameof(tensors));
                w.WriteStartObject(name);
                w.WriteString("dtype", dtypeName);
                w.WriteStartArray("shape");
                foreach (long d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + count * itemSize);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += count * itemSize;
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        byte[] header = ms.ToArray();

        AtomicFile.Write(path, s =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            s.Write(len);
            s.Write(header);
            var buf = new byte[1 << 16];
            foreach (var (_, _, data) in tensors)
            {
                int per = buf.Length / itemSize;
                for (int start = 0; start < data.Length; start += per)
                {
                    int n = Math.Min(per, data.Length - start);
                    for (int i = 0; i < n; i++)
                    {
                        float f = data[start + i];
                        switch (dtype)
                        {
                            case SafeTensorsDType.F32: BinaryPrimitives.WriteSingleLittleEndian(buf.AsSpan(4 * i), f); break;
                            case SafeTensorsDType.F16: BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(2 * i), BitConverter.HalfToUInt16Bits((Half)f)); break;
                            default: BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(2 * i), SingleToBFloat16(f)); break;
                        }
                    }
                    s.Write(buf, 0, n * itemSize);
                }
            }
        });
    }

    /// <summary>Widens bfloat16 bits to float32 (exact: bfloat16 is the top half of binary32).</summary>
    public static float BFloat16ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Rounds float32 to bfloat16 bits, to nearest with ties to even; NaN stays a (quiet) NaN.</summary>
    public static ushort SingleToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x0040);
        uint rounding = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + rounding) >> 16);
    }
}
