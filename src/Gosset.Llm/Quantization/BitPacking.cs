namespace Gosset.Llm.Quantization;

/// <summary>Appends values of any width (≤ 64 bits) to a little-endian bit stream.</summary>
internal sealed class BitWriter
{
    private readonly List<byte> _bytes = new();
    private ulong _acc;
    private int _n;

    public long BitCount { get; private set; }

    public void Write(ulong value, int bits)
    {
        BitCount += bits;
        while (bits > 0)
        {
            int take = Math.Min(bits, 64 - _n);
            ulong part = take == 64 ? value : value & ((1UL << take) - 1);
            _acc |= part << _n;
            _n += take;
            bits -= take;
            value = take == 64 ? 0 : value >> take;
            while (_n >= 8) { _bytes.Add((byte)_acc); _acc >>= 8; _n -= 8; }
        }
    }

    public byte[] ToArray()
    {
        var r = new List<byte>(_bytes);
        if (_n > 0) r.Add((byte)_acc);
        return r.ToArray();
    }
}

/// <summary>Reads values written by <see cref="BitWriter"/>.</summary>
internal sealed class BitReader(byte[] data)
{
    private long _pos;

    public ulong Read(int bits)
    {
        ulong v = 0;
        for (int i = 0; i < bits; i++, _pos++)
        {
            long byteIndex = _pos >> 3;
            if (byteIndex >= data.Length) throw new InvalidDataException("bit stream ended early (truncated file)");
            v |= (ulong)((data[byteIndex] >> (int)(_pos & 7)) & 1) << i;
        }
        return v;
    }
}
