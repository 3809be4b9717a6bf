namespace Gosset.Coding;

/// <summary>Appends little-endian bit fields of up to 64 bits to a byte buffer.</summary>
public sealed class BitWriter
{
    private readonly List<byte> _bytes = new();
    private ulong _acc;
    private int _n;

    /// <summary>Bits written so far.</summary>
    public long BitCount { get; private set; }

    /// <summary>Writes the low <paramref name="bits"/> bits of <paramref name="value"/>.</summary>
    public void Write(ulong value, int bits)
    {
        if (bits < 0 || bits > 64) throw new ArgumentOutOfRangeException(nameof(bits));
        BitCount += bits;
        while (bits > 0)
        {
            int take = Math.Min(bits, 64 - _n);
            ulong part = take == 64 ? value : value & ((1UL << take) - 1);
            _acc |= part << _n;
            _n += take; bits -= take;
            value = take == 64 ? 0 : value >> take;
            while (_n >= 8) { _bytes.Add((byte)_acc); _acc >>= 8; _n -= 8; }
        }
    }

    /// <summary>Returns the bytes (the last one zero-padded).</summary>
    public byte[] ToArray()
    {
        var r = new List<byte>(_bytes);
        if (_n > 0) r.Add((byte)_acc);
        return r.ToArray();
    }
}

/// <summary>Reads bit fields written by <see cref="BitWriter"/>.</summary>
public ref struct BitReader
{
    private readonly ReadOnlySpan<byte> _data;
    private long _pos;

    /// <summary>A reader at the first bit of <paramref name="data"/>.</summary>
    public BitReader(ReadOnlySpan<byte> data) => _data = data;

    /// <summary>A reader at bit <paramref name="startBit"/> of <paramref name="data"/> (fixed-rate records read from the middle).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="startBit"/> is negative or past the end.</exception>
    public BitReader(ReadOnlySpan<byte> data, long startBit)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(startBit);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(startBit, (long)data.Length * 8);
        _data = data;
        _pos = startBit;
    }

    /// <summary>Bits consumed so far.</summary>
    public readonly long Position => _pos;

    /// <summary>Reads <paramref name="bits"/> bits (≤ 64).</summary>
    public ulong Read(int bits)
    {
        if (_pos + bits > (long)_data.Length * 8) throw new InvalidDataException("Bit stream is truncated.");
        ulong v = 0;
        for (int i = 0; i < bits;)
        {
            int byteIdx = (int)(_pos >> 3), off = (int)(_pos & 7);
            int take = Math.Min(8 - off, bits - i);
            ulong chunk = (ulong)((_data[byteIdx] >> off) & ((1 << take) - 1));
            v |= chunk << i;
            i += take; _pos += take;
        }
        return v;
    }

    /// <summary>The next <paramref name="bits"/> bits (≤ 56) without consuming them; bits past the end read as 0.</summary>
    public readonly ulong Peek(int bits)
    {
        long byteIdx = _pos >> 3;
        int off = (int)(_pos & 7);
        ulong w;
        if (byteIdx + 8 <= _data.Length) w = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(_data.Slice((int)byteIdx, 8));
        else
        {
            w = 0;
            for (int i = 0; byteIdx + i < _data.Length; i++) w |= (ulong)_data[(int)byteIdx + i] << (8 * i);
        }
        return (w >> off) & ((1UL << bits) - 1);
    }

    /// <summary>Consumes <paramref name="bits"/> bits.</summary>
    /// <exception cref="InvalidDataException">The stream has fewer bits left.</exception>
    public void Skip(long bits)
    {
        if (bits < 0 || _pos + bits > (long)_data.Length * 8) throw new InvalidDataException("Bit stream is truncated.");
        _pos += bits;
    }

    /// <summary>Reads dst.Length fields of <paramref name="bits"/> bits each (1..8), eight bytes of the stream at a time.</summary>
    /// <exception cref="InvalidDataException">The stream has fewer bits left.</exception>
    public void ReadBytes(Span<byte> dst, int bits)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bits, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bits, 8);
        if (_pos + (long)dst.Length * bits > (long)_data.Length * 8) throw new InvalidDataException("Bit stream is truncated.");
        ulong mask = (1UL << bits) - 1;
        int i = 0;
        if (bits == 4)
        {
            // Eight 4-bit fields per step: 32 bits spread to one nibble per byte (low nibble first, as Read gives them).
            for (; i + 8 <= dst.Length && (_pos >> 3) + 8 <= _data.Length; i += 8, _pos += 32)
            {
                ulong t = (uint)(System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(_data.Slice((int)(_pos >> 3), 8)) >> (int)(_pos & 7));
                t = (t | t << 16) & 0x0000FFFF0000FFFFUL;
                t = (t | t << 8) & 0x00FF00FF00FF00FFUL;
                t = (t | t << 4) & 0x0F0F0F0F0F0F0F0FUL;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(System.Runtime.InteropServices.MemoryMarshal.AsBytes(dst.Slice(i, 8)), t);
            }
        }
        while (i < dst.Length)
        {
            long byteIdx = _pos >> 3;
            if (byteIdx + 8 > _data.Length) { for (; i < dst.Length; i++) dst[i] = (byte)Read(bits); return; }
            int off = (int)(_pos & 7);
            ulong w = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(_data.Slice((int)byteIdx, 8)) >> off;
            int take = Math.Min((64 - off) / bits, dst.Length - i);
            for (int j = 0; j < take; j++) { dst[i + j] = (byte)(w & mask); w >>= bits; }
            i += take;
            _pos += (long)take * bits;
        }
    }
}
