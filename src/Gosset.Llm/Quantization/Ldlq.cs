using Gosset.Codes;
namespace Gosset.Llm.Quantization;

/// <summary>
/// LDLQ / GPTQ error feedback with blocks of 8: the rows of W are quantized block by block and each
/// block's error is pushed onto the blocks not yet quantized through the upper Cholesky factor U of
/// H⁻¹ (H⁻¹ = UᵀU), which minimizes tr((W − Ŵ) H (W − Ŵ)ᵀ) greedily. H = Σ x xᵀ over calibration
/// inputs (already rotated), damped by λ·mean(diag H)·I.
/// </summary>
internal sealed class Ldlq
{
    private readonly int _n;
    private readonly double[] _u; // [n][n] upper factor of H⁻¹

    public Ldlq(double[] h, int n, double damping)
    {
        _n = n;
        var a = (double[])h.Clone();
        double mean = 0;
        for (int i = 0; i < n; i++) mean += a[i * n + i];
        mean /= n;
        if (!(mean > 0)) mean = 1;
        for (int i = 0; i < n; i++) a[i * n + i] += damping * mean;
        // Dead inputs (zero diagonal, e.g. padding before rotation) get unit diagonal.
        for (int i = 0; i < n; i++) if (a[i * n + i] <= 0) a[i * n + i] = 1;
        var l = Cholesky(a, n);
        var hinv = InverseFromCholesky(l, n);
        var li = Cholesky(hinv, n); // H⁻¹ = L Lᵀ, so U = Lᵀ
        _u = new double[n * n];
        for (int i = 0; i < n; i++) for (int j = i; j < n; j++) _u[i * n + j] = li[j * n + i];
    }

    /// <summary>
    /// QA-LDLQ target (NestQuant): with activation noise z of covariance J, E‖Wx − Ŵ(x+z)‖² is minimized
    /// around W' = W·H·(H+J)⁻¹; per row, w' = (H+J)⁻¹·H·w. Returns the rows replaced in place and H+J.
    /// </summary>
    public static double[] QaTarget(double[] h, int n, double noisePerEntry, float[] rows, int rowCount)
    {
        var hj = (double[])h.Clone();
        double mean = 0;
        for (int i = 0; i < n; i++) mean += h[i * n + i];
        mean /= n;
        for (int i = 0; i < n; i++) hj[i * n + i] += noisePerEntry * mean;
        var l = Cholesky(hj, n);
        var hw = new double[n];
        var y = new double[n];
        for (int r = 0; r < rowCount; r++)
        {
            var row = rows.AsSpan(r * n, n);
            for (int i = 0; i < n; i++) { double s = 0; for (int j = 0; j < n; j++) s += h[i * n + j] * row[j]; hw[i] = s; }
            for (int i = 0; i < n; i++) { double s = hw[i]; for (int k = 0; k < i; k++) s -= l[i * n + k] * y[k]; y[i] = s / l[i * n + i]; }
            for (int i = n - 1; i >= 0; i--) { double s = y[i]; for (int k = i + 1; k < n; k++) s -= l[k * n + i] * hw[k]; hw[i] = s / l[i * n + i]; }
            for (int i = 0; i < n; i++) row[i] = (float)hw[i];
        }
        return hj;
    }

    private static double[] Cholesky(double[] a, int n)
    {
        var l = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            double s = a[j * n + j];
            for (int k = 0; k < j; k++) s -= l[j * n + k] * l[j * n + k];
            if (s <= 0) throw new GossetException("LDLQ: Hessian is not positive definite; increase --damping");
            double d = Math.Sqrt(s);
            l[j * n + j] = d;
            for (int i = j + 1; i < n; i++)
            {
                double t = a[i * n + j];
                for (int k = 0; k < j; k++) t -= l[i * n + k] * l[j * n + k];
                l[i * n + j] = t / d;
            }
        }
        return l;
    }

    private static double[] InverseFromCholesky(double[] l, int n)
    {
        // Solve L Y = I, then Lᵀ X = Y.
        var inv = new double[n * n];
        var y = new double[n];
        for (int c = 0; c < n; c++)
        {
            for (int i = 0; i < n; i++)
            {
                double s = i == c ? 1 : 0;
                for (int k = 0; k < i; k++) s -= l[i * n + k] * y[k];
                y[i] = s / l[i * n + i];
            }
            for (int i = n - 1; i >= 0; i--)
            {
                double s = y[i];
                for (int k = i + 1; k < n; k++) s -= l[k * n + i] * inv[k * n + c];
                inv[i * n + c] = s / l[i * n + i];
            }
        }
        return inv;
    }

    /// <summary>Quantizes one row (length n) with error feedback; the codec's side information comes from the original row.</summary>
    public void QuantizeRow(VectorCodec codec, ReadOnlySpan<float> row, Span<byte> code)
    {
        int n = _n;
        var w = new double[n];
        for (int i = 0; i < n; i++) w[i] = row[i];
        codec.Begin(row, code);
        Span<float> xb = stackalloc float[8];
        Span<float> yb = stackalloc float[8];
        Span<double> err = stackalloc double[8];
        for (int b = 0; b < codec.Blocks; b++)
        {
            int s = 8 * b, m = Math.Min(8, n - s);
            for (int i = 0; i < m; i++) xb[i] = (float)w[s + i];
            codec.QuantizeBlock(b, xb[..m], code, yb[..m]);
            // err · U_bb = e  (row vector), solved by forward substitution over the upper-triangular block.
            for (int j = 0; j < m; j++)
            {
                double e = w[s + j] - yb[j];
                for (int i = 0; i < j; i++) e -= err[i] * _u[(s + i) * n + s + j];
                err[j] = e / _u[(s + j) * n + s + j];
            }
            for (int c = s + m; c < n; c++)
            {
                double d = 0;
                for (int i = 0; i < m; i++) d += err[i] * _u[(s + i) * n + c];
                w[c] -= d;
            }
        }
    }
}
