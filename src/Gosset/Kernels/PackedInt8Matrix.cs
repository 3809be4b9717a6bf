using System.Buffers.Binary;
using Gosset.Baselines;

namespace Gosset.Kernels;

/// <summary>
/// An 8-bit weight matrix W [rows = output channels][cols = input dim] for the kernels (the LLM's 8-bit classifier):
/// the one INT quantizer (<see cref="IntQuantizer"/>: 8 bits, groups of 256 entries along the input, absmax, fp16
/// step d ≥ absmax/127, mid-tread levels −127 … 127). Products y = Ŵx run on the E8 kernels' variants with int8
/// activations per 256-group (<see cref="ActivationMode.Int8Group"/>'s quantization): each group is added in int32.
/// </summary>
/// <remarks>
/// <para>In-memory layout: rows of Groups·256 signed bytes (the last group padded with zeros) in the order of the
/// int8-group activations (entry 8b + 2j at 4b + j, entry 8b + 2j + 1 at 128 + 4b + j, b &lt; 32, j &lt; 4), so that
/// the 4-byte lanes of weights and activations line up; plus the steps [rows][groups].</para>
/// <para>Stored form (<see cref="WriteTo"/>, <see cref="StoredBits"/>): the fp16 steps, then cols signed bytes per row
/// in natural order: 8 bits per weight plus 16 per group of 256.</para>
/// </remarks>
public sealed class PackedInt8Matrix : PackedMatrix
{
    /// <summary>Entries per scale group (the activations' group too).</summary>
    public const int GroupLength = 256;

    /// <summary>The quantizer in this format's setting.</summary>
    internal static readonly IntQuantizer Int8 = new(8, GroupLength, IntClipping.AbsMax, IntLevels.MidTread);

    internal readonly sbyte[] Data;   // [rows][Groups·256], activation order
    internal readonly float[] Steps;  // [rows][Groups], fp16 values

    /// <summary>Output dimension.</summary>
    public override int Rows { get; }
    /// <summary>Input dimension.</summary>
    public override int Cols { get; }
    /// <summary>Groups of 256 columns per row.</summary>
    public int Groups { get; }
    /// <summary>Columns as the kernels see them: Groups·256.</summary>
    public int PaddedCols => Groups * GroupLength;

    /// <summary>Exact stored bits: 8 per weight and 16 per group (fp16 step).</summary>
    public override long StoredBits => 8L * Rows * Cols + 16L * Rows * Groups;
    /// <summary>Bytes a product reads from the weights (the padded in-memory rows and the steps).</summary>
    public long BytesRead => Data.LongLength + 4L * Steps.LongLength;

    private PackedInt8Matrix(int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        Rows = rows; Cols = cols;
        Groups = (cols + GroupLength - 1) / GroupLength;
        long n = (long)rows * Groups * GroupLength;
        if (n > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(rows), "Matrix too large for one packed array.");
        Data = new sbyte[n];
        Steps = new float[rows * Groups];
    }

    /// <summary>Position of entry i of a group in the activation order.</summary>
    internal static int Slot(int i) => (i & 1) == 0 ? 4 * (i >> 3) + ((i & 7) >> 1) : 128 + 4 * (i >> 3) + ((i & 7) >> 1);

    /// <summary>An empty matrix whose rows are then set with <see cref="EncodeRow"/>.</summary>
    public static PackedInt8Matrix Create(int rows, int cols) => new(rows, cols);

    /// <summary>Quantizes a row-major float matrix [rows][cols] on all cores.</summary>
    /// <exception cref="ArgumentException">The weights are too short or not finite.</exception>
    public static PackedInt8Matrix Quantize(ReadOnlySpan<float> weights, int rows, int cols)
    {
        var m = new PackedInt8Matrix(rows, cols);
        if (weights.Length < (long)rows * cols) throw new ArgumentException($"weights holds {weights.Length} values, expected {rows}·{cols}.", nameof(weights));
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(weights[..(rows * cols)])) throw new ArgumentException("weights contain NaN or infinity.", nameof(weights));
        float[] w = weights[..(rows * cols)].ToArray();
        RowParallel.For(rows, 0, (r0, r1) => { for (int r = r0; r < r1; r++) m.EncodeRow(r, w.AsSpan(r * cols, cols)); });
        return m;
    }

    /// <summary>Quantizes row r from <paramref name="row"/> (cols finite values). Rows may be set from several threads.</summary>
    /// <exception cref="ArgumentException">The row is too short or not finite.</exception>
    public void EncodeRow(int r, ReadOnlySpan<float> row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(r);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(r, Rows);
        if (row.Length < Cols) throw new ArgumentException($"row holds {row.Length} values, expected {Cols}.", nameof(row));
        var dst = Data.AsSpan(r * PaddedCols, PaddedCols);
        dst.Clear();
        for (int g = 0; g < Groups; g++)
        {
            var x = row.Slice(g * GroupLength, Math.Min(GroupLength, Cols - g * GroupLength));
            Half h;
            try { h = Int8.ChooseStep(x); }
            catch (GossetException e) { throw new ArgumentException(e.Message, nameof(row)); }
            float d = (float)h;
            Steps[r * Groups + g] = d;
            for (int i = 0; i < x.Length; i++) dst[g * GroupLength + Slot(i)] = (sbyte)(Int8.Code(x[i], d) - 127);
        }
    }

    /// <summary>Weight (r, c) as stored: level·step.</summary>
    internal int Level(int r, int c) => Data[(long)r * PaddedCols + (c / GroupLength) * GroupLength + Slot(c % GroupLength)];

    /// <summary>Dequantizes row r (cols values).</summary>
    public void DequantizeRow(int r, Span<float> row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(r);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(r, Rows);
        if (row.Length < Cols) throw new ArgumentException($"row holds {row.Length} values, expected {Cols}.", nameof(row));
        for (int c = 0; c < Cols; c++) row[c] = Level(r, c) * Steps[r * Groups + c / GroupLength];
    }

    /// <inheritdoc/>
    public override ReadOnlySpan<float> Row(int r, Span<float> scratch)
    {
        DequantizeRow(r, scratch);
        return scratch[..Cols];
    }

    /// <summary>Y = Ŵ·X on the best kernel variant; the caller passes float activations, which the kernel takes to int8 per 256-group.</summary>
    /// <inheritdoc/>
    public override void Multiply(ReadOnlySpan<float> x, Span<float> y, int batch, ActivationMode activations, int threads)
    {
        RequireFloat(activations);
        Multiply(x, y, batch, (E8Kernel?)null, threads);
    }

    /// <summary>
    /// Y = Ŵ·X: x is [batch][cols], y is [batch][rows]; activations int8 with one absmax scale per 256-group.
    /// The result does not depend on the thread count or the kernel variant (all are bit-identical).
    /// </summary>
    /// <param name="x">Activations [batch][cols].</param>
    /// <param name="y">Outputs [batch][rows].</param>
    /// <param name="batch">Number of vectors.</param>
    /// <param name="kernel">Variant (default: <see cref="E8Kernel.Best"/>).</param>
    /// <param name="threads">Threads (0: all cores).</param>
    /// <exception cref="ArgumentException">x or y is too short.</exception>
    public unsafe void Multiply(ReadOnlySpan<float> x /* [batch][cols] */, Span<float> y /* [batch][rows] */, int batch = 1, E8Kernel? kernel = null, int threads = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        if (x.Length < (long)batch * Cols) throw new ArgumentException($"x holds {x.Length} values, expected batch·cols = {batch * Cols}.", nameof(x));
        if (y.Length < (long)batch * Rows) throw new ArgumentException($"y holds {y.Length} values, expected batch·rows = {batch * Rows}.", nameof(y));
        var k = kernel ?? E8Kernel.Best;
        using var a = E8ActivationLayout.Grouped(x, batch, Cols, Groups, 16, GroupedParts.None, k.Lanes);
        fixed (float* yp = y)
        {
            nint yAddr = (nint)yp; // pinned for the duration of the parallel loop below
            RowParallel.For(Rows, threads, (r0, r1) => k.RunInt8(this, a, r0, r1, (float*)yAddr));
        }
    }

    /// <summary>Writes the stored form: the fp16 steps [rows][groups], then cols signed bytes per row in natural order.</summary>
    public void WriteTo(Stream s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var buf = new byte[Math.Max(2 * Groups, Cols)];
        for (int r = 0; r < Rows; r++)
        {
            for (int g = 0; g < Groups; g++) BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(2 * g), BitConverter.HalfToUInt16Bits((Half)Steps[r * Groups + g]));
            s.Write(buf, 0, 2 * Groups);
        }
        for (int r = 0; r < Rows; r++)
        {
            for (int c = 0; c < Cols; c++) buf[c] = (byte)Level(r, c);
            s.Write(buf, 0, Cols);
        }
    }

    /// <summary>Bytes written by <see cref="WriteTo"/>.</summary>
    public long SerializedLength => StoredBits / 8;

    /// <summary>Rebuilds a rows × cols matrix from bytes written by <see cref="WriteTo"/>; the length and every step and level are checked.</summary>
    /// <exception cref="InvalidDataException">The length, a step or a level (−128) is invalid.</exception>
    public static PackedInt8Matrix ReadFrom(ReadOnlySpan<byte> bytes, int rows, int cols)
    {
        if (rows < 1 || cols < 1) throw new InvalidDataException($"Invalid int8 matrix shape {rows}×{cols}.");
        long groups = ((long)cols + GroupLength - 1) / GroupLength;
        long need = 2L * rows * groups + (long)rows * cols;
        if (bytes.Length != need) throw new InvalidDataException($"int8 matrix data holds {bytes.Length} bytes; a {rows}×{cols} matrix needs {need}.");
        var m = new PackedInt8Matrix(rows, cols);
        for (int i = 0; i < m.Steps.Length; i++)
        {
            float d = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]));
            if (!float.IsFinite(d) || d < 0) throw new InvalidDataException("int8 matrix step is not a finite non-negative number.");
            m.Steps[i] = d;
        }
        int o = 2 * m.Steps.Length;
        for (int r = 0; r < rows; r++, o += cols)
        {
            var src = bytes.Slice(o, cols);
            var dst = m.Data.AsSpan(r * m.PaddedCols, m.PaddedCols);
            for (int c = 0; c < cols; c++)
            {
                sbyte v = (sbyte)src[c];
                if (v == sbyte.MinValue) throw new InvalidDataException($"int8 matrix level −128 at row {r}, column {c} (levels are −127 … 127).");
                dst[(c / GroupLength) * GroupLength + Slot(c % GroupLength)] = v;
            }
        }
        return m;
    }
}
