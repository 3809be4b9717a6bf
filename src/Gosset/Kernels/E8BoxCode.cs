using System.Runtime.CompilerServices;
using Gosset.Codes;
using Gosset.Kernels.Simd;

namespace Gosset.Kernels;

/// <summary>
/// The 4-bit E8 code the fast kernels use: E8 points in a box, one nibble per entry, with one of
/// four block scales per 8-block. Exactly 2³² codewords per block (4 bits per entry) plus 2 bits
/// of scale index per block: 34 bits per 8 entries = 4.25 bits per entry, plus a per-vector
/// (per-row) fp32 scale.
/// </summary>
/// <remarks>
/// <para>Indexing. Every E8 point is written uniquely as λ = a + p·h with a ∈ ℤ⁸,
/// p = (Σa) mod 2 and the glue vector h = (−½, ½, ½, ½, ½, ½, ½, ½): for even Σa the point is
/// a ∈ D8, for odd Σa it is (a − e₁) + ½𝟙 ∈ D8 + ½𝟙. The code stores the eight nibbles
/// u = a + 8 ∈ [0, 15]; its codebook is E8 ∩ {a ∈ [−8, 7]⁸}, a box-shaped region (where the
/// Voronoi code E8/qE8 uses the Voronoi cell of qE8 and needs a coarse quantizer to decode).
/// Decoding is linear in the nibbles apart from the parity bit, which is why a GEMV kernel can
/// use integer or fp32 dot products with the nibbles directly and apply scales to block sums.</para>
/// <para>In doubled coordinates v = 2λ: vᵢ = 2uᵢ − 16 + p·dᵢ with d = (−1, 1, 1, 1, 1, 1, 1, 1),
/// so every vᵢ fits an sbyte ([−17, 15]).</para>
/// <para>Scales. A block is coded with scale β = s·B[j], s the per-vector scale (its RMS, so the
/// code is scale-invariant) and j ∈ {0..3} the block's scale index, chosen as the index with
/// least squared error among those whose E8 point lies in the box (NestQuant-style multiple
/// scales). Blocks that overload even the largest scale are shrunk towards 0 until they fit.</para>
/// <para>The per-block word packs nibble i of the block in bits 4i..4i+3 (little-endian
/// uint32), which makes parity p = popcount(word &amp; 0x11111111) mod 2.</para>
/// </remarks>
public static class E8BoxCode
{
    /// <summary>Entries per block.</summary>
    public const int BlockLength = 8;

    /// <summary>Stored bits per block: 32 bits of nibbles plus a 2-bit scale index.</summary>
    public const int BitsPerBlock = 34;

    /// <summary>Number of block scales (k).</summary>
    public const int ScaleCount = 4;

    /// <summary>Bits of the per-vector (per-row) scale.</summary>
    public const int BitsPerVectorScale = 32;

    // Block scales relative to the vector RMS, tuned on N(0,1) (see tests/benchmarks notes).
    private static readonly float[] Scales = [0.2101f, 0.2646f, 0.3248f, 0.45f];

    /// <summary>The k = 4 block scales B[j], relative to the per-vector RMS scale.</summary>
    public static ReadOnlySpan<float> BlockScales => Scales;

    /// <summary>Glue in doubled coordinates: d = 2h = (−1, 1, …, 1).</summary>
    internal static int Glue(int i) => i == 0 ? -1 : 1;

    /// <summary>Exact stored bits per entry of a vector of <paramref name="length"/> entries (padded to whole blocks), side information included.</summary>
    public static double BitsPerEntry(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        long blocks = (length + BlockLength - 1) / BlockLength;
        return (blocks * (double)BitsPerBlock + BitsPerVectorScale) / length;
    }

    /// <summary>Parity p of a block word: (Σ nibbles) mod 2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Parity(uint word) => System.Numerics.BitOperations.PopCount(word & 0x11111111u) & 1;

    /// <summary>Writes the doubled coordinates v = 2λ (each in [−17, 15]) of a block word.</summary>
    public static void DecodeDoubled(uint word, Span<int> v)
    {
        int p = Parity(word);
        for (int i = 0; i < 8; i++) v[i] = 2 * (int)((word >> (4 * i)) & 15) - 16 + p * Glue(i);
    }

    /// <summary>
    /// The block word of the E8 point v (doubled coordinates), or false when v is outside the box.
    /// </summary>
    public static bool TryPack(ReadOnlySpan<int> v, out uint word)
    {
        word = 0;
        int p = v[0] & 1;
        for (int i = 0; i < 8; i++)
        {
            int a = (v[i] - p * Glue(i)) >> 1;
            if (a < -8 || a > 7) { word = 0; return false; }
            word |= (uint)(a + 8) << (4 * i);
        }
        return true;
    }

    /// <summary>
    /// Encodes one block x (8 values) with per-vector scale <paramref name="vectorScale"/>:
    /// returns the scale index and writes the block word. This scalar routine is the specification.
    /// </summary>
    [SkipLocalsInit]
    public static int EncodeBlock(ReadOnlySpan<float> x, float vectorScale, out uint word)
    {
        Span<int> v = stackalloc int[8];
        int best = -1; float bestErr = float.PositiveInfinity; word = 0;
        for (int j = 0; j < ScaleCount; j++)
        {
            float beta = vectorScale * Scales[j];
            VoronoiCode.QuantizeFine(x, beta, default, v);
            if (!TryPack(v, out uint w)) continue;
            float err = BlockError(x, beta, v);
            if (err < bestErr) { bestErr = err; best = j; word = w; }
        }
        if (best >= 0) return best;
        // Overload at every scale: shrink the target towards 0 at the largest scale until it fits.
        Span<float> t = stackalloc float[8];
        float beta3 = vectorScale * Scales[ScaleCount - 1];
        float gamma = 1f;
        for (int it = 0; it < 200; it++)
        {
            gamma *= 0.875f;
            for (int i = 0; i < 8; i++) t[i] = x[i] * gamma;
            VoronoiCode.QuantizeFine(t, beta3, default, v);
            if (TryPack(v, out word)) return ScaleCount - 1;
        }
        word = 0x88888888u; // the zero point
        return ScaleCount - 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float BlockError(ReadOnlySpan<float> x, float beta, ReadOnlySpan<int> v)
    {
        float err = 0f;
        for (int i = 0; i < 8; i++) { float e = x[i] - beta * (0.5f * v[i]); err += e * e; }
        return err;
    }

    /// <summary>Decodes one block: x̂ᵢ = s·B[j]·vᵢ/2.</summary>
    public static void DecodeBlock(uint word, int scaleIndex, float vectorScale, Span<float> x)
    {
        Span<int> v = stackalloc int[8];
        DecodeDoubled(word, v);
        float half = vectorScale * Scales[scaleIndex] * 0.5f;
        for (int i = 0; i < 8; i++) x[i] = half * v[i];
    }

    /// <summary>The per-vector scale the encoder uses: the RMS of x (1 when x is zero).</summary>
    public static float VectorScale(ReadOnlySpan<float> x)
    {
        double s = 0;
        foreach (float f in x) s += (double)f * f;
        float r = (float)Math.Sqrt(s / Math.Max(1, x.Length));
        return r > 0f && float.IsFinite(r) ? r : 1f;
    }

    /// <summary>
    /// Quantizes and dequantizes a vector with this code (the length is padded with zeros to whole
    /// blocks internally). The rate is <see cref="BitsPerEntry"/>(x.Length).
    /// </summary>
    public static void QuantizeDequantize(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("Output is shorter than input.", nameof(y));
        if (x.IsEmpty) return;
        float s = VectorScale(x);
        int nb = (x.Length + 7) / 8;
        var padded = new float[8 * nb];
        x.CopyTo(padded);
        var words = new uint[nb];
        var idx = new byte[nb];
        E8BoxEncoder.Encode(padded, s, words, idx, KernelSupport.Best);
        Span<float> blk = stackalloc float[8];
        for (int b = 0; b < nb; b++)
        {
            DecodeBlock(words[b], idx[b], s, blk);
            int n = Math.Min(8, x.Length - 8 * b);
            blk[..n].CopyTo(y.Slice(8 * b, n));
        }
    }
}

/// <summary>Many-block encoder of the <see cref="E8BoxCode"/>, bit-exact with <see cref="E8BoxCode.EncodeBlock"/> on every <see cref="KernelIsa"/>.</summary>
internal static unsafe class E8BoxEncoder
{
    /// <summary>Encodes x (whole blocks) with vector scale s: one word and one scale index per block.</summary>
    [SkipLocalsInit]
    public static void Encode(ReadOnlySpan<float> x, float s, Span<uint> words, Span<byte> index, KernelIsa isa)
    {
        int n = x.Length / 8;
        int lanes = isa switch { KernelIsa.Vector512 => 16, KernelIsa.Vector256 => 8, KernelIsa.Vector128 => 4, _ => 1 };
        if (lanes == 1)
        {
            for (int b = 0; b < n; b++) { index[b] = (byte)E8BoxCode.EncodeBlock(x.Slice(8 * b, 8), s, out uint w); words[b] = w; }
            return;
        }
        float* xs = stackalloc float[8 * 16];
        float* ss = stackalloc float[16];
        int* ws = stackalloc int[16];
        int* js = stackalloc int[16];
        for (int l = 0; l < 16; l++) ss[l] = s;
        for (int b0 = 0; b0 < n; b0 += lanes)
        {
            int cnt = Math.Min(lanes, n - b0);
            for (int l = 0; l < lanes; l++)
                for (int i = 0; i < 8; i++) xs[i * lanes + l] = l < cnt ? x[8 * (b0 + l) + i] : 0f;
            int slow = isa switch
            {
                KernelIsa.Vector512 => VoronoiSimd<F512, I512>.BoxEncodeBatch(xs, ss, ws, js),
                KernelIsa.Vector256 => VoronoiSimd<F256, I256>.BoxEncodeBatch(xs, ss, ws, js),
                _ => VoronoiSimd<F128, I128>.BoxEncodeBatch(xs, ss, ws, js),
            };
            for (int l = 0; l < cnt; l++)
            {
                int b = b0 + l;
                if ((slow >> l & 1) != 0) { index[b] = (byte)E8BoxCode.EncodeBlock(x.Slice(8 * b, 8), s, out uint w); words[b] = w; }
                else { words[b] = (uint)ws[l]; index[b] = (byte)js[l]; }
            }
        }
    }
}
