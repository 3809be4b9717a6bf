using System.Buffers.Binary;
using Gosset.Coding;
using Gosset.Matrix;
using Gosset.Rotations;

namespace Gosset.IO;

/// <summary>Quantization method stored in a <c>.gq</c> header (values are part of the format).</summary>
public enum GqMethod : byte
{
    /// <summary>E8 Voronoi code E8/qE8 (<see cref="E8QuantizedMatrix"/>).</summary>
    E8Voronoi = 1,
    /// <summary>Scalar INT baseline (<see cref="IntQuantizedMatrix"/>).</summary>
    Int = 2,
    /// <summary>The kernels' 4-bit E8 box code (<see cref="BoxQuantizedMatrix"/>).</summary>
    E8Box = 3,
    /// <summary>The kernel-native E8 box code with fitted tables (<see cref="E8BoxQuantizedMatrix"/>, <see cref="Codes.E8BoxFormat"/>).</summary>
    E8BoxFitted = 4,
}

/// <summary>Which vectors of the user's matrix were coded (values are part of the format).</summary>
public enum GqOrientation : byte
{
    /// <summary>The columns of the input were coded; the stored matrix is the input.</summary>
    Columns = 0,
    /// <summary>The rows were coded (<c>quantize --transpose</c>): the stored matrix is the input's transpose.</summary>
    Rows = 1,
}

/// <summary>
/// The fixed header of a <c>.gq</c> file, exactly as stored (version 2). Every field is a stored
/// value; nothing is derived.
/// </summary>
/// <param name="Version">Format version.</param>
/// <param name="Method">Coding method of the body.</param>
/// <param name="Orientation">Whether the stored columns are the input's columns or its rows.</param>
/// <param name="Rows">Length n of each coded vector.</param>
/// <param name="Cols">Number of coded vectors.</param>
/// <param name="RotatedLength">Length of the padded, rotated vectors.</param>
/// <param name="Rotation">Rotation kind.</param>
/// <param name="RotationSeed">Seed of the rotation.</param>
/// <param name="Centered">Whether column means are stored.</param>
public sealed record GqHeader(ushort Version, GqMethod Method, GqOrientation Orientation, int Rows, int Cols,
    int RotatedLength, RotationKind Rotation, ulong RotationSeed, bool Centered);

/// <summary>A parsed <c>.gq</c> file: its header and the quantized matrix.</summary>
/// <param name="Header">The stored header.</param>
/// <param name="Matrix">The coded matrix (its columns are the coded vectors).</param>
public sealed record GqFile(GqHeader Header, QuantizedMatrix Matrix)
{
    /// <summary>Decodes the matrix in the orientation of the original input (transposed back for <see cref="GqOrientation.Rows"/>).</summary>
    public DenseMatrix Dequantize()
    {
        var m = Matrix.Dequantize();
        if (Header.Orientation == GqOrientation.Columns) return m;
        var t = new DenseMatrix(m.Cols, m.Rows);
        for (int j = 0; j < m.Cols; j++)
        {
            var c = m.Column(j);
            for (int i = 0; i < c.Length; i++) t.Data[(long)i * t.Rows + j] = c[i];
        }
        return t;
    }
}

/// <summary>
/// The <c>.gq</c> container for one quantized matrix (little-endian), version 2:
/// <code>
/// magic "GSQM" | u16 version (2) | u8 method (GqMethod) | u8 orientation (GqOrientation)
/// i32 rows | i32 cols | i32 rotatedLength | u8 rotation (0 none, 1 hadamard) | u64 rotationSeed | u8 centered (0/1)
/// method body (e8: u16 q, u8 k, f32×k scales, u8 selection, u8 indexCoding, u8 dither [u64 ditherSeed],
///              i32 codedBlocks, [u16×k frequencies], [f32×cols means], f32×cols gains, i32 payloadLength, payload;
///              int: u8 bits, i32 group, u8 clipping, u8 levels, i32 payloadLength, payload;
///              e8-box: f32×cols scales, u32×(cols·rotatedLength/8) words, i32 indexLength, 2-bit indices)
/// u32 CRC-32 of every byte before it
/// </code>
/// Version 1 (no orientation byte, rotations drawn with the platform's libm) is still read when its
/// rotation is none or a power-of-two Hadamard (those do not depend on libm); other version 1 files
/// are refused with a message. The file size is the stored size that bits/entry reports.
/// </summary>
/// <remarks>
/// The reader trusts nothing: every count is checked with 64-bit arithmetic against the bytes left
/// before anything is allocated, a file must store at least 1/64 bit per decoded entry
/// (<see cref="MaxEntriesPerByte"/>), and the dense factor of the rotation (cubic set-up cost)
/// must be paid for by the file's size (<see cref="RotationAffordable"/>). Any violation is an
/// <see cref="InvalidFileException"/>.
/// </remarks>
public static class GqFormat
{
    private static ReadOnlySpan<byte> Magic => "GSQM"u8;
    /// <summary>Current format version.</summary>
    public const ushort Version = 2;
    /// <summary>Decoded entries (rotatedLength·cols) allowed per stored byte: 512, i.e. at least 1/64 bit per entry.</summary>
    public const long MaxEntriesPerByte = 512;
    /// <summary>Dense rotation factors up to this size are always accepted (set-up well under a second).</summary>
    public const int FreeDenseFactor = 256;

    /// <summary>Serializes a quantized matrix to a stream (columns orientation).</summary>
    public static void Write(Stream s, QuantizedMatrix m) => Write(s, m, GqOrientation.Columns);

    /// <summary>Serializes a quantized matrix to a stream, recording which vectors of the input were coded.</summary>
    public static void Write(Stream s, QuantizedMatrix m, GqOrientation orientation)
    {
        ArgumentNullException.ThrowIfNull(s);
        ArgumentNullException.ThrowIfNull(m);
        if (!Enum.IsDefined(orientation)) throw new ArgumentOutOfRangeException(nameof(orientation));
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(Version);
            w.Write((byte)MethodOf(m));
            w.Write((byte)orientation);
            w.Write(m.Rows); w.Write(m.Cols); w.Write(m.RotatedLength);
            w.Write((byte)m.RotationKind); w.Write(m.RotationSeed); w.Write(m.Centered);
            m.WriteBody(w);
        }
        // Never write a file that the reader's work bounds would refuse.
        long fileLength = ms.Length + 4;
        if (m.RotationKind == RotationKind.Hadamard && !RotationAffordable(m.RotatedLength, fileLength))
            throw new GossetException($"A rotation of length {m.RotatedLength} has a dense {DenseFactor(m.RotatedLength)}×{DenseFactor(m.RotatedLength)} factor that a {fileLength}-byte .gq file cannot justify; pad the vectors to a length with a larger power-of-two factor or code more vectors.");
        if ((long)m.RotatedLength * m.Cols > MaxEntriesPerByte * fileLength)
            throw new GossetException($"A {m.RotatedLength}×{m.Cols} matrix stored in {fileLength} bytes is below the 1/64 bit per entry that a .gq file must hold.");
        uint crc = Crc32.Compute(ms.GetBuffer().AsSpan(0, (int)ms.Length));
        s.Write(ms.GetBuffer(), 0, (int)ms.Length);
        Span<byte> c = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(c, crc);
        s.Write(c);
    }

    /// <summary>Saves atomically to <paramref name="path"/> (columns orientation).</summary>
    public static void Save(string path, QuantizedMatrix m) => Save(path, m, GqOrientation.Columns);

    /// <summary>Saves atomically to <paramref name="path"/>, recording the orientation.</summary>
    public static void Save(string path, QuantizedMatrix m, GqOrientation orientation) => AtomicFile.Write(path, s => Write(s, m, orientation));

    /// <summary>Loads a .gq file; corrupt, truncated or hostile files raise <see cref="InvalidFileException"/>.</summary>
    public static QuantizedMatrix Load(string path) => LoadFile(path).Matrix;

    /// <summary>Loads a .gq file with its header.</summary>
    /// <exception cref="InvalidFileException">The file is not a valid .gq file.</exception>
    public static GqFile LoadFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"File not found: {path}", path);
        long length = new FileInfo(path).Length;
        if (length > Array.MaxLength) throw new InvalidFileException(path, $"{length} bytes is too large for a .gq file.");
        return ReadFile(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses a .gq image.</summary>
    public static QuantizedMatrix Read(byte[] bytes, string name = "<memory>") => ReadFile(bytes, name).Matrix;

    /// <summary>Parses a .gq image with its header.</summary>
    /// <exception cref="InvalidFileException">The image is not a valid .gq file.</exception>
    public static GqFile ReadFile(byte[] bytes, string name = "<memory>")
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length < 4 + 2 + 1 + 4) throw new InvalidFileException(name, "too short to be a .gq file.");
        if (!bytes.AsSpan(0, 4).SequenceEqual(Magic)) throw new InvalidFileException(name, "not a .gq file (bad magic).");
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4));
        if (Crc32.Compute(bytes.AsSpan(0, bytes.Length - 4)) != stored)
            throw new InvalidFileException(name, "checksum mismatch (the file is truncated or corrupt).");
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes, 0, bytes.Length - 4));
            r.ReadBytes(4);
            var h = ReadHeader(r, bytes.Length);
            QuantizedMatrix m = h.Method switch
            {
                GqMethod.E8Voronoi => E8QuantizedMatrix.ReadBody(r, h.Rows, h.Cols, h.RotatedLength, h.Rotation, h.RotationSeed, h.Centered),
                GqMethod.Int => IntQuantizedMatrix.ReadBody(r, h.Rows, h.Cols, h.RotatedLength, h.Rotation, h.RotationSeed, h.Centered),
                GqMethod.E8Box => BoxQuantizedMatrix.ReadBody(r, h.Rows, h.Cols, h.RotatedLength, h.Rotation, h.RotationSeed, h.Centered),
                GqMethod.E8BoxFitted => E8BoxQuantizedMatrix.ReadBody(r, h.Rows, h.Cols, h.RotatedLength, h.Rotation, h.RotationSeed, h.Centered),
                _ => throw new InvalidDataException($"unknown method code {(byte)h.Method}"),
            };
            if (r.BaseStream.Position != r.BaseStream.Length) throw new InvalidDataException($"{r.BaseStream.Length - r.BaseStream.Position} trailing bytes after the body");
            return new GqFile(h, m);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or ArgumentException or OverflowException)
        {
            throw new InvalidFileException(name, "corrupt .gq file: " + e.Message);
        }
    }

    private static GqHeader ReadHeader(BinaryReader r, long fileLength)
    {
        ushort version = r.ReadUInt16();
        if (version is not (1 or Version)) throw new InvalidDataException($"unsupported version {version} (this build reads 1 and {Version})");
        byte methodCode = r.ReadByte();
        if (!Enum.IsDefined((GqMethod)methodCode)) throw new InvalidDataException($"unknown method code {methodCode}");
        var method = (GqMethod)methodCode;
        var orientation = GqOrientation.Columns; // version 1 did not record it
        if (version >= 2)
        {
            byte o = r.ReadByte();
            if (!Enum.IsDefined((GqOrientation)o)) throw new InvalidDataException($"unknown orientation code {o}");
            orientation = (GqOrientation)o;
        }
        int rows = r.ReadInt32(), cols = r.ReadInt32(), np = r.ReadInt32();
        if (rows <= 0 || cols <= 0 || np < rows) throw new InvalidDataException($"invalid shape {rows}×{cols} (rotated length {np})");
        long entries = (long)np * cols;
        if (entries > int.MaxValue) throw new InvalidDataException($"shape {np}×{cols} is too large");
        if (entries > MaxEntriesPerByte * fileLength)
            throw new InvalidDataException($"the header claims {entries} entries but {fileLength} bytes cannot hold them (at least 1/64 bit per entry)");
        byte rotCode = r.ReadByte();
        if (rotCode > 1) throw new InvalidDataException($"unknown rotation code {rotCode}");
        var rot = (RotationKind)rotCode;
        ulong seed = r.ReadUInt64();
        bool centered = ReadFlag(r, "centered");
        if (rot == RotationKind.Hadamard)
        {
            long m = DenseFactor(np);
            if (version == 1 && m > 1)
                throw new InvalidDataException($"version 1 file with a rotation of length {np} (not a power of two): its rotation was drawn with the platform's libm and is not reproduced by this build; quantize the matrix again");
            if (!RotationAffordable(np, fileLength))
                throw new InvalidDataException($"rotation length {np} needs a dense {m}×{m} factor, more set-up work than a {fileLength}-byte file can justify");
        }
        return new GqHeader(version, method, orientation, rows, cols, np, rot, seed, centered);
    }

    /// <summary>Odd factor m of a rotation length n = m·2^v (the size of the Kronecker rotation's dense factor; 1 for powers of two).</summary>
    public static long DenseFactor(int length) => length <= 0 ? 0 : length / (length & -length);

    /// <summary>
    /// Whether a file of <paramref name="fileLength"/> bytes may ask for a rotation of
    /// <paramref name="length"/>: its dense factor m (O(m³) set-up) is at most
    /// <see cref="FreeDenseFactor"/>, or m³ ≤ 2^16 per stored byte.
    /// </summary>
    public static bool RotationAffordable(int length, long fileLength)
    {
        long m = DenseFactor(length);
        return m <= FreeDenseFactor || (double)m * m * m <= 65536.0 * fileLength;
    }

    /// <summary>Reads a stored boolean, which must be exactly 0 or 1.</summary>
    internal static bool ReadFlag(BinaryReader r, string what)
    {
        byte b = r.ReadByte();
        if (b > 1) throw new InvalidDataException($"{what} flag is {b}, expected 0 or 1");
        return b == 1;
    }

    /// <summary>Throws unless at least <paramref name="bytes"/> bytes are left to read (checked before allocating them).</summary>
    internal static void Require(BinaryReader r, long bytes, string what)
    {
        long left = r.BaseStream.Length - r.BaseStream.Position;
        if (bytes < 0 || bytes > left) throw new InvalidDataException($"{what} needs {bytes} bytes, only {left} are left");
    }

    private static GqMethod MethodOf(QuantizedMatrix m) => m switch
    {
        E8QuantizedMatrix => GqMethod.E8Voronoi,
        IntQuantizedMatrix => GqMethod.Int,
        BoxQuantizedMatrix => GqMethod.E8Box,
        E8BoxQuantizedMatrix => GqMethod.E8BoxFitted,
        _ => throw new NotSupportedException(m.GetType().Name),
    };
}
