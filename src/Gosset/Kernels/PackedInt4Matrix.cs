using Gosset.Baselines;

namespace Gosset.Kernels;

/// <summary>
/// The INT4 baseline of the kernel comparisons: the one INT quantizer (<see cref="IntQuantizer"/>: groups of 32 entries
/// along the input dimension, absmax, fp16 step d ≥ absmax/7, mid-tread levels q ∈ [−7, 7]), 4.5 bits per weight, multiplied
/// on the E8 kernels' variants (<see cref="E8Kernel"/>: same widths, activation layouts and threading), so that speed and
/// quality comparisons are like for like. An INT4 block is an E8 block with parity 0 and the nesting ratio 16: its doubled
/// value is 2u − 16 for the stored nibble u = q + 8, and its half block scale is d/2.
/// </summary>
/// <remarks>
/// In-memory layout: rows of Groups records of 128 bytes (256 entries; block B's 8 nibbles are dword B, entry 2j in the low
/// nibble of byte j, 2j + 1 in its high nibble: the E8 kernels' 4-bit digit layout), padding nibbles 8 (value 0); and per
/// row Groups·8 fp16 steps, the steps s and s + 4 of a group in the two halves of dword s (s &lt; 4), so that one 32-bit
/// permute and one uniform shift give every lane of a chunk its block's step.
/// </remarks>
public sealed class PackedInt4Matrix : PackedMatrix
{
    /// <summary>Entries per scale group.</summary>
    public const int GroupSize = 32;
    /// <summary>Entries per kernel group (a record).</summary>
    public const int GroupLength = 256;
    private const int RecordBytes = GroupLength / 2;
    private const int StepsPerGroup = GroupLength / GroupSize;

    internal readonly byte[] Nibbles;  // [rows][Groups·128] + slack (a chunk load may reach past the last record)
    internal readonly ushort[] Steps;  // [rows][Groups·8] fp16 bits, kernel order + slack

    /// <summary>Output dimension.</summary>
    public override int Rows { get; }
    /// <summary>Input dimension.</summary>
    public override int Cols { get; }
    /// <summary>Kernel groups of 256 columns per row.</summary>
    public int Groups { get; }
    /// <summary>Columns as the kernels see them: Groups·256.</summary>
    public int PaddedCols => Groups * GroupLength;
    /// <summary>Columns stored per row: padded to whole groups of 32.</summary>
    public int StoredCols { get; }

    /// <summary>Exact stored bits: nibbles and fp16 group steps, padding to whole groups of 32 included.</summary>
    public override long StoredBits => (long)Rows * StoredCols * 4 + (long)Rows * (StoredCols / GroupSize) * 16;

    /// <summary>Stored bits per weight.</summary>
    public double BitsPerWeight => (double)StoredBits / ((double)Rows * Cols);

    /// <summary>The one INT quantizer (<see cref="IntQuantizer"/>) in this format's setting: 4 bits, groups of 32, absmax, mid-tread levels −7 … 7.</summary>
    internal static readonly IntQuantizer Int4 = new(4, GroupSize, IntClipping.AbsMax, IntLevels.MidTread);

    private PackedInt4Matrix(int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        Rows = rows; Cols = cols;
        Groups = (cols + GroupLength - 1) / GroupLength;
        StoredCols = (cols + GroupSize - 1) / GroupSize * GroupSize;
        long n = (long)rows * Groups * RecordBytes + 64;
        if (n > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(rows), "Matrix too large for one packed array.");
        Nibbles = new byte[n];
        Steps = new ushort[(long)rows * Groups * StepsPerGroup + 32];
    }

    /// <summary>Quantizes a row-major float matrix [rows][cols] on all cores.</summary>
    /// <exception cref="ArgumentException">The weights are too short or not finite.</exception>
    public static PackedInt4Matrix Quantize(ReadOnlySpan<float> weights, int rows, int cols)
    {
        var m = new PackedInt4Matrix(rows, cols);
        if (weights.Length < (long)rows * cols) throw new ArgumentException($"weights holds {weights.Length} values, expected {rows}·{cols}.", nameof(weights));
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(weights[..(rows * cols)])) throw new ArgumentException("weights contain NaN or infinity.", nameof(weights));
        float[] w = weights[..(rows * cols)].ToArray();
        RowParallel.For(rows, 0, (r0, r1) => { for (int r = r0; r < r1; r++) m.EncodeRow(r, w.AsSpan(r * cols, cols)); });
        return m;
    }

    /// <summary>Where step s (a group of 32, s &lt; Groups·8) of row r sits in <see cref="Steps"/>.</summary>
    private long StepSlot(int r, int s) => ((long)r * Groups + (s >> 3)) * StepsPerGroup + 2 * (s & 3) + ((s >> 2) & 1);

    /// <summary>Byte of row r holding entry c (low nibble for even c, high for odd).</summary>
    private long NibbleByte(int r, int c) => ((long)r * Groups + c / GroupLength) * RecordBytes + 4 * ((c % GroupLength) >> 3) + ((c & 7) >> 1);

    private void EncodeRow(int r, ReadOnlySpan<float> row)
    {
        Nibbles.AsSpan((int)((long)r * Groups * RecordBytes), Groups * RecordBytes).Fill(0x88); // padding: value 0
        for (int s = 0; s < StoredCols / GroupSize; s++)
        {
            var x = row.Slice(s * GroupSize, Math.Min(GroupSize, Cols - s * GroupSize));
            Half step = Int4.ChooseStep(x);
            Steps[StepSlot(r, s)] = BitConverter.HalfToUInt16Bits(step);
            float d = (float)step;
            for (int i = 0; i < x.Length; i++)
            {
                // Nibble = code + 1 ∈ [1, 15], so (nibble − 8)·d is the quantizer's level (code − 7)·d.
                int c = s * GroupSize + i, shift = 4 * (c & 1);
                ref byte b = ref Nibbles[NibbleByte(r, c)];
                b = (byte)((b & ~(15 << shift)) | (Int4.Code(x[i], d) + 1) << shift);
            }
        }
    }

    /// <summary>The stored nibble u of entry c of row r (value (u − 8)·step; 8 in the padding).</summary>
    internal int Nibble(int r, int c) => (Nibbles[NibbleByte(r, c)] >> (4 * (c & 1))) & 15;

    /// <summary>Half the step of the group of 32 holding block t of row r (d/2, the kernels' half block scale; exact).</summary>
    internal float HalfStep(int r, int t) => (float)BitConverter.UInt16BitsToHalf(Steps[StepSlot(r, t >> 2)]) * 0.5f;

    /// <summary>Dequantizes row r (cols values).</summary>
    public void DequantizeRow(int r, Span<float> row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(r);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(r, Rows);
        if (row.Length < Cols) throw new ArgumentException($"row holds {row.Length} values, expected {Cols}.", nameof(row));
        for (int c = 0; c < Cols; c++) row[c] = (Nibble(r, c) - 8) * (2f * HalfStep(r, c >> 3));
    }

    /// <inheritdoc/>
    public override ReadOnlySpan<float> Row(int r, Span<float> scratch)
    {
        DequantizeRow(r, scratch);
        return scratch[..Cols];
    }

    /// <summary>Quantizes and dequantizes a vector with this format (its rate is 4 + 16/32 bits per entry plus padding).</summary>
    public static void QuantizeDequantize(ReadOnlySpan<float> x, Span<float> y)
    {
        var m = Quantize(x, 1, x.Length);
        m.DequantizeRow(0, y);
    }

    /// <summary>y = Ŵx, fp32 activations, best kernel variant, all cores.</summary>
    public void Multiply(ReadOnlySpan<float> x, Span<float> y) => Multiply(x, y, 1, ActivationMode.Float32);

    /// <summary>Y = Ŵ·X on the best kernel variant.</summary>
    /// <inheritdoc/>
    public override void Multiply(ReadOnlySpan<float> x, Span<float> y, int batch, ActivationMode activations, int threads)
        => Multiply(x, y, batch, activations, null, threads);

    /// <summary>
    /// Y = Ŵ·X: x is [batch][cols], y is [batch][rows]. The result does not depend on the thread count or the kernel
    /// variant (all are bit-identical with <see cref="E8Kernel.Scalar"/>).
    /// </summary>
    /// <param name="x">Activations [batch][cols].</param>
    /// <param name="y">Outputs [batch][rows].</param>
    /// <param name="batch">Number of vectors.</param>
    /// <param name="mode">fp32 activations (exact), int8 per 8-block (W4A8) or the 4-bit E8 box code (W4A4).</param>
    /// <param name="kernel">Variant (default: <see cref="E8Kernel.Best"/>).</param>
    /// <param name="threads">Threads (0: all cores; 1: the calling thread).</param>
    /// <exception cref="ArgumentException">x or y is too short, or <paramref name="mode"/> is <see cref="ActivationMode.Int8Group"/> (its whole-group integer sums need block scales on the E8 grid).</exception>
    public unsafe void Multiply(ReadOnlySpan<float> x /* [batch][cols] */, Span<float> y /* [batch][rows] */, int batch, ActivationMode mode = ActivationMode.Float32, E8Kernel? kernel = null, int threads = 0)
    {
        CheckLengths(x, y, batch);
        const int q = 16; // the doubled value 2u − 16
        using var a = mode switch
        {
            ActivationMode.Float32 => E8ActivationLayout.Float(x, batch, Cols, Groups, q),
            ActivationMode.Int8 or ActivationMode.E8Box4 => IntLayout(mode == ActivationMode.Int8 ? Int8Activations.Quantize(x, batch, Cols) : PackedE8Matrix.E8BoxActivations(x, batch, Cols), Groups, q),
            _ => throw new ArgumentException($"The INT4 kernels take Float32, Int8 or E8Box4 activations, not {mode}.", nameof(mode)),
        };
        var k = kernel ?? E8Kernel.Best;
        fixed (float* yp = y)
        {
            nint yAddr = (nint)yp; // pinned for the duration of the parallel loop below
            RowParallel.For(Rows, threads, (r0, r1) => k.RunInt4(this, a, r0, r1, (float*)yAddr));
        }
    }

    private static E8ActivationLayout IntLayout(Int8Activations q, int groups, int nesting)
        => E8ActivationLayout.Int(q.Values, q.Scales, q.Batch, q.Blocks, groups, nesting);
}
