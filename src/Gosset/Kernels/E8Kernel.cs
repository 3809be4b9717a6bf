using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Gosset.Codes;
using Gosset.Kernels.Simd;

namespace Gosset.Kernels;

/// <summary>
/// One implementation of the <see cref="PackedE8Matrix"/> products (a width and an instruction set).
/// Built once: <see cref="All"/> lists every variant this process can run (the cross-platform widths
/// run everywhere, unaccelerated ones in software, so tests cover them on any CPU), <see cref="Best"/>
/// is the one products use by default. Every variant gives results bit-identical to <see cref="Scalar"/>.
/// </summary>
public abstract class E8Kernel
{
    /// <summary>Short name: "scalar", "vector128", "vector128-ssse3", "vector256", "avx2", "avx-vnni", "vector512", "avx512".</summary>
    public string Name { get; }
    /// <summary>32-bit lanes per vector (1 for the scalar reference).</summary>
    public int Lanes { get; }
    /// <summary>Whether the hardware runs this variant natively (false: the vector width is emulated in software).</summary>
    public abstract bool IsAccelerated { get; }

    private protected E8Kernel(string name, int lanes) { Name = name; Lanes = lanes; }

    /// <summary>Rows the batch-1 product of b-bit codes runs at once (1 or 2): the row interleave it reads best.</summary>
    internal virtual int RowsPerPass(int bits) => 1;

    /// <inheritdoc/>
    public override string ToString() => Name;

    /// <summary>
    /// The smallest batch limit of the fused kernels (weights decoded once per block of up to four vectors) rather than the
    /// pre-decoded row tiles (<see cref="MaxSmallBatch"/>): b = 3 with 32 vector registers, where the pre-decoding kernel runs
    /// two rows per pass and b = 3's decode (three planes per chunk), repeated for every block of four vectors, made it faster
    /// from 6 vectors on (bench, 14336×4096 and 4096×14336, 2 threads, AVX-512: docs/benchmarks.md); and every b at 128 bits,
    /// where the pre-decoding kernel was faster at batches 5 and 8 (session 17, as at 256 bits in session 14, before the
    /// activation panel: docs/benchmarks.md).
    /// </summary>
    internal const int MinSmallBatch = 4;

    /// <summary>
    /// The fused limit at 256 bits with 16 registers (AVX2, AVX-VNNI): since the activation panel and the folded parity
    /// (session 17) the fused kernel beat the pre-decoding one at batches 5–8 on 14336×4096 with 2 threads (5: 3.5 against 4.4
    /// ms; 8: 4.8–5.0 against 5.4–5.5) and at 5–7 on 4096×4096 with one (8: within 3 %), and lost from 12 on.
    /// </summary>
    internal const int MaxFusedBatch16 = 8;

    /// <summary>
    /// The largest batch the fused kernels run for b bits per entry: <see cref="MaxFusedBatch"/> for b = 2 and 4 with 32 vector
    /// registers (<paramref name="pairs"/>; they break even with the pre-decoding kernel near 12), <see cref="MaxFusedBatch16"/>
    /// at 256 bits with 16 (<paramref name="lanes"/> = 8), else <see cref="MinSmallBatch"/>.
    /// </summary>
    internal static int MaxSmallBatch(int bits, bool pairs, int lanes)
        => pairs ? (bits != 3 ? MaxFusedBatch : MinSmallBatch) : lanes == 8 ? MaxFusedBatch16 : MinSmallBatch;

    /// <summary>The largest <see cref="MaxSmallBatch"/>.</summary>
    internal const int MaxFusedBatch = 12;

    /// <summary>
    /// The optional parts of an <see cref="ActivationMode.Int8Group"/> layout this variant reads for a product of b-bit codes
    /// with <paramref name="batch"/> vectors (<see cref="E8ActivationLayout.Grouped"/> computes only those). The scalar
    /// reference reads none: it doubles the coordinates itself.
    /// </summary>
    internal virtual GroupedParts GroupedNeeds(int bits, int batch) => GroupedParts.None;

    /// <summary>y[v·rows + r] = rowScale[r]·Σ over the row for vectors [0, a.Batch) and rows [r0, r1).</summary>
    internal abstract unsafe void Run(PackedE8Matrix m, E8ActivationLayout a, int r0, int r1, float* y);

    /// <summary>
    /// The same variant's int8 × int8 product (<see cref="PackedInt8Matrix"/>, activations per 256-group):
    /// y[v·rows + r] for vectors [0, a.Batch) and rows [r0, r1).
    /// </summary>
    internal abstract unsafe void RunInt8(PackedInt8Matrix m, E8ActivationLayout a, int r0, int r1, float* y);

    /// <summary>
    /// The same variant's INT4 product (<see cref="PackedInt4Matrix"/>; fp32 or per-block int8 activations laid out with
    /// q = 16): y[v·rows + r] for vectors [0, a.Batch) and rows [r0, r1).
    /// </summary>
    internal abstract unsafe void RunInt4(PackedInt4Matrix m, E8ActivationLayout a, int r0, int r1, float* y);

    /// <summary>The scalar reference (the specification the SIMD variants are tested against).</summary>
    public static E8Kernel Scalar { get; } = new ScalarE8Kernel();

    /// <summary>Every variant this process can run, scalar first.</summary>
    public static IReadOnlyList<E8Kernel> All { get; } = BuildAll();

    /// <summary>The fastest variant here (see <see cref="KernelSupport.Level"/>).</summary>
    public static E8Kernel Best { get; } = PickBest();

    /// <summary>The variant named <paramref name="name"/>.</summary>
    /// <exception cref="PlatformNotSupportedException">No such variant runs here.</exception>
    public static E8Kernel Get(string name) => All.FirstOrDefault(k => k.Name == name)
        ?? throw new PlatformNotSupportedException($"E8 kernel variant '{name}' is not available on this CPU/runtime.");

    private static E8Kernel[] BuildAll()
    {
        var list = new List<E8Kernel>
        {
            Scalar,
            new SimdE8Kernel<V128, PortableOps<V128>>("vector128", () => Vector128.IsHardwareAccelerated),
            new SimdE8Kernel<V256, PortableOps<V256>>("vector256", () => Vector256.IsHardwareAccelerated),
            new SimdE8Kernel<V512, PortableOps<V512>>("vector512", () => Vector512.IsHardwareAccelerated),
        };
        if (Ssse3Ops.IsSupported) list.Add(new SimdE8Kernel<V128, Ssse3Ops>("vector128-ssse3", () => Vector128.IsHardwareAccelerated));
        if (Avx2Ops.IsSupported) list.Add(new SimdE8Kernel<V256, Avx2Ops>("avx2", () => Vector256.IsHardwareAccelerated));
        if (AvxVnniOps.IsSupported) list.Add(new SimdE8Kernel<V256, AvxVnniOps>("avx-vnni", () => Vector256.IsHardwareAccelerated));
        if (Avx512Ops.IsSupported) list.Add(new SimdE8Kernel<V512, Avx512Ops>("avx512", () => Vector512.IsHardwareAccelerated));
        return [.. list];
    }

    private static E8Kernel PickBest()
    {
        // GOSSET_E8_KERNEL names a variant to use (benchmarks, bisecting); unknown names are an error.
        if (Environment.GetEnvironmentVariable("GOSSET_E8_KERNEL") is { Length: > 0 } forced) return Get(forced);
        string level = KernelSupport.Level;
        var first = All.First(k => k.Name == level switch
        {
            "avx512" => "avx512",
            "avx-vnni" => "avx-vnni",
            "avx2" => "avx2",
            "vector128" => Ssse3Ops.IsSupported ? "vector128-ssse3" : "vector128",
            _ => "scalar",
        });
        // 512-bit instructions are not faster everywhere (Zen 4 runs them as two 256-bit halves, and its
        // 512-bit permutes cost more): where both run, time them once on the default product and keep the
        // faster. Every variant gives bit-identical results, so the choice changes speed only.
        var avx2 = All.FirstOrDefault(k => k.Name == "avx2");
        return level == "avx512" && avx2 is not null ? Faster(first, avx2) : first;
    }

    /// <summary>The faster of two variants on a 256 × 4096 int8-group GEMV (alternating, best of 7 each, one thread).</summary>
    private static unsafe E8Kernel Faster(E8Kernel a, E8Kernel b)
    {
        const int rows = 256, cols = 4096;
        var rng = new Random(7);
        var codes = new E8BoxCodes(rows, cols, 4, [0.1f, 0.15f, 0.2f, 0.3f]);
        E8BoxCodes.RoundToGrid(codes.BlockScales);
        for (int i = 0; i < codes.U.Length; i++) codes.U[i] = (byte)rng.Next(16);
        for (int i = 0; i < codes.ScaleIndex.Length; i++) codes.ScaleIndex[i] = (byte)rng.Next(4);
        codes.RowScale.AsSpan().Fill(1f);
        var x = new float[cols];
        for (int i = 0; i < cols; i++) x[i] = (float)(rng.NextDouble() - 0.5);
        var y = new float[rows];
        // Each variant on the row interleave it packs for (Best is not chosen yet, so the default cannot be asked).
        var ma = PackedE8Matrix.FromCodes(codes, null, a.RowsPerPass(codes.Bits));
        var mb = PackedE8Matrix.FromCodes(codes, null, b.RowsPerPass(codes.Bits));
        using var l = E8ActivationLayout.Grouped(x, 1, cols, ma.Groups, ma.Q, a.GroupedNeeds(codes.Bits, 1) | b.GroupedNeeds(codes.Bits, 1), a.Lanes);
        double ta = double.MaxValue, tb = double.MaxValue;
        fixed (float* yp = y)
            for (int rep = 0; rep < 9; rep++)
            {
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                a.Run(ma, l, 0, rows, yp);
                long t1 = System.Diagnostics.Stopwatch.GetTimestamp();
                b.Run(mb, l, 0, rows, yp);
                long t2 = System.Diagnostics.Stopwatch.GetTimestamp();
                if (rep < 2) continue; // first calls compile
                ta = Math.Min(ta, t1 - t0); tb = Math.Min(tb, t2 - t1);
            }
        return tb < ta ? b : a;
    }

    /// <summary>The best variant of a legacy <see cref="KernelIsa"/> width.</summary>
    internal static E8Kernel ForIsa(KernelIsa isa)
    {
        KernelSupport.Require(isa);
        string[] names = isa switch
        {
            KernelIsa.Vector512 => ["avx512", "vector512"],
            KernelIsa.Vector256 => ["avx-vnni", "avx2", "vector256"],
            KernelIsa.Vector128 => ["vector128-ssse3", "vector128"],
            _ => ["scalar"],
        };
        foreach (var n in names)
            foreach (var k in All)
                if (k.Name == n) return k;
        return Scalar;
    }
}

/// <summary>The scalar reference: reads the packed layout through its scalar accessors and adds in the canonical order.</summary>
[SkipLocalsInit]
internal sealed class ScalarE8Kernel() : E8Kernel("scalar", 1)
{
    public override bool IsAccelerated => true;

    internal override unsafe void Run(PackedE8Matrix m, E8ActivationLayout a, int r0, int r1, float* y)
    {
        if (a.IsGrouped) RunGrouped(m, a, r0, r1, y);
        else RunBlocks(new E8Blocks(m), a, r0, r1, y);
    }

    /// <summary>INT4 (<see cref="PackedInt4Matrix"/>): an E8 block of parity 0 with the group-of-32 step as β (q = 16 in the layout).</summary>
    internal override unsafe void RunInt4(PackedInt4Matrix m, E8ActivationLayout a, int r0, int r1, float* y) => RunBlocks(new Int4Blocks(m), a, r0, r1, y);

    /// <summary>The blocks of a matrix as the per-block products read them.</summary>
    private interface IBlockSource
    {
        int Rows { get; }
        int Groups { get; }
        /// <summary>Block t of row r: its digits u, whether their sum is odd, and β/2.</summary>
        bool Read(int r, int t, Span<int> u, out float half);
        float RowScale(int r);
    }

    private readonly struct E8Blocks(PackedE8Matrix m) : IBlockSource
    {
        public int Rows => m.Rows;
        public int Groups => m.Groups;
        public bool Read(int r, int t, Span<int> u, out float half)
        {
            int p = 0;
            for (int i = 0; i < 8; i++) { u[i] = m.Digit(r, t, i); p ^= u[i] & 1; }
            half = m.HalfTable[m.ScaleIndexAt(r, t)];
            return p != 0;
        }
        public float RowScale(int r) => m.RowScales[r];
    }

    /// <summary>INT4 blocks: the nibbles (8, value 0, in the padding, whose step is 0), parity 0, d/2; row scale 1.</summary>
    private readonly struct Int4Blocks(PackedInt4Matrix m) : IBlockSource
    {
        public int Rows => m.Rows;
        public int Groups => m.Groups;
        public bool Read(int r, int t, Span<int> u, out float half)
        {
            for (int i = 0; i < 8; i++) u[i] = m.Nibble(r, 8 * t + i);
            half = m.HalfStep(r, t);
            return false;
        }
        public float RowScale(int r) => 1f;
    }

    /// <summary>Per row and vector: lane t mod 16 accumulates <see cref="AddBlock"/> over the blocks t in order; y = rowScale·Reduce16.</summary>
    private static unsafe void RunBlocks<TB>(TB m, E8ActivationLayout a, int r0, int r1, float* y) where TB : struct, IBlockSource
    {
        Span<float> acc = stackalloc float[16];
        Span<int> u = stackalloc int[8];
        for (int r = r0; r < r1; r++)
            for (int v = 0; v < a.Batch; v++)
            {
                acc.Clear();
                for (int t = 0; t < m.Groups * 32; t++)
                {
                    bool odd = m.Read(r, t, u, out float half);
                    acc[t & 15] = AddBlock(a, v, t, u, odd, half, acc[t & 15]);
                }
                y[(long)v * m.Rows + r] = m.RowScale(r) * Reduce16(acc);
            }
    }

    /// <summary>
    /// One block t of vector v added to its lane sum, for digits u (doubled coordinates 2u − q − p·(…), q from the layout's
    /// A / Af terms), parity p and half block scale β/2: fp32 acc + (Σᵢ uᵢ·2xᵢ + Af + p·Cf)·β/2 (one FMA chain in entry order),
    /// int8 acc + (2Σᵢ uᵢx̃ᵢ + A + p·C)·(β/2·xs) (exact integers, then one FMA).
    /// </summary>
    private static float AddBlock(E8ActivationLayout a, int v, int t, ReadOnlySpan<int> u, bool odd, float half, float acc)
    {
        int nb = a.Blocks, cp = a.PaddedCols, g = t >> 5, b = t & 31;
        if (a.IsFloat)
        {
            var x2 = a.X2.AsSpan(v * cp + 256 * g + b);
            float st = u[0] * x2[0];
            for (int i = 1; i < 8; i++) st = MathF.FusedMultiplyAdd(u[i], x2[32 * i], st);
            float bt = a.Af[v * nb + t] + (odd ? a.Cf[v * nb + t] : 0f);
            return MathF.FusedMultiplyAdd(st + bt, half, acc);
        }
        int d = 0;
        for (int j = 0; j < 4; j++)
            d += u[2 * j] * a.Q[v * cp + 256 * g + 4 * b + j] + u[2 * j + 1] * a.Q[v * cp + 256 * g + 128 + 4 * b + j];
        int tt = 2 * d + a.A[v * nb + t] + (odd ? a.C[v * nb + t] : 0);
        return MathF.FusedMultiplyAdd(tt, half * a.Xs[v * nb + t], acc);
    }

    /// <summary>
    /// int8 × int8: per group g, lane l = Σ of w·x̃ over the 4-byte units u ≡ l (mod 16) of the group's 64 (activation
    /// order, int32, exact), then acc[l] += (float)lane·(step[r, g]·Xg[g]) (multiply, then add); y = Reduce16(acc).
    /// </summary>
    internal override unsafe void RunInt8(PackedInt8Matrix m, E8ActivationLayout a, int r0, int r1, float* y)
    {
        Span<float> acc = stackalloc float[16];
        Span<int> lane = stackalloc int[16];
        int cp = m.PaddedCols, groups = m.Groups;
        for (int r = r0; r < r1; r++)
            for (int v = 0; v < a.Batch; v++)
            {
                acc.Clear();
                for (int g = 0; g < groups; g++)
                {
                    lane.Clear();
                    for (int p = 0; p < 256; p++)
                        lane[(p >> 2) & 15] += m.Data[(long)r * cp + 256 * g + p] * a.Q[(long)v * cp + 256 * g + p];
                    float s = m.Steps[r * groups + g] * a.Xg[v * groups + g];
                    for (int l = 0; l < 16; l++) acc[l] += lane[l] * s;
                }
                y[(long)v * m.Rows + r] = Reduce16(acc);
            }
    }

    /// <summary>
    /// <see cref="ActivationMode.Int8Group"/>: per group g, lane l = Σ over the blocks t ≡ l (mod 16) of s[j]·Σᵢ vᵢx̃ᵢ in
    /// int32 (exact), then acc[l] += (float)lane·Xg[g] (a multiply and an add, so CPUs without FMA run it at full speed); y = (rowScale·GridStep)·Reduce16(acc).
    /// </summary>
    private static unsafe void RunGrouped(PackedE8Matrix m, E8ActivationLayout a, int r0, int r1, float* y)
    {
        Span<float> acc = stackalloc float[16];
        Span<int> lane = stackalloc int[16];
        Span<byte> u = stackalloc byte[8];
        Span<int> v8 = stackalloc int[8];
        int cp = a.PaddedCols;
        for (int r = r0; r < r1; r++)
            for (int v = 0; v < a.Batch; v++)
            {
                acc.Clear();
                for (int g = 0; g < m.Groups; g++)
                {
                    lane.Clear();
                    for (int b = 0; b < 32; b++)
                    {
                        int t = 32 * g + b;
                        for (int i = 0; i < 8; i++) u[i] = (byte)m.Digit(r, t, i);
                        E8BoxCodes.DoubledCoordinates(u, m.Q, v8);
                        int dot = 0;
                        for (int j = 0; j < 4; j++)
                            dot += v8[2 * j] * a.Q[v * cp + 256 * g + 4 * b + j] + v8[2 * j + 1] * a.Q[v * cp + 256 * g + 128 + 4 * b + j];
                        lane[b & 15] += (m.GridTable[m.ScaleIndexAt(r, t)] & 0xFFFF) * dot;
                    }
                    float xg = a.Xg[v * a.Groups + g];
                    for (int l = 0; l < 16; l++) acc[l] += (float)lane[l] * xg; // multiply, then add: two roundings, no FMA needed
                }
                y[(long)v * m.Rows + r] = m.RowScales[r] * m.GridStep * Reduce16(acc);
            }
    }

    /// <summary>The canonical 16-lane sum (see <see cref="IVec{TV}.Reduce16"/>).</summary>
    internal static float Reduce16(ReadOnlySpan<float> l)
    {
        Span<float> s4 = stackalloc float[4];
        for (int i = 0; i < 4; i++) s4[i] = (l[i] + l[i + 8]) + (l[i + 4] + l[i + 12]);
        return (s4[0] + s4[2]) + (s4[1] + s4[3]);
    }
}

/// <summary>
/// The E8 kernels written once for every width <typeparamref name="TV"/> and instruction set
/// <typeparamref name="TOps"/>; b and the side-field mode are further type parameters so the JIT
/// specialises each loop (one <c>switch</c> in <see cref="Run"/> picks the instance).
/// </summary>
[SkipLocalsInit]
internal sealed unsafe partial class SimdE8Kernel<TV, TOps>(string name, Func<bool> accelerated) : E8Kernel(name, TV.Lanes)
    where TV : unmanaged, IVec<TV> where TOps : struct, IIsaOps<TV>
{
    public override bool IsAccelerated => accelerated();

    internal override int RowsPerPass(int bits) => Pairs ? 2 : 1;

    /// <summary>Batch 1 reads the additive terms, a small batch the panel, the pre-decoding GEMM its own panel (see <see cref="Grouped"/>).</summary>
    internal override GroupedParts GroupedNeeds(int bits, int batch)
        => batch == 1 ? GroupedParts.AdditiveTerms : batch <= MaxSmallBatch(bits, Pairs, TV.Lanes) ? GroupedParts.Panel : GroupedParts.GemmPanel;

    /// <summary>
    /// Whether the batch-1 product runs rows in pairs: on 512-bit vectors, and on 256-bit ones where EVEX gives 32 vector
    /// registers (with AVX2's 16 the pair loop spilled and ran 1.4× slower than one row: docs/benchmarks.md).
    /// </summary>
    private static bool Pairs => typeof(TV) == typeof(V512) || (typeof(TV) == typeof(V256) && Avx512F.VL.IsSupported);

    internal override void RunInt8(PackedInt8Matrix m, E8ActivationLayout a, int r0, int r1, float* y) => Int8Rows(m, a, r0, r1, y);

    /// <summary>See the scalar reference: 64-byte steps of a group's units go to the canonical lanes (u mod 16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Int8Rows(PackedInt8Matrix m, E8ActivationLayout a, int r0, int r1, float* y)
    {
        int n = TV.Lanes, groups = m.Groups, cp = m.PaddedCols, rows = m.Rows;
        fixed (sbyte* w0 = m.Data, q0 = a.Q)
        fixed (float* st = m.Steps, xg0 = a.Xg)
        {
            for (int rb = r0; rb < r1; rb += RowBlock)
                for (int v = 0; v < a.Batch; v++)
                    for (int r = rb; r < Math.Min(r1, rb + RowBlock); r++)
                    {
                        sbyte* w = w0 + (long)r * cp, q = q0 + (long)v * cp;
                        TV f0 = TV.Float(0), f1 = f0, f2 = f0, f3 = f0;
                        for (int g = 0; g < groups; g++, w += 256, q += 256)
                        {
                            TV i0 = TV.Int(0), i1 = i0, i2 = i0, i3 = i0;
                            for (int o = 0; o < 256; o += 64)
                            {
                                i0 = TV.AddInt(i0, TOps.DotSigned(TV.Load(w + o), TV.Load(q + o)));
                                if (n <= 8) i1 = TV.AddInt(i1, TOps.DotSigned(TV.Load(w + o + 4 * n), TV.Load(q + o + 4 * n)));
                                if (n == 4)
                                {
                                    i2 = TV.AddInt(i2, TOps.DotSigned(TV.Load(w + o + 32), TV.Load(q + o + 32)));
                                    i3 = TV.AddInt(i3, TOps.DotSigned(TV.Load(w + o + 48), TV.Load(q + o + 48)));
                                }
                            }
                            var s = TV.Float(st[r * groups + g] * xg0[v * groups + g]);
                            f0 = GroupAdd(i0, s, f0);
                            if (n <= 8) f1 = GroupAdd(i1, s, f1);
                            if (n == 4) { f2 = GroupAdd(i2, s, f2); f3 = GroupAdd(i3, s, f3); }
                        }
                        y[(long)v * rows + r] = TV.Reduce16(f0, f1, f2, f3);
                    }
        }
    }

    internal override void Run(PackedE8Matrix m, E8ActivationLayout a, int r0, int r1, float* y)
    {
        if (a.IsGrouped)
        {
            switch ((m.Bits, m.Narrow))
            {
                case (4, true): Grouped<Digits4, NarrowSide>(m, a, r0, r1, y); break;
                case (4, false): Grouped<Digits4, WideSide>(m, a, r0, r1, y); break;
                case (3, true): Grouped<Digits3, NarrowSide>(m, a, r0, r1, y); break;
                case (3, false): Grouped<Digits3, WideSide>(m, a, r0, r1, y); break;
                case (2, true): Grouped<Digits2, NarrowSide>(m, a, r0, r1, y); break;
                default: Grouped<Digits2, WideSide>(m, a, r0, r1, y); break;
            }
            return;
        }
        switch ((m.Bits, m.Narrow, a.IsFloat))
        {
            case (4, true, false): Int<Digits4, NarrowSide>(m, a, r0, r1, y); break;
            case (4, false, false): Int<Digits4, WideSide>(m, a, r0, r1, y); break;
            case (3, true, false): Int<Digits3, NarrowSide>(m, a, r0, r1, y); break;
            case (3, false, false): Int<Digits3, WideSide>(m, a, r0, r1, y); break;
            case (2, true, false): Int<Digits2, NarrowSide>(m, a, r0, r1, y); break;
            case (2, false, false): Int<Digits2, WideSide>(m, a, r0, r1, y); break;
            case (4, true, true): Float<Digits4, NarrowSide>(m, a, r0, r1, y); break;
            case (4, false, true): Float<Digits4, WideSide>(m, a, r0, r1, y); break;
            case (3, true, true): Float<Digits3, NarrowSide>(m, a, r0, r1, y); break;
            case (3, false, true): Float<Digits3, WideSide>(m, a, r0, r1, y); break;
            case (2, true, true): Float<Digits2, NarrowSide>(m, a, r0, r1, y); break;
            default: Float<Digits2, WideSide>(m, a, r0, r1, y); break;
        }
    }

    /// <summary>
    /// Whether the side fields are narrow, as a type test the JIT folds while importing (a static abstract property is only
    /// folded after inlining, so both arms of a branch on it would be inlined first and count against the inlining budget).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsNarrow<TS>() where TS : struct, ISide => typeof(TS) == typeof(NarrowSide);

    /// <summary>The 4-bit side fields of the Lanes blocks from b0 of a group record, one per lane (bits 0–3; higher bits garbage).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV SideFields<TD>(byte* rec, int b0) where TD : struct, IDigits
    {
        var side = TV.LoadWidenBytes(rec + TD.DigitBytes + (b0 & 15));
        return b0 >= 16 ? TV.ShiftRight(side, 4) : side;
    }

    /// <summary>Each lane's entry of a 16-entry table (t0 … t3) at its block-scale index: side bits 0–2 (narrow) or 0–3 (wide).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV ScaleOf<TS>(TV t0, TV t1, TV t2, TV t3, TV side) where TS : struct, ISide
        => IsNarrow<TS>() ? TOps.Lookup8(t0, t1, side) : TOps.Lookup16(t0, t1, t2, t3, TV.And(side, TV.Int(15)));

    /// <summary>Digits, parity mask and half block scale (β/2) of the Lanes blocks from b0 of a group record.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Decode<TD, TS>(byte* rec, int b0, TV t0, TV t1, TV t2, TV t3, out TV lo, out TV hi, out TV pm, out TV ws)
        where TD : struct, IDigits where TS : struct, ISide
    {
        TD.Load(rec, b0, out lo, out hi);
        var side = SideFields<TD>(rec, b0);
        ws = ScaleOf<TS>(t0, t1, t2, t3, side);
        pm = IsNarrow<TS>() ? TV.ShiftRightArith(TV.ShiftLeft(side, 28), 31) : TOps.ParityMask(lo, hi);
    }

    /// <summary>acc += (2Σux + A + p·C)·(β/2)·xs for the Lanes blocks from b0 of group g, one int8 vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV IntStep(TV lo, TV hi, TV pm, TV ws, sbyte* q /* group */, int* A, int* C, float* xs /* block b0 */, int b0, TV acc)
    {
        var d2 = TOps.Dot2(lo, TV.Load(q + 4 * b0), hi, TV.Load(q + 128 + 4 * b0));
        var t = TV.AddInt(TV.AddInt(d2, TV.Load(A)), TV.And(pm, TV.Load(C)));
        return TV.Fma(TV.ToFloat(t), TV.MulF(ws, TV.Load(xs)), acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV FloatStep(TV lo, TV hi, TV pm, TV ws, float* x2 /* group + b0 */, float* af, float* cf, TV acc)
    {
        DigitFloats(lo, hi, out var d0, out var d1, out var d2, out var d3, out var d4, out var d5, out var d6, out var d7);
        return FloatDot(d0, d1, d2, d3, d4, d5, d6, d7, pm, ws, x2, af, cf, acc);
    }

    /// <summary>The eight digits of each lane's block as floats (digit i from byte i/2 of lo for even i, of hi for odd i).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DigitFloats(TV lo, TV hi, out TV d0, out TV d1, out TV d2, out TV d3, out TV d4, out TV d5, out TV d6, out TV d7)
    {
        var ff = TV.Int(0xFF);
        d0 = TV.ToFloat(TV.And(lo, ff));
        d1 = TV.ToFloat(TV.And(hi, ff));
        d2 = TV.ToFloat(TV.And(TV.ShiftRight(lo, 8), ff));
        d3 = TV.ToFloat(TV.And(TV.ShiftRight(hi, 8), ff));
        d4 = TV.ToFloat(TV.And(TV.ShiftRight(lo, 16), ff));
        d5 = TV.ToFloat(TV.And(TV.ShiftRight(hi, 16), ff));
        d6 = TV.ToFloat(TV.ShiftRight(lo, 24));
        d7 = TV.ToFloat(TV.ShiftRight(hi, 24));
    }

    /// <summary>acc + (Σᵢ dᵢ·2xᵢ + Af + p·Cf)·β/2 for the Lanes blocks from b0: one FMA chain in entry order (the scalar reference's).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV FloatDot(TV d0, TV d1, TV d2, TV d3, TV d4, TV d5, TV d6, TV d7, TV pm, TV ws, float* x2 /* group + b0 */, float* af, float* cf, TV acc)
    {
        var st = TV.MulF(d0, TV.Load(x2));
        st = TV.Fma(d1, TV.Load(x2 + 32), st);
        st = TV.Fma(d2, TV.Load(x2 + 64), st);
        st = TV.Fma(d3, TV.Load(x2 + 96), st);
        st = TV.Fma(d4, TV.Load(x2 + 128), st);
        st = TV.Fma(d5, TV.Load(x2 + 160), st);
        st = TV.Fma(d6, TV.Load(x2 + 192), st);
        st = TV.Fma(d7, TV.Load(x2 + 224), st);
        var bt = TV.AddF(TV.Load(af), TV.And(pm, TV.Load(cf)));
        return TV.Fma(TV.AddF(st, bt), ws, acc);
    }

    /// <summary>Doubled digits, parity field (parity in bit 3, where a narrow side field stores it) and 16-bit grid scales (both halves) of the Lanes blocks from b0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DecodeGrid<TD, TS>(byte* rec, int b0, TV t0, TV t1, TV t2, TV t3, out TV lo2, out TV hi2, out TV pf, out TV sc)
        where TD : struct, IDigits where TS : struct, ISide
    {
        TD.LoadDoubled<TV, TOps>(rec, b0, out lo2, out hi2);
        var side = SideFields<TD>(rec, b0);
        sc = ScaleOf<TS>(t0, t1, t2, t3, side);
        pf = IsNarrow<TS>() ? side : DigitParity(lo2, hi2);
    }

    /// <summary>The parity of each lane's digit sum in bit 3 (other bits garbage), from the doubled digits: bit 1 of every byte, folded over the lane's 8 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV DigitParity(TV lo2, TV hi2)
    {
        var x = TV.Xor(lo2, hi2);
        x = TV.Xor(x, TV.ShiftRight(x, 16));
        return TV.ShiftLeft(TV.Xor(x, TV.ShiftRight(x, 8)), 2);
    }

    /// <summary>The record of row r, group g, for a loop over g from 0: the next one inside a segment, looked up at a segment's start.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte* NextRecord(PackedE8Matrix m, byte* data, int r, int g, byte* previous, int stride /* m.GroupStride(r) · RecordBytes */)
        => m.IsSegmentStart(g) ? data + m.Record(r, g) * m.RecordBytes : previous + stride;

    /// <summary>f + (float)i·xs, multiply then add (the scalar reference's order; no FMA, which CPUs without it emulate slowly).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV GroupAdd(TV i, TV xs, TV f) => TV.AddF(f, TV.MulF(TV.ToFloat(i), xs));

    /// <summary>One (row, vector)'s float sums kept as its 16/Lanes lane sets (f[0 … 16/Lanes − 1]), reduced in the fixed tree.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ReduceSets(TV* f)
    {
        int n = TV.Lanes;
        return TV.Reduce16(f[0], n <= 8 ? f[1] : TV.Float(0), n == 4 ? f[2] : TV.Float(0), n == 4 ? f[3] : TV.Float(0));
    }

    /// <summary>acc += s·Σᵢ vᵢx̃ᵢ (int32) for the Lanes blocks of chunk c (c constant) of one group of one vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV GridChunk<TD, TS>(byte* rp, int c, TV t0, TV t1, TV t2, TV t3, sbyte* q /* group */, int* e0, int* e1 /* group */, TV acc)
        where TD : struct, IDigits where TS : struct, ISide
    {
        int b0 = c * TV.Lanes;
        return GridChunkSide<TD, TS>(rp, b0, TV.LoadWidenSignedBytes(rp + TD.DigitBytes + (b0 & 15)), t0, t1, t2, t3, q, e0, e1, acc);
    }

    /// <summary>
    /// <see cref="GridChunk"/> from the chunk's side bytes <paramref name="raw"/>, sign-extended (<see cref="IVec{TV}.LoadWidenSignedBytes"/>;
    /// blocks b0 and b0 + 16 share them, so a group loads each once): below block 16 a lane's field is the low nibble, from 16 on
    /// the high one, whose parity bit 7 the sign extension has already put in bit 31, where the select reads it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV GridChunkSide<TD, TS>(byte* rp, int b0, TV raw, TV t0, TV t1, TV t2, TV t3, sbyte* q, int* e0, int* e1, TV acc)
        where TD : struct, IDigits where TS : struct, ISide
    {
        TD.LoadDoubled<TV, TOps>(rp, b0, out var lo2, out var hi2);
        var side = b0 >= 16 ? TV.ShiftRight(raw, 4) : raw;
        var sc = ScaleOf<TS>(t0, t1, t2, t3, side);
        var sel = !IsNarrow<TS>() ? TV.ShiftLeft(DigitParity(lo2, hi2), 28) : b0 >= 16 ? raw : TV.ShiftLeft(raw, 28);
        return TV.AddInt(acc, TOps.ScaledBlockDotAt(lo2, q + 4 * b0, hi2, q + 128 + 4 * b0, sel, e0 + b0, e1 + b0, sc));
    }

    /// <summary>
    /// The first chunk of half TH of a group with four-lane vectors (0 or 4), a type test the JIT folds while importing: a static
    /// property was left a call where the inlining budget ran out (the portable 128-bit kernel), and the chunk index with it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int FirstChunk<TH>() where TH : struct, IChunkHalf => typeof(TH) == typeof(FirstHalf) ? 0 : 4;

    /// <summary>Four-lane widths: chunks c0 … c0 + 3 of a group (half TH, <see cref="FirstChunk"/>), a call of its own for the JIT's inlining budget.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void GridQuarter4<TD, TS, TH>(byte* rp, TV t0, TV t1, TV t2, TV t3, sbyte* q, int* e0, int* e1, ref TV i0, ref TV i1, ref TV i2, ref TV i3)
        where TD : struct, IDigits where TS : struct, ISide where TH : struct, IChunkHalf
    {
        int c0 = FirstChunk<TH>();
        if (typeof(TOps) == typeof(PortableOps<TV>))
        {
            // The portable dot product is long: four chunks in one method exhaust the JIT's inlining budget (the vector helpers
            // became calls, 1.3× slower), two do not.
            GridTwo<TD, TS>(rp, c0, t0, t1, t2, t3, q, e0, e1, ref i0, ref i1);
            GridTwo<TD, TS>(rp, c0 + 2, t0, t1, t2, t3, q, e0, e1, ref i2, ref i3);
            return;
        }
        i0 = GridChunk<TD, TS>(rp, c0, t0, t1, t2, t3, q, e0, e1, i0);
        i1 = GridChunk<TD, TS>(rp, c0 + 1, t0, t1, t2, t3, q, e0, e1, i1);
        i2 = GridChunk<TD, TS>(rp, c0 + 2, t0, t1, t2, t3, q, e0, e1, i2);
        i3 = GridChunk<TD, TS>(rp, c0 + 3, t0, t1, t2, t3, q, e0, e1, i3);
    }

    /// <summary>Chunks c and c + 1 of a group into i0 and i1 (the portable four-lane kernel, <see cref="GridQuarter4"/>).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void GridTwo<TD, TS>(byte* rp, int c, TV t0, TV t1, TV t2, TV t3, sbyte* q, int* e0, int* e1, ref TV i0, ref TV i1)
        where TD : struct, IDigits where TS : struct, ISide
    {
        i0 = GridChunk<TD, TS>(rp, c, t0, t1, t2, t3, q, e0, e1, i0);
        i1 = GridChunk<TD, TS>(rp, c + 1, t0, t1, t2, t3, q, e0, e1, i1);
    }

    /// <summary>One group of one vector: the int32 lane sums i0 … i3 (16 canonical lanes over 16/Lanes vectors).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GridGroup<TD, TS>(byte* rp, TV t0, TV t1, TV t2, TV t3, sbyte* q, int* e0, int* e1, out TV i0, out TV i1, out TV i2, out TV i3)
        where TD : struct, IDigits where TS : struct, ISide
    {
        i0 = TV.Int(0); i1 = i0; i2 = i0; i3 = i0;
        if (typeof(TV) == typeof(V128))
        {
            GridQuarter4<TD, TS, FirstHalf>(rp, t0, t1, t2, t3, q, e0, e1, ref i0, ref i1, ref i2, ref i3);
            GridQuarter4<TD, TS, SecondHalf>(rp, t0, t1, t2, t3, q, e0, e1, ref i0, ref i1, ref i2, ref i3);
        }
        else if (typeof(TV) == typeof(V256))
        {
            TV s0 = TV.LoadWidenSignedBytes(rp + TD.DigitBytes), s1 = TV.LoadWidenSignedBytes(rp + TD.DigitBytes + 8);
            i0 = GridChunkSide<TD, TS>(rp, 0, s0, t0, t1, t2, t3, q, e0, e1, i0);
            i1 = GridChunkSide<TD, TS>(rp, 8, s1, t0, t1, t2, t3, q, e0, e1, i1);
            i0 = GridChunkSide<TD, TS>(rp, 16, s0, t0, t1, t2, t3, q, e0, e1, i0);
            i1 = GridChunkSide<TD, TS>(rp, 24, s1, t0, t1, t2, t3, q, e0, e1, i1);
        }
        else
        {
            TV s0 = TV.LoadWidenSignedBytes(rp + TD.DigitBytes);
            i0 = GridChunkSide<TD, TS>(rp, 0, s0, t0, t1, t2, t3, q, e0, e1, i0);
            i0 = GridChunkSide<TD, TS>(rp, 16, s0, t0, t1, t2, t3, q, e0, e1, i0);
        }
    }

    /// <summary>
    /// <see cref="ActivationMode.Int8Group"/> (see the scalar reference): each group of each vector is added in
    /// int32 lanes, block scales included, then converted once and scaled by the group's activation scale.
    /// A small batch (≤ <see cref="E8Kernel.MaxSmallBatch"/>) passes over each tile segment of weights once per block of up to four
    /// vectors, decoding each chunk once for the block (<see cref="GroupRunBatch"/>); a larger one pre-decodes row tiles
    /// (<see cref="GroupedGemm"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Grouped<TD, TS>(PackedE8Matrix m, E8ActivationLayout a, int r0, int r1, float* y)
        where TD : struct, IDigits where TS : struct, ISide
    {
        if (a.Batch > MaxSmallBatch(TD.Bits, Pairs, TV.Lanes)) { GroupedGemm<TD, TS>(m, a, r0, r1, y); return; }
        fixed (int* tab = m.GridTable, E00 = a.E0, E10 = a.E1)
        fixed (float* xg0 = a.Xg)
        fixed (sbyte* q0 = a.Q)
        fixed (byte* pa = a.Panel)
        fixed (float* px = a.XgPanel)
        {
            var p = new PassArgs { Q = q0, T0 = E00, T1 = E10, X = xg0, Tab = tab, Cp = a.PaddedCols, Nb = a.Blocks, Groups = m.Groups, Batch = a.Batch, Panel = pa, XgPanel = px };
            Tiled<TD, TS, GroupedPass<TD, TS>>(m, r0, r1, y, p, m.GridStep);
        }
    }

    /// <summary>What one pass of <see cref="Tiled"/> reads: the activations from group 0 (vector v at v·Cp, v·Nb, v·Groups) and the weight table.</summary>
    private readonly struct PassArgs
    {
        public sbyte* Q { get; init; }
        /// <summary>Per-block int terms: E0/E1 (grouped) or A/C (per-8-block).</summary>
        public int* T0 { get; init; }
        public int* T1 { get; init; }
        /// <summary>Activation scales: per group (grouped) or per block (per-8-block).</summary>
        public float* X { get; init; }
        public void* Tab { get; init; }
        public int Cp { get; init; }
        public int Nb { get; init; }
        public int Groups { get; init; }
        public int Batch { get; init; }
        /// <summary>A small batch's activations (<see cref="E8ActivationLayout.Panel"/>, <see cref="E8ActivationLayout.XgPanel"/>).</summary>
        public byte* Panel { get; init; }
        public float* XgPanel { get; init; }
        /// <summary>The fp32 activations (<see cref="FloatPass{TD, TS}"/>).</summary>
        public StepArgs Steps { get; init; }
    }

    /// <summary>
    /// A product's passes over the tiled records: groups [g0, g0 + count) of one row (or two: pair) for vectors
    /// [v0, v0 + vc), the float lane sums in f (rows fr apart, vectors 16/Lanes apart).
    /// </summary>
    private interface IPass
    {
        static abstract void Run(bool pair, int vc, int v0, byte* rp, int rec, int stride, int pf, int count, int g0, in PassArgs p, TV* f, int fr);
    }

    /// <summary><see cref="ActivationMode.Int8Group"/>: batch 1 one row or a pair (<see cref="GroupRun"/>, <see cref="RunPair"/>), small batches <see cref="RunBatch"/>.</summary>
    private readonly struct GroupedPass<TD, TS> : IPass where TD : struct, IDigits where TS : struct, ISide
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run(bool pair, int vc, int v0, byte* rp, int rec, int stride, int pf, int count, int g0, in PassArgs p, TV* f, int fr)
        {
            if (p.Batch > 1)
            {
                long at = (long)v0 * p.Groups + (long)g0 * vc; // the block's group g0 (E8ActivationLayout.Panel)
                RunBatch<TD, TS>(pair, vc, rp, rec, stride, pf, count, p.Panel + at * E8ActivationLayout.PanelRecord, p.XgPanel + at, (int*)p.Tab, f, fr);
                return;
            }
            sbyte* q = p.Q + 256 * g0;
            int* e0 = p.T0 + 32 * g0, e1 = p.T1 + 32 * g0;
            float* xg = p.X + g0;
            if (pair) RunPair<TD, TS, GroupedPair>(rp, rec, stride, pf, count, q, e0, e1, xg, p.Tab, f);
            else GroupRun<TD, TS>(rp, stride, pf, count, q, e0, e1, xg, (int*)p.Tab, f);
        }
    }

    /// <summary>The per-8-block int8 product (W4A8, W4A4) at batch 1: one row (<see cref="StepRun"/>) or a pair (<see cref="RunPair"/>).</summary>
    private readonly struct IntPass<TD, TS> : IPass where TD : struct, IDigits where TS : struct, ISide
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run(bool pair, int vc, int v0, byte* rp, int rec, int stride, int pf, int count, int g0, in PassArgs p, TV* f, int fr)
        {
            if (pair) RunPair<TD, TS, IntPair>(rp, rec, stride, pf, count, p.Q + 256 * g0, p.T0 + 32 * g0, p.T1 + 32 * g0, p.X + 32 * g0, p.Tab, f);
            else StepRun<TD, TS, IntBlocks>(rp, stride, pf, count, g0, p.Steps, (float*)p.Tab, f);
        }
    }

    /// <summary>fp32 activations at batch 1: one row, or the two rows of a pair one after the other (<see cref="StepRun"/>).</summary>
    private readonly struct FloatPass<TD, TS> : IPass where TD : struct, IDigits where TS : struct, ISide
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run(bool pair, int vc, int v0, byte* rp, int rec, int stride, int pf, int count, int g0, in PassArgs p, TV* f, int fr)
        {
            StepRun<TD, TS, FloatBlocks>(rp, stride, pf, count, g0, p.Steps, (float*)p.Tab, f);
            if (pair) StepRun<TD, TS, FloatBlocks>(rp + rec, stride, 0, count, g0, p.Steps, (float*)p.Tab, f + fr);
        }
    }

    /// <summary>
    /// The tiled traversal shared by the fused products: tile by tile, segment by segment (the layout's order, so the weights
    /// stream sequentially; the activations of one segment, 8 KB a vector, stay in L1 where a whole wide row's would not), a
    /// small batch in blocks of up to four vectors (5 = 3 + 2; the segment's weights come from DRAM for the first block,
    /// prefetched on two-row passes, and from cache for the others), two rows per pass where <see cref="Pairs"/> allows. Each row keeps its
    /// float lane sums between segments, so the order of additions is the scalar reference's; y = rowScale·scale·Reduce16.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tiled<TD, TS, TP>(PackedE8Matrix m, int r0, int r1, float* y, in PassArgs p, float scale)
        where TD : struct, IDigits where TS : struct, ISide where TP : struct, IPass
    {
        int n = TV.Lanes, groups = m.Groups, rec = m.RecordBytes, rows = m.Rows, batch = p.Batch;
        int seg = m.SegmentGroups, tr = m.TileRows, per = 16 / n, fr = batch * per;
        // Float lane sums [row of the tile][vector][per]; a batch's do not fit the stack comfortably.
        TV* acc;
        if (batch == 1) { TV* one = stackalloc TV[per * tr]; acc = one; }
        else acc = (TV*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(fr * tr * sizeof(TV)), 64);
        try
        {
            fixed (byte* data = m.Data)
            fixed (float* rs = m.RowScales)
            {
                for (int rb = r0; rb < r1;)
                {
                    int re = Math.Min(r1, (rb / tr + 1) * tr);
                    for (int g0 = 0; g0 < groups; g0 += seg)
                    {
                        int g1 = Math.Min(g0 + seg, groups);
                        if (g0 == 0) for (int j = 0; j < fr * (re - rb); j++) acc[j] = TV.Float(0);
                        // Record(r, g0) and the row's set, without divisions: the tile starts at t0 and has nr rows.
                        int il = m.Interleave, t0 = rb / tr * tr, nr = Math.Min(tr, m.Rows - t0), sl = g1 - g0;
                        byte* seg0 = data + (m.Record(t0, 0) + (long)g0 * nr) * rec;
                        for (int v0 = 0, left = batch; left > 0;)
                        {
                            int vc = E8ActivationLayout.VectorBlock(left);
                            int r = rb;
                            while (r < re)
                            {
                                int ri = r - t0, pos = ri & (il - 1), qs = ri - pos, nq = Math.Min(il, nr - qs);
                                byte* rp = seg0 + ((long)qs * sl + pos) * rec;
                                // A set's first pass prefetches the whole set, except at batch 1 on the one-row loops (16 registers):
                                // there it gained nothing measurable and cost about ten instructions a group; a batch of vectors ran
                                // 15 % slower without it (docs/benchmarks.md, session 16).
                                int stride = nq * rec, pf = (Pairs || batch > 1) && pos == 0 && v0 == 0 ? stride : 0;
                                // Two rows per pass (see Pairs): they share every activation load, and their records are interleaved, so
                                // a pass reads one stream.
                                bool pair = Pairs && (pos & 1) == 0 && pos + 2 <= nq && r + 2 <= re;
                                TP.Run(pair, vc, v0, rp, rec, stride, pf, sl, g0, p, acc + (r - rb) * fr + v0 * per, fr);
                                r += pair ? 2 : 1;
                            }
                            v0 += vc; left -= vc;
                        }
                        if (g1 == groups)
                            for (int r = rb; r < re; r++)
                                for (int v = 0; v < batch; v++)
                                {
                                    TV* f = acc + (r - rb) * fr + v * per;
                                    y[(long)v * rows + r] = rs[r] * scale * ReduceSets(f);
                                }
                    }
                    rb = re;
                }
            }
        }
        finally
        {
            if (batch > 1) System.Runtime.InteropServices.NativeMemory.AlignedFree(acc);
        }
    }

    /// <summary>Bytes ahead of the weight stream that the batch-1 kernel prefetches: one row per pass (tuned on a 1B model's layers) and two.</summary>
    private const int PrefetchAhead = 2048, PrefetchAheadPair = 4096;

    /// <summary>
    /// Software prefetch of the <paramref name="bytes"/> that lie <paramref name="ahead"/> bytes ahead of p, a line each: from
    /// DRAM the hardware prefetcher alone left the decode of a 1B model's layers about 10 % slower (median of alternating
    /// runs) with one row per pass; 4 KB ahead beat 2 KB on the two-row loop (docs/benchmarks.md). Consecutive calls cover consecutive bytes
    /// (one-row records of 144 bytes: all but one line in nine).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(byte* p, int bytes, int ahead)
    {
        if (!Sse.IsSupported || bytes <= 0) return;
        // Two lines unconditionally, then one per further 64 bytes beyond the first 144: a one-row record (80–144 bytes) takes no
        // loop (three instructions a line). With 144-byte records one line in nine is left to the hardware prefetcher.
        Sse.Prefetch0(p + ahead);
        Sse.Prefetch0(p + ahead + 64);
        for (int o = 128; o < bytes - 16; o += 64) Sse.Prefetch0(p + ahead + o);
    }

    /// <summary>
    /// <paramref name="count"/> groups of one row for one vector (records <paramref name="stride"/> bytes apart), their float
    /// lane sums added to f[0 … 16/Lanes − 1]; each group prefetches <paramref name="pf"/> bytes (0: none) ahead of the stream.
    /// A small method of its own so the JIT keeps the tables, accumulators and pointers of the loop in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void GroupRun<TD, TS>(byte* rp, int stride, int pf, int count, sbyte* q, int* e0, int* e1, float* xg, int* tab, TV* f)
        where TD : struct, IDigits where TS : struct, ISide
    {
        int n = TV.Lanes;
        TV t0 = TV.Load(tab), t1 = TV.Load(tab + n), t2 = TV.Load(tab + 2 * n), t3 = TV.Load(tab + 3 * n);
        TV f0 = f[0], f1 = n <= 8 ? f[1] : f0, f2 = n == 4 ? f[2] : f0, f3 = n == 4 ? f[3] : f0;
        for (int g = 0; g < count; g++, rp += stride, q += 256, e0 += 32, e1 += 32)
        {
            Prefetch(rp, pf, PrefetchAhead);
            GridGroup<TD, TS>(rp, t0, t1, t2, t3, q, e0, e1, out var i0, out var i1, out var i2, out var i3);
            var xs = TV.Float(xg[g]);
            f0 = GroupAdd(i0, xs, f0);
            if (n <= 8) f1 = GroupAdd(i1, xs, f1);
            if (n == 4) { f2 = GroupAdd(i2, xs, f2); f3 = GroupAdd(i3, xs, f3); }
        }
        f[0] = f0;
        if (n <= 8) f[1] = f1;
        if (n == 4) { f[2] = f2; f[3] = f3; }
    }

    /// <summary>acc + s·Σᵢ vᵢx̃ᵢ for the Lanes blocks from b0 of one row's group record, the activation vectors already loaded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV RowChunk<TD, TS>(byte* rp, int b0, TV t0, TV t1, TV t2, TV t3, TV qlo, TV qhi, TV E0, TV E1, TV acc)
        where TD : struct, IDigits where TS : struct, ISide
    {
        DecodeGrid<TD, TS>(rp, b0, t0, t1, t2, t3, out var lo2, out var hi2, out var pf, out var sc);
        return TV.AddInt(acc, TOps.ScaledBlockDot(lo2, qlo, hi2, qhi, TOps.SelectBit3(pf, E0, E1), sc));
    }

    /// <summary>
    /// <paramref name="count"/> groups [g0, g0 + count) of one row (records <paramref name="stride"/> bytes apart) for vector 0,
    /// each chunk's TStep (<see cref="IntBlocks"/>, <see cref="FloatBlocks"/>) added straight into the float lane sums
    /// f[0 … 16/Lanes − 1] (chunk c into f[c mod 16/Lanes], as the scalar reference orders them).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void StepRun<TD, TS, TStep>(byte* rp, int stride, int pf, int count, int g0, in StepArgs s, float* tab, TV* f)
        where TD : struct, IDigits where TS : struct, ISide where TStep : struct, IBlockStep
    {
        int n = TV.Lanes;
        TV t0 = TV.Load(tab), t1 = TV.Load(tab + n), t2 = TV.Load(tab + 2 * n), t3 = TV.Load(tab + 3 * n);
        TV acc0 = f[0], acc1 = n <= 8 ? f[1] : acc0, acc2 = n == 4 ? f[2] : acc0, acc3 = n == 4 ? f[3] : acc0;
        for (int g = g0; g < g0 + count; g++, rp += stride)
        {
            Prefetch(rp, pf, PrefetchAhead);
            if (typeof(TV) == typeof(V128))
            {
                StepQuarter4<TD, TS, TStep, FirstHalf>(rp, t0, t1, t2, t3, s, g, ref acc0, ref acc1, ref acc2, ref acc3);
                StepQuarter4<TD, TS, TStep, SecondHalf>(rp, t0, t1, t2, t3, s, g, ref acc0, ref acc1, ref acc2, ref acc3);
                continue;
            }
            acc0 = StepChunk1<TD, TS, TStep>(rp, 0, t0, t1, t2, t3, s, g, acc0);
            if (typeof(TV) == typeof(V512)) acc0 = StepChunk1<TD, TS, TStep>(rp, 1, t0, t1, t2, t3, s, g, acc0);
            else
            {
                acc1 = StepChunk1<TD, TS, TStep>(rp, 1, t0, t1, t2, t3, s, g, acc1);
                acc0 = StepChunk1<TD, TS, TStep>(rp, 2, t0, t1, t2, t3, s, g, acc0);
                acc1 = StepChunk1<TD, TS, TStep>(rp, 3, t0, t1, t2, t3, s, g, acc1);
            }
        }
        f[0] = acc0;
        if (n <= 8) f[1] = acc1;
        if (n == 4) { f[2] = acc2; f[3] = acc3; }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV StepChunk1<TD, TS, TStep>(byte* rp, int c, TV t0, TV t1, TV t2, TV t3, in StepArgs s, int g, TV acc)
        where TD : struct, IDigits where TS : struct, ISide where TStep : struct, IBlockStep
    {
        int b0 = c * TV.Lanes;
        Decode<TD, TS>(rp, b0, t0, t1, t2, t3, out var lo, out var hi, out var pm, out var ws);
        return TStep.Step(lo, hi, pm, ws, s, 0, g, b0, acc);
    }

    /// <summary>Four-lane widths: chunks c0 … c0 + 3 of a group (<see cref="FirstChunk"/>), a call of its own (eight chunks exceed the JIT's inlining budget in one method).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void StepQuarter4<TD, TS, TStep, TH>(byte* rp, TV t0, TV t1, TV t2, TV t3, in StepArgs s, int g, ref TV acc0, ref TV acc1, ref TV acc2, ref TV acc3)
        where TD : struct, IDigits where TS : struct, ISide where TStep : struct, IBlockStep where TH : struct, IChunkHalf
    {
        int c0 = FirstChunk<TH>();
        acc0 = StepChunk1<TD, TS, TStep>(rp, c0, t0, t1, t2, t3, s, g, acc0);
        acc1 = StepChunk1<TD, TS, TStep>(rp, c0 + 1, t0, t1, t2, t3, s, g, acc1);
        acc2 = StepChunk1<TD, TS, TStep>(rp, c0 + 2, t0, t1, t2, t3, s, g, acc2);
        acc3 = StepChunk1<TD, TS, TStep>(rp, c0 + 3, t0, t1, t2, t3, s, g, acc3);
    }

    /// <summary>Chunk c (a constant) of one group for the two rows of a pass: the activation vectors are loaded once for both.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PairChunk<TD, TS>(int c, byte* ra, byte* rb, TV t0, TV t1, TV t2, TV t3, sbyte* q, int* e0, int* e1, ref TV a, ref TV b)
        where TD : struct, IDigits where TS : struct, ISide
    {
        int k = c * TV.Lanes;
        TV qlo = TV.Load(q + 4 * k), qhi = TV.Load(q + 128 + 4 * k), E0 = TV.Load(e0 + k), E1 = TV.Load(e1 + k);
        a = RowChunk<TD, TS>(ra, k, t0, t1, t2, t3, qlo, qhi, E0, E1, a);
        b = RowChunk<TD, TS>(rb, k, t0, t1, t2, t3, qlo, qhi, E0, E1, b);
    }

    /// <summary>
    /// Two rows at once (256- and 512-bit vectors with 32 registers), the loop shared by <see cref="GroupedPair"/> and
    /// <see cref="IntPair"/>: every activation vector is loaded once per chunk for both rows (on one row, those loads — 512
    /// bytes of activations against 144 of weights per group — were the limit). Each row's steps and their order are the
    /// one-row loop's, so the sums are bit-identical. The rows' records of a group are adjacent (rp, rp + rec:
    /// <see cref="PackedE8Matrix.Interleave"/>), a row's next group <paramref name="stride"/> bytes on; f[0 …] and
    /// f[16/Lanes …] are their float lane sums; each group prefetches <paramref name="pf"/> bytes ahead. q: int8 values,
    /// t0/t1: per-block terms, x: activation scales (TG.ScalesPerGroup a group), tab: the scale table.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void RunPair<TD, TS, TG>(byte* rp, int rec, int stride, int pf, int count, sbyte* q, int* t0, int* t1, float* x, void* tab, TV* f)
        where TD : struct, IDigits where TS : struct, ISide where TG : struct, IPairGroup
    {
        if (typeof(TV) == typeof(V256) && typeof(TD) == typeof(Digits3))
        {
            // b = 3 at 256 bits with 32 registers (the avx2 variant on an AVX-512 CPU): four chunks of two rows' b = 3 decode
            // overran the JIT's inlining budget (the chunks became calls passing vectors through the stack: 7.9 against 1.1 ms
            // on 14336×4096); a walk per lane set holds two, and the second reads the segment's records again from L1. Each
            // lane set has float sums of its own, so the order of additions is unchanged.
            RunPairSet<TD, TS, TG, Set0>(rp, rec, stride, pf, count, q, t0, t1, x, tab, f);
            RunPairSet<TD, TS, TG, Set1>(rp, rec, stride, 0, count, q, t0, t1, x, tab, f + 1);
            return;
        }
        // The width is tested with typeof in every branch (not through a local or a static property), so the JIT folds it
        // while importing and inlines only the live arm (its inlining budget would not hold both).
        int n = TV.Lanes, per = 16 / n, xn = typeof(TG) == typeof(GroupedPair) ? 1 : 32;
        float* tf = (float*)tab;
        TV s0 = TV.Load(tf), s1 = TV.Load(tf + n), s2 = TV.Load(tf + 2 * n), s3 = TV.Load(tf + 3 * n);
        byte* ra = rp, rb = rp + rec;
        TV fa0 = f[0], fb0 = f[per];
        TV fa1 = typeof(TV) == typeof(V256) ? f[1] : fa0, fb1 = typeof(TV) == typeof(V256) ? f[per + 1] : fa0;
        for (int g = 0; g < count; g++, ra += stride, rb += stride, q += 256, t0 += 32, t1 += 32, x += xn)
        {
            Prefetch(ra, pf, PrefetchAheadPair);
            TG.Group<TD, TS>(ra, rb, s0, s1, s2, s3, q, t0, t1, x, ref fa0, ref fb0, ref fa1, ref fb1);
        }
        f[0] = fa0; f[per] = fb0;
        if (typeof(TV) == typeof(V256)) { f[1] = fa1; f[per + 1] = fb1; }
    }

    /// <summary><see cref="RunPair"/> for lane set TJ only (chunks J and J + 2 at 256 bits), its float sums f[0] and f[16/Lanes].</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void RunPairSet<TD, TS, TG, TJ>(byte* rp, int rec, int stride, int pf, int count, sbyte* q, int* t0, int* t1, float* x, void* tab, TV* f)
        where TD : struct, IDigits where TS : struct, ISide where TG : struct, IPairGroup where TJ : struct, ILaneSet
    {
        int n = TV.Lanes, per = 16 / n, xn = typeof(TG) == typeof(GroupedPair) ? 1 : 32, j = typeof(TJ) == typeof(Set0) ? 0 : 1;
        float* tf = (float*)tab;
        TV s0 = TV.Load(tf), s1 = TV.Load(tf + n), s2 = TV.Load(tf + 2 * n), s3 = TV.Load(tf + 3 * n);
        byte* ra = rp, rb = rp + rec;
        TV fa = f[0], fb = f[per];
        for (int g = 0; g < count; g++, ra += stride, rb += stride, q += 256, t0 += 32, t1 += 32, x += xn)
        {
            Prefetch(ra, pf, PrefetchAheadPair);
            TG.LaneSet<TD, TS>(j, ra, rb, s0, s1, s2, s3, q, t0, t1, x, ref fa, ref fb);
        }
        f[0] = fa; f[per] = fb;
    }

    /// <summary>One group of the two rows of <see cref="RunPair"/> (chunks c ≡ 0 mod 16/Lanes into fa0/fb0, the others into fa1/fb1).</summary>
    private interface IPairGroup
    {
        static abstract void Group<TD, TS>(byte* ra, byte* rb, TV t0, TV t1, TV t2, TV t3, sbyte* q, int* t0p, int* t1p, float* x, ref TV fa0, ref TV fb0, ref TV fa1, ref TV fb1)
            where TD : struct, IDigits where TS : struct, ISide;
        /// <summary>Chunks j and j + 2 (j a constant) of one group at 256 bits, into fa/fb: the lane set j part of <see cref="Group"/>.</summary>
        static abstract void LaneSet<TD, TS>(int j, byte* ra, byte* rb, TV t0, TV t1, TV t2, TV t3, sbyte* q, int* t0p, int* t1p, float* x, ref TV fa, ref TV fb)
            where TD : struct, IDigits where TS : struct, ISide;
    }

    /// <summary><see cref="ActivationMode.Int8Group"/>: the group's exact int32 lane sums (E0/E1 terms), then + (float)sum·Xg as <see cref="GroupRun"/>.</summary>
    private readonly struct GroupedPair : IPairGroup
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Group<TD, TS>(byte* ra, byte* rb, TV t0, TV t1, TV t2, TV t3, sbyte* q, int* e0, int* e1, float* xg, ref TV fa0, ref TV fb0, ref TV fa1, ref TV fb1)
            where TD : struct, IDigits where TS : struct, ISide
        {
            // Chunks of Lanes blocks, each a constant: lanes of chunk c hold blocks ≡ l (mod 16) in accumulator c mod 16/Lanes.
            TV a0 = TV.Int(0), a1 = a0, b0 = a0, b1 = a0;
            PairChunk<TD, TS>(0, ra, rb, t0, t1, t2, t3, q, e0, e1, ref a0, ref b0);
            if (typeof(TV) == typeof(V256))
            {
                PairChunk<TD, TS>(1, ra, rb, t0, t1, t2, t3, q, e0, e1, ref a1, ref b1);
                PairChunk<TD, TS>(2, ra, rb, t0, t1, t2, t3, q, e0, e1, ref a0, ref b0);
                PairChunk<TD, TS>(3, ra, rb, t0, t1, t2, t3, q, e0, e1, ref a1, ref b1);
            }
            else PairChunk<TD, TS>(1, ra, rb, t0, t1, t2, t3, q, e0, e1, ref a0, ref b0);
            var xs = TV.Float(xg[0]);
            fa0 = GroupAdd(a0, xs, fa0); fb0 = GroupAdd(b0, xs, fb0);
            if (typeof(TV) == typeof(V256)) { fa1 = GroupAdd(a1, xs, fa1); fb1 = GroupAdd(b1, xs, fb1); }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void LaneSet<TD, TS>(int j, byte* ra, byte* rb, TV t0, TV t1, TV t2, TV t3, sbyte* q, int* e0, int* e1, float* xg, ref TV fa, ref TV fb)
            where TD : struct, IDigits where TS : struct, ISide
        {
            TV a = TV.Int(0), b = a;
            PairChunk<TD, TS>(j, ra, rb, t0, t1, t2, t3, q, e0, e1, ref a, ref b);
            PairChunk<TD, TS>(j + 2, ra, rb, t0, t1, t2, t3, q, e0, e1, ref a, ref b);
            var xs = TV.Float(xg[0]);
            fa = GroupAdd(a, xs, fa); fb = GroupAdd(b, xs, fb);
        }
    }

    /// <summary>
    /// The small-batch kernel: <paramref name="count"/> groups of TR.Count rows (a group's records <paramref name="rec"/> bytes
    /// apart, the next group's <paramref name="stride"/> on) against TB.Count vectors, canonical lane set TJ only (chunks J and
    /// J + 16/Lanes, the blocks the batch-1 kernel adds into those lanes). Each chunk of weights is decoded once for every vector,
    /// each vector's activations loaded once for both rows; per row and vector the int32 lane sums equal the batch-1 kernel's
    /// (exact), then the float sum f[row·fr + vector·16/Lanes + J] += (float)sum·Xg as there, so results are bit-identical.
    /// A call per lane set keeps each body inside the JIT's inlining budget; the call walks all the groups (the other lane
    /// sets read the same records again, from L1), so the float sums stay in registers and the call costs once per segment,
    /// not once per group (per group, the calls and the sums' loads and stores took a third of the batch-4 product on AVX2).
    /// The first lane set prefetches <paramref name="pf"/> bytes ahead per group (0: none).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void BatchLaneSet<TD, TS, TR, TB, TJ>(byte* rp, int rec, int stride, int pf, int count, int* tab, byte* a, float* xg, TV* f, int fr)
        where TD : struct, IDigits where TS : struct, ISide where TR : struct, ICount where TB : struct, ICount where TJ : struct, ILaneSet
    {
        // Counts and the lane set as typeof tests, which the JIT folds while importing (static abstract properties fold only
        // after inlining, and the inlinees they leave behind exhaust the budget on the b = 3 decode).
        int n = TV.Lanes, per = 16 / n, vc = Count<TB>(), j = typeof(TJ) == typeof(Set0) ? 0 : typeof(TJ) == typeof(Set1) ? 1 : typeof(TJ) == typeof(Set2) ? 2 : 3;
        TV t0 = TV.Load(tab), t1 = TV.Load(tab + n), t2 = TV.Load(tab + 2 * n), t3 = TV.Load(tab + 3 * n);
        TV* f0 = f + j, f1 = f0 + fr;
        // b = 3 with two rows: the float steps run as a call per group on sums kept in memory (inlined, with the b = 3 decode of
        // two rows they overran the JIT's inlining budget and were left as five calls each passing vectors through the stack:
        // batch 4 at 512 bits took 3× the 4-bit time). A type test, folded while importing.
        bool two = typeof(TR) == typeof(Two), inMemory = typeof(TD) == typeof(Digits3) && typeof(TR) == typeof(Two);
        TV g00 = f0[0], g01 = vc > 1 ? f0[per] : g00, g02 = vc > 2 ? f0[2 * per] : g00, g03 = vc > 3 ? f0[3 * per] : g00;
        TV g10 = two ? f1[0] : g00, g11 = two && vc > 1 ? f1[per] : g00, g12 = two && vc > 2 ? f1[2 * per] : g00, g13 = two && vc > 3 ? f1[3 * per] : g00;
        int ga = vc * E8ActivationLayout.PanelRecord; // a group of the block's vectors
        for (int g = 0; g < count; g++, rp += stride, a += ga, xg += vc)
        {
            if (typeof(TJ) == typeof(Set0)) Prefetch(rp, pf, two ? PrefetchAheadPair : PrefetchAhead);
            TV z = TV.Int(0), a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
            BatchChunk<TD, TS, TR, TB>(j, rp, rec, t0, t1, t2, t3, a, ref a00, ref a01, ref a02, ref a03, ref a10, ref a11, ref a12, ref a13);
            BatchChunk<TD, TS, TR, TB>(j + per, rp, rec, t0, t1, t2, t3, a, ref a00, ref a01, ref a02, ref a03, ref a10, ref a11, ref a12, ref a13);
            if (inMemory)
            {
                GroupAdds<TB>(a00, a01, a02, a03, xg, f0, per);
                GroupAdds<TB>(a10, a11, a12, a13, xg, f1, per);
                continue;
            }
            TV x0 = TV.Float(xg[0]), x1 = vc > 1 ? TV.Float(xg[1]) : x0, x2 = vc > 2 ? TV.Float(xg[2]) : x0, x3 = vc > 3 ? TV.Float(xg[3]) : x0;
            g00 = GroupAdd(a00, x0, g00);
            if (vc > 1) g01 = GroupAdd(a01, x1, g01);
            if (vc > 2) g02 = GroupAdd(a02, x2, g02);
            if (vc > 3) g03 = GroupAdd(a03, x3, g03);
            if (two)
            {
                g10 = GroupAdd(a10, x0, g10);
                if (vc > 1) g11 = GroupAdd(a11, x1, g11);
                if (vc > 2) g12 = GroupAdd(a12, x2, g12);
                if (vc > 3) g13 = GroupAdd(a13, x3, g13);
            }
        }
        if (inMemory) return;
        f0[0] = g00;
        if (vc > 1) f0[per] = g01;
        if (vc > 2) f0[2 * per] = g02;
        if (vc > 3) f0[3 * per] = g03;
        if (two)
        {
            f1[0] = g10;
            if (vc > 1) f1[per] = g11;
            if (vc > 2) f1[2 * per] = g12;
            if (vc > 3) f1[3 * per] = g13;
        }
    }

    /// <summary>f[v·per] += (float)a_v·xg[v] for the TB.Count vectors of one row (b = 3, two rows: see <see cref="BatchLaneSet"/>).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void GroupAdds<TB>(TV a0, TV a1, TV a2, TV a3, float* xg, TV* f, int per) where TB : struct, ICount
    {
        int vc = Count<TB>();
        f[0] = GroupAdd(a0, TV.Float(xg[0]), f[0]);
        if (vc > 1) f[per] = GroupAdd(a1, TV.Float(xg[1]), f[per]);
        if (vc > 2) f[2 * per] = GroupAdd(a2, TV.Float(xg[2]), f[2 * per]);
        if (vc > 3) f[3 * per] = GroupAdd(a3, TV.Float(xg[3]), f[3 * per]);
    }

    /// <summary>TC.Count as a constant the JIT folds while importing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Count<TC>() where TC : struct, ICount
        => typeof(TC) == typeof(One) ? 1 : typeof(TC) == typeof(Two) ? 2 : typeof(TC) == typeof(Three) ? 3 : 4;

    /// <summary>Chunk c (a constant) of the rows of a pass, decoded once, against every vector of the pass: a[row][vector] += s·Σᵢ vᵢx̃ᵢ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BatchChunk<TD, TS, TR, TB>(int c, byte* rp, int rec, TV t0, TV t1, TV t2, TV t3, byte* a,
        ref TV a00, ref TV a01, ref TV a02, ref TV a03, ref TV a10, ref TV a11, ref TV a12, ref TV a13)
        where TD : struct, IDigits where TS : struct, ISide where TR : struct, ICount where TB : struct, ICount
    {
        int k = c * TV.Lanes, vc = Count<TB>();
        DecodeGrid<TD, TS>(rp, k, t0, t1, t2, t3, out var lo0, out var hi0, out var pf0, out var sc0);
        FoldParity(ref lo0, ref hi0, pf0);
        TV lo1 = lo0, hi1 = hi0, sc1 = sc0;
        if (typeof(TR) == typeof(Two))
        {
            DecodeGrid<TD, TS>(rp + rec, k, t0, t1, t2, t3, out lo1, out hi1, out var pf1, out sc1);
            FoldParity(ref lo1, ref hi1, pf1);
        }
        // Lane set j's chunk s of vector v at o + v·24·Lanes (E8ActivationLayout.PanelOffset, written out: a call here, were the
        // JIT's inlining budget spent, would spill every live vector).
        int n = TV.Lanes, per = 16 / n, j = c % per, o = 24 * n * j * vc + 12 * n * (c / per), ov = 24 * n;
        VectorChunk<TR>(a, o, lo0, hi0, sc0, lo1, hi1, sc1, ref a00, ref a10);
        if (vc > 1) VectorChunk<TR>(a, o + ov, lo0, hi0, sc0, lo1, hi1, sc1, ref a01, ref a11);
        if (vc > 2) VectorChunk<TR>(a, o + 2 * ov, lo0, hi0, sc0, lo1, hi1, sc1, ref a02, ref a12);
        if (vc > 3) VectorChunk<TR>(a, o + 3 * ov, lo0, hi0, sc0, lo1, hi1, sc1, ref a03, ref a13);
    }

    /// <summary>
    /// Adds a block's parity term into its doubled digits: w = 2u + p·d, plus 1 on digit 0 so that w ≥ 0 (d = (−1, 1, …, 1);
    /// lo holds digits 0, 2, 4, 6 of a block in the bytes of its lane, hi 1, 3, 5, 7; w &lt; 2q ≤ 32). With it the vector's
    /// additive term no longer depends on the parity (<see cref="E8ActivationLayout.Panel"/>): once per decoded chunk instead
    /// of a select per vector. pf: the parity in bit 3.
    /// </summary>
    /// <summary>All-ones lanes where the parity bit (bit 3 of <paramref name="pf"/>) is set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV ParityLanes(TV pf) => TV.ShiftRightArith(TV.ShiftLeft(pf, 28), 31);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FoldParity(ref TV lo, ref TV hi, TV pf)
    {
        var t = TV.And(ParityLanes(pf), TV.Int(0x01010101)); // p in every byte
        hi = TV.AddInt(hi, t);                    // +p on digits 1, 3, 5, 7 (bytes stay < 32: no carries)
        lo = TV.AddInt(lo, TV.Xor(t, TV.Int(1))); // digit 0: +1 − p; digits 2, 4, 6: +p
    }

    /// <summary>
    /// One vector's chunk (its activations loaded once from a + o: even-digit values, odd-digit values, additive terms; see
    /// <see cref="E8ActivationLayout.Panel"/>) against one or two rows decoded with their parity folded in.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void VectorChunk<TR>(byte* a, int o, TV lo0, TV hi0, TV sc0, TV lo1, TV hi1, TV sc1, ref TV a0, ref TV a1)
        where TR : struct, ICount
    {
        // The addresses as a + constant at their uses: through locals (or a + o as the pointer passed in) the JIT kept each in a
        // register of its own, an lea apiece.
        int n = TV.Lanes;
        if (typeof(TR) != typeof(Two))
        {
            a0 = TV.AddInt(a0, TOps.ScaledBlockDotSum(lo0, (sbyte*)(a + o), hi0, (sbyte*)(a + (o + 4 * n)), (int*)(a + (o + 8 * n)), sc0));
            return;
        }
        TV Qlo = TV.Load((sbyte*)(a + o)), Qhi = TV.Load((sbyte*)(a + (o + 4 * n))), E = TV.Load((int*)(a + (o + 8 * n)));
        a0 = TV.AddInt(a0, TOps.ScaledBlockDot(lo0, Qlo, hi0, Qhi, E, sc0));
        a1 = TV.AddInt(a1, TOps.ScaledBlockDot(lo1, Qlo, hi1, Qhi, E, sc1));
    }

    /// <summary>
    /// <paramref name="count"/> groups of TR.Count rows against TB.Count vectors (<see cref="BatchLaneSet"/> per lane set);
    /// a: the block's records from the segment's first group on (<see cref="E8ActivationLayout.Panel"/>), xg their scales;
    /// f holds [vector][16/Lanes] per row, rows fr apart.
    /// </summary>
    private static void GroupRunBatch<TD, TS, TR, TB>(byte* rp, int rec, int stride, int pf, int count, byte* a, float* xg, int* tab, TV* f, int fr)
        where TD : struct, IDigits where TS : struct, ISide where TR : struct, ICount where TB : struct, ICount
    {
        BatchLaneSet<TD, TS, TR, TB, Set0>(rp, rec, stride, pf, count, tab, a, xg, f, fr);
        if (typeof(TV) != typeof(V512)) BatchLaneSet<TD, TS, TR, TB, Set1>(rp, rec, stride, pf, count, tab, a, xg, f, fr);
        if (typeof(TV) == typeof(V128))
        {
            BatchLaneSet<TD, TS, TR, TB, Set2>(rp, rec, stride, pf, count, tab, a, xg, f, fr);
            BatchLaneSet<TD, TS, TR, TB, Set3>(rp, rec, stride, pf, count, tab, a, xg, f, fr);
        }
    }

    /// <summary>Dispatches <see cref="GroupRunBatch"/> on the (row, vector) counts of a pass.</summary>
    private static void RunBatch<TD, TS>(bool pair, int vc, byte* rp, int rec, int stride, int pf, int count, byte* a, float* xg, int* tab, TV* f, int fr)
        where TD : struct, IDigits where TS : struct, ISide
    {
        switch ((pair, vc))
        {
            case (true, 4): GroupRunBatch<TD, TS, Two, Four>(rp, rec, stride, pf, count, a, xg, tab, f, fr); break;
            case (true, 3): GroupRunBatch<TD, TS, Two, Three>(rp, rec, stride, pf, count, a, xg, tab, f, fr); break;
            case (true, 2): GroupRunBatch<TD, TS, Two, Two>(rp, rec, stride, pf, count, a, xg, tab, f, fr); break;
            case (true, _): GroupRunBatch<TD, TS, Two, One>(rp, rec, stride, pf, count, a, xg, tab, f, fr); break;
            case (false, 4): GroupRunBatch<TD, TS, One, Four>(rp, rec, stride, pf, count, a, xg, tab, f, fr); break;
            case (false, 3): GroupRunBatch<TD, TS, One, Three>(rp, rec, stride, pf, count, a, xg, tab, f, fr); break;
            case (false, 2): GroupRunBatch<TD, TS, One, Two>(rp, rec, stride, pf, count, a, xg, tab, f, fr); break;
            default: GroupRunBatch<TD, TS, One, One>(rp, rec, stride, pf, count, a, xg, tab, f, fr); break;
        }
    }

    /// <summary>
    /// Pre-decodes lane set j (chunks A = j and B = j + 16/Lanes) of a group record for the GEMM into d[0 … 4]: the digits
    /// with the block parity folded in (<see cref="FoldParity"/>: w = 2u + p·d, plus 1 on digit 0; w &lt; 32), two blocks per
    /// 32-bit lane (block A of the lane in bytes 0–1, block B in bytes 2–3): d[0] digits 0 and 2, d[1] 4 and 6, d[2] 1 and 3,
    /// d[3] 5 and 7; d[4] the two block scales in the lane's 16-bit halves. <see cref="IIsaOps{TV}.ScaledPairDot"/> then sums
    /// each block whole in a 16-bit half and scales both blocks with one vpmaddwd, the two blocks the batch-1 kernel adds into
    /// that lane (so the int32 lane sums are the same).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PredecodePair<TD, TS>(byte* rp, int j, TV t0, TV t1, TV t2, TV t3, TV* d)
        where TD : struct, IDigits where TS : struct, ISide
    {
        DecodeGrid<TD, TS>(rp, j * TV.Lanes, t0, t1, t2, t3, out var loA, out var hiA, out var pA, out var sA);
        FoldParity(ref loA, ref hiA, pA);
        DecodeGrid<TD, TS>(rp, (j + 16 / TV.Lanes) * TV.Lanes, t0, t1, t2, t3, out var loB, out var hiB, out var pB, out var sB);
        FoldParity(ref loB, ref hiB, pB);
        TV low = TV.Int(0xFFFF), high = TV.Int(unchecked((int)0xFFFF0000));
        d[0] = TV.Or(TV.And(loA, low), TV.ShiftLeft(loB, 16));
        d[1] = TV.Or(TV.ShiftRight(loA, 16), TV.And(loB, high));
        d[2] = TV.Or(TV.And(hiA, low), TV.ShiftLeft(hiB, 16));
        d[3] = TV.Or(TV.ShiftRight(hiA, 16), TV.And(hiB, high));
        d[4] = TV.Or(TV.And(sA, low), TV.And(sB, high));
    }

    /// <summary>TVs of one pre-decoded group: 5 per lane set (<see cref="PredecodePair"/>).</summary>
    private static int GemmGroupTvs => 5 * (16 / TV.Lanes);

    /// <summary>
    /// <see cref="PredecodePair"/> of every lane set of <paramref name="count"/> groups of one row (records <paramref name="stride"/>
    /// bytes apart, a segment of the layout) into d (<see cref="GemmGroupTvs"/> a group, groups consecutive); each group prefetches
    /// <paramref name="pf"/> bytes (0: none) ahead of the stream. A loop of its own, lane sets unrolled, so the tables stay in
    /// registers (inside <see cref="GroupedGemm"/> the JIT reloaded them from the stack for every chunk).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void PredecodeRun<TD, TS>(byte* rp, int stride, int pf, int count, int* tab, TV* d)
        where TD : struct, IDigits where TS : struct, ISide
    {
        int n = TV.Lanes, step = 5 * (16 / n);
        TV t0 = TV.Load(tab), t1 = TV.Load(tab + n), t2 = TV.Load(tab + 2 * n), t3 = TV.Load(tab + 3 * n);
        for (int g = 0; g < count; g++, rp += stride, d += step)
        {
            Prefetch(rp, pf, PrefetchAheadPair);
            if (typeof(TV) == typeof(V128))
            {
                // Four lane sets in one method spent the JIT's inlining budget (the vector helpers became calls, 1.4× slower at batch 8).
                PredecodeSets<TD, TS, FirstHalf>(rp, t0, t1, t2, t3, d);
                PredecodeSets<TD, TS, SecondHalf>(rp, t0, t1, t2, t3, d + 10);
                continue;
            }
            PredecodePair<TD, TS>(rp, 0, t0, t1, t2, t3, d);
            if (typeof(TV) != typeof(V512)) PredecodePair<TD, TS>(rp, 1, t0, t1, t2, t3, d + 5);
        }
    }

    /// <summary>Four-lane widths: lane sets 0 and 1 (TH first half) or 2 and 3 of a group, a call of its own for the JIT's inlining budget.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void PredecodeSets<TD, TS, TH>(byte* rp, TV t0, TV t1, TV t2, TV t3, TV* d)
        where TD : struct, IDigits where TS : struct, ISide where TH : struct, IChunkHalf
    {
        int j = typeof(TH) == typeof(FirstHalf) ? 0 : 2;
        PredecodePair<TD, TS>(rp, j, t0, t1, t2, t3, d);
        PredecodePair<TD, TS>(rp, j + 1, t0, t1, t2, t3, d + 5);
    }

    /// <summary>
    /// TR.Count pre-decoded rows (<paramref name="d"/>, the second <paramref name="rowTvs"/> on) against TB.Count vectors of the
    /// GEMM panel (<paramref name="x"/>: the block's first group; see <see cref="E8ActivationLayout.GemmPanel"/>)
    /// over <paramref name="count"/> groups, lane set by lane set: per group one <see cref="IIsaOps{TV}.ScaledPairDot"/> per row and
    /// vector (its int32 lanes are the batch-1 kernel's lane sums), then f += (float)lanes·Xg with the sums f held in registers
    /// for the whole run (f: [row][vector][16/Lanes], rows <paramref name="fr"/> apart, vectors 16/Lanes; xg: vectors
    /// <paramref name="cg"/> apart). The decoded operands sit in registers for all vectors; each activation vector is loaded once
    /// (the JIT folds the first vector's loads into their instructions and keeps the others' as separate loads, 15 more instructions
    /// per lane set and group with four vectors at 256 bits, whichever way the offsets were written).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void GemmPass<TR, TB>(TV* d, long rowTvs, int count, byte* x, float* xg, int cg, TV* f, int fr, bool first)
        where TR : struct, ICount where TB : struct, ICount
    {
        // Constants the JIT folds: the TVs of a decoded group (a call to GemmGroupTvs here, were the inlining budget spent,
        // would spill every live vector), a lane set's and a vector's bytes in the panel, a group's bytes for this block.
        int per = 16 / TV.Lanes, vc = Count<TB>(), step = 5 * per, ov = 20 * TV.Lanes, gs = vc * E8ActivationLayout.GemmRecord;
        bool two = typeof(TR) == typeof(Two);
        for (int j = 0; j < per; j++)
        {
            TV* dj = d + 5 * j;
            byte* xj = x + ov * vc * j;
            TV* fj = f + j;
            // The first segment starts from zero in registers (the sums' first term is then 0 + p, as from zeroed memory).
            TV f00 = TV.Float(0), f01 = f00, f02 = f00, f03 = f00, f10 = f00, f11 = f00, f12 = f00, f13 = f00;
            if (!first)
            {
                f00 = fj[0]; f01 = vc > 1 ? fj[per] : f00; f02 = vc > 2 ? fj[2 * per] : f00; f03 = vc > 3 ? fj[3 * per] : f00;
                f10 = two ? fj[fr] : f00; f11 = two && vc > 1 ? fj[fr + per] : f00; f12 = two && vc > 2 ? fj[fr + 2 * per] : f00; f13 = two && vc > 3 ? fj[fr + 3 * per] : f00;
            }
            float* xs = xg;
            for (int g = 0; g < count; g++, dj += step, xj += gs, xs++)
            {
                TV w0 = dj[0], w1 = dj[1], w2 = dj[2], w3 = dj[3], s = dj[4];
                TV x0 = TV.Float(xs[0]), x1 = vc > 1 ? TV.Float(xs[cg]) : x0, x2 = vc > 2 ? TV.Float(xs[2 * cg]) : x0, x3 = vc > 3 ? TV.Float(xs[3 * cg]) : x0;
                f00 = GroupAdd(TOps.ScaledPairDot(w0, w1, w2, w3, xj, 0, s), x0, f00);
                if (vc > 1) f01 = GroupAdd(TOps.ScaledPairDot(w0, w1, w2, w3, xj, ov, s), x1, f01);
                if (vc > 2) f02 = GroupAdd(TOps.ScaledPairDot(w0, w1, w2, w3, xj, 2 * ov, s), x2, f02);
                if (vc > 3) f03 = GroupAdd(TOps.ScaledPairDot(w0, w1, w2, w3, xj, 3 * ov, s), x3, f03);
                if (two)
                {
                    TV* e = dj + rowTvs;
                    TV u0 = e[0], u1 = e[1], u2 = e[2], u3 = e[3], t = e[4];
                    f10 = GroupAdd(TOps.ScaledPairDot(u0, u1, u2, u3, xj, 0, t), x0, f10);
                    if (vc > 1) f11 = GroupAdd(TOps.ScaledPairDot(u0, u1, u2, u3, xj, ov, t), x1, f11);
                    if (vc > 2) f12 = GroupAdd(TOps.ScaledPairDot(u0, u1, u2, u3, xj, 2 * ov, t), x2, f12);
                    if (vc > 3) f13 = GroupAdd(TOps.ScaledPairDot(u0, u1, u2, u3, xj, 3 * ov, t), x3, f13);
                }
            }
            fj[0] = f00;
            if (vc > 1) fj[per] = f01;
            if (vc > 2) fj[2 * per] = f02;
            if (vc > 3) fj[3 * per] = f03;
            if (two)
            {
                fj[fr] = f10;
                if (vc > 1) fj[fr + per] = f11;
                if (vc > 2) fj[fr + 2 * per] = f12;
                if (vc > 3) fj[fr + 3 * per] = f13;
            }
        }
    }

    /// <summary>
    /// <see cref="Grouped{TD, TS}"/> for a batch. Rows in tiles, columns in segments of <see cref="GemmSegmentGroups"/> groups
    /// (so that a block of four vectors' panel stays in L1): a tile's segment is decoded once (<see cref="PredecodePair"/>:
    /// 1.25 bytes per weight, sized to stay in L2), then every block of up to four vectors passes over its rows, one or two
    /// rows at a time (<see cref="GemmPass"/>), each (row, vector, lane set) keeping its float sums across segments in order
    /// of groups (the first segment's passes start them from zero in registers) and reduced into y right after the block's
    /// passes over the last segment. Each block's integer sum equals the batch-1 kernel's and the float steps are the same, so
    /// results are bit-identical.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void GroupedGemm<TD, TS>(PackedE8Matrix m, E8ActivationLayout a, int r0, int r1, float* y)
        where TD : struct, IDigits where TS : struct, ISide
    {
        int n = TV.Lanes, groups = m.Groups, per = 16 / n, rows = m.Rows, batch = a.Batch, rec = E8ActivationLayout.GemmRecord;
        // The tile is sized by one segment, not by whole rows: 14336 columns made tiles of 4 rows, so each vector block's panel
        // segment was loaded into L1 for 4 rows (now 18, as with 4096 columns; 4096×14336 at the AVX-512 level, batch 16
        // 6.6–6.8 → 6.2–6.4 ms, batch 64 24.6–25.3 → 22.8–23.2).
        int segGroups = Math.Min(GemmSegmentGroups, groups);
        long segTvs = (long)segGroups * GemmGroupTvs;
        int tileRows = (int)Math.Clamp(GemmTileBytes / (segTvs * sizeof(TV)), 1, 64);
        // With two rows per pass, a whole number of pairs: an odd tile ends on a one-row pass, which loads four vectors'
        // activations for one row (with whole-row tiles, 4096×14336 at 5 → 4 rows: batch 16 7.2–7.3 against 7.8–7.9 ms).
        if (Pairs && tileRows > 1) tileRows &= ~1;
        var dec = (TV*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(tileRows * segTvs * sizeof(TV)), 64);
        int fRow = batch * per; // f: [tile row][vector][lane set]; also the rows' distance for GemmPass
        var f = (TV*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)tileRows * (nuint)fRow * (nuint)sizeof(TV), 64);
        try
        {
            fixed (byte* data = m.Data, gp = a.GemmPanel)
            fixed (int* tab = m.GridTable)
            fixed (float* rs = m.RowScales, xg0 = a.Xg)
            {
                float step = m.GridStep;
                for (int rb = r0; rb < r1; rb += tileRows)
                {
                    int re = Math.Min(r1, rb + tileRows);
                    for (int g0 = 0; g0 < groups; g0 += segGroups)
                    {
                        int count = Math.Min(segGroups, groups - g0);
                        bool first = g0 == 0, last = g0 + count == groups;
                        for (int r = rb; r < re; r++)
                        {
                            int stride = m.GroupStride(r) * m.RecordBytes;
                            TV* dr = dec + (r - rb) * segTvs;
                            // Layout segment by layout segment (records stride apart inside one); the first row of an interleaved set prefetches the set.
                            int pf = m.IsSetStart(r) ? stride : 0;
                            for (int g = g0, ge = g0 + count; g < ge;)
                            {
                                int gn = Math.Min(ge, m.SegmentEnd(g));
                                PredecodeRun<TD, TS>(data + m.Record(r, g) * m.RecordBytes, stride, pf, gn - g, tab, dr + (long)(g - g0) * GemmGroupTvs);
                                g = gn;
                            }
                        }
                        for (int v = 0; v < batch; v += 4)
                        {
                            int vc = Math.Min(4, batch - v);
                            byte* x = gp + ((long)v * groups + (long)g0 * vc) * rec; // the block's group g0 (E8ActivationLayout.GemmPanel)
                            float* xg = xg0 + (long)v * groups + g0;
                            for (int r = rb; r < re;)
                            {
                                // Two rows per pass share each activation line (one where the tile has an odd row left) with 32
                                // registers; with 16, one (two rows by four vectors spilled).
                                int nr = Pairs ? Math.Min(2, re - r) : 1;
                                TV* dr = dec + (r - rb) * segTvs;
                                TV* fr = f + (long)(r - rb) * fRow + (long)v * per;
                                switch ((nr, vc))
                                {
                                    case (2, 4): GemmPass<Two, Four>(dr, segTvs, count, x, xg, groups, fr, fRow, first); break;
                                    case (2, 3): GemmPass<Two, Three>(dr, segTvs, count, x, xg, groups, fr, fRow, first); break;
                                    case (2, 2): GemmPass<Two, Two>(dr, segTvs, count, x, xg, groups, fr, fRow, first); break;
                                    case (2, _): GemmPass<Two, One>(dr, segTvs, count, x, xg, groups, fr, fRow, first); break;
                                    case (_, 4): GemmPass<One, Four>(dr, segTvs, count, x, xg, groups, fr, fRow, first); break;
                                    case (_, 3): GemmPass<One, Three>(dr, segTvs, count, x, xg, groups, fr, fRow, first); break;
                                    case (_, 2): GemmPass<One, Two>(dr, segTvs, count, x, xg, groups, fr, fRow, first); break;
                                    default: GemmPass<One, One>(dr, segTvs, count, x, xg, groups, fr, fRow, first); break;
                                }
                                r += nr;
                            }
                            // After the last segment, the block's sums while they are in L1, each vector's rows into consecutive y
                            // (a separate loop over the tile, row by row, wrote y a vector's length apart: 12 % of the product at batch 512).
                            if (last)
                                for (int k = v; k < v + vc; k++)
                                {
                                    float* yk = y + (long)k * rows;
                                    for (int r = rb; r < re; r++)
                                    {
                                        TV* fk = f + (r - rb) * fRow + (long)k * per;
                                        yk[r] = rs[r] * step * ReduceSets(fk);
                                    }
                                }
                        }
                    }
                }
            }
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(dec);
            System.Runtime.InteropServices.NativeMemory.AlignedFree(f);
        }
    }

    /// <summary>Groups per column segment of the GEMM: four vectors' panel (4 · 16 · 320 bytes) and a row's decoded segment stay in L1.</summary>
    private const int GemmSegmentGroups = 16;

    /// <summary>Bytes of pre-decoded weights per tile of the batched kernels (kept in L2): one column segment of the tile's rows in the int8-group GEMM, whole rows in <see cref="Gemm4"/>.</summary>
    private const int GemmTileBytes = 96 * 1024;

    /// <summary>Rows per block in the batched kernels: their records stay in L2 while every batch tile passes over them.</summary>
    private const int RowBlock = 16;
    /// <summary>Vectors per batch tile: each decoded group of weights is applied to this many vectors.</summary>
    private const int BatchTile = 8;

    /// <summary>
    /// Decodes chunk c (blocks c·Lanes …) into dec[4c … 4c + 3] = lo, hi, parity mask, β/2. Callers pass
    /// c as a constant, so every shift and branch on the block offset folds away (the b = 3 plane
    /// reads in particular).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DecodeChunk<TD, TS>(byte* rp, int c, TV t0, TV t1, TV t2, TV t3, TV* dec)
        where TD : struct, IDigits where TS : struct, ISide
    {
        Decode<TD, TS>(rp, c * TV.Lanes, t0, t1, t2, t3, out dec[4 * c], out dec[4 * c + 1], out dec[4 * c + 2], out dec[4 * c + 3]);
    }

    /// <summary>All 32/Lanes chunks of a group record, unrolled with constant chunk numbers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DecodeGroup<TD, TS>(byte* rp, TV t0, TV t1, TV t2, TV t3, TV* dec)
        where TD : struct, IDigits where TS : struct, ISide
    {
        DecodeChunk<TD, TS>(rp, 0, t0, t1, t2, t3, dec);
        DecodeChunk<TD, TS>(rp, 1, t0, t1, t2, t3, dec);
        if (typeof(TV) != typeof(V512))
        {
            DecodeChunk<TD, TS>(rp, 2, t0, t1, t2, t3, dec);
            DecodeChunk<TD, TS>(rp, 3, t0, t1, t2, t3, dec);
        }
        if (typeof(TV) == typeof(V128))
        {
            DecodeChunk<TD, TS>(rp, 4, t0, t1, t2, t3, dec);
            DecodeChunk<TD, TS>(rp, 5, t0, t1, t2, t3, dec);
            DecodeChunk<TD, TS>(rp, 6, t0, t1, t2, t3, dec);
            DecodeChunk<TD, TS>(rp, 7, t0, t1, t2, t3, dec);
        }
    }

    /// <summary>Chunk c (a constant) of one group for the two rows of a pass: the activation vectors are loaded once for both.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void IntPairChunk<TD, TS>(int c, byte* ra, byte* rb, TV t0, TV t1, TV t2, TV t3, sbyte* q, int* A, int* C, float* xs, ref TV a, ref TV b)
        where TD : struct, IDigits where TS : struct, ISide
    {
        int b0 = c * TV.Lanes;
        TV qlo = TV.Load(q + 4 * b0), qhi = TV.Load(q + 128 + 4 * b0), At = TV.Load(A + b0), Ct = TV.Load(C + b0), xv = TV.Load(xs + b0);
        Decode<TD, TS>(ra, b0, t0, t1, t2, t3, out var lo, out var hi, out var pm, out var ws);
        a = TV.Fma(TV.ToFloat(TV.AddInt(TV.AddInt(TOps.Dot2(lo, qlo, hi, qhi), At), TV.And(pm, Ct))), TV.MulF(ws, xv), a);
        Decode<TD, TS>(rb, b0, t0, t1, t2, t3, out lo, out hi, out pm, out ws);
        b = TV.Fma(TV.ToFloat(TV.AddInt(TV.AddInt(TOps.Dot2(lo, qlo, hi, qhi), At), TV.And(pm, Ct))), TV.MulF(ws, xv), b);
    }

    /// <summary>The per-8-block product (W4A8, W4A4): each chunk's <see cref="IntStep"/> straight into the float lane sums, as <see cref="StepRun"/>.</summary>
    private readonly struct IntPair : IPairGroup
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Group<TD, TS>(byte* ra, byte* rb, TV t0, TV t1, TV t2, TV t3, sbyte* q, int* A, int* C, float* xs, ref TV fa0, ref TV fb0, ref TV fa1, ref TV fb1)
            where TD : struct, IDigits where TS : struct, ISide
        {
            IntPairChunk<TD, TS>(0, ra, rb, t0, t1, t2, t3, q, A, C, xs, ref fa0, ref fb0);
            if (typeof(TV) == typeof(V256))
            {
                IntPairChunk<TD, TS>(1, ra, rb, t0, t1, t2, t3, q, A, C, xs, ref fa1, ref fb1);
                IntPairChunk<TD, TS>(2, ra, rb, t0, t1, t2, t3, q, A, C, xs, ref fa0, ref fb0);
                IntPairChunk<TD, TS>(3, ra, rb, t0, t1, t2, t3, q, A, C, xs, ref fa1, ref fb1);
            }
            else IntPairChunk<TD, TS>(1, ra, rb, t0, t1, t2, t3, q, A, C, xs, ref fa0, ref fb0);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void LaneSet<TD, TS>(int j, byte* ra, byte* rb, TV t0, TV t1, TV t2, TV t3, sbyte* q, int* A, int* C, float* xs, ref TV fa, ref TV fb)
            where TD : struct, IDigits where TS : struct, ISide
        {
            IntPairChunk<TD, TS>(j, ra, rb, t0, t1, t2, t3, q, A, C, xs, ref fa, ref fb);
            IntPairChunk<TD, TS>(j + 2, ra, rb, t0, t1, t2, t3, q, A, C, xs, ref fa, ref fb);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Int<TD, TS>(PackedE8Matrix m, E8ActivationLayout a, int r0, int r1, float* y)
        where TD : struct, IDigits where TS : struct, ISide
    {
        if (a.Batch == 1)
        {
            fixed (float* tab = m.HalfTable, xs0 = a.Xs)
            fixed (sbyte* q0 = a.Q)
            fixed (int* A0 = a.A, C0 = a.C)
            {
                var p = new PassArgs { Q = q0, T0 = A0, T1 = C0, X = xs0, Tab = tab, Cp = a.PaddedCols, Nb = a.Blocks, Groups = m.Groups, Batch = 1,
                    Steps = new StepArgs { X = q0, T0 = A0, T1 = C0, Xs = xs0, Cp = a.PaddedCols, Nb = a.Blocks } };
                Tiled<TD, TS, IntPass<TD, TS>>(m, r0, r1, y, p, 1f);
            }
            return;
        }
        // 8 and 16 lanes: 4 vectors' accumulators in registers (4 lanes would need 16 of them).
        if (TV.Lanes < 8) { IntGemm<TD, TS>(m, a, r0, r1, y); return; }
        int full;
        fixed (byte* data = m.Data)
        fixed (float* tab = m.HalfTable, rs = m.RowScales, xs0 = a.Xs)
        fixed (sbyte* q0 = a.Q)
        fixed (int* A0 = a.A, C0 = a.C)
            full = Gemm4<E8Rows<TD, TS>, IntQuad>(new E8Rows<TD, TS>(m, data, tab, rs),
                new StepArgs { X = q0, T0 = A0, T1 = C0, Xs = xs0, Cp = a.PaddedCols, Nb = a.Blocks }, a.Batch, r0, r1, y);
        if (full < a.Batch) IntGemm<TD, TS>(m, a, r0, r1, y, full);
    }

    /// <summary>Rows of a matrix as the int8 GEMM reads them: decoded into tiles (per row, group and chunk: digits, parity mask, β/2) and their row scales.</summary>
    private interface IRowTiles
    {
        int Groups { get; }
        int Rows { get; }
        /// <summary>Rows [rb, re) into tile, [row][group][chunk][4].</summary>
        void DecodeRows(int rb, int re, TV* tile);
        float RowScale(int r);
    }

    /// <summary>The rows of a <see cref="PackedE8Matrix"/> (pinned by the caller).</summary>
    private readonly struct E8Rows<TD, TS> : IRowTiles where TD : struct, IDigits where TS : struct, ISide
    {
        private readonly PackedE8Matrix _m;
        private readonly byte* _data;
        private readonly float* _tab, _rs;
        public E8Rows(PackedE8Matrix m, byte* data, float* tab, float* rs) { _m = m; _data = data; _tab = tab; _rs = rs; }
        public int Groups => _m.Groups;
        public int Rows => _m.Rows;
        public void DecodeRows(int rb, int re, TV* tile) => DecodeRows<TD, TS>(_m, _data, rb, re, _tab, tile);
        public float RowScale(int r) => _rs[r];
    }

    /// <summary>One decoded chunk (digits, parity mask, β/2) against the Lanes blocks from b0 of vectors v0 … v0 + 3, group g.</summary>
    private interface IQuadStep
    {
        static abstract void Four(TV lo, TV hi, TV pm, TV ws, in StepArgs s, long v0, int g, int b0, ref TV a0, ref TV a1, ref TV a2, ref TV a3);
    }

    /// <summary>int8 activations: <see cref="IntStep"/> for each vector.</summary>
    private readonly struct IntQuad : IQuadStep
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Four(TV lo, TV hi, TV pm, TV ws, in StepArgs s, long v0, int g, int b0, ref TV a0, ref TV a1, ref TV a2, ref TV a3)
        {
            sbyte* q = (sbyte*)s.X + v0 * s.Cp + 256 * g;
            long bo = v0 * s.Nb + 32 * g + b0, nb = s.Nb;
            int* A = (int*)s.T0 + bo, C = (int*)s.T1 + bo;
            float* xs = s.Xs + bo;
            a0 = IntStep(lo, hi, pm, ws, q, A, C, xs, b0, a0);
            a1 = IntStep(lo, hi, pm, ws, q + s.Cp, A + nb, C + nb, xs + nb, b0, a1);
            a2 = IntStep(lo, hi, pm, ws, q + 2 * s.Cp, A + 2 * nb, C + 2 * nb, xs + 2 * nb, b0, a2);
            a3 = IntStep(lo, hi, pm, ws, q + 3 * s.Cp, A + 3 * nb, C + 3 * nb, xs + 3 * nb, b0, a3);
        }
    }

    /// <summary>fp32 activations: the digits converted to floats once for the four vectors (<see cref="FloatDot"/> each).</summary>
    private readonly struct FloatQuad : IQuadStep
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Four(TV lo, TV hi, TV pm, TV ws, in StepArgs s, long v0, int g, int b0, ref TV a0, ref TV a1, ref TV a2, ref TV a3)
        {
            DigitFloats(lo, hi, out var d0, out var d1, out var d2, out var d3, out var d4, out var d5, out var d6, out var d7);
            float* x = (float*)s.X + v0 * s.Cp + 256 * g + b0, af = (float*)s.T0 + v0 * s.Nb + 32 * g + b0, cf = (float*)s.T1 + v0 * s.Nb + 32 * g + b0;
            a0 = FloatDot(d0, d1, d2, d3, d4, d5, d6, d7, pm, ws, x, af, cf, a0);
            a1 = FloatDot(d0, d1, d2, d3, d4, d5, d6, d7, pm, ws, x + s.Cp, af + s.Nb, cf + s.Nb, a1);
            a2 = FloatDot(d0, d1, d2, d3, d4, d5, d6, d7, pm, ws, x + 2 * s.Cp, af + 2 * s.Nb, cf + 2 * s.Nb, a2);
            a3 = FloatDot(d0, d1, d2, d3, d4, d5, d6, d7, pm, ws, x + 3 * s.Cp, af + 3 * s.Nb, cf + 3 * s.Nb, a3);
        }
    }

    /// <summary>
    /// GEMM for 8- and 16-lane widths: rows in tiles whose records are decoded once (<see cref="IRowTiles.DecodeRows"/>, sized
    /// to stay in L2) for every vector; then tiles of 4 vectors with their accumulators in registers (A for even chunks, B for
    /// odd ones; one set when a vector covers 16 blocks), TQ applying a chunk to the four. The additions per lane are the
    /// batch-1 kernel's, in its order, so results are bit-identical. Returns the vectors done (whole tiles of 4); the caller
    /// runs the rest.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static int Gemm4<TR, TQ>(TR m, in StepArgs s, int batch, int r0, int r1, float* y) where TR : struct, IRowTiles where TQ : struct, IQuadStep
    {
        int n = TV.Lanes, groups = m.Groups, rows = m.Rows, chunks = 32 / n;
        int full = batch / 4 * 4;
        long rowTvs = (long)groups * chunks * 4;
        int tileRows = (int)Math.Clamp(GemmTileBytes / (rowTvs * sizeof(TV)), 1, 64);
        var tile = (TV*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(tileRows * rowTvs * sizeof(TV)), 64);
        var sl = s; // a local copy, whose fields the JIT can keep in registers
        try
        {
            for (int rb = r0; rb < r1; rb += tileRows)
            {
                int re = Math.Min(r1, rb + tileRows);
                m.DecodeRows(rb, re, tile);
                for (int v0 = 0; v0 < full; v0 += 4)
                    for (int r = rb; r < re; r++)
                    {
                        TV* dec = tile + (r - rb) * rowTvs;
                        TV z = TV.Float(0);
                        TV a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
                        for (int g = 0; g < groups; g++, dec += chunks * 4)
                            for (int c = 0; c < chunks; c += 2)
                            {
                                int o = c * n, o1 = o + n;
                                TQ.Four(dec[4 * c], dec[4 * c + 1], dec[4 * c + 2], dec[4 * c + 3], sl, v0, g, o, ref a0, ref a1, ref a2, ref a3);
                                if (typeof(TV) == typeof(V512))
                                    TQ.Four(dec[4 * c + 4], dec[4 * c + 5], dec[4 * c + 6], dec[4 * c + 7], sl, v0, g, o1, ref a0, ref a1, ref a2, ref a3);
                                else
                                    TQ.Four(dec[4 * c + 4], dec[4 * c + 5], dec[4 * c + 6], dec[4 * c + 7], sl, v0, g, o1, ref b0, ref b1, ref b2, ref b3);
                            }
                        // 16 lanes: acc0 = a (chunks ≡ 0 mod 2), acc1 = b; a 16-lane vector has only a.
                        float rs = m.RowScale(r);
                        y[(long)v0 * rows + r] = rs * TV.Reduce16(a0, b0, z, z);
                        y[(long)(v0 + 1) * rows + r] = rs * TV.Reduce16(a1, b1, z, z);
                        y[(long)(v0 + 2) * rows + r] = rs * TV.Reduce16(a2, b2, z, z);
                        y[(long)(v0 + 3) * rows + r] = rs * TV.Reduce16(a3, b3, z, z);
                    }
            }
        }
        finally { System.Runtime.InteropServices.NativeMemory.AlignedFree(tile); }
        return full;
    }

    /// <summary>
    /// Rows [rb, re) decoded into tile (per row, group and chunk: digits, parity mask, β/2), a call of its own so the decoding's
    /// inlined steps do not spend the JIT's inlining budget of the product loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void DecodeRows<TD, TS>(PackedE8Matrix m, byte* data, int rb, int re, float* tab, TV* tile)
        where TD : struct, IDigits where TS : struct, ISide
    {
        int n = TV.Lanes, groups = m.Groups, chunks = 32 / n;
        TV t0 = TV.Load(tab), t1 = TV.Load(tab + n), t2 = TV.Load(tab + 2 * n), t3 = TV.Load(tab + 3 * n);
        for (int r = rb; r < re; r++)
        {
            byte* row = null;
            int stride = m.GroupStride(r) * m.RecordBytes;
            for (int g = 0; g < groups; g++)
            {
                row = NextRecord(m, data, r, g, row, stride);
                DecodeGroup<TD, TS>(row, t0, t1, t2, t3, tile + ((long)(r - rb) * groups + g) * chunks * 4);
            }
        }
    }

    /// <summary>int8 GEMM (batch &gt; 1): a method of its own so the JIT's inlining budget is not spent by the batch-1 loop.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void IntGemm<TD, TS>(PackedE8Matrix m, E8ActivationLayout a, int r0, int r1, float* y, int vStart = 0)
        where TD : struct, IDigits where TS : struct, ISide
    {
        fixed (byte* data = m.Data)
        fixed (float* tab = m.HalfTable, rs = m.RowScales, xs0 = a.Xs)
        fixed (sbyte* q0 = a.Q)
        fixed (int* A0 = a.A, C0 = a.C)
            RowsByVectors<E8Rows<TD, TS>, IntBlocks>(new E8Rows<TD, TS>(m, data, tab, rs), a.Batch, r0, r1, y, vStart,
                new StepArgs { X = q0, T0 = A0, T1 = C0, Xs = xs0, Cp = a.PaddedCols, Nb = a.Blocks });
    }

    /// <summary>fp32 activations.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Float<TD, TS>(PackedE8Matrix m, E8ActivationLayout a, int r0, int r1, float* y)
        where TD : struct, IDigits where TS : struct, ISide
    {
        fixed (float* x20 = a.X2, af0 = a.Af, cf0 = a.Cf, tab = m.HalfTable, rs = m.RowScales)
        fixed (byte* data = m.Data)
        {
            var st = new StepArgs { X = x20, T0 = af0, T1 = cf0, Cp = a.PaddedCols, Nb = a.Blocks };
            // Batch 1 fused on the tiled traversal (each chunk straight into its lane sums); larger batches decode once per row
            // tile and convert the digits once per four vectors (Gemm4), a last partial four per vector.
            if (a.Batch == 1) { Tiled<TD, TS, FloatPass<TD, TS>>(m, r0, r1, y, new PassArgs { Tab = tab, Cp = a.PaddedCols, Nb = a.Blocks, Groups = m.Groups, Batch = 1, Steps = st }, 1f); return; }
            var rows = new E8Rows<TD, TS>(m, data, tab, rs);
            int full = TV.Lanes >= 8 ? Gemm4<E8Rows<TD, TS>, FloatQuad>(rows, st, a.Batch, r0, r1, y) : 0;
            if (full < a.Batch) RowsByVectors<E8Rows<TD, TS>, FloatBlocks>(rows, a.Batch, r0, r1, y, full, st);
        }
    }

    /// <summary>The activations of a <see cref="IBlockStep"/>: values X ([vector][Cp]), per-block terms T0, T1 and scales Xs ([vector][Nb]).</summary>
    private readonly struct StepArgs
    {
        public void* X { get; init; }
        public void* T0 { get; init; }
        public void* T1 { get; init; }
        public float* Xs { get; init; }
        public int Cp { get; init; }
        public int Nb { get; init; }
    }

    /// <summary>One decoded chunk (digits, parity mask, β/2) against the Lanes blocks from b0 of vector v, group g.</summary>
    private interface IBlockStep
    {
        static abstract TV Step(TV lo, TV hi, TV pm, TV ws, in StepArgs s, long v, int g, int b0, TV acc);
    }

    /// <summary>int8 activations (W4A8, W4A4): <see cref="IntStep"/>.</summary>
    private readonly struct IntBlocks : IBlockStep
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Step(TV lo, TV hi, TV pm, TV ws, in StepArgs s, long v, int g, int b0, TV acc)
        {
            long bo = v * s.Nb + 32 * g + b0;
            return IntStep(lo, hi, pm, ws, (sbyte*)s.X + v * s.Cp + 256 * g, (int*)s.T0 + bo, (int*)s.T1 + bo, s.Xs + bo, b0, acc);
        }
    }

    /// <summary>fp32 activations: <see cref="FloatStep"/>.</summary>
    private readonly struct FloatBlocks : IBlockStep
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Step(TV lo, TV hi, TV pm, TV ws, in StepArgs s, long v, int g, int b0, TV acc)
        {
            long bo = v * s.Nb + 32 * g + b0;
            return FloatStep(lo, hi, pm, ws, (float*)s.X + v * s.Cp + 256 * g + b0, (float*)s.T0 + bo, (float*)s.T1 + bo, acc);
        }
    }

    /// <summary>
    /// Rows in blocks of <see cref="RowBlock"/>, vectors from <paramref name="vStart"/> in tiles of <see cref="BatchTile"/>: each
    /// row is decoded once per tile (<see cref="IRowTiles.DecodeRows"/>) and applied to the tile's vectors by TStep, chunk c
    /// into lane sum c mod 16/Lanes (the scalar reference's order); y = rowScale·Reduce16. The GEMMs' last vectors and the
    /// 4-lane widths' batches.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void RowsByVectors<TR, TStep>(TR m, int batch, int r0, int r1, float* y, int vStart, in StepArgs s)
        where TR : struct, IRowTiles where TStep : struct, IBlockStep
    {
        int n = TV.Lanes, per = 16 / n, groups = m.Groups, rows = m.Rows, chunks = 32 / n;
        TV* acc = stackalloc TV[BatchTile * 4];
        var dec = (TV*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)((long)groups * chunks * 4 * sizeof(TV)), 64); // one decoded row
        try
        {
            for (int rb = r0; rb < r1; rb += RowBlock)
                for (int v0 = vStart; v0 < batch; v0 += BatchTile)
                {
                    int nv = Math.Min(BatchTile, batch - v0);
                    for (int r = rb; r < Math.Min(r1, rb + RowBlock); r++)
                    {
                        m.DecodeRows(r, r + 1, dec);
                        for (int i = 0; i < 4 * nv; i++) acc[i] = TV.Float(0);
                        for (int g = 0; g < groups; g++)
                            for (int v = 0; v < nv; v++)
                                for (int c = 0; c < chunks; c++)
                                {
                                    TV* d = dec + (g * chunks + c) * 4;
                                    acc[4 * v + c % per] = TStep.Step(d[0], d[1], d[2], d[3], s, v0 + v, g, c * n, acc[4 * v + c % per]);
                                }
                        float rs = m.RowScale(r);
                        for (int v = 0; v < nv; v++)
                            y[(long)(v0 + v) * rows + r] = rs * TV.Reduce16(acc[4 * v], acc[4 * v + 1], acc[4 * v + 2], acc[4 * v + 3]);
                    }
                }
        }
        finally { System.Runtime.InteropServices.NativeMemory.AlignedFree(dec); }
    }
}

/// <summary>Counts 1 … 4 (rows or vectors per pass) as type parameters, so each count compiles to straight-line code.</summary>
internal interface ICount { static abstract int Count { get; } }
internal readonly struct One : ICount { public static int Count => 1; }
internal readonly struct Two : ICount { public static int Count => 2; }
internal readonly struct Three : ICount { public static int Count => 3; }
internal readonly struct Four : ICount { public static int Count => 4; }

/// <summary>Which canonical lane set j (lanes j·Lanes …) a call of the small-batch kernel adds, as a type so the JIT folds the chunk numbers.</summary>
internal interface ILaneSet { static abstract int J { get; } }
internal readonly struct Set0 : ILaneSet { public static int J => 0; }
internal readonly struct Set1 : ILaneSet { public static int J => 1; }
internal readonly struct Set2 : ILaneSet { public static int J => 2; }
internal readonly struct Set3 : ILaneSet { public static int J => 3; }

/// <summary>Which four chunks a four-lane quarter call handles, as a type so the JIT folds the chunk numbers.</summary>
internal interface IChunkHalf;
internal readonly struct FirstHalf : IChunkHalf;
internal readonly struct SecondHalf : IChunkHalf;
