using System.Buffers.Binary;
using Gosset.Codes;

namespace Gosset.Kernels;

/// <summary>
/// A weight matrix W [rows = output channels][cols = input dim] coded with the E8 box code of
/// b ∈ {2, 3, 4} bits per entry (<see cref="E8BoxCodes"/>), repacked for the GEMV/GEMM kernels.
/// Products y = Ŵx read the packed digits directly (nothing is dequantized) with fp32 activations
/// (exact) or int8 activations (<see cref="Int8Activations"/>: W4A8, or E8-coded W4A4).
/// </summary>
/// <remarks>
/// <para>In-memory layout. Each row is cut into groups of 256 entries (32 blocks; the last group is
/// padded with zero blocks). A group is one record of 32·b digit bytes followed by 16 side bytes:
/// see <c>Digits4/Digits3/Digits2</c> in <c>Kernels/Simd/E8Digits.cs</c> for where digit i of block B
/// sits; the side byte B mod 16 holds block B's 4-bit field in its low (B &lt; 16) or high nibble.
/// With k ≤ 8 block scales the field is the scale index (bits 0–2) plus the digit parity (bit 3);
/// with 9–16 scales it is the index and the kernels recompute the parity. Records are tiled so that a GEMV keeps
/// its activations in L1 on wide rows: rows come in tiles of <see cref="TileRows"/>, and inside a tile the columns
/// in segments of <see cref="SegmentGroups"/> groups; a tile stores segment 0 of each of its rows, then segment 1 of
/// each, and so on, and inside a segment rows go in pairs (<see cref="Interleave"/>) whose records alternate
/// group by group (<see cref="Record"/>), so a kernel running two rows reads one stream. Plus an fp32 scale per row
/// and the k-entry fp32 scale table.
/// <see cref="BytesRead"/> counts all of it: b + 0.5 bits per padded entry, plus 32 bits per row.</para>
/// <para>Entry (r, 8t + i) = RowScale[r]·β[j]·vᵢ/2, vᵢ = 2uᵢ − q + p·dᵢ (see <see cref="E8BoxCodes"/>).</para>
/// </remarks>
public sealed class PackedE8Matrix : PackedMatrix
{
    /// <summary>Entries per group (32 blocks of 8): the unit of random access and of the side fields.</summary>
    public const int GroupLength = 256;
    private const int SideBytes = 16;

    internal readonly byte[] Data;        // [row tiles][segments][row sets][groups of the segment][rows of the set (Interleave)][RecordBytes]
    internal readonly float[] RowScales;  // [rows]
    internal readonly float[] HalfTable;  // [64]: β[j]/2 for j < k (k ≤ 8: 8–15 repeat 0–7), zeros after (vector tables of any width)
    internal readonly int[] GridTable = new int[64]; // [64]: s[j]·(1 + 2¹⁶) (β[j]/2 = s[j]·GridStep, both 16-bit halves); k ≤ 8: 8–15 repeat 0–7; zeros after
    /// <summary>2^e of the kernel grid (β/2 = s·GridStep), or 0 when the block scales are not on the grid.</summary>
    internal readonly float GridStep;
    private readonly float[] _scales;     // [k]

    /// <summary>Output dimension (rows of W).</summary>
    public override int Rows { get; }
    /// <summary>Rows per tile of the layout (the last tile may have fewer).</summary>
    public const int DefaultTileRows = 64;
    /// <summary>Groups per column segment: 16 groups (4096 columns) keep a segment's int8-group activations (8 KB) in L1 beside the weight stream.</summary>
    public const int DefaultSegmentGroups = 16;
    /// <summary>Rows per tile of this matrix's layout.</summary>
    internal readonly int TileRows;
    /// <summary>Groups per column segment of this matrix's layout (at most <see cref="Groups"/>).</summary>
    internal readonly int SegmentGroups;

    /// <summary>Input dimension (columns of W).</summary>
    public override int Cols { get; }
    /// <summary>Bits per entry b ∈ {2, 3, 4}.</summary>
    public int Bits { get; }
    /// <summary>Nesting ratio q = 2^b.</summary>
    public int Q => 1 << Bits;
    /// <summary>Number of block scales k.</summary>
    public int ScaleCount => _scales.Length;
    /// <summary>The k block scales β (relative to the row scale).</summary>
    public ReadOnlySpan<float> BlockScales => _scales;
    /// <summary>Groups of 256 columns per row.</summary>
    public int Groups { get; }
    /// <summary>Columns as the kernels see them: Groups·256.</summary>
    public int PaddedCols => Groups * GroupLength;
    internal int DigitBytes => 32 * Bits;
    internal int RecordBytes => DigitBytes + SideBytes;
    internal bool Narrow => _scales.Length <= 8;

    /// <summary>Exact bytes a product reads from the weights: the group records, the row scales and the scale table.</summary>
    public long BytesRead => RecordBytesTotal + 4L * Rows + 4L * ScaleCount;

    /// <summary>Bytes of this matrix's group records (a row view of a stacked matrix counts only its rows).</summary>
    private long RecordBytesTotal => (long)Rows * Groups * RecordBytes;

    /// <summary>First record of this matrix in <see cref="Data"/>: 0, or where a row view's rows start in a stacked matrix.</summary>
    private readonly long _baseRecord;

    /// <summary>
    /// Exact stored bits: those of the format the codes are kept in when <see cref="FromCodes(E8BoxCodes, long)"/> was told
    /// (a codec's rows in a model file), else the in-memory form's (8·<see cref="BytesRead"/>: what a product streams, and what
    /// <see cref="WriteTo"/> saves).
    /// </summary>
    public override long StoredBits => _storedBits >= 0 ? _storedBits : 8 * BytesRead;

    /// <summary>The stored form's bits when it is not this layout (−1: this layout).</summary>
    private long _storedBits = -1;

    /// <summary><see cref="StoredBits"/> per weight (rows·cols), padding and side information included.</summary>
    public double BitsPerWeight => (double)StoredBits / ((double)Rows * Cols);

    /// <summary>The activation mode the LLM engine uses by default with these kernels: int8 (W4A8, <see cref="Int8Mode"/>), chosen by measurement (see docs/kernels.md).</summary>
    public static ActivationMode DefaultActivationMode => ActivationMode.Int8Group;

    /// <summary>A view of rows [row0, row0 + rows) of <paramref name="stack"/> (row0 a multiple of its tile rows): shares its records.</summary>
    private PackedE8Matrix(PackedE8Matrix stack, int row0, int rows)
    {
        Rows = rows; Cols = stack.Cols; Bits = stack.Bits; Groups = stack.Groups;
        TileRows = stack.TileRows; SegmentGroups = stack.SegmentGroups; Interleave = stack.Interleave;
        _scales = stack._scales; HalfTable = stack.HalfTable; GridTable = stack.GridTable; GridStep = stack.GridStep;
        Data = stack.Data;
        RowScales = stack.RowScales.AsSpan(row0, rows).ToArray();
        _baseRecord = stack._baseRecord + (long)row0 * Groups; // whole tiles before row0
    }

    /// <summary>
    /// One matrix whose rows are those of <paramref name="parts"/> in order (same columns, bits and block scales; every part
    /// but the last a whole number of tiles), and a view of each part's rows inside it. A product with the stack gives each
    /// row bit-identically to the part's own product, in one pass over the input (the projections that share an input).
    /// </summary>
    /// <returns>The stack and the views (replacing the parts, whose records they share), or null when the parts do not fit.</returns>
    public static (PackedE8Matrix Stack, PackedE8Matrix[] Views)? Stack(IReadOnlyList<PackedE8Matrix> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count < 2) return null;
        var p0 = parts[0];
        int rows = 0;
        for (int i = 0; i < parts.Count; i++)
        {
            var p = parts[i];
            if (p.Cols != p0.Cols || p.Bits != p0.Bits || !p._scales.AsSpan().SequenceEqual(p0._scales) || p.TileRows != p0.TileRows
                || p.SegmentGroups != p0.SegmentGroups || p.Interleave != p0.Interleave || p._baseRecord != 0 || (i < parts.Count - 1 && p.Rows % p.TileRows != 0)) return null;
            rows += p.Rows;
        }
        if ((long)rows * p0.Groups * p0.RecordBytes > Array.MaxLength) return null;
        var s = new PackedE8Matrix(rows, p0.Cols, p0.Bits, p0._scales, (p0.TileRows, p0.SegmentGroups), p0.Interleave);
        var views = new PackedE8Matrix[parts.Count];
        int r0 = 0;
        for (int i = 0; i < parts.Count; i++)
        {
            var p = parts[i];
            // Whole tiles line up, so the part's records are one block of the stack's (its last tile has the same rows).
            p.Data.AsSpan(0, checked((int)p.RecordBytesTotal)).CopyTo(s.Data.AsSpan(checked((int)((long)r0 * s.Groups * s.RecordBytes))));
            p.RowScales.CopyTo(s.RowScales.AsSpan(r0));
            r0 += p.Rows;
        }
        r0 = 0;
        for (int i = 0; i < parts.Count; i++)
        {
            views[i] = new PackedE8Matrix(s, r0, parts[i].Rows) { _storedBits = parts[i]._storedBits };
            r0 += parts[i].Rows;
        }
        // The stack is stored as its parts are.
        if (parts.All(p => p._storedBits >= 0)) s._storedBits = parts.Sum(p => p._storedBits);
        return (s, views);
    }

    private PackedE8Matrix(int rows, int cols, int bits, ReadOnlySpan<float> scales, (int Rows, int Groups)? tiling = null, int interleave = 0)
    {
        Rows = rows; Cols = cols; Bits = bits;
        Groups = (cols + GroupLength - 1) / GroupLength;
        var (tr, sg) = tiling ?? (DefaultTileRows, DefaultSegmentGroups);
        if (tr < 1 || sg < 1) throw new ArgumentOutOfRangeException(nameof(tiling));
        if (interleave is not (0 or 1 or 2)) throw new ArgumentOutOfRangeException(nameof(interleave));
        TileRows = tr; SegmentGroups = Math.Min(sg, Groups);
        Interleave = interleave == 0 ? E8Kernel.Best.RowsPerPass(bits) : interleave;
        _scales = scales.ToArray();
        long n = (long)rows * Groups * RecordBytes;
        if (n > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(rows), "Matrix too large for one packed array.");
        Data = new byte[n];
        RowScales = new float[rows];
        HalfTable = new float[64];
        for (int j = 0; j < scales.Length; j++) HalfTable[j] = 0.5f * scales[j];
        Span<int> grid = stackalloc int[E8BoxCodes.MaxScales];
        if (E8BoxCodes.TryGrid(scales, grid, out GridStep))
            for (int j = 0; j < scales.Length; j++) GridTable[j] = grid[j] | grid[j] << 16;
        if (scales.Length <= 8) // narrow side fields: entries 8–15 repeat 0–7, so a 16-entry permute may read the parity bit 3
        {
            HalfTable.AsSpan(0, 8).CopyTo(HalfTable.AsSpan(8));
            GridTable.AsSpan(0, 8).CopyTo(GridTable.AsSpan(8));
        }
    }

    /// <summary>
    /// Whether the block scales lie on the kernel grid (<see cref="E8BoxCodes.RoundToGrid"/>; every table Gosset
    /// fits does): then <see cref="ActivationMode.Int8Group"/> runs, with whole groups added in integers.
    /// </summary>
    public bool HasGridScales => GridStep > 0;

    /// <summary>The int8 activation mode for these weights: per 256-group on grid scales, else per 8-block.</summary>
    public ActivationMode Int8Mode => HasGridScales ? ActivationMode.Int8Group : ActivationMode.Int8;

    /// <summary>Repacks canonical codes for the kernels (any b ∈ {2, 3, 4}, k ≤ 16).</summary>
    /// <exception cref="ArgumentException">A digit, scale index or row scale is out of range.</exception>
    public static PackedE8Matrix FromCodes(E8BoxCodes codes) => FromCodes(codes, null);

    /// <summary>As <see cref="FromCodes(E8BoxCodes)"/> for codes kept in another stored form (a codec's rows in a model file).</summary>
    /// <param name="codes">The canonical codes.</param>
    /// <param name="storedBits">Exact bits of that stored form (<see cref="StoredBits"/>).</param>
    /// <exception cref="ArgumentException">A digit, scale index or row scale is out of range.</exception>
    /// <exception cref="ArgumentOutOfRangeException">storedBits is negative.</exception>
    public static PackedE8Matrix FromCodes(E8BoxCodes codes, long storedBits)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(storedBits);
        var m = FromCodes(codes, null);
        m._storedBits = storedBits;
        return m;
    }

    /// <summary>As <see cref="FromCodes(E8BoxCodes)"/> with a chosen tiling (tests exercise small tiles).</summary>
    internal static PackedE8Matrix FromCodes(E8BoxCodes codes, (int Rows, int Groups)? tiling, int interleave = 0)
    {
        ArgumentNullException.ThrowIfNull(codes);
        Validate(codes);
        var m = new PackedE8Matrix(codes.Rows, codes.Cols, codes.Bits, codes.BlockScales, tiling, interleave);
        int nb = codes.Blocks;
        codes.RowScale.AsSpan(0, codes.Rows).CopyTo(m.RowScales);
        // Rows own disjoint records, so they are packed on all cores.
        RowParallel.For(codes.Rows, 0, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
                for (int t0 = 0; t0 < nb; t0 += 32)
                {
                    var rec = m.Data.AsSpan((int)m.Offset(r, t0), m.RecordBytes);
                    for (int t = t0; t < Math.Min(nb, t0 + 32); t++)
                        m.SetBlock(rec, t - t0, codes.U.AsSpan((r * nb + t) * 8, 8), codes.ScaleIndex[r * nb + t]);
                }
        });
        return m;
    }

    /// <summary>Digits below q, scale indices below k, row scales finite and non-negative; the first offender named.</summary>
    private static void Validate(E8BoxCodes codes)
    {
        int nb = codes.Blocks, q = codes.Q, k = codes.BlockScales.Length;
        var u = codes.U.AsSpan(0, codes.Rows * nb * 8);
        var idx = codes.ScaleIndex.AsSpan(0, codes.Rows * nb);
        // One vectorised pass each, finding the first offender (none: -1).
        int i = u.IndexOfAnyExceptInRange((byte)0, (byte)(q - 1));
        if (i >= 0) throw new ArgumentException($"Digit {u[i]} out of range at row {i / 8 / nb}, block {i / 8 % nb}.", nameof(codes));
        i = idx.IndexOfAnyExceptInRange((byte)0, (byte)(k - 1));
        if (i >= 0) throw new ArgumentException($"Scale index {idx[i]} ≥ {k} at row {i / nb}, block {i % nb}.", nameof(codes));
        for (int r = 0; r < codes.Rows; r++)
        {
            float s = codes.RowScale[r];
            if (!float.IsFinite(s) || s < 0) throw new ArgumentException($"Row scale {r} is not finite and non-negative.", nameof(codes));
        }
    }

    /// <summary>The canonical codes back (digits of padding blocks are dropped).</summary>
    public E8BoxCodes ToCodes()
    {
        var c = new E8BoxCodes(Rows, Cols, Bits, _scales);
        int nb = c.Blocks;
        for (int r = 0; r < Rows; r++)
        {
            c.RowScale[r] = RowScales[r];
            for (int t = 0; t < nb; t++)
            {
                for (int i = 0; i < 8; i++) c.U[(r * nb + t) * 8 + i] = (byte)Digit(r, t, i);
                c.ScaleIndex[r * nb + t] = (byte)ScaleIndexAt(r, t);
            }
        }
        return c;
    }

    private long Offset(int r, int t) => Record(r, t >> 5) * RecordBytes;

    /// <summary>
    /// Rows whose records are interleaved group by group inside a segment (1 or 2): a pair of rows stores group g of
    /// each, then group g + 1 of each, so a kernel that runs two rows at once reads one sequential stream. Chosen at
    /// packing for the kernel in use (<see cref="E8Kernel.RowsPerPass"/>); every kernel
    /// multiplies every layout, bit-identically.
    /// </summary>
    internal readonly int Interleave;

    /// <summary>
    /// Index of the record of row r, group g: tile T = r / TileRows holds TileRows·Groups records (fewer in the last
    /// tile), segment s of the tile holds SegmentGroups records of each of its nr rows (sl ≤ SegmentGroups records each:
    /// only the last segment is shorter), its rows in sets of <see cref="Interleave"/> (fewer in a tile's last set)
    /// whose records are interleaved group by group.
    /// </summary>
    internal long Record(int r, int g)
    {
        int tile = r / TileRows, t0 = tile * TileRows, nr = Math.Min(TileRows, Rows - t0), s = g / SegmentGroups;
        int sl = Math.Min(SegmentGroups, Groups - s * SegmentGroups);
        int ri = r - t0, qs = ri & ~(Interleave - 1), nq = Math.Min(Interleave, nr - qs);
        return _baseRecord + (long)t0 * Groups + (long)s * SegmentGroups * nr + (long)qs * sl + (long)(g - s * SegmentGroups) * nq + (ri - qs);
    }

    /// <summary>Records from row r's group g to its group g + 1 inside a segment: the rows of r's interleaved set.</summary>
    internal int GroupStride(int r)
    {
        int t0 = r / TileRows * TileRows, nr = Math.Min(TileRows, Rows - t0), qs = (r - t0) & ~(Interleave - 1);
        return Math.Min(Interleave, nr - qs);
    }

    /// <summary>Whether row r is the first of its interleaved set (the set's records of a group are adjacent, r's first).</summary>
    internal bool IsSetStart(int r) => ((r - r / TileRows * TileRows) & (Interleave - 1)) == 0;

    /// <summary>Whether group g starts a segment (no division in the usual cases: one segment, or 2^k groups per segment).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal bool IsSegmentStart(int g)
    {
        int seg = SegmentGroups;
        if (seg == Groups) return g == 0;
        return (seg & (seg - 1)) == 0 ? (g & (seg - 1)) == 0 : g % seg == 0;
    }

    /// <summary>Groups of the segment that starts at group g0 (g0 a multiple of <see cref="SegmentGroups"/>).</summary>
    internal int SegmentLength(int g0) => Math.Min(SegmentGroups, Groups - g0);

    /// <summary>The group after the last one of group g's segment (records of one row are <see cref="GroupStride"/> apart up to there).</summary>
    internal int SegmentEnd(int g) => Math.Min(Groups, (g / SegmentGroups + 1) * SegmentGroups);

    /// <summary>Writes block b (0..31) of a zeroed group record: its digits and side field.</summary>
    private void SetBlock(Span<byte> rec, int b, ReadOnlySpan<byte> u, int j)
    {
        if (Bits == 4)
        {
            // Eight digits (< 16, one per byte) to four bytes of nibble pairs in one word: byte 2i of x | x >> 4 holds
            // u[2i] | u[2i+1] << 4; the even bytes are then gathered. The digit sum's low bit is the parity.
            ulong x = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(u);
            ulong t = (x | x >> 4) & 0x00FF00FF00FF00FFUL;
            t = (t | t >> 8) & 0x0000FFFF0000FFFFUL;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(rec.Slice(4 * b, 4), (uint)(t | t >> 16));
            int parity = (int)(((x * 0x0101010101010101UL) >> 56) & 1);
            rec[DigitBytes + (b & 15)] |= (byte)((Narrow ? j | parity << 3 : j) << (b >= 16 ? 4 : 0));
            return;
        }
        int p = E8BoxCodes.Parity(u);
        for (int i = 0; i < 8; i++)
        {
            int d = u[i], jb = i >> 1, hiNib = i & 1;
            switch (Bits)
            {
                case 4: rec[4 * b + jb] |= (byte)(d << (4 * hiNib)); break;
                default:
                    rec[4 * (b & 15) + jb] |= (byte)((d & 3) << (4 * hiNib + (b >= 16 ? 2 : 0)));
                    if (Bits == 3) rec[64 + 4 * (b & 7) + jb] |= (byte)((d >> 2) << (2 * (b >> 3) + hiNib));
                    break;
            }
        }
        int field = Narrow ? j | p << 3 : j;
        rec[DigitBytes + (b & 15)] |= (byte)(field << (b >= 16 ? 4 : 0));
    }

    /// <summary>Digit i of block t of row r, read from the packed layout (the scalar reference's accessor).</summary>
    internal int Digit(int r, int t, int i)
    {
        long o = Offset(r, t); int b = t & 31, jb = i >> 1, hiNib = i & 1;
        if (Bits == 4) return (Data[o + 4 * b + jb] >> (4 * hiNib)) & 15;
        int d = (Data[o + 4 * (b & 15) + jb] >> (4 * hiNib + (b >= 16 ? 2 : 0))) & 3;
        if (Bits == 3) d |= ((Data[o + 64 + 4 * (b & 7) + jb] >> (2 * (b >> 3) + hiNib)) & 1) << 2;
        return d;
    }

    /// <summary>Scale index of block t of row r, read from the packed layout.</summary>
    internal int ScaleIndexAt(int r, int t)
    {
        int f = (Data[Offset(r, t) + DigitBytes + (t & 15)] >> ((t & 31) >= 16 ? 4 : 0)) & 15;
        return Narrow ? f & 7 : f;
    }

    /// <summary>
    /// The kernels' 4-bit format from a float matrix [rows][cols] with the fixed-scale encoder
    /// <see cref="E8BoxCode"/> (k = 4 scales relative to each row's RMS). Runs on all cores; the
    /// result does not depend on the thread count or <paramref name="isa"/>.
    /// </summary>
    public static PackedE8Matrix Quantize(ReadOnlySpan<float> weights /* [rows][cols] */, int rows, int cols, KernelIsa? isa = null)
    {
        var k = isa ?? KernelSupport.Best;
        KernelSupport.Require(k);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        if (weights.Length < (long)rows * cols) throw new ArgumentException($"weights holds {weights.Length} values, expected {rows}·{cols}.", nameof(weights));
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(weights[..(rows * cols)])) throw new ArgumentException("weights contain NaN or infinity.", nameof(weights));
        var codes = new E8BoxCodes(rows, cols, 4, E8BoxCode.BlockScales);
        float[] w = weights[..(rows * cols)].ToArray();
        int nb = codes.Blocks;
        RowParallel.For(rows, 0, (r0, r1) =>
        {
            var row = new float[8 * nb];
            var words = new uint[nb];
            var idx = new byte[nb];
            for (int r = r0; r < r1; r++)
            {
                w.AsSpan(r * cols, cols).CopyTo(row);
                float s = E8BoxCode.VectorScale(row.AsSpan(0, cols));
                codes.RowScale[r] = s;
                E8BoxEncoder.Encode(row, s, words, idx, k);
                for (int t = 0; t < nb; t++)
                {
                    codes.ScaleIndex[r * nb + t] = idx[t];
                    for (int i = 0; i < 8; i++) codes.U[(r * nb + t) * 8 + i] = (byte)((words[t] >> (4 * i)) & 15);
                }
            }
        });
        return FromCodes(codes);
    }

    /// <summary>
    /// The default <c>e8</c> code of a float matrix [rows][cols]: an <see cref="E8BoxTable"/> fitted on up to
    /// 512 evenly strided rows (block scales on the kernel grid), every row encoded with it, then packed.
    /// Rows are encoded on all cores; the result does not depend on the thread count.
    /// </summary>
    /// <param name="weights">[rows][cols], finite.</param>
    /// <param name="rows">Output dimension.</param>
    /// <param name="cols">Input dimension.</param>
    /// <param name="bits">b ∈ {2, 3, 4}.</param>
    /// <param name="k">Block scales (1 to 16).</param>
    /// <exception cref="ArgumentException">A size is invalid or the weights are not finite.</exception>
    public static PackedE8Matrix Encode(ReadOnlySpan<float> weights, int rows, int cols, int bits = 4, int k = 4)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        if (weights.Length < (long)rows * cols) throw new ArgumentException($"weights holds {weights.Length} values, expected {rows}·{cols}.", nameof(weights));
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(weights[..(rows * cols)])) throw new ArgumentException("weights contain NaN or infinity.", nameof(weights));
        int padded = (cols + 7) / 8 * 8;
        float[] w = weights[..(rows * cols)].ToArray();
        float[] Row(int r) { var x = new float[padded]; w.AsSpan(r * cols, cols).CopyTo(x); return x; }
        int stride = Math.Max(1, rows / 512);
        var sample = new List<float[]>();
        for (int r = 0; r < rows; r += stride) sample.Add(Row(r));
        var table = E8BoxTable.Fit(sample, bits, k, 0);
        var codes = new E8BoxCodes(rows, cols, bits, table.BlockScales);
        int nb = codes.Blocks;
        RowParallel.For(rows, 0, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int c = table.EncodeRow(Row(r), codes.U.AsSpan(r * nb * 8, nb * 8), codes.ScaleIndex.AsSpan(r * nb, nb), searchRowScale: true);
                codes.RowScale[r] = table.RowScaleValue(c);
            }
        });
        return FromCodes(codes);
    }

    /// <summary>Dequantizes row <paramref name="r"/> (Cols values) from the packed layout: Ŵ[r, 8t + i] = rowScale·β/2·vᵢ.</summary>
    public void DequantizeRow(int r, Span<float> row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(r);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(r, Rows);
        if (row.Length < Cols) throw new ArgumentException($"row holds {row.Length} values, expected {Cols}.", nameof(row));
        Span<byte> u = stackalloc byte[8];
        Span<int> v = stackalloc int[8];
        for (int t = 0; 8 * t < Cols; t++)
        {
            for (int i = 0; i < 8; i++) u[i] = (byte)Digit(r, t, i);
            E8BoxCodes.DoubledCoordinates(u, Q, v);
            float half = 0.5f * RowScales[r] * _scales[ScaleIndexAt(r, t)];
            int n = Math.Min(8, Cols - 8 * t);
            for (int i = 0; i < n; i++) row[8 * t + i] = half * v[i];
        }
    }

    /// <inheritdoc/>
    public override ReadOnlySpan<float> Row(int r, Span<float> scratch)
    {
        DequantizeRow(r, scratch);
        return scratch[..Cols];
    }

    /// <summary>Y = Ŵ·X on the best kernel variant (<see cref="Multiply(ReadOnlySpan{float}, Span{float}, int, ActivationMode, KernelIsa?, int)"/>).</summary>
    /// <inheritdoc/>
    public override void Multiply(ReadOnlySpan<float> x, Span<float> y, int batch, ActivationMode activations, int threads)
        => Multiply(E8Kernel.Best, x, y, batch, activations, threads);

    /// <summary>Dequantizes rows [r0, r1) into <paramref name="dst"/> ([r1 − r0][cols]).</summary>
    public void DequantizeRows(int r0, int r1, Span<float> dst)
    {
        if (r0 < 0 || r1 > Rows || r0 > r1) throw new ArgumentOutOfRangeException(nameof(r0), $"Row range [{r0}, {r1}) is outside [0, {Rows}).");
        if (dst.Length < (long)(r1 - r0) * Cols) throw new ArgumentException("Destination is too short.", nameof(dst));
        for (int r = r0; r < r1; r++) DequantizeRow(r, dst.Slice((r - r0) * Cols, Cols));
    }

    /// <summary>y = Ŵx for one vector (x: cols values, y: rows values), fp32 activations, best kernel, all cores.</summary>
    public void Multiply(ReadOnlySpan<float> x, Span<float> y) => Multiply(E8Kernel.Best, x, y, 1, ActivationMode.Float32);

    /// <summary>
    /// Y = Ŵ·X for a batch: <paramref name="x"/> is [batch][cols] row-major, <paramref name="y"/> is
    /// [batch][rows]. Each decoded block of weights is applied to several vectors at once (GEMM for
    /// batch &gt; 1); rows are split over threads. The result does not depend on the thread count
    /// or the kernel variant (all are bit-identical).
    /// </summary>
    /// <param name="x">Activations [batch][cols].</param>
    /// <param name="y">Outputs [batch][rows].</param>
    /// <param name="batch">Number of activation vectors.</param>
    /// <param name="mode">fp32 activations (exact), int8 per 8-block (W4A8) or the 4-bit E8 box code (W4A4).</param>
    /// <param name="isa">Vector width (default: the best variant, <see cref="E8Kernel.Best"/>).</param>
    /// <param name="threads">Threads (0: all cores; 1: the calling thread only).</param>
    public void Multiply(ReadOnlySpan<float> x, Span<float> y, int batch, ActivationMode mode = ActivationMode.Float32, KernelIsa? isa = null, int threads = 0)
        => Multiply(isa is { } i ? E8Kernel.ForIsa(i) : E8Kernel.Best, x, y, batch, mode, threads);

    /// <summary>As <see cref="Multiply(ReadOnlySpan{float}, Span{float}, int, ActivationMode, KernelIsa?, int)"/> with an explicit kernel variant.</summary>
    public void Multiply(E8Kernel kernel, ReadOnlySpan<float> x /* [batch][cols] */, Span<float> y /* [batch][rows] */, int batch, ActivationMode mode, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        if (x.Length < (long)batch * Cols) throw new ArgumentException($"x holds {x.Length} values, expected batch·cols = {batch * Cols}.", nameof(x));
        if (y.Length < (long)batch * Rows) throw new ArgumentException($"y holds {y.Length} values, expected batch·rows = {batch * Rows}.", nameof(y));
        if (mode == ActivationMode.Float32)
        {
            using var a = E8ActivationLayout.Float(x, batch, Cols, Groups, Q);
            Run(a, y, kernel, threads);
            return;
        }
        if (mode == ActivationMode.Int8Group)
        {
            if (!HasGridScales) throw new ArgumentException("Int8Group activations need block scales on the kernel grid (E8BoxCodes.RoundToGrid); use Int8Mode.", nameof(mode));
            using var g = E8ActivationLayout.Grouped(x, batch, Cols, Groups, Q, kernel.GroupedNeeds(Bits, batch), kernel.Lanes, threads);
            Run(g, y, kernel, threads);
            return;
        }
        var q = mode == ActivationMode.Int8 ? Int8Activations.Quantize(x, batch, Cols) : E8BoxActivations(x, batch, Cols);
        Multiply(q, y, kernel, threads);
    }

    /// <summary>Y = Ŵ·X with activations already in int8 form: a is [batch][cols], y is [batch][rows].</summary>
    public void Multiply(Int8Activations a, Span<float> y /* [batch][rows] */, E8Kernel? kernel = null, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(a);
        if (a.Cols != Cols) throw new ArgumentException($"Activations have {a.Cols} columns, the matrix {Cols}.", nameof(a));
        if (y.Length < (long)a.Batch * Rows) throw new ArgumentException($"y holds {y.Length} values, expected batch·rows = {a.Batch * Rows}.", nameof(y));
        using var l = E8ActivationLayout.Int(a.Values, a.Scales, a.Batch, a.Blocks, Groups, Q);
        Run(l, y, kernel ?? E8Kernel.Best, threads);
    }

    private unsafe void Run(E8ActivationLayout a, Span<float> y, E8Kernel kernel, int threads)
    {
        fixed (float* yp = y)
        {
            nint yAddr = (nint)yp; // pinned for the duration of the parallel loop below
            RowParallel.For(Rows, threads, (r0, r1) => kernel.Run(this, a, r0, r1, (float*)yAddr), TileRows);
        }
    }

    /// <summary>W4A4 activations with the 4-bit <see cref="E8BoxCode"/>: x̃ the doubled coordinates, scale RMS·β/2.</summary>
    internal static Int8Activations E8BoxActivations(ReadOnlySpan<float> x, int batch, int cols)
    {
        var a = new Int8Activations(batch, cols);
        int nb = a.Blocks;
        var buf = new float[8 * nb];
        var words = new uint[nb];
        var idx = new byte[nb];
        Span<int> v = stackalloc int[8];
        for (int c = 0; c < batch; c++)
        {
            Array.Clear(buf);
            x.Slice(c * cols, cols).CopyTo(buf);
            float s = E8BoxCode.VectorScale(buf.AsSpan(0, cols));
            E8BoxEncoder.Encode(buf, s, words, idx, KernelSupport.Best);
            for (int t = 0; t < nb; t++)
            {
                E8BoxCode.DecodeDoubled(words[t], v);
                for (int i = 0; i < 8; i++) a.Values[(c * nb + t) * 8 + i] = 8 * t + i < cols ? (sbyte)v[i] : (sbyte)0;
                a.Scales[c * nb + t] = s * E8BoxCode.BlockScales[idx[t]] * 0.5f;
            }
        }
        return a;
    }

    /// <summary>Bytes written by <see cref="WriteTo"/>.</summary>
    public long SerializedLength => 4 + 4L * ScaleCount + 4L * Rows + RecordBytesTotal;

    /// <summary>
    /// Writes the matrix (little-endian): b, k, two zero bytes, the k scales, the row scales, then the group
    /// records row after row (the canonical order, whatever the in-memory tiling). <see cref="ReadFrom"/>
    /// rebuilds a matrix that multiplies bit-identically.
    /// </summary>
    public void WriteTo(Stream s)
    {
        ArgumentNullException.ThrowIfNull(s);
        s.Write([(byte)Bits, (byte)ScaleCount, 0, 0]);
        s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_scales.AsSpan()));
        s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(RowScales.AsSpan()));
        for (int r = 0; r < Rows; r++)
            for (int g = 0; g < Groups; g++)
                s.Write(Data.AsSpan(checked((int)(Record(r, g) * RecordBytes)), RecordBytes));
    }

    /// <summary>Rebuilds a rows × cols matrix from bytes written by <see cref="WriteTo"/>; every field is checked before anything is allocated.</summary>
    /// <exception cref="InvalidDataException">The header, length, a scale, a scale index or a parity bit is invalid.</exception>
    public static PackedE8Matrix ReadFrom(ReadOnlySpan<byte> bytes, int rows, int cols)
    {
        if (rows < 1 || cols < 1) throw new InvalidDataException($"Invalid packed E8 matrix shape {rows}×{cols}.");
        if (bytes.Length < 4) throw new InvalidDataException("Packed E8 data is shorter than its header.");
        int bits = bytes[0], k = bytes[1];
        if (bits is < 2 or > 4) throw new InvalidDataException($"Packed E8 data has b = {bits}; supported: 2, 3, 4.");
        if (k is < 1 or > E8BoxCodes.MaxScales) throw new InvalidDataException($"Packed E8 data has {k} block scales; supported: 1 to {E8BoxCodes.MaxScales}.");
        long groups = ((long)cols + GroupLength - 1) / GroupLength;
        long need = 4 + 4L * k + 4L * rows + (long)rows * groups * (32 * bits + SideBytes);
        if (bytes.Length != need) throw new InvalidDataException($"Packed E8 data holds {bytes.Length} bytes; a {rows}×{cols} matrix at b = {bits}, k = {k} needs {need}.");
        var scales = new float[k];
        for (int j = 0; j < k; j++)
        {
            scales[j] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(4 + 4 * j)..]);
            if (!float.IsFinite(scales[j]) || scales[j] <= 0) throw new InvalidDataException("Packed E8 block scale is not a finite positive number.");
        }
        var m = new PackedE8Matrix(rows, cols, bits, scales);
        int o = 4 + 4 * k;
        for (int r = 0; r < rows; r++, o += 4)
        {
            float s = BinaryPrimitives.ReadSingleLittleEndian(bytes[o..]);
            if (!float.IsFinite(s) || s < 0) throw new InvalidDataException("Packed E8 row scale is not a finite non-negative number.");
            m.RowScales[r] = s;
        }
        int rb = m.RecordBytes;
        for (int r = 0; r < rows; r++)
            for (int g = 0; g < m.Groups; g++, o += rb)
                bytes.Slice(o, rb).CopyTo(m.Data.AsSpan((int)(m.Record(r, g) * rb), rb));
        int nb = m.Groups * 32;
        for (int r = 0; r < rows; r++)
            for (int t = 0; t < nb; t++)
            {
                int f = (m.Data[m.Offset(r, t) + m.DigitBytes + (t & 15)] >> ((t & 31) >= 16 ? 4 : 0)) & 15;
                if ((m.Narrow ? f & 7 : f) >= k) throw new InvalidDataException($"Packed E8 scale index out of range at row {r}, block {t}.");
                if (m.Narrow)
                {
                    int p = 0;
                    for (int i = 0; i < 8; i++) p ^= m.Digit(r, t, i) & 1;
                    if (p != f >> 3) throw new InvalidDataException($"Packed E8 parity bit is inconsistent at row {r}, block {t}.");
                }
            }
        return m;
    }
}
