using System.Runtime.CompilerServices;
using Gosset.Codes;
using Gosset.Kernels.Simd;

namespace Gosset.Kernels;

/// <summary>
/// Many-block encode and decode of the E8 Voronoi code (<see cref="VoronoiCode"/>, every q in
/// [2, 256], k candidate scales), with a choice of <see cref="KernelIsa"/>. Every variant is
/// bit-exact with the scalar reference, which is <see cref="VoronoiCode"/> itself.
/// </summary>
/// <remarks>
/// Blocks are x[8b .. 8b + 7]; digits are stored the same way, one byte per digit. The SIMD
/// variants process one block per lane (structure of arrays), 4 / 8 / 16 blocks per step.
/// No dither.
/// </remarks>
[SkipLocalsInit]
public static unsafe class VoronoiBatch
{
    /// <summary>Encodes every block of x at its own scale beta[b]: digits and the overload flags of <see cref="VoronoiCode.Encode"/>.</summary>
    public static void Encode(VoronoiCode code, ReadOnlySpan<float> x, ReadOnlySpan<float> beta, Span<byte> digits, Span<bool> overloaded, KernelIsa? isa = null)
    {
        ArgumentNullException.ThrowIfNull(code);
        int n = x.Length / 8;
        Check(x.Length, beta.Length, n);
        if (digits.Length < 8 * n || overloaded.Length < n) throw new ArgumentException("digits or overloaded is too short.");
        var k = isa ?? KernelSupport.Best;
        KernelSupport.Require(k);
        int lanes = LanesOf(k);
        if (lanes == 1) { for (int b = 0; b < n; b++) overloaded[b] = code.Encode(x.Slice(8 * b, 8), beta[b], default, digits.Slice(8 * b, 8)); return; }
        float* xs = stackalloc float[8 * 16];
        float* bs = stackalloc float[16];
        int* ds = stackalloc int[8 * 16];
        int* ov = stackalloc int[16];
        for (int b0 = 0; b0 < n; b0 += lanes)
        {
            int cnt = Math.Min(lanes, n - b0);
            for (int l = 0; l < lanes; l++)
            {
                bool live = l < cnt;
                bs[l] = live ? beta[b0 + l] : 1f;
                for (int i = 0; i < 8; i++) xs[i * lanes + l] = live ? x[8 * (b0 + l) + i] : 0f;
            }
            bool ok = k switch
            {
                KernelIsa.Vector512 => VoronoiSimd<F512, I512>.EncodeBatch(xs, bs, code.Q, ds, ov),
                KernelIsa.Vector256 => VoronoiSimd<F256, I256>.EncodeBatch(xs, bs, code.Q, ds, ov),
                _ => VoronoiSimd<F128, I128>.EncodeBatch(xs, bs, code.Q, ds, ov),
            };
            for (int l = 0; l < cnt; l++)
            {
                int b = b0 + l;
                if (!ok) { overloaded[b] = code.Encode(x.Slice(8 * b, 8), beta[b], default, digits.Slice(8 * b, 8)); continue; }
                for (int i = 0; i < 8; i++) digits[8 * b + i] = (byte)ds[i * lanes + l];
                overloaded[b] = ov[l] != 0;
            }
        }
    }

    /// <summary>Decodes every block: x̂ = beta[b]·λ̂ as <see cref="VoronoiCode.Decode"/>.</summary>
    public static void Decode(VoronoiCode code, ReadOnlySpan<byte> digits, ReadOnlySpan<float> beta, Span<float> x, KernelIsa? isa = null)
    {
        ArgumentNullException.ThrowIfNull(code);
        int n = digits.Length / 8;
        Check(digits.Length, beta.Length, n);
        if (x.Length < 8 * n) throw new ArgumentException("x is too short.", nameof(x));
        var k = isa ?? KernelSupport.Best;
        KernelSupport.Require(k);
        int lanes = LanesOf(k);
        if (lanes == 1) { for (int b = 0; b < n; b++) code.Decode(digits.Slice(8 * b, 8), beta[b], default, x.Slice(8 * b, 8)); return; }
        int* ds = stackalloc int[8 * 16];
        float* bs = stackalloc float[16];
        float* xs = stackalloc float[8 * 16];
        for (int b0 = 0; b0 < n; b0 += lanes)
        {
            int cnt = Math.Min(lanes, n - b0);
            for (int l = 0; l < lanes; l++)
            {
                bool live = l < cnt;
                bs[l] = live ? beta[b0 + l] : 1f;
                for (int i = 0; i < 8; i++) ds[i * lanes + l] = live ? Math.Min(digits[8 * (b0 + l) + i], code.Q - 1) : 0;
            }
            switch (k)
            {
                case KernelIsa.Vector512: VoronoiSimd<F512, I512>.DecodeBatch(ds, bs, code.Q, xs); break;
                case KernelIsa.Vector256: VoronoiSimd<F256, I256>.DecodeBatch(ds, bs, code.Q, xs); break;
                default: VoronoiSimd<F128, I128>.DecodeBatch(ds, bs, code.Q, xs); break;
            }
            for (int l = 0; l < cnt; l++)
                for (int i = 0; i < 8; i++) x[8 * (b0 + l) + i] = xs[i * lanes + l];
        }
    }

    /// <summary>
    /// Encodes every block with the best of k candidate scales (least squared error of the decoded
    /// block, overload included; ties go to the lower index): digits, chosen scale index per block,
    /// and the decoded blocks in <paramref name="decoded"/>.
    /// </summary>
    public static void EncodeBest(VoronoiCode code, ReadOnlySpan<float> x, ReadOnlySpan<float> scales, Span<byte> digits, Span<byte> scaleIndex, Span<float> decoded, KernelIsa? isa = null)
    {
        ArgumentNullException.ThrowIfNull(code);
        int n = x.Length / 8;
        if (scales.IsEmpty || scales.Length > 256) throw new ArgumentException("Between 1 and 256 scales are needed.", nameof(scales));
        if (digits.Length < 8 * n || scaleIndex.Length < n || decoded.Length < 8 * n) throw new ArgumentException("An output span is too short.");
        const int Chunk = 256;
        float[] beta = new float[Chunk], best = new float[Chunk], tryX = new float[8 * Chunk];
        byte[] tryD = new byte[8 * Chunk];
        bool[] ov = new bool[Chunk];
        for (int b0 = 0; b0 < n; b0 += Chunk)
        {
            int cnt = Math.Min(Chunk, n - b0);
            var xc = x.Slice(8 * b0, 8 * cnt);
            for (int j = 0; j < scales.Length; j++)
            {
                beta.AsSpan(0, cnt).Fill(scales[j]);
                Encode(code, xc, beta.AsSpan(0, cnt), tryD, ov, isa);
                Decode(code, tryD.AsSpan(0, 8 * cnt), beta.AsSpan(0, cnt), tryX, isa);
                for (int b = 0; b < cnt; b++)
                {
                    float err = 0f;
                    for (int i = 0; i < 8; i++) { float e = xc[8 * b + i] - tryX[8 * b + i]; err += e * e; }
                    if (j == 0 || err < best[b])
                    {
                        best[b] = err;
                        scaleIndex[b0 + b] = (byte)j;
                        tryD.AsSpan(8 * b, 8).CopyTo(digits.Slice(8 * (b0 + b), 8));
                        tryX.AsSpan(8 * b, 8).CopyTo(decoded.Slice(8 * (b0 + b), 8));
                    }
                }
            }
        }
    }

    private static int LanesOf(KernelIsa k) => k switch
    {
        KernelIsa.Vector512 => VoronoiSimd<F512, I512>.Lanes,
        KernelIsa.Vector256 => VoronoiSimd<F256, I256>.Lanes,
        KernelIsa.Vector128 => VoronoiSimd<F128, I128>.Lanes,
        _ => 1,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Check(int len, int betaLen, int n)
    {
        if (len % 8 != 0) throw new ArgumentException("Length must be a multiple of 8 (whole E8 blocks).");
        if (betaLen < n) throw new ArgumentException($"beta holds {betaLen} values, expected one per block ({n}).");
    }
}
