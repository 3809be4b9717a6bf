namespace Gosset.Coding;

/// <summary>
/// Byte-oriented range encoder (32-bit range, carry propagation through a cached byte, as in the
/// LZMA family). Encodes symbols given (cumulative frequency, frequency, total ≤ 2¹⁶); a uniform
/// symbol over q values costs log2 q bits to within ~q·2⁻²⁴ relative, so digits of a Voronoi code
/// and entropy-coded scale indices share one stream at essentially their information content.
/// </summary>
public sealed class RangeEncoder
{
    private const uint Top = 1u << 24;
    private readonly MemoryStream _out = new();
    private ulong _low;
    private uint _range = uint.MaxValue;
    private byte _cache;
    private long _cacheSize = 1;
    private bool _finished;

    /// <summary>Encodes a symbol occupying [cum, cum + freq) of [0, total).</summary>
    public void Encode(uint cum, uint freq, uint total)
    {
        if (_finished) throw new InvalidOperationException("Encoder already finished.");
        if (freq == 0 || cum + freq > total || total > (1u << 16)) throw new ArgumentException("Invalid symbol frequencies.");
        _range /= total;
        _low += (ulong)cum * _range;
        _range *= freq;
        while (_range < Top) { _range <<= 8; ShiftLow(); }
    }

    /// <summary>Encodes a uniform symbol in [0, n), n ≤ 2¹⁶.</summary>
    public void EncodeUniform(uint symbol, uint n) => Encode(symbol, 1, n);

    /// <summary>Flushes the coder and returns the bytes written.</summary>
    public byte[] Finish()
    {
        if (!_finished) { for (int i = 0; i < 5; i++) ShiftLow(); _finished = true; }
        return _out.ToArray();
    }

    private void ShiftLow()
    {
        if ((uint)_low < 0xFF000000u || (_low >> 32) != 0)
        {
            byte carry = (byte)(_low >> 32);
            byte temp = _cache;
            do { _out.WriteByte((byte)(temp + carry)); temp = 0xFF; } while (--_cacheSize != 0);
            _cache = (byte)((uint)_low >> 24);
        }
        _cacheSize++;
        _low = (uint)_low << 8;
    }
}

/// <summary>Decoder for <see cref="RangeEncoder"/> streams. Corrupt input is detected, never trusted.</summary>
public ref struct RangeDecoder
{
    private const uint Top = 1u << 24;
    private readonly ReadOnlySpan<byte> _in;
    private int _pos;
    private uint _code;
    private uint _range;

    /// <summary>Starts decoding a stream.</summary>
    public RangeDecoder(ReadOnlySpan<byte> input)
    {
        _in = input;
        _pos = 0;
        _code = 0;
        _range = uint.MaxValue;
        for (int i = 0; i < 5; i++) _code = (_code << 8) | Next();
    }

    /// <summary>Bytes consumed so far.</summary>
    public readonly int Position => _pos;

    /// <summary>Returns the cumulative-frequency target in [0, total); then call <see cref="Consume"/>.</summary>
    public uint GetTarget(uint total)
    {
        _range /= total;
        uint v = _code / _range;
        if (v >= total) throw new InvalidDataException("Corrupt range-coded stream.");
        return v;
    }

    /// <summary>Removes the symbol [cum, cum + freq) found from <see cref="GetTarget"/>.</summary>
    public void Consume(uint cum, uint freq)
    {
        _code -= cum * _range;
        _range *= freq;
        while (_range < Top) { _code = (_code << 8) | Next(); _range <<= 8; }
    }

    /// <summary>Decodes a uniform symbol in [0, n).</summary>
    public uint DecodeUniform(uint n)
    {
        uint s = GetTarget(n);
        Consume(s, 1);
        return s;
    }

    private uint Next()
    {
        if (_pos >= _in.Length)
        {
            // The encoder flushes 5 bytes, so a well-formed stream never reads past its end by more than 4.
            _pos++;
            if (_pos > _in.Length + 4) throw new InvalidDataException("Range-coded stream is truncated.");
            return 0;
        }
        return _in[_pos++];
    }
}

/// <summary>A static frequency model for a small alphabet, stored with the data.</summary>
public sealed class FrequencyTable
{
    /// <summary>Total of the scaled frequencies.</summary>
    public const int Total = 1 << 12;
    private readonly uint[] _freq, _cum;

    /// <summary>Builds a table from counts; every symbol keeps a frequency ≥ 1 so any input stays encodable.</summary>
    public static FrequencyTable FromCounts(ReadOnlySpan<long> counts)
    {
        int k = counts.Length;
        if (k == 0 || k > Total / 4) throw new ArgumentException("Alphabet size out of range.");
        long sum = 0; foreach (long c in counts) sum += c;
        var f = new uint[k];
        int left = Total - k;
        long acc = 0; int given = 0;
        for (int i = 0; i < k; i++)
        {
            acc += counts[i];
            int target = sum == 0 ? (int)((long)left * (i + 1) / k) : (int)(acc * left / sum);
            f[i] = (uint)(1 + target - given);
            given = target;
        }
        return new FrequencyTable(f);
    }

    /// <summary>Creates a table from stored frequencies (must sum to <see cref="Total"/>, each ≥ 1).</summary>
    public FrequencyTable(uint[] freq)
    {
        long s = 0;
        foreach (uint v in freq) { if (v == 0) throw new InvalidDataException("Zero frequency in table."); s += v; }
        if (s != Total) throw new InvalidDataException($"Frequency table sums to {s}, expected {Total}.");
        _freq = freq;
        _cum = new uint[freq.Length + 1];
        for (int i = 0; i < freq.Length; i++) _cum[i + 1] = _cum[i] + freq[i];
    }

    /// <summary>Frequencies (sum = <see cref="Total"/>).</summary>
    public ReadOnlySpan<uint> Frequencies => _freq;

    /// <summary>Encodes a symbol.</summary>
    public void Encode(RangeEncoder enc, int symbol) => enc.Encode(_cum[symbol], _freq[symbol], Total);

    /// <summary>Decodes a symbol.</summary>
    public int Decode(ref RangeDecoder dec)
    {
        uint t = dec.GetTarget(Total);
        int s = 0;
        while (_cum[s + 1] <= t) s++;
        dec.Consume(_cum[s], _freq[s]);
        return s;
    }
}
