using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Gosset.Kernels;

namespace Gosset.Llm.Inference;

/// <summary>
/// y = W·x for a matrix of 16-bit floats (bf16 or f16; the classifier at source precision): each row is widened in
/// registers and multiplied at once (no float copy of the row), four rows per pass for one token, four tokens per pass
/// over a row for a batch, rows split over threads. Sixteen 16-bit values are loaded as eight 32-bit words, so the even
/// entries are one shift (bf16) or mask away and the odd ones one mask (or shift): x is reordered once per call to match.
/// Summation order is fixed (16 lanes, a fixed pairwise reduction, the tail last), so the vector path equals
/// <see cref="MultiplyReference"/> bit for bit.
/// </summary>
internal static class Half16Gemv
{
    /// <summary>Logical accumulator lanes of one (row, token) dot product: two Vector256 of floats.</summary>
    public const int Lanes = 16;
    private const uint TwoPow112 = 0x77800000; // 2^112: rescales an f16 exponent field placed in a float32

    /// <summary>y[t·rows + r] = Σ_c W[r, c]·x[t·cols + c] for every row r and token t &lt; tokens.</summary>
    public static void Multiply(ReadOnlySpan<ushort> w, TableType type, int rows, int cols, ReadOnlySpan<float> x, Span<float> y, int tokens, int threads = 0)
    {
        Check(w, type, rows, cols, x, y, tokens);
        if (!Vector256.IsHardwareAccelerated) { MultiplyReference(w, type, rows, cols, x, y, tokens); return; }
        // x reordered to the lane layout: per 16-chunk, the 8 even entries then the 8 odd ones (the tail as is).
        float[] rented = System.Buffers.ArrayPool<float>.Shared.Rent(tokens * cols);
        var xr = rented.AsSpan(0, tokens * cols);
        int n16 = cols / Lanes * Lanes;
        for (int t = 0; t < tokens; t++)
        {
            var src = x.Slice(t * cols, cols);
            var dst = xr.Slice(t * cols, cols);
            for (int c = 0; c < n16; c++) dst[c - c % Lanes + Lane(c)] = src[c];
            src[n16..].CopyTo(dst[n16..]);
        }
        try { Run(w, type == TableType.F16, rows, cols, xr, y, tokens, threads); }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(rented); }
    }

    private static void Run(ReadOnlySpan<ushort> w, bool f16, int rows, int cols, ReadOnlySpan<float> x, Span<float> y, int tokens, int threads)
    {
        unsafe
        {
            fixed (ushort* wp = w)
            fixed (float* xp = x, yp = y)
            {
                nint wa = (nint)wp, xa = (nint)xp, ya = (nint)yp; // pinned for the duration of the loop below
                RowParallel.For(rows, threads, (r0, r1) => RowRange((ushort*)wa, f16, r0, r1, rows, cols, (float*)xa, (float*)ya, tokens));
            }
        }
    }

    /// <summary>The scalar specification: per (row, token), the first ⌊cols/16⌋·16 entries are accumulated with fused
    /// multiply-adds into 16 lanes, entry c into lane <see cref="Lane"/>(c) (even entries of a 16-chunk in lanes 0–7, odd ones
    /// in 8–15, as the vector path loads them); lanes are reduced pairwise (j + 8, j + 4, then (0+2)+(1+3)); the tail follows.</summary>
    public static void MultiplyReference(ReadOnlySpan<ushort> w, TableType type, int rows, int cols, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        Check(w, type, rows, cols, x, y, tokens);
        Span<float> acc = stackalloc float[Lanes];
        int n16 = cols / Lanes * Lanes;
        for (int t = 0; t < tokens; t++)
            for (int r = 0; r < rows; r++)
            {
                var row = w.Slice(r * cols, cols);
                var xs = x.Slice(t * cols, cols);
                acc.Clear();
                for (int c = 0; c < n16; c++) acc[Lane(c)] = MathF.FusedMultiplyAdd(Widen(row[c], type), xs[c], acc[Lane(c)]);
                for (int j = 0; j < 8; j++) acc[j] += acc[j + 8];
                for (int j = 0; j < 4; j++) acc[j] += acc[j + 4];
                float s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
                for (int c = n16; c < cols; c++) s = MathF.FusedMultiplyAdd(Widen(row[c], type), xs[c], s);
                y[t * rows + r] = s;
            }
    }

    /// <summary>Accumulator lane of entry <paramref name="c"/>: even entries of each 16-chunk first, then odd ones.</summary>
    public static int Lane(int c) => (c & 1) == 0 ? (c % Lanes) / 2 : 8 + (c % Lanes) / 2;

    /// <summary>One 16-bit value as float32 (exact): bf16 is the top half of a float32; f16 through <see cref="Half"/>.</summary>
    public static float Widen(ushort h, TableType type) =>
        type == TableType.BF16 ? BitConverter.UInt32BitsToSingle((uint)h << 16) : (float)BitConverter.UInt16BitsToHalf(h);

    private static void Check(ReadOnlySpan<ushort> w, TableType type, int rows, int cols, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        if (type == TableType.F32) throw new ArgumentException("16-bit weights need F16 or BF16", nameof(type));
        if (rows < 0 || cols < 1 || tokens < 1) throw new ArgumentException("rows, cols and tokens must be positive");
        if (w.Length < (long)rows * cols) throw new ArgumentException($"w holds {w.Length} values, rows·cols = {(long)rows * cols} expected", nameof(w));
        if (x.Length < (long)tokens * cols) throw new ArgumentException($"x holds {x.Length} values, tokens·cols = {(long)tokens * cols} expected", nameof(x));
        if (y.Length < (long)tokens * rows) throw new ArgumentException($"y holds {y.Length} values, tokens·rows = {(long)tokens * rows} expected", nameof(y));
    }

    private static unsafe void RowRange(ushort* w, bool f16, int r0, int r1, int rows, int cols, float* x, float* y, int tokens)
    {
        int r = r0;
        if (tokens == 1)
        {
            // One token (decode): four rows per pass give four independent FMA chains and share the loads of x.
            for (; r + 4 <= r1; r += 4) Dot4Rows(w + (long)r * cols, cols, f16, x, y + r);
            for (; r < r1; r++) y[r] = Dot(w + (long)r * cols, cols, f16, x);
            return;
        }
        // A batch (prefill): the row stays in L1 while four tokens at a time read it.
        for (; r < r1; r++)
        {
            ushort* row = w + (long)r * cols;
            int t = 0;
            for (; t + 4 <= tokens; t += 4) Dot4Tokens(row, cols, f16, x + (long)t * cols, y + (long)t * rows + r, rows);
            for (; t < tokens; t++) y[(long)t * rows + r] = Dot(row, cols, f16, x + (long)t * cols);
        }
    }

    /// <summary>16 values as 8 words: lo = the even entries (low halves), hi = the odd ones (high halves), widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Load16(ushort* p, bool f16, out Vector256<float> lo, out Vector256<float> hi)
    {
        var v = Vector256.Load((uint*)p);
        if (f16) { lo = FromHalfBits(v & Vector256.Create(0xFFFFu)); hi = FromHalfBits(Vector256.ShiftRightLogical(v, 16)); }
        else { lo = Vector256.ShiftLeft(v, 16).AsSingle(); hi = (v & Vector256.Create(0xFFFF0000u)).AsSingle(); }
    }

    /// <summary>f16 bit patterns (in 32-bit lanes) to float32, exactly: the magnitude bits moved to the float32 position and
    /// scaled by 2^112 (normals and subnormals alike), all-ones exponents mapped to infinity / NaN, the sign put back.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> FromHalfBits(Vector256<uint> h)
    {
        var mag = (h & Vector256.Create(0x7FFFu)) << 13;
        var f = mag.AsSingle() * Vector256.Create(TwoPow112).AsSingle();
        var special = Vector256.Equals(h & Vector256.Create(0x7C00u), Vector256.Create(0x7C00u));
        f = Vector256.ConditionalSelect(special.AsSingle(), (mag | Vector256.Create(0x7F800000u)).AsSingle(), f);
        return (f.AsUInt32() | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Reduce(Vector256<float> lo, Vector256<float> hi)
    {
        var s8 = lo + hi;
        var s4 = s8.GetLower() + s8.GetUpper();
        return (s4[0] + s4[2]) + (s4[1] + s4[3]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe float Tail(ushort* row, int cols, bool f16, float* x, float s)
    {
        var type = f16 ? TableType.F16 : TableType.BF16;
        for (int c = cols / Lanes * Lanes; c < cols; c++) s = MathF.FusedMultiplyAdd(Widen(row[c], type), x[c], s);
        return s;
    }

    private static unsafe float Dot(ushort* row, int cols, bool f16, float* x)
    {
        Vector256<float> al = default, ah = default;
        int n16 = cols / Lanes * Lanes;
        for (int c = 0; c < n16; c += Lanes)
        {
            Load16(row + c, f16, out var wl, out var wh);
            al = Vector256.FusedMultiplyAdd(wl, Vector256.Load(x + c), al);
            ah = Vector256.FusedMultiplyAdd(wh, Vector256.Load(x + c + 8), ah);
        }
        return Tail(row, cols, f16, x, Reduce(al, ah));
    }

    private static unsafe void Dot4Rows(ushort* w, int cols, bool f16, float* x, float* y)
    {
        Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        ushort* w1 = w + cols, w2 = w1 + cols, w3 = w2 + cols;
        int n16 = cols / Lanes * Lanes;
        for (int c = 0; c < n16; c += Lanes)
        {
            var xl = Vector256.Load(x + c);
            var xh = Vector256.Load(x + c + 8);
            Load16(w + c, f16, out var l, out var h);
            a0 = Vector256.FusedMultiplyAdd(l, xl, a0); b0 = Vector256.FusedMultiplyAdd(h, xh, b0);
            Load16(w1 + c, f16, out l, out h);
            a1 = Vector256.FusedMultiplyAdd(l, xl, a1); b1 = Vector256.FusedMultiplyAdd(h, xh, b1);
            Load16(w2 + c, f16, out l, out h);
            a2 = Vector256.FusedMultiplyAdd(l, xl, a2); b2 = Vector256.FusedMultiplyAdd(h, xh, b2);
            Load16(w3 + c, f16, out l, out h);
            a3 = Vector256.FusedMultiplyAdd(l, xl, a3); b3 = Vector256.FusedMultiplyAdd(h, xh, b3);
        }
        y[0] = Tail(w, cols, f16, x, Reduce(a0, b0));
        y[1] = Tail(w1, cols, f16, x, Reduce(a1, b1));
        y[2] = Tail(w2, cols, f16, x, Reduce(a2, b2));
        y[3] = Tail(w3, cols, f16, x, Reduce(a3, b3));
    }

    private static unsafe void Dot4Tokens(ushort* row, int cols, bool f16, float* x, float* y, int rows)
    {
        Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        float* x1 = x + cols, x2 = x1 + cols, x3 = x2 + cols;
        int n16 = cols / Lanes * Lanes;
        for (int c = 0; c < n16; c += Lanes)
        {
            Load16(row + c, f16, out var l, out var h);
            a0 = Vector256.FusedMultiplyAdd(l, Vector256.Load(x + c), a0); b0 = Vector256.FusedMultiplyAdd(h, Vector256.Load(x + c + 8), b0);
            a1 = Vector256.FusedMultiplyAdd(l, Vector256.Load(x1 + c), a1); b1 = Vector256.FusedMultiplyAdd(h, Vector256.Load(x1 + c + 8), b1);
            a2 = Vector256.FusedMultiplyAdd(l, Vector256.Load(x2 + c), a2); b2 = Vector256.FusedMultiplyAdd(h, Vector256.Load(x2 + c + 8), b2);
            a3 = Vector256.FusedMultiplyAdd(l, Vector256.Load(x3 + c), a3); b3 = Vector256.FusedMultiplyAdd(h, Vector256.Load(x3 + c + 8), b3);
        }
        y[0] = Tail(row, cols, f16, x, Reduce(a0, b0));
        y[rows] = Tail(row, cols, f16, x1, Reduce(a1, b1));
        y[2L * rows] = Tail(row, cols, f16, x2, Reduce(a2, b2));
        y[3L * rows] = Tail(row, cols, f16, x3, Reduce(a3, b3));
    }
}
