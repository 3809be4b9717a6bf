using Gosset.Baselines;
using System.Buffers.Binary;

namespace Gosset.Kernels;

/// <summary>
/// The INT4 baseline: the one INT quantizer (<see cref="IntQuantizer"/>: groups of 32 entries along the input
/// dimension, absmax, fp16 step d ≥ absmax/7, mid-tread values q ∈ [−7, 7] stored as q + 8),
/// 4.5 bits per weight, in the same nibble layout, padding, threading and activation modes as
/// <see cref="PackedE8Matrix"/>, so that speed and quality comparisons are like for like.
/// </summary>
public sealed class PackedInt4Matrix
{
    /// <summary>Entries per scale group.</summary>
    public const int GroupSize = 32;

    internal readonly byte[] Nibbles;   // [rows][Cp/2], byte j: entries 2j (low), 2j+1 (high)
    internal readonly ushort[] Scales;  // [rows][Cp/32] fp16 bits

    /// <summary>Output dimension.</summary>
    public int Rows { get; }
    /// <summary>Input dimension.</summary>
    public int Cols { get; }
    /// <summary>Columns as the kernels see them (activations padded to a multiple of 128).</summary>
    public int PaddedCols { get; }
    /// <summary>Columns stored per row: padded to whole groups of 32.</summary>
    public int StoredCols { get; }
    internal int RowBytes => StoredCols / 2;
    internal int GroupsPerRow => StoredCols / GroupSize;

    /// <summary>Exact stored bits: nibbles and fp16 group scales, padding to whole groups included.</summary>
    public long StoredBits => (long)Rows * StoredCols * 4 + (long)Rows * GroupsPerRow * 16;

    /// <summary>Stored bits per weight.</summary>
    public double BitsPerWeight => (double)StoredBits / ((double)Rows * Cols);

    private PackedInt4Matrix(int rows, int cols)
    {
        Rows = rows; Cols = cols;
        PaddedCols = (cols + 127) / 128 * 128;
        StoredCols = (cols + GroupSize - 1) / GroupSize * GroupSize;
        // Tightly packed rows plus slack: kernels read whole 128-column groups (zero activations beyond cols).
        Nibbles = new byte[(long)rows * RowBytes + 64];
        Scales = new ushort[rows * GroupsPerRow + 4];
    }

    /// <summary>Quantizes a row-major float matrix [rows][cols].</summary>
    public static PackedInt4Matrix Quantize(ReadOnlySpan<float> weights, int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        if (weights.Length < (long)rows * cols) throw new ArgumentException($"weights holds {weights.Length} values, expected {rows}·{cols}.", nameof(weights));
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(weights[..(rows * cols)])) throw new ArgumentException("weights contain NaN or infinity.", nameof(weights));
        var m = new PackedInt4Matrix(rows, cols);
        float[] w = weights[..(rows * cols)].ToArray();
        RowParallel.For(rows, 0, (r0, r1) =>
        {
            var row = new float[m.PaddedCols];
            for (int r = r0; r < r1; r++)
            {
                w.AsSpan(r * cols, cols).CopyTo(row);
                m.EncodeRow(r, row);
            }
        });
        return m;
    }

    /// <summary>fp16 bits to float (the quantizer's steps: finite, non-negative).</summary>
    internal static float ScaleValue(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>The one INT quantizer (<see cref="IntQuantizer"/>) in this format's setting: 4 bits, groups of 32, absmax, mid-tread levels −7 … 7.</summary>
    internal static readonly IntQuantizer Int4 = new(4, GroupSize, IntClipping.AbsMax, IntLevels.MidTread);

    private void EncodeRow(int r, float[] row)
    {
        var nib = Nibbles.AsSpan(r * RowBytes, RowBytes);
        for (int g = 0; g < GroupsPerRow; g++)
        {
            var x = row.AsSpan(g * GroupSize, GroupSize);
            Half step = Int4.ChooseStep(x);
            Scales[r * GroupsPerRow + g] = BitConverter.HalfToUInt16Bits(step);
            float d = (float)step;
            // Nibble = code + 1 ∈ [1, 15], so the kernels' (nibble − 8)·d is the quantizer's level (code − 7)·d.
            for (int i = 0; i < GroupSize; i += 2)
                nib[(g * GroupSize + i) / 2] = (byte)(Int4.Code(x[i], d) + 1 | (Int4.Code(x[i + 1], d) + 1) << 4);
        }
    }

    /// <summary>Dequantizes row r (cols values).</summary>
    public void DequantizeRow(int r, Span<float> row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(r);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(r, Rows);
        if (row.Length < Cols) throw new ArgumentException($"row holds {row.Length} values, expected {Cols}.", nameof(row));
        var nib = Nibbles.AsSpan(r * RowBytes, RowBytes);
        for (int i = 0; i < Cols; i++)
        {
            int u = (nib[i >> 1] >> (4 * (i & 1))) & 15;
            row[i] = (u - 8) * ScaleValue(Scales[r * GroupsPerRow + i / GroupSize]);
        }
    }

    /// <summary>Quantizes and dequantizes a vector with this format (its rate is 4 + 16/32 bits per entry plus padding).</summary>
    public static void QuantizeDequantize(ReadOnlySpan<float> x, Span<float> y)
    {
        var m = Quantize(x, 1, x.Length);
        m.DequantizeRow(0, y);
    }

    /// <summary>y = Ŵx, fp32 activations, best kernel, all cores.</summary>
    public void Multiply(ReadOnlySpan<float> x, Span<float> y) => Multiply(x, y, 1, ActivationMode.Float32, KernelSupport.Best);

    /// <summary>Small-batch product: x [batch][cols], y [batch][rows].</summary>
    /// <exception cref="ArgumentException"><paramref name="mode"/> is <see cref="ActivationMode.Int8Group"/> (an E8-kernel mode).</exception>
    public void Multiply(ReadOnlySpan<float> x, Span<float> y, int batch, ActivationMode mode = ActivationMode.Float32, KernelIsa? isa = null, int threads = 0)
        => E8Kernels.Multiply(x, y, batch, Rows, Cols, PaddedCols, mode is ActivationMode.Float32 or ActivationMode.Int8 or ActivationMode.E8Box4 ? mode
            : throw new ArgumentException($"The INT4 kernels take Float32, Int8 or E8Box4 activations, not {mode}.", nameof(mode)),
            isa, threads, (k, a, r0, r1, g0, g1, yv) => Int4Kernels.Gemv(k, this, a, r0, r1, g0, g1, yv));
}
