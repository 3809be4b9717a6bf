namespace Gosset.Kernels;

/// <summary>
/// A weight matrix W [rows = output channels][cols = input dim] stored in the 4-bit
/// <see cref="E8BoxCode"/>: each row is a sequence of 8-blocks along the input dimension. Products
/// y = Ŵx (batch 1–16) read the packed codes directly; nothing is dequantized in full.
/// </summary>
/// <remarks>
/// <para>Storage per row: Cp/2 bytes of nibbles (Cp = cols padded to a multiple of 128 with zeros,
/// block b = little-endian uint32 at byte 4b), Cp/128 uint32 words of 2-bit scale indices
/// (bits 2j..2j+1 of word g: block 16g + j), and one fp32 row scale. The four block-scale
/// constants are counted once per matrix. <see cref="BitsPerWeight"/> is all of it divided by
/// rows·cols.</para>
/// <para>Entry (r, 8b + i) is rowScale[r] · B[idx] · vᵢ / 2 with v the doubled coordinates of the
/// block's E8 point (see <see cref="E8BoxCode"/>).</para>
/// </remarks>
public sealed class PackedE8Matrix
{
    /// <summary>Entries per kernel group (16 blocks).</summary>
    public const int GroupLength = 128;

    internal readonly byte[] Nibbles;     // [rows][Cp/2]
    internal readonly uint[] ScaleWords;  // [rows][Cp/128]
    internal readonly float[] RowScales;  // [rows]
    internal readonly float[] HalfTable16; // B[j & 3] / 2, 16 entries (for 16-lane permutes)

    /// <summary>Output dimension (rows of W).</summary>
    public int Rows { get; }
    /// <summary>Input dimension (columns of W).</summary>
    public int Cols { get; }
    /// <summary>Columns as the kernels see them: padded with zeros to a multiple of <see cref="GroupLength"/> (activations are padded, not weights).</summary>
    public int PaddedCols { get; }
    /// <summary>Columns stored per row: padded to whole 8-blocks only.</summary>
    public int StoredCols { get; }
    internal int Groups => PaddedCols / GroupLength;
    internal int RowBytes => StoredCols / 2;
    internal int StoredBlocks => StoredCols / 8;

    /// <summary>
    /// Exact stored bits: nibbles of whole blocks, one 32-bit scale-index word per 16 blocks
    /// (started), fp32 row scales, the four scale constants. (The nibble array has 64 bytes of
    /// slack after the last row so that kernels may read a whole 64-byte group; that is not data.)
    /// </summary>
    public long StoredBits => (long)Rows * StoredCols * 4 + (long)Rows * Groups * 32 + (long)Rows * 32 + 4 * 32;

    /// <summary>Stored bits per weight, all side information and padding included.</summary>
    public double BitsPerWeight => (double)StoredBits / ((double)Rows * Cols);

    /// <summary>Bytes a product reads from the weights.</summary>
    public long StoredBytes => Nibbles.LongLength + ScaleWords.LongLength * 4 + RowScales.LongLength * 4;

    private PackedE8Matrix(int rows, int cols)
    {
        Rows = rows; Cols = cols;
        PaddedCols = (cols + GroupLength - 1) / GroupLength * GroupLength;
        StoredCols = (cols + 7) / 8 * 8;
        // Rows are packed tightly; a kernel reading the last (partial) group of a row reads into the
        // next row or the slack, and multiplies those nibbles by zero activations.
        Nibbles = new byte[(long)rows * RowBytes + 64];
        ScaleWords = new uint[rows * Groups];
        RowScales = new float[rows];
        HalfTable16 = new float[16];
        for (int j = 0; j < 16; j++) HalfTable16[j] = E8BoxCode.BlockScales[j & 3] * 0.5f;
    }

    /// <summary>Bytes written by <see cref="WriteTo"/>: the nibbles of whole blocks, the scale-index words and the row scales.</summary>
    public long SerializedLength => (long)Rows * RowBytes + 4L * ScaleWords.LongLength + 4L * RowScales.LongLength;

    /// <summary>
    /// Writes the packed arrays as they are in memory (nibbles row after row, scale-index words and
    /// fp32 row scales, little-endian). Nothing is re-encoded, so <see cref="ReadFrom"/> gives a
    /// matrix that multiplies bit-identically.
    /// </summary>
    public void WriteTo(Stream s)
    {
        ArgumentNullException.ThrowIfNull(s);
        s.Write(Nibbles, 0, checked((int)((long)Rows * RowBytes)));
        s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(ScaleWords.AsSpan()));
        s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(RowScales.AsSpan()));
    }

    /// <summary>Rebuilds a rows × cols matrix from bytes written by <see cref="WriteTo"/>.</summary>
    /// <exception cref="InvalidDataException">The byte count does not match this shape, or a row scale is not finite.</exception>
    public static PackedE8Matrix ReadFrom(ReadOnlySpan<byte> bytes, int rows, int cols)
    {
        if (rows < 1 || cols < 1) throw new InvalidDataException($"Invalid packed E8 matrix shape {rows}×{cols}.");
        // size check in 64 bits before anything is allocated (the shape comes from a file header)
        long storedCols = (cols + 7L) / 8 * 8, groups = (cols + (long)GroupLength - 1) / GroupLength;
        long need = rows * (storedCols / 2) + 4L * rows * groups + 4L * rows;
        if (bytes.Length != need)
            throw new InvalidDataException($"Packed E8 data holds {bytes.Length} bytes; a {rows}×{cols} matrix needs {need}.");
        var m = new PackedE8Matrix(rows, cols);
        int n = rows * m.RowBytes, w = 4 * m.ScaleWords.Length;
        bytes[..n].CopyTo(m.Nibbles);
        bytes.Slice(n, w).CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(m.ScaleWords.AsSpan()));
        bytes[(n + w)..].CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(m.RowScales.AsSpan()));
        foreach (float v in m.RowScales)
            if (!float.IsFinite(v) || v < 0) throw new InvalidDataException("Packed E8 row scale is not a finite non-negative number.");
        return m;
    }

    /// <summary>
    /// Quantizes a row-major float matrix [rows][cols] (rows = output channels). Runs on all
    /// cores; the result does not depend on the thread count.
    /// </summary>
    /// <param name="weights">Row-major [rows][cols].</param>
    /// <param name="rows">Output dimension.</param>
    /// <param name="cols">Input dimension.</param>
    /// <param name="isa">Encoder variant (default: the best supported); every variant gives the same bytes.</param>
    public static PackedE8Matrix Quantize(ReadOnlySpan<float> weights, int rows, int cols, KernelIsa? isa = null)
    {
        var k = isa ?? KernelSupport.Best;
        KernelSupport.Require(k);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        if (weights.Length < (long)rows * cols) throw new ArgumentException($"weights holds {weights.Length} values, expected {rows}·{cols}.", nameof(weights));
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(weights[..(rows * cols)])) throw new ArgumentException("weights contain NaN or infinity.", nameof(weights));
        var m = new PackedE8Matrix(rows, cols);
        float[] w = weights[..(rows * cols)].ToArray();
        RowParallel.For(rows, 0, (r0, r1) =>
        {
            var row = new float[m.PaddedCols];
            var words = new uint[m.PaddedCols / 8];
            var idx = new byte[m.PaddedCols / 8];
            for (int r = r0; r < r1; r++)
            {
                w.AsSpan(r * cols, cols).CopyTo(row);
                m.EncodeRow(r, row, words, idx, k);
            }
        });
        return m;
    }

    private void EncodeRow(int r, float[] row /* [PaddedCols], zero padded */, uint[] blockWords, byte[] idx, KernelIsa isa)
    {
        float s = E8BoxCode.VectorScale(row.AsSpan(0, Cols));
        RowScales[r] = s;
        E8BoxEncoder.Encode(row, s, blockWords, idx, isa);
        var nib = Nibbles.AsSpan(r * RowBytes, RowBytes);
        var words = ScaleWords.AsSpan(r * Groups, Groups);
        words.Clear();
        for (int b = 0; b < StoredBlocks; b++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(nib[(4 * b)..], blockWords[b]);
            words[b >> 4] |= (uint)idx[b] << (2 * (b & 15));
        }
    }

    /// <summary>Packed bytes (nibbles, scale words, row scales) for equality checks in tests.</summary>
    internal byte[] ToBytes()
    {
        var res = new byte[Nibbles.Length + ScaleWords.Length * 4 + RowScales.Length * 4];
        Nibbles.CopyTo(res, 0);
        Buffer.BlockCopy(ScaleWords, 0, res, Nibbles.Length, ScaleWords.Length * 4);
        Buffer.BlockCopy(RowScales, 0, res, Nibbles.Length + ScaleWords.Length * 4, RowScales.Length * 4);
        return res;
    }

    /// <summary>Block word of row r, block b.</summary>
    internal uint Word(int r, int b) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(Nibbles.AsSpan(r * RowBytes + 4 * b));

    /// <summary>Scale index of row r, block b.</summary>
    internal int ScaleIndex(int r, int b) => (int)(ScaleWords[r * Groups + (b >> 4)] >> (2 * (b & 15))) & 3;

    /// <summary>Dequantizes row <paramref name="r"/> (cols values) with the scalar reference decoder.</summary>
    public void DequantizeRow(int r, Span<float> row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(r);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(r, Rows);
        if (row.Length < Cols) throw new ArgumentException($"row holds {row.Length} values, expected {Cols}.", nameof(row));
        Span<float> blk = stackalloc float[8];
        for (int b = 0; b * 8 < Cols; b++)
        {
            E8BoxCode.DecodeBlock(Word(r, b), ScaleIndex(r, b), RowScales[r], blk);
            int n = Math.Min(8, Cols - 8 * b);
            blk[..n].CopyTo(row.Slice(8 * b, n));
        }
    }

    /// <summary>Dequantizes rows [r0, r1) into <paramref name="dst"/> ([r1 − r0][cols]) with the chosen kernel.</summary>
    public void DequantizeRows(int r0, int r1, Span<float> dst, KernelIsa isa)
    {
        if (r0 < 0 || r1 > Rows || r0 > r1) throw new ArgumentOutOfRangeException(nameof(r0), $"Row range [{r0}, {r1}) is outside [0, {Rows}).");
        KernelSupport.Require(isa);
        E8Kernels.Decode(isa, this, r0, r1, dst);
    }

    /// <summary>y = Ŵx for one activation vector (x: cols values, y: rows values), fp32 activations, best kernel, all cores.</summary>
    public void Multiply(ReadOnlySpan<float> x, Span<float> y) => Multiply(x, y, 1, ActivationMode.Float32, KernelSupport.Best);

    /// <summary>
    /// Y = Ŵ·X for a small batch: x is [batch][cols] row-major (one activation vector per row),
    /// y is [batch][rows]. Codes are decoded once per block and applied to every vector of the batch
    /// (batches above 16 run in slices of 16).
    /// </summary>
    /// <param name="x">Activations [batch][cols].</param>
    /// <param name="y">Outputs [batch][rows].</param>
    /// <param name="batch">Number of activation vectors.</param>
    /// <param name="mode">fp32 activations (exact) or quantized activations (W4A8, W4A4).</param>
    /// <param name="isa">Kernel level (default: the best supported).</param>
    /// <param name="threads">Threads (0: all cores; 1: the calling thread only).</param>
    public void Multiply(ReadOnlySpan<float> x, Span<float> y, int batch, ActivationMode mode = ActivationMode.Float32, KernelIsa? isa = null, int threads = 0)
        => E8Kernels.Multiply(x, y, batch, Rows, Cols, PaddedCols, mode, isa, threads, (k, a, r0, r1, g0, g1, yv) => E8Kernels.Gemv(k, this, a, r0, r1, g0, g1, yv));
}
