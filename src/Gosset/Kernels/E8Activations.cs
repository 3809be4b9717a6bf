using System.Buffers;
using System.Runtime.CompilerServices;

namespace Gosset.Kernels;

/// <summary>
/// Activations prepared once per product for the nibble-format kernels (E8 box code and INT4):
/// reordered to match the nibble layout and with per-block sums precomputed, so that every row
/// reuses them. Buffers come from <see cref="ArrayPool{T}"/>; dispose to return them.
/// </summary>
/// <remarks>
/// Layouts (Cp = padded columns, a multiple of 128; nb = Cp / 8 blocks):
/// <list type="bullet">
/// <item>fp32: <c>X2[c·Cp + 128g + 16j + l] = 2·x[128g + 8l + j]</c> (j &lt; 8, l &lt; 16): each group's
/// 16 × 8 block matrix transposed, so that lane l of a vector is block l and nibble j of the
/// blocks' words lines up with entry j. <c>Nx[b] = −16·Xb</c>, <c>Cf[b] = Xb − 2·x₈ᵦ</c>
/// with Xb the block sum.</item>
/// <item>int8: <c>Q[c·Cp + 128g + l] = q[128g + 2l]</c>, <c>Q[c·Cp + 128g + 64 + l] = q[128g + 2l + 1]</c>
/// (l &lt; 64), so that 4-byte lanes of the masked nibbles are blocks. <c>Init[b] = −8·Qb</c>,
/// <c>Ci[b] = Qb − 2·q₈ᵦ</c>, <c>Sig[b]</c> the block's float scale.</item>
/// </list>
/// The original-order copies (<c>Xo</c>, <c>Qo</c>) serve the scalar reference kernels.
/// </remarks>
internal sealed class E8Activations : IDisposable
{
    public readonly int Batch, Cols, PaddedCols, Blocks;
    public readonly ActivationMode Mode;
    public float[] Xo = [], X2 = [], Nx = [], Cf = [], Sig = [];
    public sbyte[] Q = [], Qo = [];
    public int[] Init = [], Ci = [];

    public E8Activations(ReadOnlySpan<float> x, int batch, int cols, int paddedCols, ActivationMode mode)
    {
        Batch = batch; Cols = cols; PaddedCols = paddedCols; Blocks = paddedCols / 8; Mode = mode;
        if (x.Length < batch * cols) throw new ArgumentException($"x holds {x.Length} values, expected batch·cols = {batch * cols}.", nameof(x));
        Xo = Rent<float>(batch * paddedCols);
        for (int c = 0; c < batch; c++)
        {
            var dst = Xo.AsSpan(c * paddedCols, paddedCols);
            x.Slice(c * cols, cols).CopyTo(dst);
            dst[cols..].Clear();
        }
        if (mode == ActivationMode.Float32) PrepareFloat(); else PrepareInt(mode);
    }

    private static T[] Rent<T>(int n) => ArrayPool<T>.Shared.Rent(Math.Max(n, 1));

    [SkipLocalsInit]
    private void PrepareFloat()
    {
        int cp = PaddedCols, nb = Blocks;
        X2 = Rent<float>(Batch * cp); Nx = Rent<float>(Batch * nb); Cf = Rent<float>(Batch * nb);
        for (int c = 0; c < Batch; c++)
        {
            var xo = Xo.AsSpan(c * cp, cp);
            var x2 = X2.AsSpan(c * cp, cp);
            for (int g = 0; g < cp; g += 128)
                for (int j = 0; j < 8; j++)
                    for (int l = 0; l < 16; l++)
                        x2[g + 16 * j + l] = 2f * xo[g + 8 * l + j];
            for (int b = 0; b < nb; b++)
            {
                var blk = xo.Slice(8 * b, 8);
                float s = ((blk[0] + blk[1]) + (blk[2] + blk[3])) + ((blk[4] + blk[5]) + (blk[6] + blk[7]));
                Nx[c * nb + b] = -16f * s;
                Cf[c * nb + b] = s - 2f * blk[0];
            }
        }
    }

    [SkipLocalsInit]
    private void PrepareInt(ActivationMode mode)
    {
        int cp = PaddedCols, nb = Blocks;
        Q = Rent<sbyte>(Batch * cp); Qo = Rent<sbyte>(Batch * cp);
        Init = Rent<int>(Batch * nb); Ci = Rent<int>(Batch * nb); Sig = Rent<float>(Batch * nb);
        Span<int> v = stackalloc int[8];
        uint[] words = mode == ActivationMode.E8Box4 ? Rent<uint>(nb) : [];
        byte[] idx = mode == ActivationMode.E8Box4 ? Rent<byte>(nb) : [];
        for (int c = 0; c < Batch; c++)
        {
            var xo = Xo.AsSpan(c * cp, cp);
            var qo = Qo.AsSpan(c * cp, cp);
            float vs = mode == ActivationMode.E8Box4 ? E8BoxCode.VectorScale(xo[..Cols]) : 0f;
            if (mode == ActivationMode.E8Box4) E8BoxEncoder.Encode(xo, vs, words, idx, KernelSupport.Best);
            for (int b = 0; b < nb; b++)
            {
                var blk = xo.Slice(8 * b, 8);
                float sigma;
                if (mode == ActivationMode.Int8)
                {
                    float amax = 0f;
                    for (int i = 0; i < 8; i++) amax = MathF.Max(amax, MathF.Abs(blk[i]));
                    if (amax > 0f && float.IsFinite(amax))
                    {
                        sigma = amax / 127f;
                        float inv = 127f / amax;
                        for (int i = 0; i < 8; i++) v[i] = (int)Math.Clamp(MathF.Round(blk[i] * inv), -127f, 127f);
                    }
                    else { sigma = 0f; v.Clear(); }
                }
                else
                {
                    E8BoxCode.DecodeDoubled(words[b], v);
                    sigma = vs * E8BoxCode.BlockScales[idx[b]] * 0.5f;
                }
                int sum = 0;
                for (int i = 0; i < 8; i++) { qo[8 * b + i] = (sbyte)v[i]; sum += v[i]; }
                Init[c * nb + b] = -8 * sum;
                Ci[c * nb + b] = sum - 2 * v[0];
                Sig[c * nb + b] = sigma;
            }
            var q = Q.AsSpan(c * cp, cp);
            for (int g = 0; g < cp; g += 128)
                for (int l = 0; l < 64; l++)
                {
                    q[g + l] = qo[g + 2 * l];
                    q[g + 64 + l] = qo[g + 2 * l + 1];
                }
        }
        Return(ref words); Return(ref idx);
    }

    public void Dispose()
    {
        Return(ref Xo); Return(ref X2); Return(ref Nx); Return(ref Cf); Return(ref Sig);
        Return(ref Q); Return(ref Qo); Return(ref Init); Return(ref Ci);
    }

    private static void Return<T>(ref T[] a)
    {
        if (a.Length > 0) ArrayPool<T>.Shared.Return(a);
        a = [];
    }
}
