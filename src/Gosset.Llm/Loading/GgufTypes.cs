using System.Buffers.Binary;

namespace Gosset.Llm.Loading;

/// <summary>ggml tensor types as numbered in GGUF files (the values are part of the file format).</summary>
public enum GgufTensorType
{
    /// <summary>IEEE binary32.</summary>
    F32 = 0,
    /// <summary>IEEE binary16.</summary>
    F16 = 1,
    /// <summary>32-blocks: fp16 scale, 4-bit unsigned values minus 8.</summary>
    Q4_0 = 2,
    /// <summary>32-blocks: fp16 scale and minimum, 4-bit values.</summary>
    Q4_1 = 3,
    /// <summary>32-blocks: fp16 scale, 5-bit values minus 16.</summary>
    Q5_0 = 6,
    /// <summary>32-blocks: fp16 scale and minimum, 5-bit values.</summary>
    Q5_1 = 7,
    /// <summary>32-blocks: fp16 scale, int8 values.</summary>
    Q8_0 = 8,
    /// <summary>256-superblocks of 2-bit values, 4-bit sub-block scales and minimums.</summary>
    Q2_K = 10,
    /// <summary>256-superblocks of 3-bit values, 6-bit sub-block scales.</summary>
    Q3_K = 11,
    /// <summary>256-superblocks of 4-bit values, 6-bit sub-block scales and minimums.</summary>
    Q4_K = 12,
    /// <summary>256-superblocks of 5-bit values, 6-bit sub-block scales and minimums.</summary>
    Q5_K = 13,
    /// <summary>256-superblocks of 6-bit values, int8 sub-block scales.</summary>
    Q6_K = 14,
    /// <summary>32-blocks: fp16 scale, 4-bit indices into a fixed non-uniform grid.</summary>
    IQ4_NL = 20,
    /// <summary>256-superblocks of IQ4_NL-grid indices with 6-bit sub-block scales.</summary>
    IQ4_XS = 23,
    /// <summary>bfloat16.</summary>
    BF16 = 30,
}

/// <summary>Block sizes and dequantization of the ggml tensor types Gosset reads (ggml's published block layouts).</summary>
public static class GgufTypes
{
    private const int QK = 32, QKK = 256;

    // The IQ4_NL / IQ4_XS grid (ggml's kvalues_iq4nl).
    private static ReadOnlySpan<sbyte> Iq4Grid => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    /// <summary>True when <paramref name="type"/> is a value of <see cref="GgufTensorType"/> that Gosset can read.</summary>
    public static bool IsSupported(uint type) => Enum.IsDefined(typeof(GgufTensorType), (int)type) && type <= 30;

    /// <summary>Elements per block (1 for the float types).</summary>
    public static int BlockElements(GgufTensorType t) => t switch
    {
        GgufTensorType.F32 or GgufTensorType.F16 or GgufTensorType.BF16 => 1,
        GgufTensorType.Q4_0 or GgufTensorType.Q4_1 or GgufTensorType.Q5_0 or GgufTensorType.Q5_1 or GgufTensorType.Q8_0 or GgufTensorType.IQ4_NL => QK,
        _ => QKK,
    };

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(GgufTensorType t) => t switch
    {
        GgufTensorType.F32 => 4,
        GgufTensorType.F16 or GgufTensorType.BF16 => 2,
        GgufTensorType.Q4_0 => 18,
        GgufTensorType.Q4_1 => 20,
        GgufTensorType.Q5_0 => 22,
        GgufTensorType.Q5_1 => 24,
        GgufTensorType.Q8_0 => 34,
        GgufTensorType.Q2_K => 84,
        GgufTensorType.Q3_K => 110,
        GgufTensorType.Q4_K => 144,
        GgufTensorType.Q5_K => 176,
        GgufTensorType.Q6_K => 210,
        GgufTensorType.IQ4_NL => 18,
        GgufTensorType.IQ4_XS => 136,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>Stored bits per weight of a type (block side information included).</summary>
    public static double BitsPerWeight(GgufTensorType t) => 8.0 * BlockBytes(t) / BlockElements(t);

    private static float H(ReadOnlySpan<byte> b, int at) => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(b[at..]));

    /// <summary>
    /// Dequantizes <paramref name="dst"/>.Length elements (a whole number of blocks) from <paramref name="src"/>,
    /// which must hold exactly those blocks.
    /// </summary>
    public static void Dequantize(GgufTensorType t, ReadOnlySpan<byte> src, Span<float> dst)
    {
        int be = BlockElements(t), bb = BlockBytes(t);
        if (dst.Length % be != 0 || (long)src.Length != (long)dst.Length / be * bb)
            throw new ArgumentException($"{t}: {src.Length} bytes do not hold {dst.Length} elements");
        int blocks = dst.Length / be;
        switch (t)
        {
            case GgufTensorType.F32:
                for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
                return;
            case GgufTensorType.F16:
                for (int i = 0; i < dst.Length; i++) dst[i] = H(src, 2 * i);
                return;
            case GgufTensorType.BF16:
                for (int i = 0; i < dst.Length; i++) dst[i] = BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16);
                return;
        }
        for (int b = 0; b < blocks; b++)
        {
            var x = src.Slice(b * bb, bb);
            var y = dst.Slice(b * be, be);
            switch (t)
            {
                case GgufTensorType.Q4_0: Q4_0(x, y); break;
                case GgufTensorType.Q4_1: Q4_1(x, y); break;
                case GgufTensorType.Q5_0: Q5_0(x, y); break;
                case GgufTensorType.Q5_1: Q5_1(x, y); break;
                case GgufTensorType.Q8_0: Q8_0(x, y); break;
                case GgufTensorType.Q2_K: Q2_K(x, y); break;
                case GgufTensorType.Q3_K: Q3_K(x, y); break;
                case GgufTensorType.Q4_K: Q4_K(x, y); break;
                case GgufTensorType.Q5_K: Q5_K(x, y); break;
                case GgufTensorType.Q6_K: Q6_K(x, y); break;
                case GgufTensorType.IQ4_NL: IQ4_NL(x, y); break;
                case GgufTensorType.IQ4_XS: IQ4_XS(x, y); break;
                default: throw new ArgumentOutOfRangeException(nameof(t));
            }
        }
    }

    // block_q4_0 { half d; u8 qs[16]; }: low nibbles are elements 0..15, high nibbles 16..31.
    private static void Q4_0(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = H(x, 0);
        var qs = x[2..];
        for (int j = 0; j < 16; j++) { y[j] = ((qs[j] & 0xF) - 8) * d; y[j + 16] = ((qs[j] >> 4) - 8) * d; }
    }

    // block_q4_1 { half d; half m; u8 qs[16]; }
    private static void Q4_1(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = H(x, 0), m = H(x, 2);
        var qs = x[4..];
        for (int j = 0; j < 16; j++) { y[j] = (qs[j] & 0xF) * d + m; y[j + 16] = (qs[j] >> 4) * d + m; }
    }

    // block_q5_0 { half d; u8 qh[4]; u8 qs[16]; }: bit j of qh is the fifth bit of element j.
    private static void Q5_0(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = H(x, 0);
        uint qh = BinaryPrimitives.ReadUInt32LittleEndian(x[2..]);
        var qs = x[6..];
        for (int j = 0; j < 16; j++)
        {
            int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
            y[j] = (((qs[j] & 0xF) | h0) - 16) * d;
            y[j + 16] = (((qs[j] >> 4) | h1) - 16) * d;
        }
    }

    // block_q5_1 { half d; half m; u8 qh[4]; u8 qs[16]; }
    private static void Q5_1(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = H(x, 0), m = H(x, 2);
        uint qh = BinaryPrimitives.ReadUInt32LittleEndian(x[4..]);
        var qs = x[8..];
        for (int j = 0; j < 16; j++)
        {
            int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
            y[j] = ((qs[j] & 0xF) | h0) * d + m;
            y[j + 16] = ((qs[j] >> 4) | h1) * d + m;
        }
    }

    // block_q8_0 { half d; i8 qs[32]; }
    private static void Q8_0(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = H(x, 0);
        for (int j = 0; j < 32; j++) y[j] = (sbyte)x[2 + j] * d;
    }

    // block_q2_K { u8 scales[16]; u8 qs[64]; half d; half dmin; }: scale low nibble, minimum high nibble per 16.
    private static void Q2_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var scales = x[..16];
        float d = H(x, 80), min = H(x, 82);
        int o = 0, isc = 0;
        for (int n = 0; n < QKK; n += 128)
        {
            var q = x.Slice(16 + n / 4, 32);
            for (int shift = 0; shift < 8; shift += 2)
            {
                for (int half = 0; half < 2; half++)
                {
                    byte sc = scales[isc++];
                    float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) y[o++] = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
                }
            }
        }
    }

    // block_q3_K { u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d; }: 6-bit scales packed as ggml does, minus 32;
    // a clear hmask bit subtracts 4.
    private static void Q3_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var hm = x[..32];
        float dAll = H(x, 108);
        Span<uint> aux = stackalloc uint[4];
        for (int i = 0; i < 3; i++) aux[i] = BinaryPrimitives.ReadUInt32LittleEndian(x[(96 + 4 * i)..]);
        const uint k1 = 0x03030303, k2 = 0x0f0f0f0f;
        uint tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & k2) | (((tmp >> 4) & k1) << 4);
        aux[3] = ((aux[1] >> 4) & k2) | (((tmp >> 6) & k1) << 4);
        aux[0] = (aux[0] & k2) | (((tmp >> 0) & k1) << 4);
        aux[1] = (aux[1] & k2) | (((tmp >> 2) & k1) << 4);
        Span<sbyte> scales = stackalloc sbyte[16];
        for (int i = 0; i < 16; i++) scales[i] = (sbyte)(byte)(aux[i / 4] >> (8 * (i % 4)));
        int o = 0, isc = 0;
        byte m = 1;
        for (int n = 0; n < QKK; n += 128)
        {
            var q = x.Slice(32 + n / 4, 32);
            for (int shift = 0; shift < 8; shift += 2)
            {
                for (int half = 0; half < 2; half++)
                {
                    float dl = dAll * (scales[isc++] - 32);
                    for (int l = 0; l < 16; l++)
                    {
                        int k = l + 16 * half;
                        y[o++] = dl * (((q[k] >> shift) & 3) - ((hm[k] & m) != 0 ? 0 : 4));
                    }
                }
                m <<= 1;
            }
        }
    }

    // The 6-bit scale and minimum j of a Q4_K / Q5_K superblock (ggml's get_scale_min_k4).
    private static void ScaleMin(int j, ReadOnlySpan<byte> q, out int d, out int m)
    {
        if (j < 4) { d = q[j] & 63; m = q[j + 4] & 63; }
        else { d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
    }

    // block_q4_K { half d; half dmin; u8 scales[12]; u8 qs[128]; }: per 64 elements, low nibbles then high nibbles.
    private static void Q4_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = H(x, 0), min = H(x, 2);
        var scales = x.Slice(4, 12);
        int o = 0, isc = 0;
        for (int j = 0; j < QKK; j += 64)
        {
            var q = x.Slice(16 + j / 2, 32);
            ScaleMin(isc, scales, out int sc, out int mm); float d1 = d * sc, m1 = min * mm;
            ScaleMin(isc + 1, scales, out sc, out mm); float d2 = d * sc, m2 = min * mm;
            for (int l = 0; l < 32; l++) y[o++] = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) y[o++] = d2 * (q[l] >> 4) - m2;
            isc += 2;
        }
    }

    // block_q5_K { half d; half dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; }
    private static void Q5_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = H(x, 0), min = H(x, 2);
        var scales = x.Slice(4, 12);
        var qh = x.Slice(16, 32);
        int o = 0, isc = 0, u1 = 1, u2 = 2;
        for (int j = 0; j < QKK; j += 64)
        {
            var ql = x.Slice(48 + j / 2, 32);
            ScaleMin(isc, scales, out int sc, out int mm); float d1 = d * sc, m1 = min * mm;
            ScaleMin(isc + 1, scales, out sc, out mm); float d2 = d * sc, m2 = min * mm;
            for (int l = 0; l < 32; l++) y[o++] = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) y[o++] = d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - m2;
            isc += 2; u1 <<= 2; u2 <<= 2;
        }
    }

    // block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; half d; }
    private static void Q6_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = H(x, 208);
        for (int n = 0; n < 2; n++)
        {
            var ql = x.Slice(64 * n, 64);
            var qh = x.Slice(128 + 32 * n, 32);
            var sc = x.Slice(192 + 8 * n, 8);
            var yy = y.Slice(128 * n, 128);
            for (int l = 0; l < 32; l++)
            {
                int s = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                yy[l] = d * (sbyte)sc[s] * q1;
                yy[l + 32] = d * (sbyte)sc[s + 2] * q2;
                yy[l + 64] = d * (sbyte)sc[s + 4] * q3;
                yy[l + 96] = d * (sbyte)sc[s + 6] * q4;
            }
        }
    }

    // block_iq4_nl { half d; u8 qs[16]; }
    private static void IQ4_NL(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = H(x, 0);
        var g = Iq4Grid;
        for (int j = 0; j < 16; j++) { y[j] = d * g[x[2 + j] & 0xF]; y[j + 16] = d * g[x[2 + j] >> 4]; }
    }

    // block_iq4_xs { half d; u16 scales_h; u8 scales_l[4]; u8 qs[128]; }: 6-bit sub-block scales minus 32.
    private static void IQ4_XS(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = H(x, 0);
        int sh = BinaryPrimitives.ReadUInt16LittleEndian(x[2..]);
        var g = Iq4Grid;
        for (int ib = 0; ib < 8; ib++)
        {
            int ls = ((x[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((sh >> (2 * ib)) & 3) << 4);
            float dl = d * (ls - 32);
            var qs = x.Slice(8 + 16 * ib, 16);
            for (int j = 0; j < 16; j++) { y[32 * ib + j] = dl * g[qs[j] & 0xF]; y[32 * ib + j + 16] = dl * g[qs[j] >> 4]; }
        }
    }
}
