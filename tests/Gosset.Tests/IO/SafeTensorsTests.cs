using System.Buffers.Binary;
using System.Text;
using Gosset.IO;
using Gosset.Matrix;

namespace Gosset.Tests.IO;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>Builds a safetensors file by hand: u64 LE header length, JSON header, raw data.</summary>
    private string HandMade(string name, string json, byte[] data, long? headerLengthOverride = null)
    {
        byte[] header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)(headerLengthOverride ?? header.Length));
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        string p = PathOf(name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    private static byte[] F32(params float[] v)
    {
        var b = new byte[v.Length * 4];
        for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), v[i]);
        return b;
    }

    private static byte[] U16(params ushort[] v)
    {
        var b = new byte[v.Length * 2];
        for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2 * i), v[i]);
        return b;
    }

    [Fact]
    public void ReadsHandMadeFileWithSeveralDTypes()
    {
        // "b" (BF16 [2]) is stored first although it comes second in the JSON.
        // BF16 0x3FC0 = 1.5, 0xC100 = -8; F16 0x3C00 = 1, 0xC000 = -2, 0x3555 ≈ 0.33325; F32 row-major 2x2.
        byte[] data = [.. U16(0x3FC0, 0xC100), .. F32(1, 2, 3, 4), .. U16(0x3C00, 0xC000, 0x3555)];
        string json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[4,20]}," +
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}," +
                      "\"c\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[20,26]}," +
                      "\"__metadata__\":{\"format\":\"pt\"}}   ";
        string p = HandMade("h.safetensors", json, data);
        using var f = SafeTensorsFile.Open(p);
        Assert.Equal(["b", "a", "c"], f.Tensors.Select(t => t.Name));
        Assert.Equal("pt", f.Metadata["format"]);
        var a = f.ReadMatrix("a");
        Assert.Equal((2, 2), (a.Rows, a.Cols));
        Assert.Equal(2f, a[0, 1]);
        Assert.Equal(3f, a[1, 0]);
        Assert.Equal(new float[] { 1.5f, -8f }, f.ReadFloats("b"));
        Assert.Equal(new float[] { 1f, -2f, (float)BitConverter.UInt16BitsToHalf(0x3555) }, f.ReadFloats("c"));
        var bm = f.ReadMatrix("b");
        Assert.Equal((2, 1), (bm.Rows, bm.Cols));
        Assert.Equal("[2, 2]", SafeTensors.List(p).Single(t => t.Name == "a").ShapeText);
    }

    [Theory]
    [InlineData(SafeTensorsDType.F32)]
    [InlineData(SafeTensorsDType.F16)]
    [InlineData(SafeTensorsDType.BF16)]
    public void RoundTripsMatricesWithEachDType(SafeTensorsDType dtype)
    {
        var rng = new Random(7);
        var w = new DenseMatrix(5, 3);
        var v = new DenseMatrix(4, 1);
        foreach (var m in new[] { w, v })
            for (int k = 0; k < m.Data.Length; k++) m.Data[k] = (float)(rng.NextDouble() * 20 - 10);
        string p = PathOf("rt.safetensors");
        SafeTensors.Write(p, [new("layer.weight", w), new("bias", v)], dtype, new Dictionary<string, string> { ["by"] = "gosset" });
        using var f = SafeTensorsFile.Open(p);
        Assert.Equal(dtype.ToString(), f.Info("layer.weight").DType);
        Assert.Equal("gosset", f.Metadata["by"]);
        Assert.Equal(0, (new FileInfo(p).Length - f.Tensors.Sum(t => t.End - t.Begin)) % 8); // header padded to 8
        var back = f.ReadMatrix("layer.weight");
        Assert.Equal((5, 3), (back.Rows, back.Cols));
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 3; j++)
            {
                float x = w[i, j];
                float expected = dtype switch
                {
                    SafeTensorsDType.F32 => x,
                    SafeTensorsDType.F16 => (float)(Half)x,
                    _ => ManualBf16(x),
                };
                Assert.Equal(expected, back[i, j]);
            }
        Assert.Equal(4, f.ReadMatrix("bias").Rows);
    }

    /// <summary>Round to nearest, ties to even, computed in double from the two bf16 neighbours of x.</summary>
    private static float ManualBf16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        float down = BitConverter.UInt32BitsToSingle(bits & 0xFFFF0000u);
        float up = BitConverter.UInt32BitsToSingle((bits & 0xFFFF0000u) + 0x10000u);
        double dd = Math.Abs((double)x - down), du = Math.Abs((double)up - x);
        if (dd < du) return down;
        if (du < dd) return up;
        return ((bits >> 16) & 1) == 0 ? down : up;
    }

    [Fact]
    public void Bf16RoundingIsNearestEven()
    {
        Assert.Equal(1f, SafeTensors.BFloat16ToSingle(SafeTensors.SingleToBFloat16(1f + MathF.Pow(2, -8))));            // tie → even (down)
        Assert.Equal(1f + MathF.Pow(2, -6), SafeTensors.BFloat16ToSingle(SafeTensors.SingleToBFloat16(1f + 3 * MathF.Pow(2, -8)))); // tie → even (up)
        Assert.Equal(1f + MathF.Pow(2, -7), SafeTensors.BFloat16ToSingle(SafeTensors.SingleToBFloat16(1f + MathF.Pow(2, -7) + MathF.Pow(2, -10))));
        Assert.Equal((ushort)0x3F80, SafeTensors.SingleToBFloat16(1f));
        Assert.Equal((ushort)0xC000, SafeTensors.SingleToBFloat16(-2f));
        Assert.True(float.IsNaN(SafeTensors.BFloat16ToSingle(SafeTensors.SingleToBFloat16(float.NaN))));
        Assert.Equal(float.PositiveInfinity, SafeTensors.BFloat16ToSingle(SafeTensors.SingleToBFloat16(float.MaxValue)));
        var rng = new Random(3);
        for (int i = 0; i < 20000; i++)
        {
            float x = (float)((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-30, 30)));
            Assert.Equal(ManualBf16(x), SafeTensors.BFloat16ToSingle(SafeTensors.SingleToBFloat16(x)));
        }
    }

    [Fact]
    public void MissingTensorListsAvailableNames()
    {
        string p = PathOf("n.safetensors");
        SafeTensors.Write(p, [new("alpha", new DenseMatrix(1, 1)), new("beta", new DenseMatrix(2, 1))]);
        var e = Assert.Throws<GossetException>(() => SafeTensors.Read(p, "gamma"));
        Assert.Contains("gamma", e.Message);
        Assert.Contains("alpha", e.Message);
        Assert.Contains("beta", e.Message);
    }

    public static TheoryData<string, string, int> Corrupt => new()
    {
        // json, expected message fragment, data bytes
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "", 8 }, // valid control
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "beyond", 4 },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "belong to no tensor", 12 },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", "overlaps", 12 },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", "gap", 12 },
        { "{\"a\":{\"dtype\":\"F7\",\"shape\":[2],\"data_offsets\":[0,8]}}", "unknown dtype", 8 },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "needs 12", 8 },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "invalid data_offsets", 8 },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "data_offsets", 8 },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", "JSON", 8 },
        { "[1,2]", "not a JSON object", 0 },
    };

    [Theory]
    [MemberData(nameof(Corrupt))]
    public void RejectsCorruptHeaders(string json, string fragment, int dataBytes)
    {
        string p = HandMade("c.safetensors", json, new byte[dataBytes]);
        if (fragment.Length == 0)
        {
            using var ok = SafeTensorsFile.Open(p);
            Assert.Equal(new float[2], ok.ReadFloats("a"));
            return;
        }
        var e = Assert.Throws<InvalidFileException>(() => SafeTensorsFile.Open(p));
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void RejectsTruncatedFilesAndBadHeaderLength()
    {
        string p = PathOf("t.safetensors");
        SafeTensors.Write(p, [new("w", DenseMatrix.FromRowMajor(2, 2, [1, 2, 3, 4]))]);
        byte[] good = File.ReadAllBytes(p);
        foreach (int keep in new[] { 0, 5, 8, 20, good.Length - 1 })
        {
            File.WriteAllBytes(p, good[..keep]);
            Assert.Throws<InvalidFileException>(() => SafeTensorsFile.Open(p));
        }
        string q = HandMade("len.safetensors", "{}", [], headerLengthOverride: 1L << 40);
        Assert.Contains("beyond the end", Assert.Throws<InvalidFileException>(() => SafeTensorsFile.Open(q)).Message);
    }

    [Fact]
    public void UnsupportedDTypeAndRankAreClearErrors()
    {
        string p = HandMade("i.safetensors",
            "{\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1],\"data_offsets\":[4,8]}}",
            new byte[8]);
        using var f = SafeTensorsFile.Open(p);
        Assert.Contains("I32", Assert.Throws<GossetException>(() => f.ReadFloats("i")).Message);
        Assert.Contains("[1, 1, 1]", Assert.Throws<GossetException>(() => f.ReadMatrix("t")).Message);
        Assert.Equal(new float[1], f.ReadFloats("t"));
    }
}
