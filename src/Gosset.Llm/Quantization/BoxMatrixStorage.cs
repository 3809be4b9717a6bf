using System.Reflection;
using System.Runtime.InteropServices;
using Gosset.Kernels;

namespace Gosset.Llm.Quantization;

/// <summary>
/// Serializes a <see cref="PackedE8Matrix"/> as its packed arrays, as they are in memory: the nibbles, the 2-bit
/// scale-index words (little-endian uint32) and the fp32 row scales, in that order. Nothing is re-encoded, so a
/// loaded matrix multiplies bit-identically.
/// </summary>
/// <remarks>
/// The kernels expose no public constructor from stored arrays yet; this reads their internal arrays
/// (InternalsVisibleTo) and creates an empty matrix of the right shape through its private constructor. Both
/// points are checked at run time, so a change of the kernel layout fails loudly (a length mismatch is a
/// corrupt-file error) rather than silently.
/// </remarks>
internal static class BoxMatrixStorage
{
    private static readonly ConstructorInfo? Empty = typeof(PackedE8Matrix).GetConstructor(
        BindingFlags.NonPublic | BindingFlags.Instance, null, [typeof(int), typeof(int)], null);

    /// <summary>Bytes <see cref="Write"/> produces for this matrix.</summary>
    public static long ByteLength(PackedE8Matrix m) => m.Nibbles.LongLength + 4L * m.ScaleWords.LongLength + 4L * m.RowScales.LongLength;

    /// <summary>Appends the packed arrays to <paramref name="s"/>.</summary>
    public static void Write(PackedE8Matrix m, Stream s)
    {
        s.Write(m.Nibbles);
        s.Write(MemoryMarshal.AsBytes(m.ScaleWords.AsSpan()));
        s.Write(MemoryMarshal.AsBytes(m.RowScales.AsSpan()));
    }

    /// <summary>Rebuilds a rows × cols matrix from bytes written by <see cref="Write"/>.</summary>
    /// <exception cref="InvalidDataException">The byte count does not match the kernels' layout for this shape.</exception>
    public static PackedE8Matrix Read(ReadOnlySpan<byte> bytes, int rows, int cols)
    {
        var m = (PackedE8Matrix)(Empty ?? throw new InvalidOperationException("PackedE8Matrix has no (rows, cols) constructor; update BoxMatrixStorage"))
            .Invoke([rows, cols]);
        long need = ByteLength(m);
        if (bytes.Length != need) throw new InvalidDataException($"e8-box section holds {bytes.Length} bytes, the kernels' layout for {rows}×{cols} needs {need}");
        int n = m.Nibbles.Length, w = 4 * m.ScaleWords.Length;
        bytes[..n].CopyTo(m.Nibbles);
        bytes.Slice(n, w).CopyTo(MemoryMarshal.AsBytes(m.ScaleWords.AsSpan()));
        bytes[(n + w)..].CopyTo(MemoryMarshal.AsBytes(m.RowScales.AsSpan()));
        foreach (float v in m.RowScales)
            if (!float.IsFinite(v) || v < 0) throw new InvalidDataException("e8-box row scale is not a finite non-negative number");
        return m;
    }
}
