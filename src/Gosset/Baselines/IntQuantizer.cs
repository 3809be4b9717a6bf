using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Gosset.Baselines;

/// <summary>How the clip range (the largest representable magnitude) of a group is chosen.</summary>
public enum IntClipping
{
    /// <summary>The clip range is the group's largest magnitude: nothing is clipped.</summary>
    AbsMax,
    /// <summary>
    /// Per group, the clip ratio r ∈ {0.30, 0.31, …, 1.00} of the absmax that minimises the group's
    /// squared error (ratio 1.00 is a candidate, so never worse than <see cref="AbsMax"/>).
    /// </summary>
    MseOptimal,
}

/// <summary>Where the reconstruction levels of the symmetric uniform quantizer lie.</summary>
public enum IntLevels
{
    /// <summary>
    /// All 2^b levels ±s/2, ±3s/2, …, ±(2^b−1)s/2 (no level at zero). The default: for the same clip
    /// range the step is 2c/(2^b−1) instead of 2c/(2^b−2), so the mean squared error is lower
    /// (markedly at 2–3 bits); a test measures this on N(0,1). Measured on 2²¹ N(0,1) samples,
    /// groups of 128, absmax scaling: MSE 0.303 vs 0.586 (2 bits), 0.0119 vs 0.0137 (4 bits),
    /// 4.13e-5 vs 4.17e-5 (8 bits) for mid-rise vs mid-tread; with MSE-optimal clipping 0.116 vs
    /// 0.187, 0.00985 vs 0.0111, 4.10e-5 vs 4.14e-5.
    /// </summary>
    MidRise,
    /// <summary>
    /// The 2^b−1 levels k·s, k = −(2^(b−1)−1) … 2^(b−1)−1 (zero is exact, one code is unused), as in
    /// common symmetric INT-b formats. Preferable when exact zeros matter (sparse data).
    /// </summary>
    MidTread,
}

/// <summary>
/// Scalar INT-b quantization with one scale per group of consecutive entries, the standard baseline
/// for low-bit weights and activations. Each group of <see cref="GroupSize"/> entries (the last
/// may be shorter) gets a step s stored as IEEE fp16; each entry is stored as a b-bit code.
/// </summary>
/// <remarks>
/// <para>The step is rounded <em>up</em> to the next fp16 value before it is used, so the quantizer
/// and the decoder use the same step (decoding is exact and deterministic) and the absmax entry
/// stays inside the representable range. Every reconstruction is an odd (mid-rise) or plain
/// (mid-tread) integer of at most 9 bits times an fp16 value, hence exact in float32.</para>
/// <para>Storage: 16 bits per group plus b bits per entry (<see cref="TotalBits(int)"/>); the packed layout is
/// <see cref="Gosset.Codes.IntCodec"/>'s.</para>
/// <para>A group of zeros has step 0 and decodes to zeros. A step above the fp16 maximum (65504)
/// is an error; steps below the fp16 normal range lose relative precision.</para>
/// </remarks>
public sealed class IntQuantizer
{
    /// <summary>Number of clip ratios searched by <see cref="IntClipping.MseOptimal"/> (0.30 … 1.00 in steps of 0.01).</summary>
    public const int ClipGridSize = 71;

    private readonly int _maxCode;      // 2^b − 1 (mid-rise) or 2^b − 2 (mid-tread)
    private readonly float _halfRange;  // clip / step: (2^b − 1)/2 (mid-rise) or 2^(b−1) − 1 (mid-tread)

    /// <summary>Bits per entry, 2 … 8.</summary>
    public int Bits { get; }

    /// <summary>Entries per group sharing one fp16 scale (the last group may be shorter).</summary>
    public int GroupSize { get; }

    /// <summary>How each group's clip range is chosen.</summary>
    public IntClipping Clipping { get; }

    /// <summary>Where the levels lie.</summary>
    public IntLevels Levels { get; }

    /// <summary>Creates a quantizer.</summary>
    /// <exception cref="GossetException"><paramref name="bits"/> is outside 2..8 or <paramref name="groupSize"/> &lt; 1.</exception>
    public IntQuantizer(int bits, int groupSize = 128, IntClipping clipping = IntClipping.AbsMax, IntLevels levels = IntLevels.MidRise)
    {
        if (bits is < 2 or > 8) throw new GossetException($"INT quantizer bits must be 2..8, got {bits}.");
        if (groupSize < 1) throw new GossetException($"INT quantizer group size must be at least 1, got {groupSize}.");
        if (!Enum.IsDefined(clipping)) throw new GossetException($"Unknown clipping mode {clipping}.");
        if (!Enum.IsDefined(levels)) throw new GossetException($"Unknown level placement {levels}.");
        Bits = bits;
        GroupSize = groupSize;
        Clipping = clipping;
        Levels = levels;
        _maxCode = levels == IntLevels.MidRise ? (1 << bits) - 1 : (1 << bits) - 2;
        _halfRange = levels == IntLevels.MidRise ? ((1 << bits) - 1) / 2f : (1 << (bits - 1)) - 1;
    }

    /// <summary>A short name such as <c>int4-g128</c>, <c>int4-g128-mse</c> or <c>int4-g128-tread</c>.</summary>
    public string Name => $"int{Bits}-g{GroupSize}{(Clipping == IntClipping.MseOptimal ? "-mse" : "")}{(Levels == IntLevels.MidTread ? "-tread" : "")}";

    /// <summary>Number of groups (scales) for a vector of <paramref name="length"/> entries.</summary>
    public int GroupCount(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return (int)(((long)length + GroupSize - 1) / GroupSize);
    }

    /// <summary>Exact storage in bits: b per entry plus 16 per group.</summary>
    public long TotalBits(int length) => (long)length * Bits + 16L * GroupCount(length);

    /// <summary>Stored bits divided by entries (<see cref="TotalBits(int)"/> / length).</summary>
    public double BitsPerEntry(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        return (double)TotalBits(length) / length;
    }

    /// <summary>The largest code: 2^b − 1 (mid-rise) or 2^b − 2 (mid-tread).</summary>
    public int MaxCode => _maxCode;

    /// <summary>
    /// Quantizes <paramref name="x"/>: one code (0 … 2^b−1) per entry into <paramref name="codes"/>
    /// and one fp16 step per group into <paramref name="scales"/> (length <see cref="GroupCount"/>).
    /// </summary>
    /// <exception cref="GossetException">An entry is NaN or ±Inf, or a step overflows fp16.</exception>
    public void Quantize(ReadOnlySpan<float> x, Span<byte> codes, Span<Half> scales)
    {
        int groups = GroupCount(x.Length);
        if (codes.Length < x.Length) throw new ArgumentException($"codes needs {x.Length} entries, has {codes.Length}.", nameof(codes));
        if (scales.Length < groups) throw new ArgumentException($"scales needs {groups} entries, has {scales.Length}.", nameof(scales));
        for (int g = 0; g < groups; g++)
        {
            int start = g * GroupSize, len = Math.Min(GroupSize, x.Length - start);
            var xs = x.Slice(start, len);
            Half h = ChooseStep(xs);
            scales[g] = h;
            double inv = Inverse((float)h);
            for (int i = 0; i < len; i++) codes[start + i] = (byte)CodeInv(xs[i], inv);
        }
    }

    /// <summary>Reconstructs entries from codes and per-group steps (the exact inverse of the stored form).</summary>
    /// <exception cref="GossetException">A code or a step is invalid (corrupt data).</exception>
    public void Dequantize(ReadOnlySpan<byte> codes, ReadOnlySpan<Half> scales, Span<float> y)
    {
        int groups = GroupCount(y.Length);
        if (codes.Length < y.Length) throw new ArgumentException($"codes needs {y.Length} entries, has {codes.Length}.", nameof(codes));
        if (scales.Length < groups) throw new ArgumentException($"scales needs {groups} entries, has {scales.Length}.", nameof(scales));
        for (int g = 0; g < groups; g++)
        {
            int start = g * GroupSize, len = Math.Min(GroupSize, y.Length - start);
            float s = CheckStep(scales[g]);
            for (int i = 0; i < len; i++)
            {
                int c = codes[start + i];
                if (c > _maxCode) throw new GossetException($"INT code {c} at entry {start + i} exceeds the largest code {_maxCode}.");
                y[start + i] = Level(c, s);
            }
        }
    }

    /// <summary>Quantizes and reconstructs in one pass, without storing codes (<paramref name="y"/> may alias <paramref name="x"/>).</summary>
    public void QuantizeDequantize(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length != x.Length) throw new ArgumentException($"Output has {y.Length} entries, input {x.Length}.", nameof(y));
        int groups = GroupCount(x.Length);
        for (int g = 0; g < groups; g++)
        {
            int start = g * GroupSize, len = Math.Min(GroupSize, x.Length - start);
            float s = (float)ChooseStep(x.Slice(start, len));
            double inv = Inverse(s);
            for (int i = start; i < start + len; i++) y[i] = Level(CodeInv(x[i], inv), s);
        }
    }

    /// <summary>
    /// Quantizes and reconstructs every column of <paramref name="m"/> as its own vector (groups
    /// never cross columns), returning a new matrix. Stored size: <c>Cols * TotalBits(Rows)</c>.
    /// </summary>
    public Gosset.Matrix.DenseMatrix QuantizeDequantizeColumns(Gosset.Matrix.DenseMatrix m)
    {
        ArgumentNullException.ThrowIfNull(m);
        var result = new Gosset.Matrix.DenseMatrix(m.Rows, m.Cols);
        for (int j = 0; j < m.Cols; j++) QuantizeDequantize(m.Column(j), result.Column(j));
        return result;
    }

    /// <summary>Exact stored bits of a rows×cols matrix coded column by column: <c>cols * TotalBits(rows)</c>.</summary>
    public long TotalBits(int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        return cols * TotalBits(rows);
    }

    /// <summary>The value of code <paramref name="code"/> for step <paramref name="step"/> (exact in float32 for fp16 steps).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Level(int code, float step)
        => Levels == IntLevels.MidRise
            ? (2 * code - _maxCode) * (0.5f * step)
            : (code - (_maxCode >> 1)) * step;

    /// <summary>The nearest code to <paramref name="x"/> for step <paramref name="step"/> (saturating at the clip range).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Code(float x, float step) => step == 0f ? (_maxCode + 1) >> 1 : CodeInv(x, 1.0 / step);

    // Nearest code given 1/step (step > 0); callers hoist the reciprocal out of their loops.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int CodeInv(float x, double invStep)
    {
        double t = x * invStep;
        double c = Levels == IntLevels.MidRise
            ? Math.Floor(t + (_halfRange + 0.5))
            : Math.Round(t, MidpointRounding.ToEven) + (_maxCode >> 1);
        return (int)Math.Clamp(c, 0, _maxCode);
    }

    // 1/step, or +0 for a zero step, for which CodeInv returns the middle code (value 0).
    private double Inverse(float step) => step == 0f ? 0.0 : 1.0 / step;

    /// <summary>
    /// The fp16 step for one group: clip range ÷ (levels' half range), rounded up to fp16. With
    /// <see cref="IntClipping.MseOptimal"/> the clip range is searched over the ratio grid.
    /// </summary>
    /// <exception cref="GossetException">An entry is NaN or ±Inf, or the step exceeds the fp16 range.</exception>
    public Half ChooseStep(ReadOnlySpan<float> group)
    {
        float absMax = 0f;
        for (int i = 0; i < group.Length; i++)
        {
            float v = group[i];
            if (!float.IsFinite(v)) throw new GossetException($"Cannot quantize {v}: only finite values can be quantized.");
            absMax = MathF.Max(absMax, MathF.Abs(v));
        }
        if (absMax == 0f) return Half.Zero;
        Half best = StepFor(absMax);
        // Below fp16's normal range the rounded-up step can dwarf the group (1e-39 entries get a
        // 6e-8 step, and mid-rise levels are ±step/2): decoding to zeros is then the better answer.
        if (best < Half.CreateTruncating(6.103515625e-05f) && GroupError(group, 0f) <= GroupError(group, (float)best)) return Half.Zero;
        if (Clipping == IntClipping.AbsMax) return best;
        // Search in float32 SIMD (fast, approximate sums), then confirm the winner against absmax
        // with the exact double-precision error, so the result is never worse than absmax.
        Half absMaxStep = best;
        float bestErr = SearchError(group, (float)best);
        for (int k = ClipGridSize - 2; k >= 0; k--)
        {
            float ratio = (30 + k) / 100f;
            Half h = StepFor(absMax * ratio);
            if (h == best) continue;
            float err = SearchError(group, (float)h);
            if (err < bestErr) { bestErr = err; best = h; }
        }
        if (best != absMaxStep && GroupError(group, (float)best) > GroupError(group, (float)absMaxStep)) best = absMaxStep;
        return best;
    }

    /// <summary>
    /// Squared error of a group for a step, computed with float32 vectors: the same rule as
    /// <see cref="Code"/> and <see cref="Level"/> up to float rounding. Used only to rank clip candidates.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private float SearchError(ReadOnlySpan<float> group, float step)
    {
        float inv = 1f / step;
        bool rise = Levels == IntLevels.MidRise;
        // mid-rise: c = floor(t + h + ½) ∈ [0, 2h], value (c − h)·s; mid-tread: c = round(t) ∈ [−h, h], value c·s.
        float h = _halfRange;
        float lo = rise ? 0f : -h, hi = rise ? 2 * h : h, shift = rise ? h + 0.5f : 0.5f, back = rise ? h : 0f;
        int i = 0;
        var acc = Vector<float>.Zero;
        if (Vector.IsHardwareAccelerated)
        {
            var vInv = new Vector<float>(inv);
            var vStep = new Vector<float>(step);
            var vLo = new Vector<float>(lo);
            var vHi = new Vector<float>(hi);
            var vShift = new Vector<float>(shift);
            var vBack = new Vector<float>(back);
            for (; i <= group.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var x = new Vector<float>(group.Slice(i));
                var c = Vector.Min(Vector.Max(Vector.Floor(x * vInv + vShift), vLo), vHi);
                var d = x - (c - vBack) * vStep;
                acc += d * d;
            }
        }
        float e = Vector.Sum(acc);
        for (; i < group.Length; i++)
        {
            float x = group[i];
            float c = Math.Clamp(MathF.Floor(x * inv + shift), lo, hi);
            float d = x - (c - back) * step;
            e += d * d;
        }
        return e;
    }

    /// <summary>Sum of squared reconstruction errors of a group for a given step.</summary>
    public double GroupError(ReadOnlySpan<float> group, float step)
    {
        double e = 0, inv = Inverse(step);
        for (int i = 0; i < group.Length; i++)
        {
            double d = group[i] - Level(CodeInv(group[i], inv), step);
            e += d * d;
        }
        return e;
    }

    private Half StepFor(float clip)
    {
        float s = clip / _halfRange;
        Half h = (Half)s;
        if ((float)h < s) h = BitConverter.UInt16BitsToHalf((ushort)(BitConverter.HalfToUInt16Bits(h) + 1));
        if (Half.IsInfinity(h)) throw new GossetException($"INT group step {s} exceeds the fp16 range (max 65504); values of magnitude {clip} are too large for this format.");
        return h;
    }

    private static float CheckStep(Half h)
    {
        if (!Half.IsFinite(h) || h < Half.Zero) throw new GossetException($"Invalid INT group step {h} (corrupt data).");
        return (float)h;
    }

}
