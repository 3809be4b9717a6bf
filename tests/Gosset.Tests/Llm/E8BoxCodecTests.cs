using Gosset.Codes;
using Gosset.Coding;
using Gosset.Llm.Quantization;
using Gosset.Util;

namespace Gosset.Tests.Llm;

/// <summary>The kernel-native E8 box code as the LLM vector codec (weights, activations, K/V).</summary>
public class E8BoxCodecTests
{
    private static List<float[]> Rows(int count, int len, ulong seed)
    {
        var rng = new SplitMix64(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, len).Select(_ => (float)rng.NextGaussian()).ToArray()).ToList();
    }

    /// <summary>Each row encoded (its code kept) and packed, in order, into one bit stream.</summary>
    private static (byte[][] Codes, BitWriter Stream) EncodeAndPack(E8BoxCodec codec, List<float[]> rows)
    {
        var w = new BitWriter();
        var codes = new byte[rows.Count][];
        for (int r = 0; r < rows.Count; r++)
        {
            codes[r] = new byte[codec.CodeBytes];
            codec.Encode(rows[r], codes[r]);
            codec.Pack(codes[r], w);
        }
        return (codes, w);
    }

    [Theory]
    [InlineData(4, 4, 0.0, false)]
    [InlineData(4, 8, 1.5, false)]
    [InlineData(3, 4, 1.25, true)]
    [InlineData(2, 3, 0.95, false)]
    public void Packed_bits_equal_stated_bits_and_unpack_restores_the_code(int bits, int k, double indexBits, bool fixedScale)
    {
        var rows = Rows(64, 176, 7);
        var table = E8BoxTable.Fit(rows, bits, k, indexBits > 0 ? indexBits : double.NaN);
        var codec = new E8BoxCodec(176, table, fixedScale);
        var (codes, w) = EncodeAndPack(codec, rows);
        Assert.Equal(codec.Bits * rows.Count, w.BitCount);
        // Independent count: 8·b digit bits per block, the group budgets (32 + 12 blocks), 8 row-scale bits unless fixed.
        Assert.Equal((fixedScale ? 0 : 8) + 22L * 8 * bits + table.IndexBitsFor(22), codec.Bits);
        var bytes = w.ToArray();
        var rd = new BitReader(bytes);
        var back = new byte[codec.CodeBytes];
        for (int r = 0; r < rows.Count; r++)
        {
            codec.Unpack(ref rd, back);
            Assert.Equal(codes[r], back);
        }
    }

    [Theory]
    [InlineData(4, 4, 0.0)]
    [InlineData(4, 8, 1.5)]
    [InlineData(3, 16, 2.0)]
    [InlineData(2, 3, 0.95)]
    public void Rows_read_from_the_middle_of_the_stream_equal_the_encoded_codes(int bits, int k, double indexBits)
    {
        var rows = Rows(40, 264, 13);
        var table = E8BoxTable.Fit(rows, bits, k, indexBits > 0 ? indexBits : double.NaN);
        var codec = new E8BoxCodec(264, table);
        var (codes, w) = EncodeAndPack(codec, rows);
        var bytes = w.ToArray();
        var all = new E8BoxCodes(rows.Count, 264, bits, table.BlockScales);
        foreach (int r in new[] { 39, 0, 17, 1, 38, 5 })
        {
            var rd = new BitReader(bytes, r * codec.Bits);
            codec.UnpackRow(ref rd, all, r);
            Assert.Equal(r * codec.Bits + codec.Bits, rd.Position);
            Assert.Equal(codes[r].AsSpan(1, 264).ToArray(), all.U.AsSpan(r * 264, 264).ToArray());
            Assert.Equal(codes[r].AsSpan(1 + 264, 33).ToArray(), all.ScaleIndex.AsSpan(r * 33, 33).ToArray());
            Assert.Equal(table.RowScaleValue(codes[r][0]), all.RowScale[r]);
        }
    }

    [Theory]
    [InlineData(4, 1.5)]
    [InlineData(8, 2.0)]
    [InlineData(16, 3.0)]
    [InlineData(3, 1.2)]
    public void Pair_decode_table_inverts_every_pair_code_whatever_bits_follow(int k, double indexBits)
    {
        var table = E8BoxTable.Fit(Rows(64, 256, (ulong)k), 4, k, indexBits);
        int peek = table.PairPeekBits;
        var rng = new Random(k);
        for (int j1 = 0; j1 < k; j1++)
            for (int j2 = 0; j2 < k; j2++)
            {
                var (code, len) = table.PairCode(j1, j2);
                ulong stream = 0; // the writer emits the code's bits most significant first
                for (int i = 0; i < len; i++) stream |= (ulong)((code >> (len - 1 - i)) & 1) << i;
                for (int trial = 0; trial < 4; trial++)
                {
                    ulong tail = (ulong)rng.NextInt64() << len;
                    var (sym, got) = table.DecodePair((stream | tail) & ((1UL << peek) - 1));
                    Assert.Equal((j1 * k + j2, len), (sym, got));
                }
            }
    }

    [Fact]
    public void Sequential_blocks_stay_within_the_group_budget_and_decode_to_what_they_report()
    {
        var rows = Rows(32, 64, 9);
        var table = E8BoxTable.Fit(rows, 4, 8, 1.25);
        var codec = new E8BoxCodec(64, table);
        var code = new byte[codec.CodeBytes];
        var y = new float[64];
        var dec = new float[64];
        foreach (var x in rows)
        {
            codec.Begin(x, code);
            for (int b = 0; b < 8; b++) codec.QuantizeBlock(b, x.AsSpan(8 * b, 8), code, y.AsSpan(8 * b, 8));
            Assert.True(table.IndexBitsUsed(code.AsSpan(1 + 64, 8)) <= table.IndexBitsFor(8));
            codec.Decode(code, dec);
            Assert.Equal(y, dec);
        }
    }

    [Fact]
    public void Block_int8_form_is_exactly_the_decoded_vector()
    {
        var rows = Rows(16, 64, 11);
        var table = E8BoxTable.Fit(rows, 4, 4, double.NaN);
        VectorCodec[] codecs = [new E8BoxCodec(64, table), new E8BoxCodec(64, table, fixedScale: true), new IntCodec(64, 4, 32), new IntCodec(64, 8, 64)];
        foreach (var codec in codecs)
        {
            Assert.True(codec.HasBlockInt8Form, codec.Describe());
            var code = new byte[codec.CodeBytes];
            var dec = new float[64];
            var v = new sbyte[64];
            var s = new float[8];
            foreach (var x in rows)
            {
                codec.Encode(x, code);
                codec.Decode(code, dec);
                codec.ToBlockInt8(code, v, s);
                for (int i = 0; i < 64; i++) Assert.Equal(dec[i], s[i / 8] * v[i]);
            }
        }
        Assert.False(new IntCodec(60, 4, 60).HasBlockInt8Form);
        Assert.Throws<NotSupportedException>(() => new IntCodec(60, 4, 60).ToBlockInt8(new byte[62], new sbyte[60], new float[8]));
    }

    [Theory]
    [InlineData(2048, false)]
    [InlineData(2056, false)] // a partial last group
    [InlineData(8192, true)]
    [InlineData(64, false)]   // one group: the serial path
    public void Encoding_groups_in_parallel_gives_the_serial_code(int length, bool fixedScale)
    {
        var rows = Rows(6, length, 21);
        var table = E8BoxTable.Fit(rows, 4, 4, double.NaN);
        var codec = new E8BoxCodec(length, table, fixedScale);
        var serial = new byte[codec.CodeBytes];
        var parallel = new byte[codec.CodeBytes + 5];
        foreach (var x in rows)
        {
            var padded = new float[length + 3];
            x.CopyTo(padded, 3);
            codec.Encode(x, serial);
            codec.EncodeParallel(padded, 3, parallel);
            Assert.Equal(serial, parallel.AsSpan(0, codec.CodeBytes).ToArray());
        }
    }
}
