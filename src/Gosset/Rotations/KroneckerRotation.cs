using System.Numerics.Tensors;
using Gosset.Util;

namespace Gosset.Rotations;

/// <summary>
/// Exactly orthogonal rotation for any length n = m·p with p the largest power of two dividing n:
/// R = Q ⊗ (H·D/√p), Q a Haar-random m×m orthogonal matrix (Householder QR of a Gaussian matrix
/// drawn with <see cref="PortableNormal"/>, computed in double and rounded once: the same bits on every platform). Costs O(n·(m + log p)); for n a power of two it is the
/// plain randomized Hadamard.
/// </summary>
public sealed class KroneckerRotation : IRotation
{
    private readonly int _m, _p;
    private readonly float[] _q;     // [m, m] row-major
    private readonly RandomizedHadamard _h;

    /// <summary>Creates the rotation for <paramref name="length"/> from <paramref name="seed"/>.</summary>
    public KroneckerRotation(int length, ulong seed)
    {
        if (length < 1) throw new ArgumentException("Rotation length must be positive.", nameof(length));
        Length = length;
        _p = length & -length;
        _m = length / _p;
        _h = new RandomizedHadamard(_p, seed);
        _q = RandomOrthogonal(_m, seed);
    }

    /// <inheritdoc/>
    public int Length { get; }

    /// <summary>Odd factor m (size of the dense orthogonal factor).</summary>
    public int DenseFactor => _m;

    /// <inheritdoc/>
    public void Apply(ReadOnlySpan<float> x, Span<float> y) => Run(x, y, inverse: false);

    /// <inheritdoc/>
    public void ApplyInverse(ReadOnlySpan<float> y, Span<float> x) => Run(y, x, inverse: true);

    /// <inheritdoc/>
    public string Describe() => _m == 1 ? $"hadamard({_p})" : $"orthogonal({_m})⊗hadamard({_p})";

    // x viewed as an m×p row-major matrix X: R·x = Q·X·Hᵀ (H symmetric up to the sign diagonal).
    // Scratch comes from the shared pool: rotations run per token on the LLM's hot path.
    private void Run(ReadOnlySpan<float> src, Span<float> dst, bool inverse)
    {
        int n = Length;
        float[] buf = System.Buffers.ArrayPool<float>.Shared.Rent(n);
        float[] tmp = System.Buffers.ArrayPool<float>.Shared.Rent(n);
        try
        {
            var b = buf.AsSpan(0, n);
            if (!inverse)
            {
                for (int r = 0; r < _m; r++) _h.Apply(src.Slice(r * _p, _p), b.Slice(r * _p, _p));
                MixRows(b, dst, tmp, transpose: false);
            }
            else
            {
                MixRows(src, b, tmp, transpose: true);
                for (int r = 0; r < _m; r++) _h.ApplyInverse(b.Slice(r * _p, _p), dst.Slice(r * _p, _p));
            }
        }
        finally
        {
            System.Buffers.ArrayPool<float>.Shared.Return(buf);
            System.Buffers.ArrayPool<float>.Shared.Return(tmp);
        }
    }

    // dst row i = Σ_k Q[i,k] (or Q[k,i]) · src row k; src is copied to scratch first (src and dst may alias)
    private void MixRows(ReadOnlySpan<float> src, Span<float> dst, float[] scratch, bool transpose)
    {
        if (_m == 1) { src[.._p].CopyTo(dst); return; }
        var t = scratch.AsSpan(0, Length);
        src[..Length].CopyTo(t);
        for (int i = 0; i < _m; i++)
        {
            Span<float> row = dst.Slice(i * _p, _p);
            row.Clear();
            for (int k = 0; k < _m; k++)
            {
                float c = transpose ? _q[k * _m + i] : _q[i * _m + k];
                TensorPrimitives.MultiplyAdd(t.Slice(k * _p, _p), c, row, row);
            }
        }
    }

    /// <summary>
    /// Haar-random orthogonal m×m matrix (row-major) from the seed: Householder QR of a matrix of
    /// <see cref="PortableNormal"/> draws, in double with a fixed operation order (no SIMD
    /// reductions, no libm), rounded once to float, so every platform gets the same bits.
    /// </summary>
    internal static float[] RandomOrthogonal(int m, ulong seed)
    {
        var rng = SplitMix64.ForStream(seed, 0x4F525448UL, (ulong)m);
        // A is kept by columns (col[j][i] = A[i, j]) so every inner loop runs over contiguous memory.
        var col = new double[m][];
        for (int j = 0; j < m; j++) col[j] = new double[m];
        for (int i = 0; i < m; i++) for (int j = 0; j < m; j++) col[j][i] = PortableNormal.Next(ref rng);
        var q = new double[m][];
        for (int r = 0; r < m; r++) { q[r] = new double[m]; q[r][r] = 1; }
        var v = new double[m];
        for (int k = 0; k < m - 1; k++)
        {
            double[] ak = col[k];
            double norm = 0;
            for (int i = k; i < m; i++) norm += ak[i] * ak[i];
            norm = Math.Sqrt(norm);
            double alpha = ak[k] > 0 ? -norm : norm;
            for (int i = k; i < m; i++) v[i] = ak[i];
            v[k] -= alpha;
            double vv = 0;
            for (int i = k; i < m; i++) vv += v[i] * v[i];
            if (vv == 0) continue;
            for (int j = k; j < m; j++) // columns left of k are already zero below the diagonal
            {
                double[] c = col[j];
                double s = 0;
                for (int i = k; i < m; i++) s += v[i] * c[i];
                s = 2 * s / vv;
                for (int i = k; i < m; i++) c[i] -= s * v[i];
            }
            for (int r = 0; r < m; r++) // Q ← Q·H_k
            {
                double[] qr = q[r];
                double s = 0;
                for (int i = k; i < m; i++) s += qr[i] * v[i];
                s = 2 * s / vv;
                for (int i = k; i < m; i++) qr[i] -= s * v[i];
            }
        }
        // sign fix diag(R) > 0 gives the Haar measure
        var result = new float[m * m];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++)
                result[i * m + j] = (float)(col[j][j] < 0 ? -q[i][j] : q[i][j]);
        return result;
    }
}
