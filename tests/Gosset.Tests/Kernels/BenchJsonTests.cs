using System.Text.Json;
using Gosset.Cli.Commands;
using Gosset.Cli;

namespace Gosset.Tests.Kernels;

public class BenchJsonTests
{
    [Fact]
    public void JsonHasTheIssueFields()
    {
        var g = new GemvTiming(14336, 4096, 1, 10, 2.5, 2.2, 1.5, 1.6, 1.4, 11, 2.6, 2.3, 4.2578, 4.5)
        {
            E8DefaultMs = 1.25, E8DefaultMode = "int8", E8B3Ms = 1.1, E8B2Ms = 0.9, E8B3BitsPerWeight = 3.5, E8B2BitsPerWeight = 2.5, E8ReadMs = 0.7,
        };
        var r = new KernelBenchmarkResult(2, "best=Vector512", 20, 5e7, 5e9, 20, [g], 15, 30) { Voronoi16 = (1e8, 2e7, 3e8), KernelLevel = "avx2" };
        using var doc = JsonDocument.Parse(BenchCommand.ToJson(r));
        var root = doc.RootElement;
        Assert.Equal(20, root.GetProperty("memcpy_gbps").GetDouble());
        Assert.Equal(5e7, root.GetProperty("encode").GetProperty("entries_per_s").GetDouble());
        Assert.Equal(5e9, root.GetProperty("decode").GetProperty("entries_per_s").GetDouble());
        Assert.Equal(20, root.GetProperty("decode").GetProperty("gbps_fp32_out").GetDouble());
        var e = root.GetProperty("gemv")[0];
        foreach (var k in new[] { "rows", "cols", "batch", "fp32_ms", "e8_ms", "int4_ms", "e8_bits_per_weight" })
            Assert.True(e.TryGetProperty(k, out _), k);
        Assert.Equal(4.0, e.GetProperty("e8_speedup_vs_fp32").GetDouble(), 9);
        Assert.Equal(3e8, root.GetProperty("voronoi_q16").GetProperty("decode_entries_per_s").GetDouble());
        Assert.Equal("avx2", root.GetProperty("kernel_level").GetString());
        Assert.Equal(1.25, e.GetProperty("e8_default_ms").GetDouble());
        Assert.Equal("int8", e.GetProperty("e8_default_mode").GetString());
        Assert.Equal(1.1, e.GetProperty("e8_3bit_ms").GetDouble());
        Assert.Equal(0.9, e.GetProperty("e8_2bit_ms").GetDouble());
        Assert.Equal(0.7, e.GetProperty("e8_read_ms").GetDouble());
    }

    [Fact]
    public void ReadFloorBufferHoldsTheMatrixBytesInMemory()
    {
        // 64×512: 2 groups a row of 144 bytes (digits, side fields) and a 4-byte row scale: 292 bytes a row; 4 table scales.
        var m = KernelBenchmark.RandomCodes(64, 512, 4, 1);
        Assert.Equal(64 * 292 + 4 * 4, KernelBenchmark.ReadBuffer(m).Length);
        KernelBenchmark.ReadAll(KernelBenchmark.ReadBuffer(m), 2);
    }
}
