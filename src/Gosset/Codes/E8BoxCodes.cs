namespace Gosset.Codes;

/// <summary>
/// The canonical (unpacked) form of a matrix coded with the E8 box code of b bits per entry: the
/// contract between the encoder (which fills it) and the packed formats and kernels (which read
/// it). Rows are the coded vectors (for a weight matrix: output channels, coded along the input
/// dimension); each row is cut into 8-blocks.
/// </summary>
/// <remarks>
/// <para>Entry (r, 8t + i) = RowScale[r] · BlockScales[ScaleIndex[r, t]] · vᵢ / 2 with the doubled
/// coordinates vᵢ = 2·U[r, 8t + i] − q + p·dᵢ, q = 2^b, p = (Σᵢ U[r, 8t + i]) mod 2 and the glue
/// d = (−1, 1, 1, 1, 1, 1, 1, 1). For every u ∈ [0, q)⁸ this is a point of E8 (scaled), and the q⁸
/// points are a complete set of coset representatives of E8 / qℤ⁸: a nested-lattice code with a
/// cubic coarse lattice.</para>
/// <para>This type holds no rate information: how indices and scales are stored (and so the bits
/// per entry) belongs to the packed format that serializes it.</para>
/// </remarks>
public sealed class E8BoxCodes
{
    /// <summary>Entries per block.</summary>
    public const int BlockLength = 8;

    /// <summary>Most block scales a code may use.</summary>
    public const int MaxScales = 16;

    /// <summary>Number of coded vectors.</summary>
    public int Rows { get; }
    /// <summary>Entries per vector (the last block of a row is zero padded when Cols is not a multiple of 8).</summary>
    public int Cols { get; }
    /// <summary>Bits per entry of the lattice code, b ∈ {2, 3, 4}; q = 2^b.</summary>
    public int Bits { get; }
    /// <summary>Nesting ratio q = 2^b.</summary>
    public int Q => 1 << Bits;
    /// <summary>Blocks per row: ⌈Cols / 8⌉.</summary>
    public int Blocks => (Cols + BlockLength - 1) / BlockLength;
    /// <summary>[Rows][Blocks·8] digits, each in [0, q).</summary>
    public byte[] U { get; }
    /// <summary>[Rows][Blocks] block-scale indices, each in [0, BlockScales.Length).</summary>
    public byte[] ScaleIndex { get; }
    /// <summary>[Rows] per-row scale, finite and ≥ 0.</summary>
    public float[] RowScale { get; }
    /// <summary>[k] block scales relative to the row scale, finite and &gt; 0, k ≤ <see cref="MaxScales"/>.</summary>
    public float[] BlockScales { get; }

    /// <summary>Allocates zeroed codes (every digit 0, index 0, row scale 0).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A dimension is not positive, b ∉ {2,3,4}, or the scale count is out of range.</exception>
    public E8BoxCodes(int rows, int cols, int bits, ReadOnlySpan<float> blockScales)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        if (bits is < 2 or > 4) throw new ArgumentOutOfRangeException(nameof(bits), bits, "The E8 box code supports b = 2, 3, 4 bits per entry.");
        if (blockScales.Length is < 1 or > MaxScales) throw new ArgumentOutOfRangeException(nameof(blockScales), blockScales.Length, $"1 to {MaxScales} block scales.");
        foreach (float s in blockScales)
            if (!float.IsFinite(s) || s <= 0f) throw new ArgumentOutOfRangeException(nameof(blockScales), s, "Block scales must be finite and positive.");
        long blocks = (long)rows * ((cols + BlockLength - 1) / BlockLength);
        if (blocks * BlockLength > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(rows), "Matrix too large for one code array.");
        Rows = rows; Cols = cols; Bits = bits;
        U = new byte[blocks * BlockLength];
        ScaleIndex = new byte[blocks];
        RowScale = new float[rows];
        BlockScales = blockScales.ToArray();
    }

    /// <summary>Parity p = (Σ u) mod 2 of a block's digits.</summary>
    public static int Parity(ReadOnlySpan<byte> u)
    {
        int s = 0;
        for (int i = 0; i < BlockLength; i++) s += u[i];
        return s & 1;
    }

    /// <summary>Doubled coordinates vᵢ = 2uᵢ − q + p·dᵢ of one block (the scalar specification).</summary>
    public static void DoubledCoordinates(ReadOnlySpan<byte> u, int q, Span<int> v)
    {
        int p = Parity(u);
        for (int i = 0; i < BlockLength; i++) v[i] = 2 * u[i] - q + p * (i == 0 ? -1 : 1);
    }

    /// <summary>Largest integer of the kernel grid: half block scales β/2 = s·2^e with integer s ∈ [1, 4095].</summary>
    public const int GridMax = 4095;

    /// <summary>
    /// Rounds block scales in place to the kernel grid: β/2 = s·2^e, one exponent e for the table, integers
    /// s ≤ <see cref="GridMax"/> (12 bits; the largest scale keeps 12 significant bits, a scale 16× smaller 8).
    /// On that grid the integer kernels multiply block scales in 16-bit integers and add a whole group in
    /// int32 (<see cref="TryGrid"/>), so the stored code and the kernels' product are the same numbers.
    /// Fitted tables are rounded once, before encoding; the encoder then sees the rounded scales.
    /// </summary>
    /// <exception cref="ArgumentException">A scale is not finite and positive.</exception>
    public static void RoundToGrid(Span<float> blockScales)
    {
        float max = 0;
        foreach (float b in blockScales)
        {
            if (!float.IsFinite(b) || b <= 0) throw new ArgumentException("Block scales must be finite and positive.", nameof(blockScales));
            max = MathF.Max(max, b);
        }
        int e = GridExponent(max);
        for (int j = 0; j < blockScales.Length; j++)
        {
            double s = Math.Clamp(Math.Round(0.5 * blockScales[j] / Math.ScaleB(1.0, e)), 1, GridMax);
            blockScales[j] = (float)(2 * s * Math.ScaleB(1.0, e));
        }
    }

    /// <summary>The exponent e that puts the largest half scale max/2 in [2048, 4096)·2^e.</summary>
    private static int GridExponent(float max) => Math.ILogB(0.5 * max) - 11;

    /// <summary>
    /// Whether every half scale β/2 is s·2^e with integer s ∈ [1, <see cref="GridMax"/>] (e from the largest);
    /// if so writes the integers and returns 2^e.
    /// </summary>
    public static bool TryGrid(ReadOnlySpan<float> blockScales, Span<int> s, out float step)
    {
        step = 0;
        float max = 0;
        foreach (float b in blockScales) { if (!float.IsFinite(b) || b <= 0) return false; max = MathF.Max(max, b); }
        int e = GridExponent(max);
        double unit = Math.ScaleB(1.0, e);
        if (unit < float.Epsilon || unit > float.MaxValue) return false;
        for (int j = 0; j < blockScales.Length; j++)
        {
            double v = 0.5 * blockScales[j] / unit;
            if (v != Math.Floor(v) || v < 1 || v > GridMax) return false;
            s[j] = (int)v;
        }
        step = (float)unit;
        return true;
    }

    /// <summary>Decodes row <paramref name="r"/> into <paramref name="row"/> (Cols values): the scalar reference every packed format and kernel is tested against.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="r"/> is not a row.</exception>
    /// <exception cref="ArgumentException"><paramref name="row"/> is shorter than Cols.</exception>
    public void DequantizeRow(int r, Span<float> row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(r);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(r, Rows);
        if (row.Length < Cols) throw new ArgumentException($"row holds {row.Length} values, expected {Cols}.", nameof(row));
        Span<int> v = stackalloc int[BlockLength];
        int blocks = Blocks;
        for (int t = 0; t < blocks; t++)
        {
            DoubledCoordinates(U.AsSpan((r * blocks + t) * BlockLength, BlockLength), Q, v);
            float half = 0.5f * RowScale[r] * BlockScales[ScaleIndex[r * blocks + t]];
            int n = Math.Min(BlockLength, Cols - BlockLength * t);
            for (int i = 0; i < n; i++) row[BlockLength * t + i] = half * v[i];
        }
    }
}
