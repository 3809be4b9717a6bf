namespace Gosset.Llm.Quantization;

/// <summary>
/// An exactly orthogonal random rotation of any length n = m·2^p (m odd): random signs, then the
/// normalised Walsh–Hadamard transform along the 2^p axis and a random orthogonal m×m matrix
/// (Householder QR of a Gaussian matrix, computed in double) along the m axis: R = (Q_m ⊗ H_2^p)·diag(s).
/// Internal stand-in until the core library's Gosset.Rotations is available.
/// </summary>
internal sealed class KroneckerRotation
{
    private readonly int _m, _p2;
    private readonly float[] _signs;
    private readonly float[]? _qm; // [m][m] row-major
    private readonly float _hScale;

    public KroneckerRotation(int length, ulong seed)
    {
        if (length <= 0) throw new ArgumentOutOfRangeException(nameof(length));
        Length = length;
        _p2 = length & -length;
        _m = length / _p2;
        if (_m > 4096) throw new GossetException($"rotation length {length} has an odd factor {_m} > 4096; not supported");
        var rng = new Random(unchecked((int)(seed ^ (seed >> 32)) ^ length * 7919));
        _signs = new float[length];
        for (int i = 0; i < length; i++) _signs[i] = rng.Next(2) == 0 ? 1f : -1f;
        _hScale = (float)(1 / Math.Sqrt(_p2));
        if (_m > 1) _qm = RandomOrthogonal(_m, rng);
    }

    public int Length { get; }

    private static float[] RandomOrthogonal(int m, Random rng)
    {
        var a = new double[m, m];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++)
            {
                double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
                a[i, j] = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            }
        // Modified Gram–Schmidt twice on columns gives Q with orthonormal columns to double precision.
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < m; j++)
            {
                for (int k = 0; k < j; k++)
                {
                    double dot = 0;
                    for (int i = 0; i < m; i++) dot += a[i, k] * a[i, j];
                    for (int i = 0; i < m; i++) a[i, j] -= dot * a[i, k];
                }
                double n = 0;
                for (int i = 0; i < m; i++) n += a[i, j] * a[i, j];
                n = Math.Sqrt(n);
                for (int i = 0; i < m; i++) a[i, j] /= n;
            }
        var q = new float[m * m];
        for (int i = 0; i < m; i++) for (int j = 0; j < m; j++) q[i * m + j] = (float)a[i, j];
        return q;
    }

    private void Hadamard(Span<float> y)
    {
        for (int r = 0; r < _m; r++)
        {
            var row = y.Slice(r * _p2, _p2);
            for (int h = 1; h < _p2; h <<= 1)
                for (int i = 0; i < _p2; i += 2 * h)
                    for (int j = i; j < i + h; j++)
                    {
                        float a = row[j], b = row[j + h];
                        row[j] = a + b;
                        row[j + h] = a - b;
                    }
            for (int i = 0; i < _p2; i++) row[i] *= _hScale;
        }
    }

    private void MixOdd(Span<float> y, bool transpose)
    {
        if (_qm is null) return;
        Span<float> col = _m <= 512 ? stackalloc float[_m] : new float[_m];
        Span<float> res = _m <= 512 ? stackalloc float[_m] : new float[_m];
        for (int c = 0; c < _p2; c++)
        {
            for (int i = 0; i < _m; i++) col[i] = y[i * _p2 + c];
            for (int i = 0; i < _m; i++)
            {
                float s = 0;
                if (transpose) for (int k = 0; k < _m; k++) s += _qm[k * _m + i] * col[k];
                else for (int k = 0; k < _m; k++) s += _qm[i * _m + k] * col[k];
                res[i] = s;
            }
            for (int i = 0; i < _m; i++) y[i * _p2 + c] = res[i];
        }
    }

    /// <summary>y = R·x.</summary>
    public void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < Length; i++) y[i] = x[i] * _signs[i];
        Hadamard(y);
        MixOdd(y, false);
    }

    /// <summary>x = Rᵀ·y.</summary>
    public void ApplyInverse(ReadOnlySpan<float> y, Span<float> x)
    {
        y[..Length].CopyTo(x);
        MixOdd(x, true);
        Hadamard(x);
        for (int i = 0; i < Length; i++) x[i] *= _signs[i];
    }
}
