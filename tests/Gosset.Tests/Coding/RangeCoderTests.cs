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

    [Fact]
    public void Bulk_peek_and_skip_reads_agree_with_single_field_reads()
    {
        var rng = new Random(3);
        var w = new BitWriter();
        var bytes = new byte[301];
        rng.NextBytes(bytes);
        foreach (byte b in bytes) w.Write(b, 8);
        var data = w.ToArray();
        for (int trial = 0; trial < 300; trial++)
        {
            int bits = rng.Next(1, 9), start = rng.Next(0, 8 * data.Length), count = rng.Next(0, 80);
            bool fits = start + (long)count * bits <= 8L * data.Length;
            var bulk = new byte[count];
            var a = new BitReader(data, start);
            if (!fits) { Assert.Throws<InvalidDataException>(() => { var r = new BitReader(data, start); r.ReadBytes(new byte[count], bits); }); continue; }
            ulong peeked = a.Peek(Math.Min(bits, 56));
            a.ReadBytes(bulk, bits);
            var b = new BitReader(data, start);
            for (int i = 0; i < count; i++) Assert.Equal(b.Read(bits), bulk[i]);
            Assert.Equal(b.Position, a.Position);
            var c = new BitReader(data, start);
            if (start + bits <= 8L * data.Length) Assert.Equal(c.Read(bits), peeked);
        }
        var end = new BitReader(data, 8L * data.Length - 3);
        Assert.Equal(data[^1] >> 5, (int)end.Peek(8)); // bits past the end read as 0
        Assert.Throws<InvalidDataException>(() => { var r = new BitReader(data, 8L * data.Length - 3); r.Skip(4); });
        Assert.Throws<ArgumentOutOfRangeException>(() => new BitReader(data, 8L * data.Length + 1));
    }
}
