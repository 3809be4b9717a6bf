using Gosset.Coding;
using Gosset.Matrix;
using Gosset.Rotations;

namespace Gosset.IO;

/// <summary>
/// The <c>.gq</c> container for one quantized matrix (little-endian):
/// <code>
/// magic "GSQM" | u16 version (1) | u8 method (1 = e8, 2 = int, 3 = e8-box)
/// i32 rows | i32 cols | i32 rotatedLength | u8 rotation (0 none, 1 hadamard) | u64 rotationSeed | u8 centered
/// method body (e8: u16 q, u8 k, f32×k scales, u8 selection, u8 indexCoding, u8 dither [u64 ditherSeed],
///              i32 codedBlocks, [u16×k frequencies], [f32×cols means], f32×cols gains, i32 payloadLength, payload;
///              int: see IntQuantizedMatrix)
/// u32 CRC-32 of every byte before it
/// </code>
/// The file size is the stored size that bits/entry reports.
/// </summary>
public static class GqFormat
{
    private static ReadOnlySpan<byte> Magic => "GSQM"u8;
    /// <summary>Current format version.</summary>
    public const ushort Version = 1;

    /// <summary>Serializes a quantized matrix to a stream.</summary>
    public static void Write(Stream s, QuantizedMatrix m)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(Version);
            w.Write(MethodCode(m));
            w.Write(m.Rows); w.Write(m.Cols); w.Write(m.RotatedLength);
            w.Write((byte)m.RotationKind); w.Write(m.RotationSeed); w.Write(m.Centered);
            m.WriteBody(w);
        }
        uint crc = Crc32.Compute(ms.GetBuffer().AsSpan(0, (int)ms.Length));
        s.Write(ms.GetBuffer(), 0, (int)ms.Length);
        Span<byte> c = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(c, crc);
        s.Write(c);
    }

    /// <summary>Saves atomically to <paramref name="path"/>.</summary>
    public static void Save(string path, QuantizedMatrix m) => AtomicFile.Write(path, s => Write(s, m));

    /// <summary>Loads a .gq file; corrupt or truncated files raise <see cref="InvalidFileException"/>.</summary>
    public static QuantizedMatrix Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"File not found: {path}", path);
        return Read(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses a .gq image.</summary>
    public static QuantizedMatrix Read(byte[] bytes, string name = "<memory>")
    {
        if (bytes.Length < 4 + 2 + 1 + 4) throw new InvalidFileException(name, "too short to be a .gq file.");
        if (!bytes.AsSpan(0, 4).SequenceEqual(Magic)) throw new InvalidFileException(name, "not a .gq file (bad magic).");
        uint stored = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4));
        if (Crc32.Compute(bytes.AsSpan(0, bytes.Length - 4)) != stored)
            throw new InvalidFileException(name, "checksum mismatch (the file is truncated or corrupt).");
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes, 0, bytes.Length - 4));
            r.ReadBytes(4);
            ushort version = r.ReadUInt16();
            if (version != Version) throw new InvalidFileException(name, $"unsupported version {version} (this build reads {Version}).");
            byte method = r.ReadByte();
            int rows = r.ReadInt32(), cols = r.ReadInt32(), np = r.ReadInt32();
            if (rows <= 0 || cols <= 0 || np < rows || (long)np * cols > int.MaxValue) throw new InvalidDataException("invalid shape");
            var rot = (RotationKind)r.ReadByte();
            if (rot is not (RotationKind.None or RotationKind.Hadamard)) throw new InvalidDataException("unknown rotation");
            ulong seed = r.ReadUInt64();
            bool centered = r.ReadBoolean();
            QuantizedMatrix m = method switch
            {
                1 => E8QuantizedMatrix.ReadBody(r, rows, cols, np, rot, seed, centered),
                2 => IntQuantizedMatrix.ReadBody(r, rows, cols, np, rot, seed, centered),
                3 => BoxQuantizedMatrix.ReadBody(r, rows, cols, np, rot, seed, centered),
                4 => E8BoxQuantizedMatrix.ReadBody(r, rows, cols, np, rot, seed, centered),
                _ => throw new InvalidDataException($"unknown method code {method}"),
            };
            if (r.BaseStream.Position != r.BaseStream.Length) throw new InvalidDataException("trailing bytes");
            return m;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or ArgumentException)
        {
            throw new InvalidFileException(name, "corrupt .gq file: " + e.Message);
        }
    }

    private static byte MethodCode(QuantizedMatrix m) => m switch
    {
        E8QuantizedMatrix => 1,
        IntQuantizedMatrix => 2,
        BoxQuantizedMatrix => 3,
        E8BoxQuantizedMatrix => 4,
        _ => throw new NotSupportedException(m.GetType().Name),
    };
}
