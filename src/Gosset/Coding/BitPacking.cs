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
public ref struct BitReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private long _pos;

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
}
