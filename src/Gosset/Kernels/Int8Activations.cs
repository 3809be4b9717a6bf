using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Gosset.Kernels;

/// <summary>
/// Activations as the integer E8 kernels consume them: per vector, int8 values x̃ and one fp32 scale
/// per 8-block, x[8t + i] ≈ Scales[t]·x̃[8t + i]. Filled by <see cref="Quantize"/> (W4A8: absmax per
/// block) or directly by an activation encoder (W4A4: x̃ the doubled E8 coordinates, Scales the
/// block scale / 2).
/// </summary>
public sealed class Int8Activations
{
    /// <summary>Entries per block.</summary>
    public const int BlockLength = 8;

    /// <summary>Number of vectors.</summary>
    public int Batch { get; }
    /// <summary>Entries per vector.</summary>
    public int Cols { get; }
    /// <summary>Blocks per vector: ⌈Cols / 8⌉.</summary>
    public int Blocks => (Cols + BlockLength - 1) / BlockLength;
    /// <summary>[Batch][Blocks·8] int8 values; entries at or beyond Cols must stay 0.</summary>
    public sbyte[] Values { get; }
    /// <summary>[Batch][Blocks] fp32 block scales (finite).</summary>
    public float[] Scales { get; }

    /// <summary>Zeroed activations for <paramref name="batch"/> vectors of <paramref name="cols"/> entries.</summary>
    public Int8Activations(int batch, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        Batch = batch; Cols = cols;
        Values = new sbyte[(long)batch * Blocks * BlockLength];
        Scales = new float[(long)batch * Blocks];
    }

    /// <summary>The value of entry i of vector c: Scales·x̃.</summary>
    public float this[int c, int i] => Scales[c * Blocks + i / BlockLength] * Values[c * Blocks * BlockLength + i];

    /// <summary>W4A8 rounding of x [batch][cols]: per 8-block scale absmax/127, x̃ = round(x/scale) ∈ [−127, 127].</summary>
    /// <exception cref="ArgumentException">x is shorter than batch·cols.</exception>
    public static Int8Activations Quantize(ReadOnlySpan<float> x /* [batch][cols] */, int batch, int cols)
    {
        var a = new Int8Activations(batch, cols);
        if (x.Length < (long)batch * cols) throw new ArgumentException($"x holds {x.Length} values, expected batch·cols = {batch * cols}.", nameof(x));
        Span<float> blk = stackalloc float[BlockLength];
        int nb = a.Blocks;
        for (int c = 0; c < batch; c++)
            for (int t = 0; t < nb; t++)
            {
                blk.Clear();
                int n = Math.Min(BlockLength, cols - BlockLength * t);
                x.Slice(c * cols + BlockLength * t, n).CopyTo(blk);
                a.Scales[c * nb + t] = QuantizeBlock(blk, a.Values.AsSpan((c * nb + t) * BlockLength, BlockLength));
            }
        return a;
    }

    /// <summary>One block: returns the scale absmax/127 (0 for a zero or non-finite block) and writes x̃.</summary>
    public static float QuantizeBlock(ReadOnlySpan<float> x8, Span<sbyte> q8)
    {
        float amax = 0f;
        for (int i = 0; i < BlockLength; i++) amax = MathF.Max(amax, MathF.Abs(x8[i]));
        if (!(amax > 0f) || !float.IsFinite(amax)) { q8[..BlockLength].Clear(); return 0f; }
        float inv = 127f / amax;
        for (int i = 0; i < BlockLength; i++) q8[i] = (sbyte)Math.Clamp(MathF.Round(x8[i] * inv), -127f, 127f);
        return amax / 127f;
    }
}


/// <summary>The optional parts of a grouped <see cref="E8ActivationLayout"/> (<see cref="E8ActivationLayout.Grouped"/>).</summary>
[Flags]
internal enum GroupedParts
{
    /// <summary><c>Q</c> and <c>Xg</c> only.</summary>
    None = 0,
    /// <summary><c>E0</c> / <c>E1</c>, read by the fused small-batch kernels.</summary>
    AdditiveTerms = 1,
    /// <summary><c>GemmPanel</c>, read by the pre-decoding GEMM.</summary>
    GemmPanel = 2,
    /// <summary><c>Panel</c> and <c>XgPanel</c>, read by the fused small-batch kernels.</summary>
    Panel = 4,
}

/// <summary>
/// Activations rearranged once per product for the E8 kernels (pooled buffers; dispose to return them).
/// Cp = groups·256 padded columns, nb = groups·32 blocks per vector.
/// <list type="bullet">
/// <item>int8: <c>Q[v][256g + 4B + j] = x̃[256g + 8B + 2j]</c>, <c>Q[v][256g + 128 + 4B + j] = x̃[256g + 8B + 2j + 1]</c>
/// (the lanes of the digit bytes), <c>A = −q·Σx̃</c>, <c>C = Σx̃ − 2x̃₀</c> per block, <c>Xs</c> the block scale.</item>
/// <item>fp32: <c>X2[v][256g + 32i + B] = 2·x[256g + 8B + i]</c>, <c>Af = −q·Σx</c>, <c>Cf = Σx − 2x₀</c> (sums in a fixed order).</item>
/// </list>
/// With these, a block's Σᵢ vᵢxᵢ = 2Σuᵢxᵢ + A + p·C (v the doubled E8 coordinates, p the digit parity).
/// </summary>
internal sealed class E8ActivationLayout : IDisposable
{
    public readonly int Batch, Groups, PaddedCols, Blocks;
    public readonly bool IsFloat, IsGrouped;
    public sbyte[] Q = []; public int[] A = [], C = []; public float[] Xs = [];
    public float[] X2 = [], Af = [], Cf = [];
    public int[] E0 = [], E1 = []; public float[] Xg = [];
    /// <summary>
    /// Grouped layout for the pre-decoding GEMM (<see cref="GroupedParts.GemmPanel"/>), for a kernel of L int32 lanes: the vectors
    /// in blocks of four (the last block the rest), a block of vc vectors from v0·groups records on, its group g g·vc records on,
    /// each <see cref="GemmRecord"/> bytes a vector; inside a block's group, lane set J (blocks A = J·L + l and B = (J + 16/L)·L + l
    /// in lane l) from 20L·vc·J bytes, its vector v 20L·v bytes on: five vectors of 4L bytes, the int8 values of digits 0 and 2
    /// of block A then of block B in each lane, likewise digits 4 and 6, 1 and 3, 5 and 7, and the 16-bit terms −q·Σx̃ − x̃₀ of A
    /// (low half) and B (high half). Every operand of a block is then the kernel's pointer plus a constant. The kernel's decoded
    /// digits carry the parity (w = 2u + p·d, plus 1 on digit 0), so Σᵢ vᵢx̃ᵢ = Σᵢ wᵢx̃ᵢ − q·Σx̃ − x̃₀ is one 16-bit sum per block.
    /// </summary>
    public byte[] GemmPanel = [];

    /// <summary>Bytes of one vector's group in <see cref="GemmPanel"/>: 256 int8 values and 32 16-bit terms.</summary>
    public const int GemmRecord = 320;
    /// <summary>
    /// Grouped layouts for the fused small-batch kernels (<see cref="GroupedParts.Panel"/>), for a kernel of L int32 lanes: the
    /// vectors in blocks of up to four (<see cref="VectorBlock"/>), a block's groups one after another, each
    /// <see cref="PanelRecord"/> bytes a vector. A group's chunks of L blocks come in the order the kernel's lane sets read them
    /// (lane set J: chunks J and J + 16/L), each lane set's for every vector of the block together; a chunk is 4L bytes of
    /// even-digit values, 4L of odd-digit values and L additive terms (<see cref="PanelOffset"/>). The term is one per block,
    /// whatever its parity: the 16-bit halves −q·Σx̃ − x̃₀ (digits 0–3) and −q·Σx̃ (4–7), because those kernels add the parity into
    /// the decoded digits (w = 2u + p·d plus 1 on digit 0, so that w ≥ 0: Σᵢ vᵢx̃ᵢ = Σᵢ wᵢx̃ᵢ − q·Σx̃ − x̃₀). Block v0 of vc
    /// vectors starts at v0·groups records, its group g g·vc records on. <c>XgPanel</c> holds Xg in the same order. A kernel
    /// then reaches every vector of a group at constant offsets from one pointer (with a pointer and a stride per vector and
    /// array, the address arithmetic took about a third of the batch-4 loop's instructions on 16-register machines), a lane set
    /// reads only its half of the lines, and no vector selects between two terms.
    /// </summary>
    public byte[] Panel = []; public float[] XgPanel = [];

    /// <summary>Bytes of one vector's group in <see cref="Panel"/>: 256 int8 values and 32 additive terms.</summary>
    public const int PanelRecord = 384;

    /// <summary>Byte offset of chunk s (0, 1) of lane set j for vector v (of vc) within a group of <see cref="Panel"/>, for L lanes.</summary>
    public static int PanelOffset(int lanes, int vc, int j, int v, int s) => 24 * lanes * (j * vc + v) + 12 * lanes * s;

    /// <summary>The size of the next block of vectors when <paramref name="left"/> remain: at most four, as even as possible (5 = 3 + 2).</summary>
    public static int VectorBlock(int left) => (left + (left + 3) / 4 - 1) / ((left + 3) / 4);

    private E8ActivationLayout(int batch, int groups, bool isFloat, bool isGrouped = false)
    {
        Batch = batch; Groups = groups; PaddedCols = groups * PackedE8Matrix.GroupLength; Blocks = groups * 32; IsFloat = isFloat; IsGrouped = isGrouped;
    }

    /// <summary>
    /// int8 activations with one absmax scale per 256-group (<see cref="ActivationMode.Int8Group"/>) from x [batch][cols]:
    /// <c>Q</c> as for <see cref="Int"/>, <c>Xg[v][g]</c> = absmax/127 (0 for a zero or non-finite group, whose values are 0),
    /// and what the E8 kernel variant reads besides (<paramref name="parts"/>, from <see cref="E8Kernel.GroupedNeeds"/>): for the
    /// fused kernels per vector and block the 16-bit halves (digits 0–3 low, 4–7 high) of the additive terms of Σᵢ vᵢx̃ᵢ,
    /// <c>E0</c> = −q·Σx̃ (even parity) and <c>E1</c> = E0 + Σdᵢx̃ᵢ (odd parity), d = (−1, 1, …, 1); for the pre-decoding
    /// GEMM its <c>GemmPanel</c>.
    /// </summary>
    /// <param name="x">Activations [batch][cols].</param>
    /// <param name="batch">Vectors.</param>
    /// <param name="cols">Entries per vector.</param>
    /// <param name="groups">Groups of 256 (padded columns / 256).</param>
    /// <param name="q">Nesting ratio of the E8 weights (for E0 / E1).</param>
    /// <param name="parts">The optional parts to compute (none for the int8 × int8 product and the scalar reference).</param>
    /// <param name="lanes">The int32 lanes of the kernel that reads <c>Panel</c> or <c>GemmPanel</c> (4, 8 or 16).</param>
    /// <param name="threads">Threads for the product (≤ 0: all cores); the groups are spread over them when there are enough values.</param>
    /// <exception cref="ArgumentOutOfRangeException">A panel is asked for <paramref name="lanes"/> other than 4, 8 or 16.</exception>
    public static unsafe E8ActivationLayout Grouped(ReadOnlySpan<float> x, int batch, int cols, int groups, int q, GroupedParts parts, int lanes, int threads = 1)
    {
        if ((parts & (GroupedParts.Panel | GroupedParts.GemmPanel)) != 0 && lanes is not (4 or 8 or 16))
            throw new ArgumentOutOfRangeException(nameof(lanes), lanes, "a panel is laid out for 4, 8 or 16 lanes");
        var a = new E8ActivationLayout(batch, groups, false, true);
        a.Q = Rent<sbyte>((long)batch * a.PaddedCols); a.Xg = Rent<float>((long)batch * groups);
        if ((parts & GroupedParts.AdditiveTerms) != 0) { a.E0 = Rent<int>((long)batch * a.Blocks); a.E1 = Rent<int>((long)batch * a.Blocks); }
        if ((parts & GroupedParts.Panel) != 0) { a.Panel = Rent<byte>((long)batch * groups * PanelRecord); a.XgPanel = Rent<float>((long)batch * groups); }
        if ((parts & GroupedParts.GemmPanel) != 0) a.GemmPanel = Rent<byte>((long)batch * groups * GemmRecord);
        fixed (float* xp = x)
        {
            nint at = (nint)xp; // pinned for the parallel loop below
            // Each group is independent (its values in every vector, then its records in the panels), so runs of groups are
            // the work items: at batch 16 and 14336 columns this layout took about 7 % of the product on one thread. A run is
            // 16 groups, so that threads write whole cache lines of each vector's group scales (with runs of 2 groups, 4096
            // columns took 47 µs on two threads against 29 on one at batch 16: ActivationLayoutBenchmarks).
            int runs = (groups + ParallelRunGroups - 1) / ParallelRunGroups;
            if (threads == 1 || runs < 2 || (long)batch * cols < ParallelValues)
                for (int g = 0; g < groups; g++) a.FillGroup((float*)at, cols, g, q, parts, lanes);
            else
                RowParallel.ForEach(runs, i =>
                {
                    for (int g = i * ParallelRunGroups, g1 = Math.Min(groups, g + ParallelRunGroups); g < g1; g++)
                        a.FillGroup((float*)at, cols, g, q, parts, lanes);
                }, threads);
        }
        return a;
    }

    /// <summary>Below this many values (batch · columns) the layout stays on the calling thread.</summary>
    private const long ParallelValues = 32 * 1024;

    /// <summary>Groups per work item of a parallel layout: 16 group scales are one 64-byte line.</summary>
    private const int ParallelRunGroups = 16;

    /// <summary>Group g of every vector of x [batch][cols]: its Q, Xg and additive terms, then its records in the panels asked for.</summary>
    private unsafe void FillGroup(float* x, int cols, int g, int q, GroupedParts parts, int lanes)
    {
        int c0 = 256 * g, n = Math.Clamp(cols - c0, 0, 256);
        for (int v = 0; v < Batch; v++)
        {
            var qd = Q.AsSpan(v * PaddedCols + c0, 256);
            Xg[v * Groups + g] = QuantizeGroup(new ReadOnlySpan<float>(x + (long)v * cols + c0, n), qd);
            if ((parts & GroupedParts.AdditiveTerms) == 0) continue;
            var e = MemoryMarshal.Cast<sbyte, int>(qd[..128]); // block b's entries 0, 2, 4, 6 in lane b
            var o = MemoryMarshal.Cast<sbyte, int>(qd[128..]); // 1, 3, 5, 7
            var e0 = E0.AsSpan(v * Blocks + 32 * g, 32);
            var e1 = E1.AsSpan(v * Blocks + 32 * g, 32);
            for (int b = 0; b < 32; b += 4)
            {
                Vector128<int> eb = Vector128.Create(e[b..]), x0 = LaneBytes.Byte0(eb);
                LaneBytes.BlockSums(eb, Vector128.Create(o[b..]), out var lo, out var hi);
                Vector128<int> e0lo = lo * -q, e0hi = hi * -q;
                LaneBytes.Halves(e0lo, e0hi).CopyTo(e0[b..]);
                LaneBytes.Halves(e0lo + lo - x0 - x0, e0hi + hi).CopyTo(e1[b..]);
            }
        }
        if ((parts & GroupedParts.Panel) != 0) PanelGroup(g, lanes, q);
        if ((parts & GroupedParts.GemmPanel) != 0) GemmPanelGroup(g, lanes, q);
    }

    /// <summary>
    /// One group's int8 values (at most 256; the rest count as 0): returns its scale absmax/127 and writes
    /// <paramref name="q"/>[4B + j] = x̃[8B + 2j], <paramref name="q"/>[128 + 4B + j] = x̃[8B + 2j + 1], x̃ = round(x·127/absmax)
    /// to nearest, ties to even (all 0, scale 0, for a zero or non-finite group).
    /// </summary>
    internal static float QuantizeGroup(ReadOnlySpan<float> x, Span<sbyte> q /* 256 */)
    {
        float amax = x.Length > 0 ? MathF.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(x)) : 0f;
        if (!(amax > 0f) || !float.IsFinite(amax)) { q[..256].Clear(); return 0f; }
        float inv = 127f / amax;
        if (x.Length == 256 && Vector256.IsHardwareAccelerated) QuantizeGroupVector(x, q, inv);
        else QuantizeGroupScalar(x, q, inv);
        return amax / 127f;
    }

    /// <summary>The reference for <see cref="QuantizeGroupVector"/>: entry i goes to 4·(i / 8) + (i / 2) % 4, plus 128 if i is odd.</summary>
    internal static void QuantizeGroupScalar(ReadOnlySpan<float> x, Span<sbyte> q, float inv)
    {
        for (int i = 0; i < 256; i++)
            q[4 * (i >> 3) + ((i >> 1) & 3) + 128 * (i & 1)] = i < x.Length ? (sbyte)Math.Clamp(MathF.Round(x[i] * inv), -127f, 127f) : (sbyte)0;
    }

    /// <summary><see cref="QuantizeGroupScalar"/> on a whole group, four blocks at a time.</summary>
    internal static void QuantizeGroupVector(ReadOnlySpan<float> x, Span<sbyte> q, float inv)
    {
        if (x.Length < 256 || q.Length < 256) throw new ArgumentException("a whole group is 256 values");
        ref float src = ref MemoryMarshal.GetReference(x);
        ref byte dst = ref Unsafe.As<sbyte, byte>(ref MemoryMarshal.GetReference(q));
        var scale = Vector256.Create(inv);
        // Per 128-bit half (two blocks): the even entries first, then the odd ones.
        var split = Vector128.Create((byte)0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
        for (int c = 0; c < 8; c++)
        {
            var i0 = Round(Vector256.LoadUnsafe(ref src, (nuint)(32 * c)), scale);
            var i1 = Round(Vector256.LoadUnsafe(ref src, (nuint)(32 * c + 8)), scale);
            var i2 = Round(Vector256.LoadUnsafe(ref src, (nuint)(32 * c + 16)), scale);
            var i3 = Round(Vector256.LoadUnsafe(ref src, (nuint)(32 * c + 24)), scale);
            var b = Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).AsByte(); // blocks 4c … 4c + 3 in order
            var lo = Vector128.Shuffle(b.GetLower(), split).AsUInt64();
            var hi = Vector128.Shuffle(b.GetUpper(), split).AsUInt64();
            Vector128.Create(lo.GetElement(0), hi.GetElement(0)).AsByte().StoreUnsafe(ref dst, (nuint)(16 * c));
            Vector128.Create(lo.GetElement(1), hi.GetElement(1)).AsByte().StoreUnsafe(ref dst, (nuint)(128 + 16 * c));
        }

        // Same rounding as the scalar reference (to nearest, ties to even); in range, so the native conversion is exact.
        static Vector256<int> Round(Vector256<float> v, Vector256<float> scale)
            => Vector256.ConvertToInt32Native(Vector256.Min(Vector256.Max(Vector256.Round(v * scale), Vector256.Create(-127f)), Vector256.Create(127f)));
    }

    /// <summary>Group g of <see cref="Panel"/> / <see cref="XgPanel"/> from Q and Xg, for a kernel of <paramref name="lanes"/> lanes, with each block's term for nesting ratio <paramref name="q"/>.</summary>
    private void PanelGroup(int g, int lanes, int q)
    {
        int groups = Groups, cp = PaddedCols, per = 16 / lanes;
        var x = Q.AsSpan();
        for (int v0 = 0, left = Batch; left > 0;)
        {
            int vc = VectorBlock(left);
            var rec = Panel.AsSpan((int)(((long)v0 * groups + (long)g * vc) * PanelRecord), vc * PanelRecord);
            for (int v = 0; v < vc; v++)
            {
                XgPanel[(long)v0 * groups + (long)g * vc + v] = Xg[(v0 + v) * groups + g];
                int qv = (v0 + v) * cp + 256 * g; // this vector's group in Q: even digits at 4B + j, odd at 128 + 4B + j
                var e32 = MemoryMarshal.Cast<sbyte, int>(x.Slice(qv, 128));
                var o32 = MemoryMarshal.Cast<sbyte, int>(x.Slice(qv + 128, 128));
                for (int j = 0; j < per; j++)
                    for (int s = 0; s < 2; s++)
                    {
                        int k = (j + s * per) * lanes, o = PanelOffset(lanes, vc, j, v, s);
                        MemoryMarshal.AsBytes(x.Slice(qv + 4 * k, 4 * lanes)).CopyTo(rec[o..]);
                        MemoryMarshal.AsBytes(x.Slice(qv + 128 + 4 * k, 4 * lanes)).CopyTo(rec[(o + 4 * lanes)..]);
                        var terms = MemoryMarshal.Cast<byte, int>(rec.Slice(o + 8 * lanes, 4 * lanes));
                        for (int l = 0; l < lanes; l += 4)
                        {
                            // Block B's digits 0, 2, 4, 6 are lane B of e32, 1, 3, 5, 7 lane B of o32.
                            var eb = Vector128.Create(e32[(k + l)..]);
                            LaneBytes.BlockSums(eb, Vector128.Create(o32[(k + l)..]), out var lo, out var hi);
                            LaneBytes.Halves(lo * -q - LaneBytes.Byte0(eb), hi * -q).CopyTo(terms[l..]);
                        }
                    }
            }
            v0 += vc; left -= vc;
        }
    }

    /// <summary>Group g of <see cref="GemmPanel"/> from Q, for a kernel of <paramref name="lanes"/> lanes, with each block's term for nesting ratio <paramref name="q"/>.</summary>
    private void GemmPanelGroup(int g, int lanes, int q)
    {
        int groups = Groups, cp = PaddedCols, per = 16 / lanes;
        var low = Vector128.Create(0xFFFF);
        for (int v0 = 0; v0 < Batch; v0 += 4)
        {
            int vc = Math.Min(4, Batch - v0);
            var rec = MemoryMarshal.Cast<byte, int>(GemmPanel.AsSpan((int)(((long)v0 * groups + (long)g * vc) * GemmRecord), vc * GemmRecord));
            for (int v = 0; v < vc; v++)
            {
                int qv = (v0 + v) * cp + 256 * g;
                var e32 = MemoryMarshal.Cast<sbyte, int>(Q.AsSpan(qv, 128));       // block b's digits 0, 2 | 4, 6 in lane b
                var o32 = MemoryMarshal.Cast<sbyte, int>(Q.AsSpan(qv + 128, 128)); // 1, 3 | 5, 7
                for (int j = 0; j < per; j++)
                {
                    var set = rec.Slice(5 * lanes * (vc * j + v), 5 * lanes); // slot k (digits 0 2, 4 6, 1 3, 5 7, terms), lane l at L·k + l
                    for (int l = 0; l < lanes; l += 4)
                    {
                        int a = j * lanes + l, b = a + per * lanes; // blocks A (low halves) and B (high halves) of lanes l … l + 3
                        Vector128<int> ea = Vector128.Create(e32[a..]), eb = Vector128.Create(e32[b..]);
                        Vector128<int> oa = Vector128.Create(o32[a..]), ob = Vector128.Create(o32[b..]);
                        ((ea & low) | (eb << 16)).CopyTo(set[l..]);
                        ((ea >>> 16) | (eb & ~low)).CopyTo(set[(lanes + l)..]);
                        ((oa & low) | (ob << 16)).CopyTo(set[(2 * lanes + l)..]);
                        ((oa >>> 16) | (ob & ~low)).CopyTo(set[(3 * lanes + l)..]);
                        LaneBytes.Halves(Term(ea, oa, q), Term(eb, ob, q)).CopyTo(set[(4 * lanes + l)..]);
                    }
                }
            }
        }

        // −q·Σx̃ − x̃₀ of the blocks whose even digits are e and odd digits o.
        static Vector128<int> Term(Vector128<int> e, Vector128<int> o, int q)
        {
            LaneBytes.BlockSums(e, o, out var lo, out var hi);
            return (lo + hi) * -q - LaneBytes.Byte0(e);
        }
    }

    /// <summary>Sums of the signed bytes of each int32 lane (four int8 values packed little-endian), for the blocks' terms.</summary>
    private static class LaneBytes
    {
        /// <summary>Byte 0, sign-extended.</summary>
        public static Vector128<int> Byte0(Vector128<int> w) => (w << 24) >> 24;
        /// <summary>
        /// Per lane, a block's entry sums from its even (<paramref name="e"/>: 0, 2, 4, 6) and odd (<paramref name="o"/>: 1, 3, 5, 7)
        /// entries: lo = x̃₀ + … + x̃₃ (bytes 0 and 1 of each), hi = x̃₄ + … + x̃₇ (bytes 2 and 3).
        /// </summary>
        public static void BlockSums(Vector128<int> e, Vector128<int> o, out Vector128<int> lo, out Vector128<int> hi)
        {
            lo = Byte0(e) + ((e << 16) >> 24) + Byte0(o) + ((o << 16) >> 24);
            hi = ((e << 8) >> 24) + (e >> 24) + ((o << 8) >> 24) + (o >> 24);
        }
        /// <summary>The low 16 bits of <paramref name="lo"/> and of <paramref name="hi"/> in one lane.</summary>
        public static Vector128<int> Halves(Vector128<int> lo, Vector128<int> hi) => (lo & Vector128.Create(0xFFFF)) | (hi << 16);
    }

    private static T[] Rent<T>(long n) => ArrayPool<T>.Shared.Rent((int)Math.Max(n, 1));

    /// <summary>fp32 activations x [batch][cols] for a matrix with nesting ratio q.</summary>
    [SkipLocalsInit]
    public static E8ActivationLayout Float(ReadOnlySpan<float> x, int batch, int cols, int groups, int q)
    {
        var a = new E8ActivationLayout(batch, groups, true);
        int cp = a.PaddedCols, nb = a.Blocks;
        a.X2 = Rent<float>((long)batch * cp); a.Af = Rent<float>((long)batch * nb); a.Cf = Rent<float>((long)batch * nb);
        Span<float> blk = stackalloc float[8];
        for (int v = 0; v < batch; v++)
        {
            var src = x.Slice(v * cols, cols);
            var x2 = a.X2.AsSpan(v * cp, cp);
            for (int t = 0; t < nb; t++)
            {
                blk.Clear();
                int n = Math.Clamp(cols - 8 * t, 0, 8);
                if (n > 0) src.Slice(8 * t, n).CopyTo(blk);
                int g = t >> 5, b = t & 31;
                for (int i = 0; i < 8; i++) x2[256 * g + 32 * i + b] = 2f * blk[i];
                float s = ((blk[0] + blk[1]) + (blk[2] + blk[3])) + ((blk[4] + blk[5]) + (blk[6] + blk[7]));
                a.Af[v * nb + t] = -q * s;
                a.Cf[v * nb + t] = s - 2f * blk[0];
            }
        }
        return a;
    }

    /// <summary>int8 activations (values [batch][blocks·8], scales [batch][blocks]) for a matrix with nesting ratio q.</summary>
    public static E8ActivationLayout Int(ReadOnlySpan<sbyte> values, ReadOnlySpan<float> scales, int batch, int blocks, int groups, int q)
    {
        var a = new E8ActivationLayout(batch, groups, false);
        int cp = a.PaddedCols, nb = a.Blocks;
        a.Q = Rent<sbyte>((long)batch * cp); a.A = Rent<int>((long)batch * nb); a.C = Rent<int>((long)batch * nb); a.Xs = Rent<float>((long)batch * nb);
        for (int v = 0; v < batch; v++)
        {
            var qd = a.Q.AsSpan(v * cp, cp);
            for (int t = 0; t < nb; t++)
            {
                int g = t >> 5, b = t & 31, sum = 0, x0 = 0;
                bool real = t < blocks;
                for (int j = 0; j < 4; j++)
                {
                    int e = real ? values[(v * blocks + t) * 8 + 2 * j] : 0, o = real ? values[(v * blocks + t) * 8 + 2 * j + 1] : 0;
                    qd[256 * g + 4 * b + j] = (sbyte)e;
                    qd[256 * g + 128 + 4 * b + j] = (sbyte)o;
                    sum += e + o;
                    if (j == 0) x0 = e;
                }
                a.A[v * nb + t] = -q * sum;
                a.C[v * nb + t] = sum - 2 * x0;
                a.Xs[v * nb + t] = real ? scales[v * blocks + t] : 0f;
            }
        }
        return a;
    }

    public void Dispose()
    {
        Return(ref Q); Return(ref A); Return(ref C); Return(ref Xs); Return(ref X2); Return(ref Af); Return(ref Cf);
        Return(ref E0); Return(ref E1); Return(ref Xg); Return(ref GemmPanel); Return(ref Panel); Return(ref XgPanel);
    }

    private static void Return<T>(ref T[] a)
    {
        if (a.Length > 0) ArrayPool<T>.Shared.Return(a);
        a = [];
    }
}
