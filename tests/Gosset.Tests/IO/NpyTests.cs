using System.Buffers.Binary;
using System.Text;
using Gosset.IO;
using Gosset.Matrix;

namespace Gosset.Tests.IO;

public sealed class NpyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-npy-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>
    /// Builds a .npy file following the published format description, independently of the writer:
    /// magic, version, little-endian header length, dict literal padded with spaces and '\n'.
    /// </summary>
    private static byte[] HandMade(string dict, byte[] data, int major = 1, int align = 64)
    {
        int lenBytes = major == 1 ? 2 : 4;
        int prefix = 8 + lenBytes;
        var headerText = new StringBuilder(dict);
        while ((prefix + headerText.Length + 1) % align != 0) headerText.Append(' ');
        headerText.Append('\n');
        byte[] header = major == 3 ? Encoding.UTF8.GetBytes(headerText.ToString()) : Encoding.ASCII.GetBytes(headerText.ToString());
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0 };
        if (major == 1) { bytes.Add((byte)(header.Length & 0xFF)); bytes.Add((byte)(header.Length >> 8)); }
        else { var l = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(l, (uint)header.Length); bytes.AddRange(l); }
        bytes.AddRange(header);
        bytes.AddRange(data);
        return bytes.ToArray();
    }

    private static byte[] F64(bool bigEndian, params double[] v)
    {
        var b = new byte[v.Length * 8];
        for (int i = 0; i < v.Length; i++)
        {
            if (bigEndian) BinaryPrimitives.WriteDoubleBigEndian(b.AsSpan(8 * i), v[i]);
            else BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(8 * i), v[i]);
        }
        return b;
    }

    private static byte[] F32(bool bigEndian, params float[] v)
    {
        var b = new byte[v.Length * 4];
        for (int i = 0; i < v.Length; i++)
        {
            if (bigEndian) BinaryPrimitives.WriteSingleBigEndian(b.AsSpan(4 * i), v[i]);
            else BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), v[i]);
        }
        return b;
    }

    private string WriteBytes(string name, byte[] bytes)
    {
        string p = PathOf(name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    [Fact]
    public void ReadsHandMadeCOrderFloat64()
    {
        // A = [[1, 2, 3], [4, 5, 6]] in C order.
        string p = WriteBytes("c.npy", HandMade("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", F64(false, 1, 2, 3, 4, 5, 6)));
        var m = Npy.Read(p);
        Assert.Equal(2, m.Rows);
        Assert.Equal(3, m.Cols);
        Assert.Equal(2f, m[0, 1]);
        Assert.Equal(4f, m[1, 0]);
        Assert.Equal(6f, m[1, 2]);
        Assert.Equal(new float[] { 1, 4 }, m.Column(0).ToArray());
        var a = Npy.ReadArray(p);
        Assert.Equal(new[] { 2, 3 }, a.Shape);
        Assert.Equal(new double[] { 1, 2, 3, 4, 5, 6 }, a.Data);
        Assert.Equal("<f8", a.SourceDType);
    }

    [Fact]
    public void ReadsHandMadeFortranOrderFloat32()
    {
        // Same matrix, stored column by column.
        string p = WriteBytes("f.npy", HandMade("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", F32(false, 1, 4, 2, 5, 3, 6)));
        var m = Npy.Read(p);
        Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, m.Data);
        Assert.Equal(5f, m[1, 1]);
        Assert.Equal(new double[] { 1, 2, 3, 4, 5, 6 }, Npy.ReadArray(p).Data);
    }

    [Theory]
    [InlineData(">f8", 2)]
    [InlineData(">f4", 3)]
    public void ReadsBigEndianAndNewerVersions(string descr, int major)
    {
        bool f8 = descr.EndsWith('8');
        byte[] data = f8 ? F64(true, 0.5, -1.25, 3e10) : F32(true, 0.5f, -1.25f, 3e10f);
        string p = WriteBytes("be.npy", HandMade($"{{'descr': '{descr}', 'fortran_order': False, 'shape': (3,), }}", data, major));
        var m = Npy.Read(p);
        Assert.Equal(3, m.Rows);
        Assert.Equal(1, m.Cols);
        Assert.Equal(new float[] { 0.5f, -1.25f, 3e10f }, m.Data);
    }

    [Fact]
    public void AcceptsOldSixteenByteAlignmentAndDoubleQuotes()
    {
        string p = WriteBytes("old.npy", HandMade("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1L, 2L)}", F32(false, 7, 8), 1, 16));
        var m = Npy.Read(p);
        Assert.Equal((1, 2), (m.Rows, m.Cols));
        Assert.Equal(8f, m[0, 1]);
    }

    [Fact]
    public void WriterEmitsNumPysExactHeader()
    {
        var m = DenseMatrix.FromRowMajor(2, 3, [1, 2, 3, 4, 5, 6]);
        string p = PathOf("w.npy");
        Npy.Write(p, m);
        byte[] expected = HandMade("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", F32(false, 1, 2, 3, 4, 5, 6));
        Assert.Equal(128 + 24, expected.Length); // NumPy pads magic + header to 128 bytes here
        Assert.Equal(expected, File.ReadAllBytes(p));

        Npy.Write(p, m, fortranOrder: true);
        expected = HandMade("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", F32(false, 1, 4, 2, 5, 3, 6));
        Assert.Equal(expected, File.ReadAllBytes(p));
    }

    [Theory]
    [InlineData(1, 1, false)]
    [InlineData(5, 1, false)]
    [InlineData(1, 7, true)]
    [InlineData(13, 9, false)]
    [InlineData(13, 9, true)]
    [InlineData(0, 4, false)]
    public void Float32RoundTripsInBothOrders(int rows, int cols, bool fortran)
    {
        var rng = new Random(rows * 31 + cols);
        var m = new DenseMatrix(rows, cols);
        for (int k = 0; k < m.Data.Length; k++) m.Data[k] = (float)(rng.NextDouble() * 200 - 100);
        m.Data.AsSpan().Slice(0, Math.Min(1, m.Data.Length)).Fill(float.NaN); // NaN is stored, not rejected
        string p = PathOf("rt.npy");
        Npy.Write(p, m, fortran);
        var back = Npy.Read(p);
        Assert.Equal((rows, cols), (back.Rows, back.Cols));
        Assert.Equal(m.Data, back.Data);
        var arr = Npy.ReadArray(p);
        Assert.Equal(new[] { rows, cols }, arr.Shape);
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                Assert.Equal((double)m[i, j], arr.Data[i * cols + j]);
    }

    [Fact]
    public void Float64ArrayRoundTripsAtFullPrecision()
    {
        double[] v = [Math.PI, -1e-300, 1e300, 0.1, 2, 3];
        string p = PathOf("d.npy");
        Npy.WriteArray(p, [2, 3], v);
        var a = Npy.ReadArray(p);
        Assert.Equal(new[] { 2, 3 }, a.Shape);
        Assert.Equal(v, a.Data);
        Assert.Equal("<f8", a.SourceDType);
        var m = Npy.Read(p);
        Assert.Equal((float)Math.PI, m[0, 0]);
        Assert.Equal(2f, m[1, 1]);

        Npy.WriteArray(p, [6], v);
        Assert.Equal(new[] { 6 }, Npy.ReadArray(p).Shape);
        Assert.Equal((6, 1), (Npy.Read(p).Rows, Npy.Read(p).Cols));
    }

    [Fact]
    public void LargeHeaderStillReadable()
    {
        // Only shapes matter for the header; a long header forces nothing unusual for 2-D, so build a v2 by hand.
        string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }" + new string(' ', 70000);
        string p = WriteBytes("v2.npy", HandMade(dict, F32(false, 1, 2), 2));
        Assert.Equal(new float[] { 1, 2 }, Npy.Read(p).Data);
    }

    public static TheoryData<string, string> BadHeaders => new()
    {
        { "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", "dtype" },
        { "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "dtype" },
        { "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", "dtype" },
        { "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", "dtype" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2), }", "3-dimensional" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", "scalar" },
        { "{'descr': '<f4', 'fortran_order': False, }", "keys" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "keys" },
        { "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", "parse" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,", "parse" },
        { "not a dict at all", "parse" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", "dimension" },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void RejectsBadHeaders(string dict, string expectedWord)
    {
        string p = WriteBytes("bad.npy", HandMade(dict, F32(false, 1, 2)));
        var e = Assert.Throws<InvalidFileException>(() => Npy.Read(p));
        Assert.Contains(expectedWord, e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(p, e.Message);
        Assert.Throws<InvalidFileException>(() => Npy.ReadArray(p));
    }

    [Fact]
    public void RejectsBadMagicVersionAndTruncation()
    {
        byte[] good = HandMade("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", F32(false, 1, 2, 3, 4));
        Assert.Equal(4f, Npy.Read(WriteBytes("good.npy", good))[1, 1]);

        byte[] badMagic = (byte[])good.Clone();
        badMagic[1] = (byte)'X';
        Assert.Contains("magic", Assert.Throws<InvalidFileException>(() => Npy.Read(WriteBytes("m.npy", badMagic))).Message);

        byte[] badVersion = (byte[])good.Clone();
        badVersion[6] = 4;
        Assert.Contains("version", Assert.Throws<InvalidFileException>(() => Npy.Read(WriteBytes("v.npy", badVersion))).Message);

        foreach (int cut in new[] { 1, 4, 15, 16 })
        {
            string p = WriteBytes($"t{cut}.npy", good[..^cut]);
            Assert.Contains("truncated", Assert.Throws<InvalidFileException>(() => Npy.Read(p)).Message);
            Assert.Throws<InvalidFileException>(() => Npy.ReadArray(p));
        }
        Assert.Throws<InvalidFileException>(() => Npy.Read(WriteBytes("h.npy", good[..40])));
        Assert.Throws<InvalidFileException>(() => Npy.Read(WriteBytes("tiny.npy", good[..5])));
        Assert.Throws<InvalidFileException>(() => Npy.Read(WriteBytes("empty.npy", [])));
        Assert.Throws<InvalidFileException>(() => Npy.Read(WriteBytes("extra.npy", [.. good, 0, 0, 0, 0])));
        Assert.Throws<FileNotFoundException>(() => Npy.Read(PathOf("missing.npy")));
    }

    [Fact]
    public void WriteIsAtomicAndLeavesNoTemporaryFiles()
    {
        var m = DenseMatrix.FromRowMajor(1, 2, [1, 2]);
        string p = PathOf("a.npy");
        Npy.Write(p, m);
        Npy.Write(p, m, true);
        Assert.Equal(["a.npy"], Directory.GetFiles(_dir).Select(Path.GetFileName));
        Assert.Throws<DirectoryNotFoundException>(() => Npy.Write(Path.Combine(_dir, "no", "x.npy"), m));
    }

    [Fact]
    public void ThrowIfNotFiniteNamesThePosition()
    {
        var m = new DenseMatrix(3, 2);
        m.ThrowIfNotFinite("A");
        m[2, 1] = float.PositiveInfinity;
        var e = Assert.Throws<GossetException>(() => m.ThrowIfNotFinite("A"));
        Assert.Contains("row 2, column 1", e.Message);
        Assert.StartsWith("A ", e.Message);
    }

    [Fact]
    public void DenseMatrixIsColumnMajor()
    {
        var m = new DenseMatrix(2, 3, [1, 2, 3, 4, 5, 6]);
        Assert.Equal(3f, m[0, 1]);
        Assert.Equal(new float[] { 5, 6 }, m.Column(2).ToArray());
        Assert.Equal(new float[] { 1, 3, 5, 2, 4, 6 }, m.ToRowMajor());
        Assert.Throws<ArgumentException>(() => new DenseMatrix(2, 2, [1, 2, 3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => m[2, 0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Column(3));
    }
}
