using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Gosset.Matrix;

namespace Gosset.IO;

/// <summary>An array read from a .npy file: its shape and its entries as float64 in C (row-major) order.</summary>
/// <param name="Shape">Dimensions, outermost first (one or two entries).</param>
/// <param name="Data">Entries in C order: for shape (r, c), entry (i, j) is <c>Data[i * c + j]</c>.</param>
/// <param name="SourceDType">The dtype descriptor found in the file (e.g. <c>&lt;f4</c>).</param>
public sealed record NpyArray(int[] Shape, double[] Data, string SourceDType);

/// <summary>
/// NumPy <c>.npy</c> files (format versions 1.0, 2.0 and 3.0) holding float32 or float64 arrays
/// of one or two dimensions, in C or Fortran order, little- or big-endian.
/// </summary>
/// <remarks>
/// Layout: the magic <c>\x93NUMPY</c>, a major and minor version byte, the header length
/// (uint16 little-endian for 1.0, uint32 for 2.0/3.0), then an ASCII (UTF-8 for 3.0) Python dict
/// literal with exactly the keys <c>descr</c>, <c>fortran_order</c> and <c>shape</c>, padded with
/// spaces and a final newline so that the data starts at a multiple of 64 bytes. The writer emits
/// version 1.0, or 2.0 when the header does not fit in 65535 bytes. The reader does not reject
/// NaN or ±Inf (the quantizers do; see <see cref="DenseMatrix.ThrowIfNotFinite"/>), but does
/// reject trailing bytes after the data, which indicate a corrupt or mislabelled file.
/// </remarks>
public static class Npy
{
    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    private const int MaxHeaderLength = 1 << 20;

    /// <summary>
    /// Reads a 1-D or 2-D float32/float64 array as a float32 <see cref="DenseMatrix"/>: shape (r, c)
    /// becomes an r×c matrix, shape (n,) an n×1 matrix. Float64 values are rounded to float32.
    /// </summary>
    /// <exception cref="InvalidFileException">The file is not a readable .npy array of a supported kind.</exception>
    public static DenseMatrix Read(string path)
    {
        using var fs = OpenRead(path);
        var h = ReadHeader(fs, path);
        int rows = h.Shape[0];
        int cols = h.Shape.Length == 2 ? h.Shape[1] : 1;
        var m = new DenseMatrix(rows, cols);
        // Both orders are read into a flat buffer; Fortran order (and 1-D) is already column-major.
        bool columnMajor = h.FortranOrder || h.Shape.Length == 1 || rows == 1 || cols == 1;
        float[] flat = columnMajor ? m.Data : new float[m.Data.Length];
        if (h.ItemSize == 4)
        {
            ReadExactly(fs, MemoryMarshal.AsBytes(flat.AsSpan()), path);
            if (h.BigEndian)
            {
                Span<int> bits = MemoryMarshal.Cast<float, int>(flat.AsSpan());
                BinaryPrimitives.ReverseEndianness(bits, bits);
            }
        }
        else
        {
            var buf = new byte[(int)Math.Min(1 << 16, Math.Max(8L, flat.Length * 8L))];
            int done = 0;
            while (done < flat.Length)
            {
                int n = Math.Min(buf.Length / 8, flat.Length - done);
                ReadExactly(fs, buf.AsSpan(0, n * 8), path);
                for (int k = 0; k < n; k++)
                {
                    var b = buf.AsSpan(k * 8, 8);
                    flat[done + k] = (float)(h.BigEndian ? BinaryPrimitives.ReadDoubleBigEndian(b) : BinaryPrimitives.ReadDoubleLittleEndian(b));
                }
                done += n;
            }
        }
        ThrowIfTrailing(fs, path);
        if (!columnMajor)
        {
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                    m.Data[j * rows + i] = flat[i * cols + j];
        }
        return m;
    }

    /// <summary>
    /// Reads a 1-D or 2-D float32/float64 array with full float64 precision, entries in C order
    /// whatever the file's order.
    /// </summary>
    /// <exception cref="InvalidFileException">The file is not a readable .npy array of a supported kind.</exception>
    public static NpyArray ReadArray(string path)
    {
        using var fs = OpenRead(path);
        var h = ReadHeader(fs, path);
        long count = h.Count;
        if (count * h.ItemSize > Array.MaxLength) throw new GossetException($"{path}: array of {count} entries is too large to read as float64; use Npy.Read.");
        var raw = new byte[count * h.ItemSize];
        ReadExactly(fs, raw, path);
        ThrowIfTrailing(fs, path);
        var flat = new double[count];
        for (int k = 0; k < flat.Length; k++)
        {
            var b = raw.AsSpan(k * h.ItemSize, h.ItemSize);
            flat[k] = h.ItemSize == 4
                ? (h.BigEndian ? BinaryPrimitives.ReadSingleBigEndian(b) : BinaryPrimitives.ReadSingleLittleEndian(b))
                : (h.BigEndian ? BinaryPrimitives.ReadDoubleBigEndian(b) : BinaryPrimitives.ReadDoubleLittleEndian(b));
        }
        double[] data = flat;
        if (h.FortranOrder && h.Shape.Length == 2)
        {
            int rows = h.Shape[0], cols = h.Shape[1];
            data = new double[count];
            for (int j = 0; j < cols; j++)
                for (int i = 0; i < rows; i++)
                    data[i * cols + j] = flat[j * rows + i];
        }
        return new NpyArray((int[])h.Shape.Clone(), data, h.Descr);
    }

    /// <summary>
    /// Writes <paramref name="m"/> atomically as a 2-D little-endian float32 array of shape
    /// (Rows, Cols), in C order by default or Fortran order (which is the matrix's own layout).
    /// </summary>
    public static void Write(string path, DenseMatrix m, bool fortranOrder = false)
    {
        ArgumentNullException.ThrowIfNull(m);
        byte[] header = BuildHeader("<f4", fortranOrder, [m.Rows, m.Cols]);
        AtomicFile.Write(path, s =>
        {
            s.Write(header);
            float[] ordered = fortranOrder || m.Rows <= 1 || m.Cols <= 1 ? m.Data : m.ToRowMajor();
            WriteFloatsLittleEndian(s, ordered);
        });
    }

    /// <summary>
    /// Writes a float64 array atomically in C order, little-endian. <paramref name="shape"/> has one
    /// or two dimensions and <paramref name="rowMajor"/> holds their product of entries in C order.
    /// </summary>
    public static void WriteArray(string path, ReadOnlySpan<int> shape, ReadOnlySpan<double> rowMajor)
    {
        if (shape.Length is < 1 or > 2) throw new ArgumentException("Only 1-D and 2-D arrays are supported.", nameof(shape));
        long count = 1;
        foreach (int d in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(d, nameof(shape));
            count *= d;
        }
        if (count != rowMajor.Length) throw new ArgumentException($"Shape needs {count} entries, got {rowMajor.Length}.", nameof(rowMajor));
        byte[] header = BuildHeader("<f8", false, shape.ToArray());
        var bytes = new byte[rowMajor.Length * 8];
        for (int k = 0; k < rowMajor.Length; k++) BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(k * 8), rowMajor[k]);
        AtomicFile.Write(path, s => { s.Write(header); s.Write(bytes); });
    }

    private static void WriteFloatsLittleEndian(Stream s, float[] data)
    {
        if (BitConverter.IsLittleEndian)
        {
            s.Write(MemoryMarshal.AsBytes(data.AsSpan()));
            return;
        }
        var buf = new byte[4];
        foreach (float f in data) { BinaryPrimitives.WriteSingleLittleEndian(buf, f); s.Write(buf); }
    }

    /// <summary>Builds magic, version, header length and padded header (NumPy's layout: total a multiple of 64).</summary>
    internal static byte[] BuildHeader(string descr, bool fortranOrder, int[] shape)
    {
        string shapeText = shape.Length == 1
            ? $"({shape[0].ToString(CultureInfo.InvariantCulture)},)"
            : "(" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + ")";
        string dict = $"{{'descr': '{descr}', 'fortran_order': {(fortranOrder ? "True" : "False")}, 'shape': {shapeText}, }}";
        int major = 1;
        int prefix = 10;
        int total = Pad(prefix + dict.Length + 1);
        if (total - prefix > ushort.MaxValue) { major = 2; prefix = 12; total = Pad(prefix + dict.Length + 1); }
        var bytes = new byte[total];
        Magic.CopyTo(bytes);
        bytes[6] = (byte)major;
        bytes[7] = 0;
        int headerLen = total - prefix;
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)headerLen);
        else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), (uint)headerLen);
        int p = prefix + Encoding.ASCII.GetBytes(dict, bytes.AsSpan(prefix));
        while (p < total - 1) bytes[p++] = (byte)' ';
        bytes[total - 1] = (byte)'\n';
        return bytes;

        static int Pad(int n) => (n + 63) / 64 * 64;
    }

    private sealed record Header(string Descr, bool FortranOrder, int[] Shape, int ItemSize, bool BigEndian)
    {
        public long Count => Shape.Aggregate(1L, (a, d) => a * d);
    }

    private static FileStream OpenRead(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"File not found: {path}", path);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }

    private static Header ReadHeader(FileStream fs, string path)
    {
        Span<byte> pre = stackalloc byte[12];
        if (fs.Length < 10) throw new InvalidFileException(path, $"too short for a .npy file ({fs.Length} bytes)");
        ReadExactly(fs, pre[..8], path);
        if (!pre[..6].SequenceEqual(Magic)) throw new InvalidFileException(path, "not a .npy file (bad magic bytes)");
        int major = pre[6], minor = pre[7];
        if (major is < 1 or > 3 || minor != 0) throw new InvalidFileException(path, $"unsupported .npy format version {major}.{minor}");
        long headerLen;
        if (major == 1)
        {
            ReadExactly(fs, pre.Slice(8, 2), path);
            headerLen = BinaryPrimitives.ReadUInt16LittleEndian(pre[8..]);
        }
        else
        {
            ReadExactly(fs, pre.Slice(8, 4), path);
            headerLen = BinaryPrimitives.ReadUInt32LittleEndian(pre[8..]);
        }
        if (headerLen > MaxHeaderLength) throw new InvalidFileException(path, $"header length {headerLen} is implausibly large");
        if (fs.Position + headerLen > fs.Length) throw new InvalidFileException(path, $"truncated header (needs {headerLen} bytes, file has {fs.Length - fs.Position} left)");
        var hb = new byte[headerLen];
        ReadExactly(fs, hb, path);
        string text;
        try
        {
            text = major == 3 ? new UTF8Encoding(false, true).GetString(hb) : Encoding.Latin1.GetString(hb);
        }
        catch (DecoderFallbackException) { throw new InvalidFileException(path, "header is not valid UTF-8"); }

        Dictionary<string, object?> dict;
        try { dict = new LiteralParser(text).ParseHeaderDict(); }
        catch (FormatException e) { throw new InvalidFileException(path, $"cannot parse header: {e.Message}"); }

        string[] keys = ["descr", "fortran_order", "shape"];
        if (dict.Count != 3 || !keys.All(dict.ContainsKey))
            throw new InvalidFileException(path, $"header must have exactly the keys descr, fortran_order, shape (found {string.Join(", ", dict.Keys)})");
        if (dict["descr"] is not string descr)
            throw new InvalidFileException(path, "unsupported dtype: structured or non-string descr (only float32 and float64 are supported)");
        if (dict["fortran_order"] is not bool fortran) throw new InvalidFileException(path, "fortran_order must be True or False");
        if (dict["shape"] is not List<long> shapeList) throw new InvalidFileException(path, "shape must be a tuple of integers");

        (int itemSize, bool bigEndian) = descr switch
        {
            "<f4" => (4, false),
            "<f8" => (8, false),
            ">f4" => (4, true),
            ">f8" => (8, true),
            "=f4" => (4, !BitConverter.IsLittleEndian),
            "=f8" => (8, !BitConverter.IsLittleEndian),
            _ => throw new InvalidFileException(path, $"unsupported dtype '{descr}' (only float32 '<f4' and float64 '<f8', either byte order, are supported)"),
        };
        if (shapeList.Count == 0) throw new InvalidFileException(path, "0-dimensional (scalar) arrays are not supported; expected 1 or 2 dimensions");
        if (shapeList.Count > 2) throw new InvalidFileException(path, $"{shapeList.Count}-dimensional arrays are not supported; expected 1 or 2 dimensions");
        long count = 1;
        foreach (long d in shapeList)
        {
            if (d < 0 || d > int.MaxValue) throw new InvalidFileException(path, $"invalid dimension {d} in shape");
            count *= d;
            if (count > Array.MaxLength) throw new InvalidFileException(path, "array is too large");
        }
        long dataBytes = count * itemSize;
        long left = fs.Length - fs.Position;
        if (left < dataBytes) throw new InvalidFileException(path, $"truncated data: shape ({string.Join(", ", shapeList)}) of '{descr}' needs {dataBytes} bytes, file has {left}");
        if (left > dataBytes) throw new InvalidFileException(path, $"{left - dataBytes} unexpected bytes after the array data");
        return new Header(descr, fortran, shapeList.Select(d => (int)d).ToArray(), itemSize, bigEndian);
    }

    private static void ReadExactly(Stream s, Span<byte> buffer, string path)
    {
        try { s.ReadExactly(buffer); }
        catch (EndOfStreamException) { throw new InvalidFileException(path, "unexpected end of file"); }
    }

    private static void ThrowIfTrailing(FileStream fs, string path)
    {
        if (fs.Position != fs.Length) throw new InvalidFileException(path, $"{fs.Length - fs.Position} unexpected bytes after the array data");
    }

    /// <summary>A parser for the subset of Python literals NumPy writes in .npy headers.</summary>
    private ref struct LiteralParser(string text)
    {
        private readonly string _s = text;
        private int _p;
        private int _depth;
        // dict → shape tuple is depth 2; a deeper nest is hostile (and would recurse without bound)
        private const int MaxDepth = 8;

        public Dictionary<string, object?> ParseHeaderDict()
        {
            SkipSpace();
            if (Peek() != '{') throw new FormatException("header does not start with '{'");
            var d = ParseValue() as Dictionary<string, object?> ?? throw new FormatException("header is not a dict");
            SkipSpace();
            if (_p != _s.Length) throw new FormatException($"unexpected text after the dict at offset {_p}");
            return d;
        }

        private object? ParseValue()
        {
            if (++_depth > MaxDepth) throw new FormatException($"literals nested deeper than {MaxDepth}");
            try { return ParseValueCore(); }
            finally { _depth--; }
        }

        private object? ParseValueCore()
        {
            SkipSpace();
            char c = Peek();
            switch (c)
            {
                case '{':
                {
                    _p++;
                    var d = new Dictionary<string, object?>(StringComparer.Ordinal);
                    while (true)
                    {
                        SkipSpace();
                        if (Peek() == '}') { _p++; return d; }
                        if (ParseValue() is not string key) throw new FormatException("dict keys must be strings");
                        SkipSpace();
                        Expect(':');
                        object? v = ParseValue();
                        if (!d.TryAdd(key, v)) throw new FormatException($"duplicate key '{key}'");
                        SkipSpace();
                        if (Peek() == ',') { _p++; continue; }
                        SkipSpace();
                        Expect('}');
                        return d;
                    }
                }
                case '(':
                case '[':
                {
                    char close = c == '(' ? ')' : ']';
                    _p++;
                    var items = new List<object?>();
                    while (true)
                    {
                        SkipSpace();
                        if (Peek() == close) { _p++; break; }
                        items.Add(ParseValue());
                        SkipSpace();
                        if (Peek() == ',') { _p++; continue; }
                        Expect(close);
                        break;
                    }
                    if (c == '(' && items.All(i => i is long)) return items.Cast<long>().ToList();
                    return items;
                }
                case '\'':
                case '"':
                {
                    _p++;
                    int start = _p;
                    while (_p < _s.Length && _s[_p] != c)
                    {
                        if (_s[_p] == '\\') throw new FormatException("escape sequences in strings are not supported");
                        _p++;
                    }
                    if (_p >= _s.Length) throw new FormatException("unterminated string");
                    string v = _s[start.._p];
                    _p++;
                    return v;
                }
                default:
                    if (char.IsAsciiDigit(c) || c == '-' || c == '+')
                    {
                        int start = _p;
                        _p++;
                        while (_p < _s.Length && char.IsAsciiDigit(_s[_p])) _p++;
                        string num = _s[start.._p];
                        if (_p < _s.Length && (_s[_p] == 'L' || _s[_p] == 'l')) _p++; // Python 2 long
                        if (!long.TryParse(num, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n))
                            throw new FormatException($"bad integer '{num}'");
                        return n;
                    }
                    if (TryWord("True")) return true;
                    if (TryWord("False")) return false;
                    if (TryWord("None")) return null;
                    throw new FormatException(_p >= _s.Length ? "unexpected end of header" : $"unexpected character '{c}' at offset {_p}");
            }
        }

        private bool TryWord(string w)
        {
            if (string.CompareOrdinal(_s, _p, w, 0, w.Length) != 0) return false;
            _p += w.Length;
            return true;
        }

        private char Peek() => _p < _s.Length ? _s[_p] : '\0';

        private void Expect(char c)
        {
            if (Peek() != c) throw new FormatException(_p >= _s.Length ? $"expected '{c}' but the header ended" : $"expected '{c}' at offset {_p}, found '{_s[_p]}'");
            _p++;
        }

        private void SkipSpace()
        {
            while (_p < _s.Length && char.IsWhiteSpace(_s[_p])) _p++;
        }
    }
}
