using Gosset.Coding;
using Gosset.Codes;

namespace Gosset.Codes;

/// <summary>
/// The kernel-native E8 box code (<see cref="E8BoxCodes"/>, user name <c>e8</c>) as a vector codec: weights
/// (rows), activations (per token) and K/V (per token) all use it with a table fitted to their data.
/// In memory: [row-scale code (1 byte, absent with a fixed scale)][8·blocks digits][blocks scale indices];
/// stored: exactly <see cref="E8BoxTable.RowBits"/> bits (minus the 8-bit row scale when fixed).
/// </summary>
/// <remarks>
/// In the KV cache every call is per token: <see cref="VectorCodec.Encode"/> codes one token's vector, <see cref="ToBlockInt8"/>
/// unpacks it once to the form attention reads (doubled coordinates and s·β/2 per block); nothing re-decodes the cache.
/// </remarks>
public sealed class E8BoxCodec : VectorCodec
{
    private readonly int _head;

    /// <summary>A codec for vectors of <paramref name="length"/> entries with a fitted table.</summary>
    /// <param name="length">Entries per vector, a multiple of 8.</param>
    /// <param name="table">The fitted table (b, block scales, index code, row-scale grid).</param>
    /// <param name="fixedScale">Every vector uses the table's base scale (no 8-bit row scale stored).</param>
    /// <exception cref="ArgumentException"><paramref name="length"/> is not a multiple of 8.</exception>
    public E8BoxCodec(int length, E8BoxTable table, bool fixedScale = false) : base(length)
    {
        if (length % 8 != 0) throw new ArgumentException("E8 box codec length must be a multiple of 8", nameof(length));
        Table = table;
        FixedScale = fixedScale;
        _head = fixedScale ? 0 : 1;
    }

    /// <summary>The fitted table.</summary>
    public E8BoxTable Table { get; }
    /// <summary>Try the row-scale codes next to the RMS one and keep the best (weights, coded once; not per-token vectors).</summary>
    public bool SearchRowScale { get; init; }
    /// <summary>True when every vector uses the table's base scale (no per-vector side information).</summary>
    public bool FixedScale { get; }
    /// <summary>Digit bits per entry b.</summary>
    public int BitsPerEntry => Table.Bits;
    /// <inheritdoc/>
    public override int CodeBytes => _head + Length + Blocks;
    /// <inheritdoc/>
    public override long Bits => Table.RowBits(Length) - (FixedScale ? 8 : 0);
    /// <inheritdoc/>
    public override string Describe() => $"e8 box b={Table.Bits} k={Table.K} {(FixedScale ? "fixed-scale" : "8-bit row scale")}";

    /// <summary>The canonical <see cref="E8BoxCodes"/> of <paramref name="rows"/> vectors coded by this codec (consecutive codes of <see cref="CodeBytes"/>).</summary>
    public E8BoxCodes ToCodes(byte[] codes, int rows)
    {
        var c = new E8BoxCodes(rows, Length, Table.Bits, Table.BlockScales);
        for (int r = 0; r < rows; r++)
        {
            var code = codes.AsSpan(r * CodeBytes, CodeBytes);
            c.RowScale[r] = Scale(code);
            code.Slice(_head, Length).CopyTo(c.U.AsSpan(r * Length, Length));
            code.Slice(_head + Length, Blocks).CopyTo(c.ScaleIndex.AsSpan(r * Blocks, Blocks));
        }
        return c;
    }

    /// <summary><see cref="Encode"/> of x straight into row <paramref name="row"/> of canonical codes made with this codec's table.</summary>
    /// <param name="x">The vector, <see cref="VectorCodec.Length"/> entries.</param>
    /// <param name="dst">Codes whose rows have this codec's length.</param>
    /// <param name="row">The row to write.</param>
    public void EncodeRow(ReadOnlySpan<float> x, E8BoxCodes dst, int row)
    {
        var u = dst.U.AsSpan(row * Length, Length);
        var idx = dst.ScaleIndex.AsSpan(row * Blocks, Blocks);
        if (FixedScale)
        {
            Table.EncodeRowAt(x, Table.RowScaleBase, u, idx);
            dst.RowScale[row] = Table.RowScaleBase;
        }
        else dst.RowScale[row] = Table.RowScaleValue(Table.EncodeRow(x, u, idx, SearchRowScale));
    }

    /// <summary>Packs canonical codes row by row in this codec's stored layout (the rows of <see cref="E8BoxFormat"/> and the e8 weight sections of .gqm).</summary>
    /// <exception cref="ArgumentException">The codes' rows are not of this codec's length, a row scale is not an 8-bit code of the table, or a group's indices exceed its budget.</exception>
    public void PackCodes(E8BoxCodes codes, BitWriter w)
    {
        ArgumentNullException.ThrowIfNull(codes);
        if (8 * codes.Blocks != Length) throw new ArgumentException($"Code rows of {codes.Cols} entries; the codec codes {Length}.", nameof(codes));
        var code = new byte[CodeBytes];
        for (int r = 0; r < codes.Rows; r++)
        {
            if (!FixedScale)
            {
                int c = Table.RowScaleCode(codes.RowScale[r]);
                if (Table.RowScaleValue(c) != codes.RowScale[r])
                    throw new ArgumentException($"Row {r}: scale {codes.RowScale[r]} is not an 8-bit row scale of the table.", nameof(codes));
                code[0] = (byte)c;
            }
            codes.U.AsSpan(r * Length, Length).CopyTo(code.AsSpan(_head));
            codes.ScaleIndex.AsSpan(r * Blocks, Blocks).CopyTo(code.AsSpan(_head + Length));
            Pack(code, w);
        }
    }

    private float Scale(ReadOnlySpan<byte> code) => FixedScale ? Table.RowScaleBase : Table.RowScaleValue(code[0]);

    /// <inheritdoc/>
    public override void Encode(ReadOnlySpan<float> x, Span<byte> code)
    {
        if (FixedScale)
        {
            Table.EncodeRowAt(x, Table.RowScaleBase, code.Slice(0, Length), code.Slice(Length, Blocks));
            return;
        }
        code[0] = (byte)Table.EncodeRow(x, code.Slice(1, Length), code.Slice(1 + Length, Blocks), SearchRowScale);
    }

    /// <summary>
    /// <see cref="Encode"/> of x[offset .. offset + Length) into code[0 .. CodeBytes) with the groups split over the
    /// worker pool (one long activation vector per call when decoding a token); the same code, since groups are
    /// coded independently once the row scale is set. Vectors coded with a row-scale search take the serial path.
    /// </summary>
    public void EncodeParallel(float[] x, int offset, byte[] code)
    {
        var xs = x.AsSpan(offset, Length);
        int groupLength = 8 * Table.GroupBlocks, groups = (Length + groupLength - 1) / groupLength;
        if (SearchRowScale || groups < 2) { Encode(xs, code); return; }
        if (!FixedScale) code[0] = (byte)Table.RmsScaleCode(xs);
        float s = Scale(code);
        int parts = Math.Min(groups, 2 * Environment.ProcessorCount), per = (groups + parts - 1) / parts;
        Gosset.Kernels.RowParallel.ForEach((groups + per - 1) / per, p =>
        {
            int e0 = p * per * groupLength, e1 = Math.Min(Length, (p + 1) * per * groupLength);
            Table.EncodeRowAt(x.AsSpan(offset + e0, e1 - e0), s, code.AsSpan(_head + e0, e1 - e0), code.AsSpan(_head + Length + e0 / 8, (e1 - e0) / 8));
        });
    }

    /// <inheritdoc/>
    public override void Roundtrip(ReadOnlySpan<float> x, Span<float> y)
    {
        // Encode, not block by block: the whole-group index search beats the sequential budgeted choice.
        Span<byte> code = CodeBytes <= 4096 ? stackalloc byte[CodeBytes] : new byte[CodeBytes];
        Encode(x, code);
        Decode(code, y);
    }

    /// <inheritdoc/>
    public override void Begin(ReadOnlySpan<float> x, Span<byte> code)
    {
        if (!FixedScale) code[0] = (byte)Table.RmsScaleCode(x);
    }

    /// <summary>
    /// One block in sequence (LDLQ): the least-error index among those that keep the group within its budget,
    /// assuming the cheapest codes for the group's remaining pairs.
    /// </summary>
    public override void QuantizeBlock(int block, ReadOnlySpan<float> xb, Span<byte> code, Span<float> yb)
    {
        float s = Scale(code);
        int k = Table.K, g = Table.GroupBlocks;
        int t0 = block / g * g, nb = Math.Min(g, Blocks - t0), pos = block - t0;
        var idx = code.Slice(_head + Length, Blocks);
        var u = code.Slice(_head + 8 * block, 8);
        Span<float> err = stackalloc float[k];
        Span<byte> digits = stackalloc byte[8 * E8BoxCodes.MaxScales];
        Span<float> x = stackalloc float[8];
        x.Clear();
        xb.CopyTo(x);
        E8BoxEncoder.EncodeCandidates(x, s, Table.BlockScales, Table.Bits, err, digits);
        int budget = Table.IndexBitsFor(nb), used = 0;
        for (int t = 0; t < pos - (pos & 1); t += 2) used += Table.PairLengths[idx[t0 + t] * k + idx[t0 + t + 1]];
        int after = Table.MinimumIndexBits(Math.Max(0, nb - 2 * (pos / 2 + 1)));
        bool last = pos + 1 >= nb;
        int best = -1; float bestErr = float.PositiveInfinity;
        for (int j = 0; j < k; j++)
        {
            int cost;
            if ((pos & 1) == 0) cost = last ? Table.PairLengths[j * k] : MinOver(j, k);
            else cost = Table.PairLengths[idx[block - 1] * k + j];
            if (used + cost + after > budget) continue;
            if (err[j] < bestErr || best < 0) { bestErr = err[j]; best = j; }
        }
        if (best < 0) best = Cheapest(pos, idx, block, k, last);
        idx[block] = (byte)best;
        digits.Slice(8 * best, 8).CopyTo(u);
        Span<float> y = stackalloc float[8];
        E8BoxEncoder.DecodeBlock(u, Table.Bits, s * Table.BlockScales[best], y);
        y[..yb.Length].CopyTo(yb);
    }

    private int MinOver(int j1, int k)
    {
        int m = int.MaxValue;
        for (int j2 = 0; j2 < k; j2++) m = Math.Min(m, Table.PairLengths[j1 * k + j2]);
        return m;
    }

    private int Cheapest(int pos, Span<byte> idx, int block, int k, bool last)
    {
        int best = 0, bl = int.MaxValue;
        for (int j = 0; j < k; j++)
        {
            int c = (pos & 1) == 0 ? (last ? Table.PairLengths[j * k] : MinOver(j, k)) : Table.PairLengths[idx[block - 1] * k + j];
            if (c < bl) { bl = c; best = j; }
        }
        return best;
    }

    /// <inheritdoc/>
    public override void Decode(ReadOnlySpan<byte> code, Span<float> x)
    {
        float s = Scale(code);
        int q = 1 << Table.Bits;
        Span<int> v = stackalloc int[8];
        for (int t = 0; t < Blocks; t++)
        {
            E8BoxCodes.DoubledCoordinates(code.Slice(_head + 8 * t, 8), q, v);
            float half = 0.5f * s * Table.BlockScales[code[_head + Length + t]];
            for (int i = 0; i < 8; i++) x[8 * t + i] = half * v[i];
        }
    }

    /// <inheritdoc/>
    public override bool HasBlockInt8Form => true;

    /// <summary>
    /// A coded vector as the integer kernels (<see cref="Gosset.Kernels.Int8Activations"/>) and coded attention take it: the
    /// doubled coordinates v (|v| ≤ q) and per block the scale s·β/2, so that x̂ = scale·v exactly as <see cref="Decode"/> gives it.
    /// </summary>
    public override void ToBlockInt8(ReadOnlySpan<byte> code, Span<sbyte> values /* [Length] */, Span<float> scales /* [Blocks] */)
    {
        float s = Scale(code);
        int q = 1 << Table.Bits;
        Span<int> v = stackalloc int[8];
        for (int t = 0; t < Blocks; t++)
        {
            E8BoxCodes.DoubledCoordinates(code.Slice(_head + 8 * t, 8), q, v);
            scales[t] = 0.5f * s * Table.BlockScales[code[_head + Length + t]];
            for (int i = 0; i < 8; i++) values[8 * t + i] = (sbyte)v[i];
        }
    }

    /// <summary>Packs into the stored layout of <see cref="E8BoxFormat"/> rows (row scale, then per group digits and the index code).</summary>
    /// <exception cref="ArgumentException">A group's indices exceed its budget.</exception>
    public override void Pack(ReadOnlySpan<byte> code, BitWriter w)
    {
        if (!FixedScale) w.Write(code[0], 8);
        int g = Table.GroupBlocks;
        for (int t0 = 0; t0 < Blocks; t0 += g)
        {
            int nb = Math.Min(g, Blocks - t0);
            foreach (byte d in code.Slice(_head + 8 * t0, 8 * nb)) w.Write(d, Table.Bits);
            var idx = code.Slice(_head + Length + t0, nb);
            int used = 0;
            for (int t = 0; t < nb; t += 2)
            {
                var (c, len) = Table.PairCode(idx[t], t + 1 < nb ? idx[t + 1] : 0);
                for (int i = len - 1; i >= 0; i--) w.Write((c >> i) & 1, 1);
                used += len;
            }
            int budget = Table.IndexBitsFor(nb);
            if (used > budget) throw new ArgumentException($"Group {t0 / g}: the scale indices need {used} bits, the budget is {budget}.", nameof(code));
            for (int left = budget - used; left > 0; left -= Math.Min(left, 64)) w.Write(0, Math.Min(left, 64));
        }
    }

    /// <inheritdoc/>
    public override void Unpack(ref BitReader r, Span<byte> code)
    {
        if (!FixedScale) code[0] = (byte)r.Read(8);
        UnpackBody(ref r, code.Slice(_head, Length), code.Slice(_head + Length, Blocks));
    }

    /// <summary>Reads one row written by <see cref="PackCodes"/> straight into row <paramref name="row"/> of <paramref name="dst"/>.</summary>
    public void UnpackRow(ref BitReader r, E8BoxCodes dst, int row)
    {
        dst.RowScale[row] = FixedScale ? Table.RowScaleBase : Table.RowScaleValue((int)r.Read(8));
        UnpackBody(ref r, dst.U.AsSpan(row * Length, Length), dst.ScaleIndex.AsSpan(row * Blocks, Blocks));
    }

    /// <summary>The digits and scale indices of one vector, group by group (digits eight bytes of stream at a time, pair codes by table).</summary>
    private void UnpackBody(ref BitReader r, Span<byte> digits, Span<byte> index)
    {
        int g = Table.GroupBlocks, k = Table.K, peek = Table.PairPeekBits;
        for (int t0 = 0; t0 < Blocks; t0 += g)
        {
            int nb = Math.Min(g, Blocks - t0);
            r.ReadBytes(digits.Slice(8 * t0, 8 * nb), Table.Bits);
            int budget = Table.IndexBitsFor(nb), used = 0;
            for (int t = 0; t < nb; t += 2)
            {
                int sym = 0;
                if (k > 1)
                {
                    var (s, len) = Table.DecodePair(r.Peek(peek));
                    if (len == 0) throw new InvalidDataException("E8 box code: invalid index code.");
                    if ((used += len) > budget) throw new InvalidDataException("E8 box code: a group's indices overrun its budget.");
                    r.Skip(len);
                    sym = s;
                }
                index[t0 + t] = (byte)(sym / k);
                if (t + 1 < nb) index[t0 + t + 1] = (byte)(sym % k);
                else if (sym % k != 0) throw new InvalidDataException("E8 box code: odd last block paired with a nonzero index.");
            }
            r.Skip(budget - used);
        }
    }
}
