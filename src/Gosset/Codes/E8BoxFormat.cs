using Gosset.Coding;

namespace Gosset.Codes;

/// <summary>
/// The stored form of an E8 box-coded matrix (<see cref="E8BoxCodes"/> + <see cref="E8BoxTable"/>): the table, then every
/// row as <see cref="E8BoxCodec"/> packs it (the one row serialization, also that of the <c>.gqm</c> weight sections).
/// Little-endian bit stream:
/// <code>
/// header : version (8) · b (8) · k (8) · blocks per group G (8) · full-group index bits (16)
///          · rows (32) · cols (32) · s₀ (fp32) · k block scales (fp32) · k² pair code lengths (4 bits each,
///          length − 1; none when k = 1)
/// rows   : per row the row-scale code (8), then per group of G blocks (the last may be shorter):
///          8·b digit bits per block (digit i of a block in bits b·i …), then exactly the group's index bits
///          (pair codes MSB first, zero padded)
/// </code>
/// Every row has the same size, so a group is found by arithmetic (random access at group granularity).
/// The stream ends on a byte boundary; <see cref="StoredBits"/> is the exact bit count before that padding.
/// </summary>
public static class E8BoxFormat
{
    /// <summary>Format version written.</summary>
    public const int Version = 1;

    /// <summary>Exact bits of the header of a table.</summary>
    public static long HeaderBits(E8BoxTable table) => 8 * 4 + 16 + 32 + 32 + 32 + 32L * table.K + (table.K == 1 ? 0 : 4L * table.K * table.K);

    /// <summary>Exact stored bits (header + rows), side information included.</summary>
    public static long StoredBits(int rows, int cols, E8BoxTable table) => HeaderBits(table) + rows * table.RowBits(cols);

    /// <summary>Writes codes with their table; returns the exact number of bits (the bytes written are ⌈bits/8⌉).</summary>
    /// <exception cref="ArgumentException">The codes do not match the table (b, scales), a row scale is not an 8-bit code of the table, or a group's indices exceed its budget.</exception>
    public static long Write(Stream stream, E8BoxCodes codes, E8BoxTable table)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(codes);
        ArgumentNullException.ThrowIfNull(table);
        if (codes.Bits != table.Bits || !codes.BlockScales.AsSpan().SequenceEqual(table.BlockScales))
            throw new ArgumentException("The codes were not made with this table (b or block scales differ).", nameof(codes));
        var w = new BitWriter();
        w.Write(Version, 8); w.Write((ulong)table.Bits, 8); w.Write((ulong)table.K, 8); w.Write((ulong)table.GroupBlocks, 8);
        w.Write((ulong)table.GroupIndexBits, 16);
        w.Write((uint)codes.Rows, 32); w.Write((uint)codes.Cols, 32);
        w.Write(BitConverter.SingleToUInt32Bits(table.RowScaleBase), 32);
        foreach (float s in table.BlockScales) w.Write(BitConverter.SingleToUInt32Bits(s), 32);
        if (table.K > 1) foreach (byte l in table.PairLengths) w.Write((ulong)(l - 1), 4);
        new E8BoxCodec(8 * codes.Blocks, table).PackCodes(codes, w);
        long bits = w.BitCount;
        stream.Write(w.ToArray());
        return bits;
    }

    /// <summary>Reads what <see cref="Write"/> wrote. Every field is checked against the supported ranges and the data length before the code arrays are allocated.</summary>
    /// <exception cref="InvalidDataException">Truncated or invalid data.</exception>
    public static (E8BoxCodes Codes, E8BoxTable Table) Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Span<byte> fixedHead = stackalloc byte[14];
        ReadExactly(stream, fixedHead);
        if (fixedHead[0] != Version) throw new InvalidDataException($"E8 box format version {fixedHead[0]} (this build reads {Version}).");
        int b = fixedHead[1], k = fixedHead[2], g = fixedHead[3];
        int groupBits = fixedHead[4] | fixedHead[5] << 8;
        uint rowsU = BitConverter.ToUInt32(fixedHead[6..]), colsU = BitConverter.ToUInt32(fixedHead[10..]);
        if (b is < 2 or > 4) throw new InvalidDataException($"E8 box code with b = {b} (2, 3, 4 supported).");
        if (k is < 1 or > E8BoxCodes.MaxScales) throw new InvalidDataException($"E8 box code with k = {k} scales (1 to {E8BoxCodes.MaxScales}).");
        if (g is < 1 or > E8BoxTable.MaxGroupBlocks) throw new InvalidDataException($"E8 box code with {g} blocks per group (1 to {E8BoxTable.MaxGroupBlocks}).");
        if (rowsU is 0 or > int.MaxValue || colsU is 0 or > int.MaxValue) throw new InvalidDataException($"E8 box code with shape {rowsU}×{colsU}.");
        int rows = (int)rowsU, cols = (int)colsU;
        long blocksTotal = (long)rows * ((cols + 7L) / 8);
        if (blocksTotal * 8 > Array.MaxLength) throw new InvalidDataException($"E8 box code of {rows}×{cols} is too large.");
        int tableBytes = 4 + 4 * k + (k == 1 ? 0 : (4 * k * k + 7) / 8);
        // The table fields start at bit 112 (byte 14); the header is byte-aligned only up to there, so read it as a bit stream.
        var rest = new byte[tableBytes + 1];
        int got = ReadUpTo(stream, rest.AsSpan(0, tableBytes));
        if (got != tableBytes) throw new InvalidDataException("E8 box header is truncated.");
        var br = new BitReader(rest);
        float s0 = BitConverter.UInt32BitsToSingle((uint)br.Read(32));
        var scales = new float[k];
        for (int j = 0; j < k; j++) scales[j] = BitConverter.UInt32BitsToSingle((uint)br.Read(32));
        var lengths = new byte[k * k];
        if (k > 1) for (int i = 0; i < k * k; i++) lengths[i] = (byte)(br.Read(4) + 1);
        E8BoxTable table;
        try { table = new E8BoxTable(b, scales, s0, lengths, g, groupBits); }
        catch (ArgumentException e) { throw new InvalidDataException("Invalid E8 box table: " + e.Message); }
        // Body bits follow the header bits exactly; the header ends mid-byte when k² is odd, so re-read from the bit offset.
        long headerBits = HeaderBits(table);
        long bodyBits = rows * table.RowBits(cols);
        long totalBytes = (headerBits + bodyBits + 7) / 8;
        long consumed = 14 + tableBytes;
        long remaining = totalBytes - consumed;
        if (remaining < 0 || remaining > Array.MaxLength) throw new InvalidDataException("E8 box body size is out of range.");
        if (stream.CanSeek && stream.Length - stream.Position < remaining) throw new InvalidDataException($"E8 box body is truncated: {remaining} bytes expected, {stream.Length - stream.Position} left.");
        var all = new byte[totalBytes];
        // Rebuild the whole image so bit offsets are simple: header bytes first, then the body.
        fixedHead.CopyTo(all);
        rest.AsSpan(0, tableBytes).CopyTo(all.AsSpan(14));
        if (ReadUpTo(stream, all.AsSpan((int)consumed)) != remaining) throw new InvalidDataException("E8 box body is truncated.");
        var r = new BitReader(all);
        for (long left = headerBits; left > 0; left -= Math.Min(left, 64)) r.Read((int)Math.Min(left, 64)); // skip the header
        var codes = new E8BoxCodes(rows, cols, b, scales);
        var codec = new E8BoxCodec(8 * codes.Blocks, table);
        for (int row = 0; row < rows; row++) codec.UnpackRow(ref r, codes, row);
        return (codes, table);
    }

    private static void ReadExactly(Stream s, Span<byte> buf)
    {
        if (ReadUpTo(s, buf) != buf.Length) throw new InvalidDataException("E8 box header is truncated.");
    }

    private static int ReadUpTo(Stream s, Span<byte> buf)
    {
        int total = 0;
        while (total < buf.Length)
        {
            int n = s.Read(buf[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }
}
