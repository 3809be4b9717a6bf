using System.Buffers.Binary;
using System.Text;
using Gosset.Baselines;
using Gosset.Cli;
using Gosset.Coding;
using Gosset.IO;
using Gosset.Kernels;
using Gosset.Llm.Loading;
using Gosset.Llm.Tokenization;
using Gosset.Matrix;
using Gosset.Rotations;
using Gosset.Tests.Matrix;

namespace Gosset.Tests.Fuzz;

/// <summary>The hostile files of issue 9, one test each: the typed error, quickly and without a large allocation.</summary>
[Collection("Fuzz")]
public sealed class HostileCaseTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-hostile-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    private static byte[] Bytes(QuantizedMatrix q, GqOrientation o = GqOrientation.Columns)
    {
        using var ms = new MemoryStream();
        GqFormat.Write(ms, q, o);
        return ms.ToArray();
    }

    private static byte[] WithCrc(byte[] b)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(b.Length - 4), Crc32.Compute(b.AsSpan(0, b.Length - 4)));
        return b;
    }

    /// <summary>Runs <paramref name="read"/>, which must throw <typeparamref name="T"/>, within the time and allocation bounds.</summary>
    private static T Refused<T>(Action read, double seconds = 1.0, long bytes = 64L << 20) where T : Exception
    {
        long a0 = GC.GetTotalAllocatedBytes(true);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<T>(read);
        Assert.True(sw.Elapsed.TotalSeconds < seconds, $"took {sw.Elapsed.TotalSeconds:F2} s");
        long allocated = GC.GetTotalAllocatedBytes(true) - a0;
        Assert.True(allocated < bytes, $"allocated {allocated >> 20} MB before failing");
        return e;
    }

    [Fact]
    public void Gq_e8_coded_blocks_whose_times_eight_overflows_is_refused()
    {
        var q = E8MatrixQuantizer.Quantize(E8MatrixQuantizerTests.Gaussian(64, 2, 1), new E8MatrixOptions { Q = 16, K = 4 });
        byte[] b = Bytes(q);
        int k = b[32], at = 33 + 4 * k + 3; // betas, selection, coding, dither (off)
        Assert.Equal(8, BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(at)));
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(at), 0x20000001); // ·8 wraps to 8 in int arithmetic
        var e = Refused<InvalidFileException>(() => GqFormat.Read(WithCrc(b)).Dequantize());
        Assert.Contains("coded block", e.Message);
    }

    [Fact]
    public void Gq_int_rows_int_max_is_refused_without_overflow()
    {
        var q = IntQuantizedMatrix.Quantize(E8MatrixQuantizerTests.Gaussian(16, 2, 2), new IntQuantizer(4, 8), RotationKind.None, 0);
        byte[] b = Bytes(q);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(8), int.MaxValue);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(12), 1);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(16), int.MaxValue);
        Refused<InvalidFileException>(() => GqFormat.Read(WithCrc(b)));
    }

    [Fact]
    public void Tiny_e8_box_file_claiming_a_huge_shape_allocates_nothing_large()
    {
        // 37 bytes: header and a few body bytes, shape 2^27 × 1
        var b = new byte[37];
        "GSQM"u8.CopyTo(b);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(4), GqFormat.Version);
        b[6] = (byte)GqMethod.E8Box;
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(8), 1 << 27);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(12), 1);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(16), 1 << 27);
        b[20] = 1;
        Refused<InvalidFileException>(() => GqFormat.Read(WithCrc(b)), bytes: 1 << 20);
    }

    [Theory]
    [InlineData(2001, 2001)]     // not a multiple of 8: was 67 s of dense Kronecker set-up
    [InlineData(16001, 16008)]   // padded correctly, but a 2001×2001 dense factor from a few bytes
    public void Small_file_with_a_costly_rotation_is_refused_quickly(int rows, int np)
    {
        var q = E8MatrixQuantizer.Quantize(E8MatrixQuantizerTests.Gaussian(8, 1, 3), new E8MatrixOptions { Q = 4, K = 1 });
        byte[] b = Bytes(q);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(16), np);
        int at = 33 + 4 + 3;
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(at), 0); // no coded blocks: nothing else to read
        Assert.True(b.Length < 100);
        Refused<InvalidFileException>(() => GqFormat.Read(WithCrc(b)).Dequantize(), seconds: 0.5);
    }

    [Fact]
    public void Writer_refuses_what_the_reader_would_refuse()
    {
        // 1022 = 511·2 rows, one column, 2-bit INT with rotation: a 511×511 dense factor for a ~260-byte file
        var x = E8MatrixQuantizerTests.Gaussian(1022, 1, 4);
        var q = IntQuantizedMatrix.Quantize(x, new IntQuantizer(2, 1024), RotationKind.Hadamard, 1);
        Assert.False(GqFormat.RotationAffordable(1022, 300));
        var e = Assert.Throws<GossetException>(() => Bytes(q));
        Assert.Contains("dense 511×511", e.Message);
        // the same matrix without rotation, or with a power-of-two length, is stored and read back
        var plain = IntQuantizedMatrix.Quantize(x, new IntQuantizer(2, 1024), RotationKind.None, 0);
        Assert.Equal(plain.Dequantize().Data, GqFormat.Read(Bytes(plain)).Dequantize().Data);
        Assert.True(GqFormat.RotationAffordable(1024, 10));
        Assert.True(GqFormat.RotationAffordable(8 * 255, 10));
    }

    [Fact]
    public void Transpose_is_recorded_and_dequantize_restores_the_input_orientation()
    {
        var x = E8MatrixQuantizerTests.Gaussian(24, 5, 5); // 24×5 input; --transpose codes its 24 rows of length 5
        Npy.Write(P("x.npy"), x);
        Assert.Equal(0, CliRun("quantize", "--in", P("x.npy"), "--method", "int", "--bits", "8", "--transpose", "--out", P("x.gq")));
        var file = GqFormat.LoadFile(P("x.gq"));
        Assert.Equal(GqOrientation.Rows, file.Header.Orientation);
        Assert.Equal((5, 24), (file.Matrix.Rows, file.Matrix.Cols));
        Assert.Equal(0, CliRun("dequantize", "--in", P("x.gq"), "--out", P("y.npy")));
        var y = Npy.Read(P("y.npy"));
        Assert.Equal((24, 5), (y.Rows, y.Cols));
        for (int i = 0; i < 24; i++)
            for (int j = 0; j < 5; j++)
                Assert.True(Math.Abs(y[i, j] - x[i, j]) < 0.05, $"({i},{j}): {y[i, j]} vs {x[i, j]}");
        // and without --transpose nothing is transposed
        Assert.Equal(0, CliRun("quantize", "--in", P("x.npy"), "--method", "int", "--bits", "8", "--out", P("c.gq")));
        Assert.Equal(GqOrientation.Columns, GqFormat.LoadFile(P("c.gq")).Header.Orientation);
    }

    [Fact]
    public void Version_1_files_are_read_or_refused_with_a_reason()
    {
        var x = E8MatrixQuantizerTests.Gaussian(16, 3, 6);
        static byte[] AsV1(byte[] v2)
        {
            var b = new List<byte>(v2);
            b.RemoveAt(7); // v1 had no orientation byte
            var a = b.ToArray();
            BinaryPrimitives.WriteUInt16LittleEndian(a.AsSpan(4), 1);
            return WithCrc(a);
        }
        // power-of-two Hadamard: drawn from signs only, identical in v1
        var pow2 = IntQuantizedMatrix.Quantize(x, new IntQuantizer(4, 8), RotationKind.Hadamard, 7);
        var back = GqFormat.ReadFile(AsV1(Bytes(pow2)));
        Assert.Equal(1, back.Header.Version);
        Assert.Equal(pow2.Dequantize().Data, back.Matrix.Dequantize().Data);
        // a Kronecker rotation (24 = 3·8) was drawn with libm in v1: refused, saying why
        var odd = IntQuantizedMatrix.Quantize(E8MatrixQuantizerTests.Gaussian(24, 3, 6), new IntQuantizer(4, 8), RotationKind.Hadamard, 7);
        var e = Assert.Throws<InvalidFileException>(() => GqFormat.ReadFile(AsV1(Bytes(odd))));
        Assert.Contains("quantize the matrix again", e.Message);
    }

    [Theory]
    [InlineData(0)]      // v0
    [InlineData(1)]      // v1
    public void Llama2c_vocab_int_min_is_refused(int version)
    {
        var b = new byte[version == 0 ? 28 + 64 : 256 + 64];
        int h = version == 0 ? 0 : 8;
        if (version == 1) { BinaryPrimitives.WriteUInt32LittleEndian(b, Llama2cLoader.Magic); BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4), 1); }
        int[] hp = [8, 16, 1, 2, 2, int.MinValue, 8];
        for (int i = 0; i < 7; i++) BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(h + 4 * i), hp[i]);
        File.WriteAllBytes(P("m.bin"), b);
        Refused<InvalidFileException>(() => Llama2cLoader.Load(P("m.bin")));
    }

    [Fact]
    public void Llama2c_dims_whose_int_products_wrap_are_refused()
    {
        var b = new byte[28 + 64];
        int[] hp = [65536, 262144, 1, 2, 2, 16, 8]; // dim² = 2^32 and hidden·dim = 2^34 wrap in int
        for (int i = 0; i < 7; i++) BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4 * i), hp[i]);
        File.WriteAllBytes(P("m.bin"), b);
        Refused<InvalidFileException>(() => Llama2cLoader.Load(P("m.bin")));
    }

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(int.MinValue)]
    [InlineData(-1)]
    [InlineData(0)]
    [InlineData(1 << 22)]
    public void Tokenizer_vocabulary_size_is_checked_before_allocation(int vocab)
    {
        File.WriteAllBytes(P("t.bin"), [16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, (byte)'a']);
        Refused<InvalidFileException>(() => Llama2cTokenizer.Load(P("t.bin"), vocab), bytes: 1 << 20);
    }

    [Fact]
    public void Safetensors_read_does_not_trust_a_caller_made_record()
    {
        SafeTensors.WriteFlat(P("t.safetensors"), [("w", new long[] { 2, 3 }, new float[] { 1, 2, 3, 4, 5, 6 })]);
        using var f = SafeTensorsFile.Open(P("t.safetensors"));
        var info = f.Info("w");
        var dst = new float[6];
        f.ReadFloats(info, dst);
        Assert.Equal([1f, 2, 3, 4, 5, 6], dst);
        f.ReadFloats(info with { }, dst); // an equal copy is fine
        Assert.Throws<GossetException>(() => f.ReadFloats(info with { Begin = 1L << 40 }, dst));
        Assert.Throws<GossetException>(() => f.ReadFloats(info with { DType = "F64" }, dst));
        Assert.Throws<GossetException>(() => f.ReadFloats(info with { Shape = [3, 2] }, dst));
        Assert.Throws<GossetException>(() => f.ReadFloats(info with { Name = "v" }, dst));
    }

    [Fact]
    public void Safetensors_and_npy_nesting_bombs_are_typed_errors()
    {
        string deep = new string('[', 100000) + new string(']', 100000);
        byte[] h = Encoding.UTF8.GetBytes("{\"w\":" + deep + "}");
        var st = new byte[8 + h.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(st, (ulong)h.Length);
        h.CopyTo(st, 8);
        File.WriteAllBytes(P("d.safetensors"), st);
        Refused<InvalidFileException>(() => SafeTensorsFile.Open(P("d.safetensors")));

        string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + new string('(', 100000) + new string(')', 100000) + "}";
        var npy = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 2, 0 };
        int len = (dict.Length + 1 + 12 + 63) / 64 * 64 - 12;
        npy.AddRange(BitConverter.GetBytes(len));
        npy.AddRange(Encoding.ASCII.GetBytes(dict.PadRight(len - 1)));
        npy.Add((byte)'\n');
        File.WriteAllBytes(P("d.npy"), npy.ToArray());
        Refused<InvalidFileException>(() => Npy.Read(P("d.npy")));
    }

    [Fact]
    public void Packed_e8_read_checks_the_size_before_allocating()
    {
        Refused<InvalidDataException>(() => PackedE8Matrix.ReadFrom(new byte[10], 1 << 20, 1 << 10), bytes: 1 << 20);
        Refused<InvalidDataException>(() => PackedE8Matrix.ReadFrom(new byte[10], int.MaxValue, int.MaxValue), bytes: 1 << 20);
    }

    [Theory]
    [InlineData("quantize")]
    [InlineData("dequantize")]
    public void Output_that_is_the_input_is_refused(string command)
    {
        Npy.Write(P("x.npy"), E8MatrixQuantizerTests.Gaussian(16, 2, 8));
        Assert.Equal(0, CliRun("quantize", "--in", P("x.npy"), "--bits", "4", "--out", P("x.gq")));
        string input = command == "quantize" ? P("x.npy") : P("x.gq");
        byte[] before = File.ReadAllBytes(input);
        var args = command == "quantize" ? new[] { "quantize", "--in", input, "--bits", "4", "--out", input } : new[] { "dequantize", "--in", input, "--out", input };
        Assert.Equal(2, CliRun(args));
        Assert.Equal(before, File.ReadAllBytes(input));
    }

    [Theory]
    [InlineData("utf8")]
    [InlineData("duplicate")]
    public void Hf_config_with_bad_utf8_or_a_duplicate_key_is_a_typed_error(string kind)
    {
        // found by gosset fuzz: both used to escape as InvalidOperationException / ArgumentException
        var shape = new SyntheticModel.Shape("llama", 16, 24, 1, 2, 1, 300, 64, 10000, 1e-5, false);
        string dir = P("hf");
        SyntheticModel.Write(shape, dir, SafeTensorsDType.F32, 1);
        byte[] cfg = File.ReadAllBytes(Path.Combine(dir, "config.json"));
        string text = Encoding.UTF8.GetString(cfg);
        byte[] bad = kind == "utf8"
            ? Encoding.UTF8.GetBytes(text.Replace("\"llama\"", "\"ll\u00e9a\"")).Select(b => b == 0xC3 ? (byte)0xFF : b).ToArray()
            : Encoding.UTF8.GetBytes(text.Replace("{", "{\"num_hidden_layers\":1,"));
        File.WriteAllBytes(Path.Combine(dir, "config.json"), bad);
        Refused<InvalidFileException>(() => HuggingFaceLoader.Load(dir));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(int.MaxValue)]
    public void Hf_tokenizer_with_a_hostile_id_is_a_typed_error(int id)
    {
        // found by gosset fuzz: a negative id threw IndexOutOfRangeException, a huge one sized the piece table by it
        var root = System.Text.Json.Nodes.JsonNode.Parse(SyntheticModel.TokenizerJson(300))!;
        root["model"]!["vocab"]!["a"] = id;
        File.WriteAllText(P("tokenizer.json"), root.ToJsonString());
        Refused<InvalidFileException>(() => HfJsonTokenizer.Load(P("tokenizer.json"), 300), bytes: 16 << 20);
        Refused<InvalidFileException>(() => HfJsonTokenizer.Load(P("tokenizer.json")), bytes: 16 << 20);
    }

    private static int CliRun(params string[] args) => Support.CliRun.Run(args).Code;
}

/// <summary>Findings of `gosset fuzz` (seed 20261202), fixed and kept as regression tests.</summary>
[Collection("Fuzz")]
public sealed class OpenFindingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-finding-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Gqm_with_a_null_spec_member_is_a_typed_error()
    {
        var reader = new Gosset.Cli.Fuzzing.GqmFuzz();
        var rng = new Gosset.Util.SplitMix64(1);
        byte[] valid = reader.Valid(ref rng);
        long hoff = BinaryPrimitives.ReadInt64LittleEndian(valid.AsSpan(valid.Length - 48)), hlen = BinaryPrimitives.ReadInt64LittleEndian(valid.AsSpan(valid.Length - 40));
        var header = System.Text.Json.Nodes.JsonNode.Parse(valid.AsSpan((int)hoff, (int)hlen))!.AsObject();
        header["Spec"]!["Activations"] = null;
        byte[] hb = Encoding.UTF8.GetBytes(header.ToJsonString());
        var ms = new MemoryStream();
        ms.Write(valid, 0, (int)hoff);
        ms.Write(hb);
        var t = new byte[16];
        BinaryPrimitives.WriteInt64LittleEndian(t, hoff);
        BinaryPrimitives.WriteInt64LittleEndian(t.AsSpan(8), hb.Length);
        ms.Write(t);
        ms.Write(new byte[32]);
        byte[] forged = reader.Fix(ms.ToArray());
        string path = Path.Combine(_dir, "null-spec.gqm");
        File.WriteAllBytes(path, forged);
        Assert.Throws<InvalidFileException>(() => Gosset.Llm.Quantization.QuantizedModelFile.Load(path));
    }
}
