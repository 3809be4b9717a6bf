using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Gosset.Llm.Loading;

/// <summary>Element type of a safetensors tensor (the ones this reader converts to float32).</summary>
internal enum SafetensorsDType { F32, F16, BF16 }

/// <summary>One tensor entry of a safetensors header.</summary>
internal sealed record SafetensorsEntry(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)
{
    public long Count => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A memory-mapped safetensors file (8-byte little-endian header length, JSON header, raw data).
/// Tensors are converted to float32 one at a time on request, so the whole file is never read at once.
/// Internal and minimal on purpose: the core library's reader will replace it.
/// </summary>
internal sealed class SafetensorsFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafetensorsEntry> _entries = new(StringComparer.Ordinal);

    public string Path { get; }

    public SafetensorsFile(string path)
    {
        Path = path;
        long length = new FileInfo(path).Length;
        if (length < 8) throw new InvalidFileException(path, "too short for a safetensors file");
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        try
        {
            long n = _view.ReadInt64(0);
            if (n <= 1 || n > 100_000_000 || 8 + n > length) throw new InvalidFileException(path, $"bad safetensors header length {n}");
            var json = new byte[n];
            _view.ReadArray(8, json, 0, (int)n);
            _dataStart = 8 + n;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(json); }
            catch (JsonException e) { throw new InvalidFileException(path, "safetensors header is not valid JSON: " + e.Message); }
            using (doc)
            {
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    if (p.Name == "__metadata__") continue;
                    string dt = p.Value.GetProperty("dtype").GetString() ?? "";
                    var dtype = dt switch
                    {
                        "F32" => SafetensorsDType.F32,
                        "F16" => SafetensorsDType.F16,
                        "BF16" => SafetensorsDType.BF16,
                        _ => throw new InvalidFileException(path, $"tensor {p.Name}: dtype {dt} is not supported (F32, F16, BF16)"),
                    };
                    long[] shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                    var off = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                    var e = new SafetensorsEntry(p.Name, dtype, shape, off[0], off[1]);
                    if (off.Length != 2 || off[0] < 0 || off[1] < off[0] || _dataStart + off[1] > length)
                        throw new InvalidFileException(path, $"tensor {p.Name}: data offsets outside the file (truncated?)");
                    if (off[1] - off[0] != e.Count * ElementSize(dtype))
                        throw new InvalidFileException(path, $"tensor {p.Name}: byte size does not match its shape");
                    _entries[p.Name] = e;
                }
            }
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            Dispose();
            throw new InvalidFileException(path, "malformed safetensors header: " + e.Message);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public IReadOnlyDictionary<string, SafetensorsEntry> Entries => _entries;

    public static int ElementSize(SafetensorsDType t) => t == SafetensorsDType.F32 ? 4 : 2;

    /// <summary>Reads a tensor as float32, checking its shape.</summary>
    public void Read(string name, float[] dst, params long[] shape)
    {
        if (!_entries.TryGetValue(name, out var e)) throw new InvalidFileException(Path, $"tensor {name} is missing");
        if (!e.Shape.SequenceEqual(shape))
            throw new InvalidFileException(Path, $"tensor {name} has shape [{string.Join(",", e.Shape)}], expected [{string.Join(",", shape)}]");
        if (e.Count != dst.Length) throw new ArgumentException("destination length does not match the tensor");
        long pos = _dataStart + e.Begin;
        const int chunk = 1 << 16;
        var buf = new byte[chunk * ElementSize(e.DType)];
        for (long i = 0; i < e.Count; i += chunk)
        {
            int n = (int)Math.Min(chunk, e.Count - i);
            int bytes = n * ElementSize(e.DType);
            _view.ReadArray(pos, buf, 0, bytes);
            pos += bytes;
            var d = dst.AsSpan((int)i, n);
            switch (e.DType)
            {
                case SafetensorsDType.F32:
                    MemoryMarshal.Cast<byte, float>(buf.AsSpan(0, bytes)).CopyTo(d);
                    break;
                case SafetensorsDType.F16:
                    for (int j = 0; j < n; j++) d[j] = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(2 * j)));
                    break;
                default:
                    for (int j = 0; j < n; j++) d[j] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(2 * j)) << 16);
                    break;
            }
        }
    }

    public void Dispose()
    {
        _view.Dispose();
        _map.Dispose();
    }

    /// <summary>Writes float32 tensors (stored as <paramref name="dtype"/>) atomically, in the given order.</summary>
    public static void Write(string path, IReadOnlyList<(string Name, long[] Shape, float[] Data)> tensors, SafetensorsDType dtype = SafetensorsDType.F32)
    {
        var sb = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long off = 0;
        foreach (var (name, shape, data) in tensors)
        {
            long size = data.LongLength * ElementSize(dtype);
            sb.Append($",\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{off},{off + size}]}}");
            off += size;
        }
        sb.Append('}');
        while ((sb.Length + 8) % 8 != 0) sb.Append(' ');
        byte[] header = Encoding.UTF8.GetBytes(sb.ToString());
        Gosset.IO.AtomicFile.Write(path, s =>
        {
            Span<byte> n = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(n, header.Length);
            s.Write(n);
            s.Write(header);
            foreach (var (_, _, data) in tensors)
            {
                if (dtype == SafetensorsDType.F32) { s.Write(MemoryMarshal.AsBytes(data.AsSpan())); continue; }
                var b = new byte[data.Length * 2];
                for (int i = 0; i < data.Length; i++)
                {
                    ushort bits = dtype == SafetensorsDType.F16
                        ? BitConverter.HalfToUInt16Bits((Half)data[i])
                        : (ushort)(RoundToBf16(data[i]) >> 16);
                    BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2 * i), bits);
                }
                s.Write(b);
            }
        });
    }

    private static uint RoundToBf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        return u + 0x7FFF + ((u >> 16) & 1);
    }
}
