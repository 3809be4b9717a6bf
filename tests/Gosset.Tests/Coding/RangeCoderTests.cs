using Gosset.Coding;
using Gosset.Util;

namespace Gosset.Tests.Coding;

public class RangeCoderTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(14)]
    [InlineData(255)]
    [InlineData(256)]
    public void Uniform_symbols_round_trip_at_their_information_content(int q)
    {
        var rng = new SplitMix64((ulong)q);
        int n = 20000;
        var sym = new uint[n];
        var enc = new RangeEncoder();
        for (int i = 0; i < n; i++) { sym[i] = (uint)(rng.NextUInt64() % (ulong)q); enc.EncodeUniform(sym[i], (uint)q); }
        var bytes = enc.Finish();
        var dec = new RangeDecoder(bytes);
        for (int i = 0; i < n; i++) Assert.Equal(sym[i], dec.DecodeUniform((uint)q));
        double ideal = n * Math.Log2(q) / 8;
        Assert.InRange(bytes.Length, ideal, ideal + 8);
    }

    [Fact]
    public void Skewed_symbols_cost_close_to_their_entropy()
    {
        var rng = new SplitMix64(5);
        double[] p = [0.7, 0.2, 0.07, 0.03];
        int n = 50000;
        var sym = new int[n];
        var counts = new long[4];
        for (int i = 0; i < n; i++)
        {
            double u = rng.NextDouble(); int s = 0;
            while (s < 3 && u >= p[s]) { u -= p[s]; s++; }
            sym[i] = s; counts[s]++;
        }
        var table = FrequencyTable.FromCounts(counts);
        var enc = new RangeEncoder();
        foreach (int s in sym) table.Encode(enc, s);
        var bytes = enc.Finish();
        var dec = new RangeDecoder(bytes);
        foreach (int s in sym) Assert.Equal(s, table.Decode(ref dec));
        double h = 0;
        foreach (long c in counts) { double f = (double)c / n; h -= c * Math.Log2(f); }
        Assert.InRange(bytes.Length * 8.0, h, h * 1.01 + 64);
    }

    [Fact]
    public void Truncated_stream_is_detected()
    {
        var enc = new RangeEncoder();
        for (int i = 0; i < 1000; i++) enc.EncodeUniform((uint)(i % 13), 13);
        var bytes = enc.Finish();
        Assert.ThrowsAny<InvalidDataException>(() =>
        {
            var dec = new RangeDecoder(bytes.AsSpan(0, 100));
            for (int i = 0; i < 1000; i++) dec.DecodeUniform(13);
        });
    }

    [Fact]
    public void Frequency_tables_keep_every_symbol_encodable()
    {
        var t = FrequencyTable.FromCounts([1000, 0, 0, 5]);
        Assert.All(t.Frequencies.ToArray(), f => Assert.True(f >= 1));
        Assert.Equal(FrequencyTable.Total, t.Frequencies.ToArray().Sum(f => (long)f));
        Assert.Throws<InvalidDataException>(() => new FrequencyTable([1, 2, 3]));
    }

    [Fact]
    public void Bit_packing_round_trips()
    {
        var w = new BitWriter();
        var rng = new SplitMix64(1);
        var items = new List<(ulong, int)>();
        for (int i = 0; i < 500; i++)
        {
            int bits = (int)(rng.NextUInt64() % 65);
            ulong v = bits == 64 ? rng.NextUInt64() : rng.NextUInt64() & ((1UL << bits) - 1);
            items.Add((v, bits)); w.Write(v, bits);
        }
        var r = new BitReader(w.ToArray());
        foreach (var (v, bits) in items) Assert.Equal(v, r.Read(bits));
        Assert.Equal((w.BitCount + 7) / 8, w.ToArray().Length);
    }
}
