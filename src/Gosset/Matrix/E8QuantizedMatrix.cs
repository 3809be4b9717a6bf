using System.Numerics.Tensors;
using Gosset.Codes;
using Gosset.Coding;
using Gosset.Rotations;
using Gosset.Util;

namespace Gosset.Matrix;

/// <summary>
/// A matrix coded column by column with the E8 Voronoi code: centre (mean kept, fp32), pad to a
/// multiple of 8, rotate, normalise to unit RMS, code every 8-block (digits + scale index), and
/// keep one fp32 gain per column (which restores the norm; see <see cref="GainMode"/>). Codes are stored in one range-coded stream (or fixed-width blocks).
/// </summary>
public sealed class E8QuantizedMatrix : QuantizedMatrix
{
    private readonly float[] _means, _gains;
    private readonly byte[] _payload;
    private readonly uint[]? _freq;

    internal E8QuantizedMatrix(int rows, int cols, int rotatedLength, RotationKind rot, ulong seed, bool centered,
        int q, ScaleSet scales, ScaleSelection selection, IndexCoding coding, bool dither, ulong ditherSeed,
        int codedBlocks, uint[]? freq, float[] means, float[] gains, byte[] payload)
    {
        Rows = rows; Cols = cols; RotatedLength = rotatedLength; RotationKind = rot; RotationSeed = seed; Centered = centered;
        Q = q; Scales = scales; Selection = selection; IndexCoding = coding; Dither = dither; DitherSeed = ditherSeed;
        CodedBlocks = codedBlocks; _freq = freq; _means = means; _gains = gains; _payload = payload;
    }

    /// <summary>Nesting ratio q.</summary>
    public int Q { get; }
    /// <summary>The scale set (stored).</summary>
    public ScaleSet Scales { get; }
    /// <summary>Selection rule used by the encoder (informative).</summary>
    public ScaleSelection Selection { get; }
    /// <summary>Index storage.</summary>
    public IndexCoding IndexCoding { get; }
    /// <summary>Whether a subtractive dither was used.</summary>
    public bool Dither { get; }
    /// <summary>Dither seed.</summary>
    public ulong DitherSeed { get; }
    /// <summary>Number of leading 8-blocks coded per column (time sharing codes fewer than all).</summary>
    public int CodedBlocks { get; }
    /// <summary>Bytes of the code stream.</summary>
    public int PayloadBytes => _payload.Length;
    internal ReadOnlySpan<byte> Payload => _payload;
    internal uint[]? Frequencies => _freq;
    internal ReadOnlySpan<float> Gains => _gains;
    internal ReadOnlySpan<float> Means => _means;

    /// <inheritdoc/>
    public override string Method => "e8";

    /// <inheritdoc/>
    public override string Describe()
        => $"e8 q={Q} k={Scales.Count} scales={Scales} index={IndexCoding.ToString().ToLowerInvariant()} rotation={RotationKind.ToString().ToLowerInvariant()}"
           + (CodedBlocks * 8 < RotatedLength ? $" coded={CodedBlocks * 8}/{RotatedLength}" : "") + (Dither ? " dither" : "");

    /// <inheritdoc/>
    public override float Mean(int j) => Centered ? _means[j] : 0f;

    /// <summary>Stored gain of column j (scales the unit-RMS decoded column back; see <see cref="GainMode"/>).</summary>
    public float Gain(int j) => _gains[j];

    /// <inheritdoc/>
    public override DenseMatrix DecodeRotated()
    {
        int blocks = CodedBlocks;
        var digits = new byte[(long)Cols * blocks * 8];
        var idx = new byte[(long)Cols * blocks];
        DecodeCodes(digits, idx);
        var z = new DenseMatrix(RotatedLength, Cols);
        var vq = new E8VectorQuantizer(new VoronoiCode(Q), Scales, Selection);
        Parallel.For(0, Cols, j =>
        {
            var col = z.Column(j)[..(8 * blocks)];
            var d = digits.AsSpan(j * blocks * 8, blocks * 8);
            var s = idx.AsSpan(j * blocks, blocks);
            if (Dither)
            {
                var u = new float[8 * blocks];
                E8Dither.Fill(DitherSeed, j, blocks, u);
                vq.Dequantize(d, s, col, u);
            }
            else
            {
                // SIMD decode with each block's own scale (bit-exact with VoronoiCode.Decode)
                var betas = Scales.Betas;
                var beta = new float[blocks];
                for (int b = 0; b < blocks; b++)
                {
                    if (s[b] >= betas.Length) throw new InvalidDataException($"Scale index {s[b]} out of range (k = {betas.Length}).");
                    beta[b] = betas[s[b]];
                }
                Kernels.VoronoiBatch.Decode(vq.Code, d, beta, col);
            }
            TensorPrimitives.Multiply(col, _gains[j], col);
        });
        return z;
    }

    /// <summary>Parses the code stream into digits [col][block][8] and indices [col][block].</summary>
    internal void DecodeCodes(Span<byte> digits, Span<byte> idx)
    {
        int k = Scales.Count;
        long nBlocks = (long)Cols * CodedBlocks;
        if (IndexCoding == IndexCoding.Entropy)
        {
            var table = k > 1 ? new FrequencyTable(_freq!) : null;
            var dec = new RangeDecoder(_payload);
            for (long b = 0; b < nBlocks; b++)
            {
                idx[(int)b] = table == null ? (byte)0 : (byte)table.Decode(ref dec);
                for (int i = 0; i < 8; i++) digits[(int)(8 * b + i)] = (byte)dec.DecodeUniform((uint)Q);
            }
        }
        else
        {
            int bits = FixedBlockBits(Q, k);
            var reader = new BitReader(_payload);
            for (long b = 0; b < nBlocks; b++)
            {
                UInt128 v = bits > 64 ? reader.Read(64) | ((UInt128)reader.Read(bits - 64) << 64) : reader.Read(bits);
                for (int i = 0; i < 8; i++) { digits[(int)(8 * b + i)] = (byte)(v % (uint)Q); v /= (uint)Q; }
                if (v >= (uint)k) throw new InvalidDataException("Corrupt fixed-width block (index out of range).");
                idx[(int)b] = (byte)v;
            }
        }
    }

    /// <summary>Bits of one fixed-width block: ⌈log2(k·q⁸)⌉.</summary>
    public static int FixedBlockBits(int q, int k)
    {
        UInt128 total = (UInt128)(uint)k;
        for (int i = 0; i < 8; i++) total *= (uint)q;
        int bits = 0;
        UInt128 cap = 1;
        while (cap < total) { cap <<= 1; bits++; }
        return bits;
    }

    /// <inheritdoc/>
    internal override void WriteBody(BinaryWriter w)
    {
        w.Write((ushort)Q);
        w.Write((byte)Scales.Count);
        foreach (float b in Scales.Betas) w.Write(b);
        w.Write((byte)Selection);
        w.Write((byte)IndexCoding);
        w.Write(Dither);
        if (Dither) w.Write(DitherSeed);
        w.Write(CodedBlocks);
        if (IndexCoding == IndexCoding.Entropy && Scales.Count > 1)
            foreach (uint f in _freq!) w.Write((ushort)f);
        if (Centered) foreach (float m in _means) w.Write(m);
        foreach (float g in _gains) w.Write(g);
        w.Write(_payload.Length);
        w.Write(_payload);
    }

    // Every count is checked against the bytes left before it is allocated (IO.GqFormat.Require).
    internal static E8QuantizedMatrix ReadBody(BinaryReader r, int rows, int cols, int rotatedLength, RotationKind rot, ulong seed, bool centered)
    {
        if (rotatedLength != (rows + 7L) / 8 * 8) throw new InvalidDataException($"rotated length {rotatedLength} is not {rows} padded to whole 8-blocks");
        int q = r.ReadUInt16();
        if (q < VoronoiCode.MinQ || q > VoronoiCode.MaxQ) throw new InvalidDataException($"Invalid q = {q}.");
        int k = r.ReadByte();
        if (!ScaleSet.SupportedCounts.Contains(k)) throw new InvalidDataException($"Invalid k = {k}.");
        IO.GqFormat.Require(r, 4L * k, "scale set");
        var betas = new float[k];
        for (int i = 0; i < k; i++) betas[i] = r.ReadSingle();
        ScaleSet scales;
        try { scales = new ScaleSet(betas); } catch (ArgumentException e) { throw new InvalidDataException(e.Message); }
        byte selCode = r.ReadByte();
        if (!Enum.IsDefined((ScaleSelection)selCode)) throw new InvalidDataException($"Unknown scale selection {selCode}.");
        byte codingCode = r.ReadByte();
        if (!Enum.IsDefined((IndexCoding)codingCode)) throw new InvalidDataException($"Unknown index coding {codingCode}.");
        var sel = (ScaleSelection)selCode;
        var coding = (IndexCoding)codingCode;
        bool dither = IO.GqFormat.ReadFlag(r, "dither");
        ulong ditherSeed = dither ? r.ReadUInt64() : 0;
        int codedBlocks = r.ReadInt32();
        if (codedBlocks < 0 || 8L * codedBlocks > rotatedLength) throw new InvalidDataException($"Invalid coded block count {codedBlocks}.");
        uint[]? freq = null;
        if (coding == IndexCoding.Entropy && k > 1)
        {
            IO.GqFormat.Require(r, 2L * k, "frequency table");
            freq = new uint[k];
            for (int i = 0; i < k; i++) freq[i] = r.ReadUInt16();
            _ = new FrequencyTable(freq); // validates
        }
        IO.GqFormat.Require(r, 4L * cols * (centered ? 2 : 1), "means and gains");
        var means = new float[centered ? cols : 0];
        for (int i = 0; i < means.Length; i++) means[i] = r.ReadSingle();
        var gains = new float[cols];
        for (int i = 0; i < cols; i++) gains[i] = r.ReadSingle();
        foreach (float v in means) if (!float.IsFinite(v)) throw new InvalidDataException("A column mean is not finite.");
        foreach (float v in gains) if (!float.IsFinite(v)) throw new InvalidDataException("A column gain is not finite.");
        int len = r.ReadInt32();
        IO.GqFormat.Require(r, len, "code stream");
        long nBlocks = (long)cols * codedBlocks;
        if (coding == IndexCoding.Fixed)
        {
            long need = (nBlocks * FixedBlockBits(q, k) + 7) / 8;
            if (len != need) throw new InvalidDataException($"Fixed-width code stream holds {len} bytes; {nBlocks} blocks need {need}.");
        }
        else if (nBlocks > 2L * (len + 16)) // 8 digits cost ≥ 8 bits: a block takes at least a byte of stream
            throw new InvalidDataException($"Range-coded stream of {len} bytes cannot hold {nBlocks} blocks.");
        byte[] payload = r.ReadBytes(len);
        if (payload.Length != len) throw new EndOfStreamException();
        return new E8QuantizedMatrix(rows, cols, rotatedLength, rot, seed, centered, q, scales, sel, coding, dither, ditherSeed,
            codedBlocks, freq, means, gains, payload);
    }
}
