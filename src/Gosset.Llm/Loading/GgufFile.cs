using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;

namespace Gosset.Llm.Loading;

/// <summary>GGUF metadata value types (the numbering is part of the file format).</summary>
public enum GgufValueType : uint
{
    /// <summary>uint8.</summary>
    UInt8 = 0,
    /// <summary>int8.</summary>
    Int8 = 1,
    /// <summary>uint16.</summary>
    UInt16 = 2,
    /// <summary>int16.</summary>
    Int16 = 3,
    /// <summary>uint32.</summary>
    UInt32 = 4,
    /// <summary>int32.</summary>
    Int32 = 5,
    /// <summary>float32.</summary>
    Float32 = 6,
    /// <summary>bool (one byte, 0 or 1).</summary>
    Bool = 7,
    /// <summary>uint64 length + UTF-8 bytes.</summary>
    String = 8,
    /// <summary>element type, uint64 count, elements.</summary>
    Array = 9,
    /// <summary>uint64.</summary>
    UInt64 = 10,
    /// <summary>int64.</summary>
    Int64 = 11,
    /// <summary>float64.</summary>
    Float64 = 12,
}

/// <summary>One tensor listed in a GGUF header.</summary>
/// <param name="Name">Tensor name (e.g. <c>blk.0.attn_q.weight</c>).</param>
/// <param name="Dims">ggml dimensions, fastest-varying first: a [rows][cols] matrix has Dims = [cols, rows].</param>
/// <param name="Type">Element type.</param>
/// <param name="Offset">Offset of the data, relative to the start of the data section.</param>
/// <param name="ByteLength">Bytes of data.</param>
public sealed record GgufTensorInfo(string Name, long[] Dims, GgufTensorType Type, long Offset, long ByteLength)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount => Dims.Aggregate(1L, (a, d) => a * d);

    /// <summary>The dims written like <c>[64, 512]</c> (ggml order).</summary>
    public string DimsText => "[" + string.Join(", ", Dims) + "]";
}

/// <summary>
/// A GGUF file (versions 2 and 3) opened through a memory map. Every count, length and offset in the
/// header is checked against the file size before anything is allocated, so a hostile header gives an
/// <see cref="InvalidFileException"/> in time and memory bounded by the file size.
/// </summary>
/// <remarks>
/// Layout: "GGUF", uint32 version, uint64 tensor count, uint64 metadata count, the metadata
/// key/value pairs, the tensor infos (name, uint32 n_dims, uint64 dims[n_dims], uint32 type,
/// uint64 offset), padding to <c>general.alignment</c> (default 32), then the tensor data.
/// </remarks>
public sealed unsafe class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    public const uint Magic = 0x46554747;
    private const int MaxStringBytes = 1 << 20;
    private const int MaxDims = 4;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long _length;
    private readonly long _dataStart;
    private readonly Dictionary<string, GgufTensorInfo> _byName = new(StringComparer.Ordinal);

    /// <summary>The file path.</summary>
    public string Path { get; }
    /// <summary>Format version (2 or 3).</summary>
    public uint Version { get; }
    /// <summary>Metadata values: scalars boxed, strings as <see cref="string"/>, arrays as typed arrays (string[], float[], int[], …).</summary>
    public IReadOnlyDictionary<string, object> Metadata { get; }
    /// <summary>Tensors in header order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }
    /// <summary>Alignment of the data section and of each tensor.</summary>
    public int Alignment { get; }

    private GgufFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, long length)
    {
        Path = path;
        _map = map;
        _view = view;
        _length = length;
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + view.PointerOffset;
        var c = new Cursor(_base, length, path);
        if (c.U32() != Magic) throw new InvalidFileException(path, "not a GGUF file (bad magic)");
        Version = c.U32();
        if (Version is not (2 or 3))
            throw new InvalidFileException(path, $"GGUF version {Version} is not supported (2 and 3 are)");
        ulong tensorCount = c.U64(), kvCount = c.U64();
        // Each pair takes at least 8 + 4 + 1 bytes, each tensor info at least 8 + 4 + 8 + 4 + 8.
        if (kvCount > (ulong)(c.Remaining / 13)) throw new InvalidFileException(path, $"metadata count {kvCount} cannot fit in {length} bytes");
        if (tensorCount > (ulong)(c.Remaining / 32)) throw new InvalidFileException(path, $"tensor count {tensorCount} cannot fit in {length} bytes");
        var meta = new Dictionary<string, object>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = c.Str();
            var type = (GgufValueType)c.U32();
            object v = ReadValue(ref c, type, path, key, allowArray: true);
            if (!meta.TryAdd(key, v)) throw new InvalidFileException(path, $"metadata key {key} appears twice");
        }
        Metadata = meta;
        Alignment = 32;
        if (meta.TryGetValue("general.alignment", out var al))
        {
            long a = Convert.ToInt64(al, System.Globalization.CultureInfo.InvariantCulture);
            if (a <= 0 || a > 1 << 16 || (a & (a - 1)) != 0) throw new InvalidFileException(path, $"general.alignment {a} is not a power of two ≤ 65536");
            Alignment = (int)a;
        }
        var infos = new List<GgufTensorInfo>((int)tensorCount);
        var raw = new List<(string Name, long[] Dims, uint Type, ulong Offset)>((int)tensorCount);
        for (ulong i = 0; i < tensorCount; i++)
        {
            string name = c.Str();
            uint nd = c.U32();
            if (nd == 0 || nd > MaxDims) throw new InvalidFileException(path, $"tensor {name}: {nd} dimensions (1..{MaxDims} allowed)");
            var dims = new long[nd];
            for (int d = 0; d < nd; d++)
            {
                ulong v = c.U64();
                if (v == 0 || v > (ulong)length * 8) throw new InvalidFileException(path, $"tensor {name}: dimension {v} is implausible for a {length}-byte file");
                dims[d] = (long)v;
            }
            raw.Add((name, dims, c.U32(), c.U64()));
        }
        long headerEnd = c.Position;
        _dataStart = AlignUp(headerEnd, Alignment);
        if (_dataStart > length && tensorCount > 0) throw new InvalidFileException(path, "truncated: the data section starts past the end of the file");
        long dataLength = Math.Max(0, length - _dataStart);
        foreach (var (name, dims, typeId, offset) in raw)
        {
            if (!GgufTypes.IsSupported(typeId))
                throw new UnsupportedGgufTypeException(path, name, typeId);
            var type = (GgufTensorType)typeId;
            long n = 1;
            foreach (long d in dims)
            {
                n = d <= long.MaxValue / n ? n * d : throw new InvalidFileException(path, $"tensor {name}: element count overflows");
                if (n > dataLength * 8 + 8) throw new InvalidFileException(path, $"tensor {name}: {n}+ elements cannot fit in {dataLength} bytes of data");
            }
            int be = GgufTypes.BlockElements(type);
            if (dims[0] % be != 0) throw new InvalidFileException(path, $"tensor {name}: row length {dims[0]} is not a multiple of the {type} block ({be})");
            long bytes = n / be * GgufTypes.BlockBytes(type);
            if (offset % (ulong)Alignment != 0) throw new InvalidFileException(path, $"tensor {name}: offset {offset} is not aligned to {Alignment}");
            if (offset > (ulong)dataLength || (ulong)bytes > (ulong)dataLength - offset)
                throw new InvalidFileException(path, $"truncated: tensor {name} ({type} {string.Join("x", dims)}, {bytes} bytes at {offset}) runs past the end of the {dataLength}-byte data section");
            var info = new GgufTensorInfo(name, dims, type, (long)offset, bytes);
            if (!_byName.TryAdd(name, info)) throw new InvalidFileException(path, $"tensor {name} appears twice");
            infos.Add(info);
        }
        Tensors = infos;
    }

    private static long AlignUp(long x, int a) => (x + a - 1) / a * a;

    /// <summary>Opens and validates a GGUF file.</summary>
    /// <exception cref="InvalidFileException">The header is malformed, inconsistent with the file size, or names an unsupported type.</exception>
    public static GgufFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"file not found: {path}", path);
        long length = new FileInfo(path).Length;
        if (length < 24) throw new InvalidFileException(path, $"only {length} bytes; too short for a GGUF file");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            return new GgufFile(path, map, view, length);
        }
        catch
        {
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>True when the file at <paramref name="path"/> starts with the GGUF magic.</summary>
    public static bool IsGguf(string path)
    {
        if (!File.Exists(path)) return false;
        using var fs = File.OpenRead(path);
        Span<byte> m = stackalloc byte[4];
        return fs.Read(m) == 4 && BinaryPrimitives.ReadUInt32LittleEndian(m) == Magic;
    }

    private static object ReadValue(ref Cursor c, GgufValueType type, string path, string key, bool allowArray)
    {
        switch (type)
        {
            case GgufValueType.UInt8: return c.Bytes(1)[0];
            case GgufValueType.Int8: return (sbyte)c.Bytes(1)[0];
            case GgufValueType.UInt16: return BinaryPrimitives.ReadUInt16LittleEndian(c.Bytes(2));
            case GgufValueType.Int16: return BinaryPrimitives.ReadInt16LittleEndian(c.Bytes(2));
            case GgufValueType.UInt32: return c.U32();
            case GgufValueType.Int32: return BinaryPrimitives.ReadInt32LittleEndian(c.Bytes(4));
            case GgufValueType.Float32: return BinaryPrimitives.ReadSingleLittleEndian(c.Bytes(4));
            case GgufValueType.Bool:
                byte b = c.Bytes(1)[0];
                return b <= 1 ? b == 1 : throw new InvalidFileException(path, $"metadata {key}: bool value {b}");
            case GgufValueType.String: return c.Str();
            case GgufValueType.UInt64: return c.U64();
            case GgufValueType.Int64: return BinaryPrimitives.ReadInt64LittleEndian(c.Bytes(8));
            case GgufValueType.Float64: return BinaryPrimitives.ReadDoubleLittleEndian(c.Bytes(8));
            case GgufValueType.Array when allowArray:
                var et = (GgufValueType)c.U32();
                ulong n = c.U64();
                int minSize = et switch
                {
                    GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
                    GgufValueType.UInt16 or GgufValueType.Int16 => 2,
                    GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
                    GgufValueType.String or GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
                    _ => throw new InvalidFileException(path, $"metadata {key}: array element type {(uint)et} is not supported"),
                };
                if (n > (ulong)(c.Remaining / minSize)) throw new InvalidFileException(path, $"metadata {key}: array of {n} elements cannot fit in the file");
                int count = (int)n;
                switch (et)
                {
                    case GgufValueType.String: { var a = new string[count]; for (int i = 0; i < count; i++) a[i] = c.Str(); return a; }
                    case GgufValueType.Float32: { var a = new float[count]; for (int i = 0; i < count; i++) a[i] = BinaryPrimitives.ReadSingleLittleEndian(c.Bytes(4)); return a; }
                    case GgufValueType.Int32: { var a = new int[count]; for (int i = 0; i < count; i++) a[i] = BinaryPrimitives.ReadInt32LittleEndian(c.Bytes(4)); return a; }
                    case GgufValueType.UInt32: { var a = new uint[count]; for (int i = 0; i < count; i++) a[i] = c.U32(); return a; }
                    default: { var a = new object[count]; for (int i = 0; i < count; i++) a[i] = ReadValue(ref c, et, path, key, false); return a; }
                }
            default: throw new InvalidFileException(path, $"metadata {key}: value type {(uint)type} is not supported");
        }
    }

    /// <summary>The tensor called <paramref name="name"/>, or null.</summary>
    public GgufTensorInfo? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>The raw bytes of a tensor (valid while the file is open; no copy).</summary>
    public ReadOnlySpan<byte> Data(GgufTensorInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        if (info.ByteLength > int.MaxValue) throw new GossetException($"{Path}: tensor {info.Name} is larger than 2 GiB; read it by rows");
        return new ReadOnlySpan<byte>(_base + _dataStart + info.Offset, (int)info.ByteLength);
    }

    /// <summary>Dequantizes (or converts) a whole tensor to float32 into <paramref name="dst"/> (length = element count).</summary>
    public void ReadFloats(GgufTensorInfo info, Span<float> dst)
    {
        ArgumentNullException.ThrowIfNull(info);
        if (dst.Length != info.ElementCount) throw new ArgumentException($"destination holds {dst.Length} floats, tensor {info.Name} has {info.ElementCount}");
        // Row by row, so tensors over 2 GiB of source bytes work too.
        long rowElems = info.Dims[0], rows = info.ElementCount / rowElems;
        long rowBytes = rowElems / GgufTypes.BlockElements(info.Type) * GgufTypes.BlockBytes(info.Type);
        byte* src = _base + _dataStart + info.Offset;
        for (long r = 0; r < rows; r++)
            GgufTypes.Dequantize(info.Type, new ReadOnlySpan<byte>(src + r * rowBytes, (int)rowBytes), dst.Slice((int)(r * rowElems), (int)rowElems));
    }

    /// <summary>A metadata string, or null when absent (typed error when present with another type).</summary>
    public string? GetString(string key) => Metadata.TryGetValue(key, out var v)
        ? v as string ?? throw new InvalidFileException(Path, $"metadata {key} is not a string")
        : null;

    /// <summary>A metadata integer (any integer type), or null when absent.</summary>
    public long? GetInt(string key)
    {
        if (!Metadata.TryGetValue(key, out var v)) return null;
        return v switch
        {
            byte or sbyte or ushort or short or uint or int or long => Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture),
            ulong u => u <= long.MaxValue ? (long)u : throw new InvalidFileException(Path, $"metadata {key} = {u} is out of range"),
            _ => throw new InvalidFileException(Path, $"metadata {key} is not an integer"),
        };
    }

    /// <summary>A metadata float (float32 or float64), or null when absent.</summary>
    public double? GetFloat(string key) => !Metadata.TryGetValue(key, out var v) ? null : v switch
    {
        float f => f,
        double d => d,
        _ => throw new InvalidFileException(Path, $"metadata {key} is not a float"),
    };

    /// <summary>A metadata bool, or null when absent.</summary>
    public bool? GetBool(string key) => !Metadata.TryGetValue(key, out var v) ? null
        : v as bool? ?? throw new InvalidFileException(Path, $"metadata {key} is not a bool");

    /// <inheritdoc/>
    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    // Bounds-checked reader over the mapped header.
    private struct Cursor(byte* p, long length, string path)
    {
        private long _pos;
        public readonly long Position => _pos;
        public readonly long Remaining => length - _pos;

        public ReadOnlySpan<byte> Bytes(long n)
        {
            if (n < 0 || n > Remaining) throw new InvalidFileException(path, $"truncated header: {n} bytes needed at offset {_pos}, {Remaining} left");
            var s = new ReadOnlySpan<byte>(p + _pos, (int)n);
            _pos += n;
            return s;
        }

        public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4));
        public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8));

        public string Str()
        {
            ulong n = U64();
            if (n > MaxStringBytes) throw new InvalidFileException(path, $"string of {n} bytes at offset {_pos - 8} (limit {MaxStringBytes})");
            // Lenient: some vocabularies hold pieces that are not valid UTF-8 on their own.
            return Encoding.UTF8.GetString(Bytes((long)n));
        }
    }
}

/// <summary>A GGUF tensor whose ggml type Gosset cannot read.</summary>
public sealed class UnsupportedGgufTypeException(string path, string tensor, uint type)
    : GossetException($"{path}: tensor {tensor} has ggml type {type}, which Gosset cannot read (supported: {string.Join(", ", Enum.GetNames<GgufTensorType>())})")
{
    /// <summary>The ggml type id.</summary>
    public uint TypeId { get; } = type;
}
