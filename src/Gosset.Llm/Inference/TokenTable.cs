using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Gosset.Kernels;

namespace Gosset.Llm.Inference;

/// <summary>Storage precision of the embedding table and classifier: float32 or the 16-bit format of the source.</summary>
public enum TableType
{
    /// <summary>IEEE binary32.</summary>
    F32,
    /// <summary>IEEE binary16.</summary>
    F16,
    /// <summary>bfloat16 (the top half of binary32).</summary>
    BF16,
}

/// <summary>Converts 16-bit floats to float32; the vector path is exact (bf16 widening is a shift, f16 uses the BCL conversion).</summary>
internal static class Half16
{
    public static void ToSingle(ReadOnlySpan<ushort> src, Span<float> dst, TableType type)
    {
        if (type == TableType.F16)
        {
            TensorPrimitives.ConvertToSingle(System.Runtime.InteropServices.MemoryMarshal.Cast<ushort, Half>(src), dst[..src.Length]);
            return;
        }
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 16 <= src.Length; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Create(src.Slice(i, 16)));
                Vector256.ShiftLeft(lo, 16).AsSingle().CopyTo(dst.Slice(i, 8));
                Vector256.ShiftLeft(hi, 16).AsSingle().CopyTo(dst.Slice(i + 8, 8));
            }
        for (; i < src.Length; i++) dst[i] = BitConverter.UInt32BitsToSingle((uint)src[i] << 16);
    }
}

/// <summary>
/// The token embedding table [vocab][dim], in float32, kept in the source's 16-bit format, or (a tied head with the
/// 8-bit classifier) the classifier's <see cref="PackedInt8Matrix"/> itself, so the one table serves both.
/// </summary>
internal sealed class TokenTable
{
    /// <summary>A table read from the 8-bit classifier of a tied head (one copy for lookups and products).</summary>
    public TokenTable(PackedInt8Matrix shared) { Int8 = shared; Rows = shared.Rows; Cols = shared.Cols; Type = TableType.F32; }

    public TokenTable(float[] data, int rows, int cols) { F32 = data; Rows = rows; Cols = cols; Type = TableType.F32; Check(data.LongLength); }

    public TokenTable(ushort[] data, TableType type, int rows, int cols)
    {
        if (type == TableType.F32) throw new ArgumentException("16-bit data needs F16 or BF16", nameof(type));
        Raw16 = data; Type = type; Rows = rows; Cols = cols;
        Check(data.LongLength);
    }

    private void Check(long n)
    {
        if (n != (long)Rows * Cols) throw new ArgumentException($"table of {n} entries is not {Rows}×{Cols}");
    }

    public float[]? F32 { get; }
    public ushort[]? Raw16 { get; }
    /// <summary>The tied head's 8-bit classifier when the table is shared with it (<see cref="Type"/> is then meaningless).</summary>
    public PackedInt8Matrix? Int8 { get; }
    public TableType Type { get; }
    public int Rows { get; }
    public int Cols { get; }
    /// <summary>Stored bits.</summary>
    public long Bits => Int8 is not null ? Int8.StoredBits : (Type == TableType.F32 ? 32L : 16L) * Rows * Cols;

    /// <summary>Row <paramref name="id"/> as float32.</summary>
    public void Row(int id, Span<float> dst)
    {
        // Rows × Cols ≤ Array.MaxLength (LlamaConfig.Validate), so id·Cols fits an int.
        if (F32 is not null) F32.AsSpan(id * Cols, Cols).CopyTo(dst);
        else if (Int8 is not null) Int8.DequantizeRow(id, dst);
        else Half16.ToSingle(Raw16.AsSpan(id * Cols, Cols), dst, Type);
    }
}

/// <summary>A matrix [out][in] of 16-bit floats (a classifier kept at source precision); rows are widened on the fly.</summary>
internal sealed class HalfWeights(ushort[] data, TableType type, int rows, int cols) : PackedMatrix
{
    public ushort[] Data { get; } = data;
    public TableType Type { get; } = type;
    public override int Rows { get; } = rows;
    public override int Cols { get; } = cols;
    public override long StoredBits => 16L * Rows * Cols;

    public override ReadOnlySpan<float> Row(int r, Span<float> scratch)
    {
        Half16.ToSingle(Data.AsSpan(r * Cols, Cols), scratch, Type);
        return scratch[..Cols];
    }

    /// <summary>y[t, r] = row r · x[t, :] for every token, on the fused 16-bit kernel (<see cref="Half16Gemv"/>).</summary>
    public override void Multiply(ReadOnlySpan<float> x, Span<float> y, int batch, ActivationMode activations, int threads)
    {
        RequireFloat(activations);
        CheckLengths(x, y, batch);
        Half16Gemv.Multiply(Data, Type, Rows, Cols, x[..(batch * Cols)], y[..(batch * Rows)], batch, threads);
    }
}
