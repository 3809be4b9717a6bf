using Gosset.Codes;
using Gosset.Kernels;

namespace Gosset.Tests.Kernels;

/// <summary>The b = 2, 3, 4 E8 box-code kernels: packing against <see cref="E8BoxCodes"/>, the scalar kernel against a double-precision product, every variant bit-exact against the scalar kernel.</summary>
public class E8KernelTests
{
    /// <summary>Random codes with fitted-looking scales (a geometric ladder) and row scales of varied size.</summary>
    internal static E8BoxCodes RandomCodes(int rows, int cols, int bits, int k, int seed, bool grid = true)
    {
        var rng = new Random(seed);
        var scales = new float[k];
        for (int j = 0; j < k; j++) scales[j] = 0.05f * MathF.Pow(1.25f, j) * (1 + 0.01f * j);
        if (grid) E8BoxCodes.RoundToGrid(scales);
        var c = new E8BoxCodes(rows, cols, bits, scales);
        for (int i = 0; i < c.U.Length; i++) c.U[i] = (byte)rng.Next(c.Q);
        for (int i = 0; i < c.ScaleIndex.Length; i++) c.ScaleIndex[i] = (byte)rng.Next(k);
        for (int r = 0; r < rows; r++) c.RowScale[r] = (float)(0.5 + rng.NextDouble()) * (r % 5 == 4 ? 0f : 1f);
        return c;
    }

    [Theory]
    [InlineData(2, 4)] [InlineData(3, 4)] [InlineData(4, 4)] [InlineData(2, 16)] [InlineData(3, 12)] [InlineData(4, 9)] [InlineData(3, 8)] [InlineData(4, 1)]
    public void PackingDecodesExactlyAsTheCanonicalCodes(int bits, int k)
    {
        foreach (var (rows, cols) in new[] { (3, 8), (5, 300), (2, 513), (1, 1024) })
        {
            var codes = RandomCodes(rows, cols, bits, k, rows * cols + bits);
            var m = PackedE8Matrix.FromCodes(codes);
            var want = new float[cols];
            var got = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                codes.DequantizeRow(r, want);
                m.DequantizeRow(r, got);
                Assert.Equal(want, got);
            }
            var back = m.ToCodes();
            Assert.Equal(codes.RowScale, back.RowScale);
            Assert.Equal(codes.ScaleIndex, back.ScaleIndex);
            Assert.Equal(codes.U, back.U);
        }
    }

    [Theory]
    [InlineData(2)] [InlineData(3)] [InlineData(4)]
    public void BytesReadIsTheRecordSizeTimesGroupsPlusScales(int bits)
    {
        var m = PackedE8Matrix.FromCodes(RandomCodes(7, 300, bits, 5, 1));
        // 300 columns → 2 groups of 256; a record is 32·b digit bytes + 16 side bytes.
        long want = 7L * 2 * (32 * bits + 16) + 7 * 4 + 5 * 4;
        Assert.Equal(want, m.BytesRead);
        var ms = new MemoryStream();
        m.WriteTo(ms);
        Assert.Equal(m.SerializedLength, ms.Length);
        Assert.Equal(m.BytesRead + 4, ms.Length); // the 4-byte header is not read by a product
    }

    /// <summary>Double-precision Σ_t rowScale·β/2·Σᵢ vᵢ·xᵢ from the canonical codes.</summary>
    private static double Reference(E8BoxCodes c, int r, Func<int, double> x, out double mag)
    {
        var row = new float[c.Cols];
        c.DequantizeRow(r, row);
        double s = 0; mag = 0;
        for (int i = 0; i < c.Cols; i++) { s += row[i] * x(i); mag += Math.Abs(row[i] * x(i)); }
        return s;
    }

    [Theory]
    [InlineData(2, 4)] [InlineData(3, 12)] [InlineData(4, 4)] [InlineData(4, 16)]
    public void ScalarKernelMatchesDoubleProduct(int bits, int k)
    {
        int rows = 9, cols = 523, batch = 3;
        var codes = RandomCodes(rows, cols, bits, k, 17);
        var m = PackedE8Matrix.FromCodes(codes);
        var x = E8BoxKernelTests.Gaussian(batch * cols, 5);
        var y = new float[batch * rows];
        m.Multiply(E8Kernel.Scalar, x, y, batch, ActivationMode.Float32);
        var a = Int8Activations.Quantize(x, batch, cols);
        var yi = new float[batch * rows];
        m.Multiply(a, yi, E8Kernel.Scalar);
        for (int v = 0; v < batch; v++)
            for (int r = 0; r < rows; r++)
            {
                double want = Reference(codes, r, i => x[v * cols + i], out double mag);
                Assert.True(Math.Abs(want - y[v * rows + r]) <= 1e-6 * mag + 1e-30, $"fp32 v={v} r={r}: {want} vs {y[v * rows + r]}");
                double wantI = Reference(codes, r, i => a[v, i], out mag);
                Assert.True(Math.Abs(wantI - yi[v * rows + r]) <= 1e-6 * mag + 1e-30, $"int8 v={v} r={r}: {wantI} vs {yi[v * rows + r]}");
            }
    }

    [Theory]
    [InlineData(2, 4)] [InlineData(3, 12)] [InlineData(4, 8)] [InlineData(4, 16)]
    public void GroupedInt8MatchesDoubleProductOfRoundedActivations(int bits, int k)
    {
        int rows = 7, cols = 600, batch = 2; // 3 groups, the last one partial
        var codes = RandomCodes(rows, cols, bits, k, 23);
        var m = PackedE8Matrix.FromCodes(codes);
        Assert.True(m.HasGridScales);
        var x = E8BoxKernelTests.Gaussian(batch * cols, 8);
        x[5] = 40f; // one large entry: its group gets a coarse step, the others do not
        var y = new float[batch * rows];
        m.Multiply(E8Kernel.Scalar, x, y, batch, ActivationMode.Int8Group, 1);
        for (int v = 0; v < batch; v++)
        {
            // The definition written out: absmax/127 per 256 entries, round to nearest (even), clamp; then the double product.
            var xr = new double[cols];
            for (int g0 = 0; g0 < cols; g0 += 256)
            {
                int n = Math.Min(256, cols - g0);
                float amax = 0; for (int i = 0; i < n; i++) amax = MathF.Max(amax, MathF.Abs(x[v * cols + g0 + i]));
                for (int i = 0; i < n; i++) xr[g0 + i] = (amax / 127f) * (double)Math.Clamp(MathF.Round(x[v * cols + g0 + i] * (127f / amax)), -127f, 127f);
            }
            for (int r = 0; r < rows; r++)
            {
                double want = Reference(codes, r, i => xr[i], out double mag);
                Assert.True(Math.Abs(want - y[v * rows + r]) <= 2e-6 * mag + 1e-30, $"v={v} r={r}: {want} vs {y[v * rows + r]}");
            }
        }
    }

    [Fact]
    public void GridRoundingIsTwelveBitsAndOffGridTablesKeepThePerBlockMode()
    {
        float[] scales = [0.011f, 0.0173f, 0.05f, 0.31f];
        var rounded = (float[])scales.Clone();
        E8BoxCodes.RoundToGrid(rounded);
        var s = new int[4];
        Assert.True(E8BoxCodes.TryGrid(rounded, s, out float step));
        for (int j = 0; j < 4; j++)
        {
            Assert.Equal(0.5 * rounded[j], s[j] * (double)step);
            Assert.True(Math.Abs(rounded[j] - scales[j]) <= step, $"{j}: {rounded[j]} vs {scales[j]}"); // within half a step of β/2
        }
        Assert.InRange(s[3], 2048, E8BoxCodes.GridMax);
        Assert.False(E8BoxCodes.TryGrid(scales, s, out _));
        var off = PackedE8Matrix.FromCodes(RandomCodes(3, 64, 4, 4, 1, grid: false));
        Assert.False(off.HasGridScales);
        Assert.Equal(ActivationMode.Int8, off.Int8Mode);
        Assert.Throws<ArgumentException>(() => off.Multiply(new float[64], new float[3], 1, ActivationMode.Int8Group));
    }

    public static TheoryData<string> Variants()
    {
        var d = new TheoryData<string>();
        foreach (var k in E8Kernel.All) if (k != E8Kernel.Scalar) d.Add(k.Name);
        return d;
    }

    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(Variants))]
    public void EveryVariantIsBitExactWithScalar(string name)
    {
        var kern = E8Kernel.Get(name);
        foreach (int bits in new[] { 2, 3, 4 })
            foreach (int k in new[] { 4, 13 }) // narrow (parity stored) and wide (parity recomputed) side fields
                foreach (var (rows, cols, batches) in new[] { (37, 300, new[] { 1, 2, 5, 9, 12, 16, 19 }), (5, 529, new[] { 1, 17 }), (1, 8, new[] { 1, 3 }), (41, 8200, new[] { 5, 18 }) /* batched kernels: several row tiles of three column segments, the last tile odd (a one-row GEMM pass) */ })
                {
                    var m = PackedE8Matrix.FromCodes(RandomCodes(rows, cols, bits, k, bits * 100 + k + cols));
                    foreach (int batch in batches)
                    {
                        var x = E8BoxKernelTests.Gaussian(batch * cols, batch + cols);
                        var a = Int8Activations.Quantize(x, batch, cols);
                        foreach (var mode in new[] { ActivationMode.Float32, ActivationMode.Int8, ActivationMode.Int8Group })
                        {
                            var want = new float[batch * rows];
                            var got = new float[batch * rows];
                            if (mode == ActivationMode.Int8) { m.Multiply(a, want, E8Kernel.Scalar, 1); m.Multiply(a, got, kern, 2); }
                            else { m.Multiply(E8Kernel.Scalar, x, want, batch, mode, 1); m.Multiply(kern, x, got, batch, mode, 2); }
                            for (int i = 0; i < want.Length; i++)
                                Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(got[i]),
                                    $"{name} b={bits} k={k} {rows}x{cols} batch={batch} {mode} at {i}: {want[i]} vs {got[i]}");
                        }
                    }
                }
    }

    [Fact, Trait("Category", "Simd")]
    public unsafe void DoubledNibblesOfEveryByteMatchTheShiftAndMaskReference()
    {
        // The GFNI affine transforms (where the CPU has them) against the portable shifts, on all 256 byte values.
        var bytes = new byte[256];
        for (int i = 0; i < 256; i++) bytes[i] = (byte)i;
        fixed (byte* p = bytes)
            for (int o = 0; o < 256; o += 64)
            {
                if (Gosset.Kernels.Simd.Avx512Ops.IsSupported)
                {
                    var v = Gosset.Kernels.Simd.V512.Load(p + o);
                    Gosset.Kernels.Simd.Avx512Ops.DoubledNibbles(v, out var lo, out var hi);
                    Gosset.Kernels.Simd.PortableOps<Gosset.Kernels.Simd.V512>.DoubledNibbles(v, out var wlo, out var whi);
                    Assert.Equal(wlo.V, lo.V);
                    Assert.Equal(whi.V, hi.V);
                }
                for (int h = 0; h < 64 && Gosset.Kernels.Simd.Avx2Ops.IsSupported; h += 32)
                {
                    var v = Gosset.Kernels.Simd.V256.Load(p + o + h);
                    Gosset.Kernels.Simd.Avx2Ops.DoubledNibbles(v, out var lo, out var hi);
                    Gosset.Kernels.Simd.PortableOps<Gosset.Kernels.Simd.V256>.DoubledNibbles(v, out var wlo, out var whi);
                    Assert.Equal(wlo.V, lo.V);
                    Assert.Equal(whi.V, hi.V);
                    for (int l = 0; l < 8; l++) // and the portable reference is 2·(v & 15), 2·(v >> 4) in every byte
                        for (int j = 0; j < 4; j++)
                        {
                            int b = bytes[o + h + 4 * l + j];
                            Assert.Equal(2 * (b & 15), (int)((wlo.V[l] >> (8 * j)) & 0xFF));
                            Assert.Equal(2 * (b >> 4), (int)((whi.V[l] >> (8 * j)) & 0xFF));
                        }
                }
            }
    }

    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(Variants))]
    public void TiledLayoutsMultiplyBitExactlyAsTheScalarReference(string name)
    {
        // Tiles and column segments that cut rows and groups unevenly (77 rows, 18 groups with a partial last one: the GEMM's
        // segments of 16 groups cut across the layout's of 2, 4, 5 and 7), rows interleaved in pairs or not (odd tiles end on a
        // single row), on two threads, whose row chunks need not start at tile or pair boundaries; batch 17 runs the GEMM.
        var kern = E8Kernel.Get(name);
        int rows = 77, cols = 4400;
        int[] batches = [1, 3, 17];
        var modes = new[] { ActivationMode.Float32, ActivationMode.Int8, ActivationMode.Int8Group };
        foreach (int bits in new[] { 2, 3, 4 })
        {
            var codes = RandomCodes(rows, cols, bits, 5, 70 + bits);
            var plain = PackedE8Matrix.FromCodes(codes, (rows, 1000));
            var canonical = new MemoryStream();
            plain.WriteTo(canonical);
            var xs = batches.Select(batch => E8BoxKernelTests.Gaussian(batch * cols, batch + bits)).ToArray();
            var wants = new float[batches.Length, modes.Length][];
            for (int bi = 0; bi < batches.Length; bi++)
                for (int mi = 0; mi < modes.Length; mi++)
                {
                    wants[bi, mi] = new float[batches[bi] * rows];
                    plain.Multiply(E8Kernel.Scalar, xs[bi], wants[bi, mi], batches[bi], modes[mi], 1);
                }
            foreach (var (tiling, interleave) in new[] { (1, 1), (5, 2), (7, 4), (64, 16), (100, 5) }.SelectMany(t => new[] { (t, 1), (t, 2) }))
            {
                var m = PackedE8Matrix.FromCodes(codes, tiling, interleave);
                var back = m.ToCodes();
                Assert.Equal(codes.U, back.U);
                Assert.Equal(codes.ScaleIndex, back.ScaleIndex);
                var ms = new MemoryStream();
                m.WriteTo(ms);
                Assert.Equal(canonical.ToArray(), ms.ToArray()); // the serialized order does not depend on the tiling
                for (int bi = 0; bi < batches.Length; bi++)
                {
                    int batch = batches[bi];
                    for (int mi = 0; mi < modes.Length; mi++)
                    {
                        var mode = modes[mi];
                        var want = wants[bi, mi];
                        var got = new float[batch * rows];
                        m.Multiply(kern, xs[bi], got, batch, mode, 2);
                        for (int i = 0; i < want.Length; i++)
                            Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(got[i]),
                                $"{name} b={bits} tiling {tiling} interleave {interleave} batch={batch} {mode} at {i}: {want[i]} vs {got[i]}");
                    }
                }
            }
        }
    }

    [Fact]
    public void StackedRowsMultiplyAsTheirPartsAndViewsKeepThePartsCodes()
    {
        // Parts of 128 and 64 rows (whole 64-row tiles) and a last part of 37 rows, 1300 columns (segments of 16 groups).
        var codes = new[] { RandomCodes(128, 1300, 4, 4, 1), RandomCodes(64, 1300, 4, 4, 2), RandomCodes(37, 1300, 4, 4, 3) };
        var parts = codes.Select(c => PackedE8Matrix.FromCodes(c)).ToArray();
        var (stack, views) = PackedE8Matrix.Stack(parts)!.Value;
        Assert.Equal(229, stack.Rows);
        var x = E8BoxKernelTests.Gaussian(2 * 1300, 4);
        var ys = new float[2 * 229];
        stack.Multiply(x, ys, 2, ActivationMode.Int8Group, null, 2);
        int r0 = 0;
        for (int i = 0; i < parts.Length; i++)
        {
            var yp = new float[2 * parts[i].Rows];
            var yv = new float[2 * parts[i].Rows];
            parts[i].Multiply(x, yp, 2, ActivationMode.Int8Group, null, 1);
            views[i].Multiply(x, yv, 2, ActivationMode.Int8Group, null, 2);
            Assert.Equal(yp, yv);
            for (int v = 0; v < 2; v++) Assert.Equal(yp.AsSpan(v * parts[i].Rows, parts[i].Rows).ToArray(), ys.AsSpan(v * 229 + r0, parts[i].Rows).ToArray());
            Assert.Equal(codes[i].U, views[i].ToCodes().U);
            Assert.Equal(parts[i].BytesRead, views[i].BytesRead);
            var a = new MemoryStream(); parts[i].WriteTo(a);
            var b = new MemoryStream(); views[i].WriteTo(b);
            Assert.Equal(a.ToArray(), b.ToArray());
            r0 += parts[i].Rows;
        }
        // A part that does not end on a tile (other than the last), or other block scales: no stack.
        Assert.Null(PackedE8Matrix.Stack([parts[2], parts[0]]));
        Assert.Null(PackedE8Matrix.Stack([parts[0], PackedE8Matrix.FromCodes(RandomCodes(64, 1300, 4, 5, 9))]));
    }

    [Fact, Trait("Category", "Simd")]
    public void BatchesUpTo17MatchBatchOneBitExactly()
    {
        int rows = 19, cols = 777;
        var m = PackedE8Matrix.FromCodes(RandomCodes(rows, cols, 4, 6, 3));
        for (int batch = 1; batch <= 17; batch++)
        {
            var x = E8BoxKernelTests.Gaussian(batch * cols, 40 + batch);
            foreach (var mode in new[] { ActivationMode.Float32, ActivationMode.Int8 })
            {
                var y = new float[batch * rows];
                m.Multiply(x, y, batch, mode);
                var y1 = new float[rows];
                for (int v = 0; v < batch; v++)
                {
                    m.Multiply(x.AsSpan(v * cols, cols), y1, 1, mode);
                    for (int r = 0; r < rows; r++) Assert.Equal(y1[r], y[v * rows + r]);
                }
            }
        }
    }

    /// <summary>
    /// The 16-bit steps at their bounds: every digit at 0 or q − 1 (both parities, flipped by digit 0), activations at ±127
    /// with digit 0 of each block against the others' sign, so the small-batch kernels' parity-folded digits (up to 2q − 1) and
    /// their single additive term meet the largest partial sums; every batch the fused kernels run, against the scalar reference.
    /// </summary>
    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(Variants))]
    public void ExtremeDigitsAndActivationsStayBitExact(string name)
    {
        var kern = E8Kernel.Get(name);
        const int rows = 6, cols = 512;
        foreach (int bits in new[] { 2, 3, 4 })
            foreach (bool high in new[] { true, false })
            {
                var codes = RandomCodes(rows, cols, bits, 4, bits);
                for (int i = 0; i < codes.U.Length; i++)
                {
                    int block = i / 8, top = codes.Q - 1;
                    codes.U[i] = (byte)(high ? (i % 8 == 0 && block % 2 == 1 ? top - 1 : top) : (i % 8 == 0 && block % 2 == 1 ? 1 : 0));
                }
                for (int r = 0; r < rows; r++) codes.RowScale[r] = 1f;
                var m = PackedE8Matrix.FromCodes(codes);
                foreach (int batch in new[] { 1, 2, 3, 4, 5, 8, 12 })
                {
                    var x = new float[batch * cols];
                    for (int i = 0; i < x.Length; i++) x[i] = ((i % 8 == 0) ^ ((i / cols) % 2 == 1) ? -1f : 1f) * (high ? 1f : -1f);
                    var want = new float[batch * rows];
                    var got = new float[batch * rows];
                    m.Multiply(E8Kernel.Scalar, x, want, batch, ActivationMode.Int8Group, 1);
                    m.Multiply(kern, x, got, batch, ActivationMode.Int8Group, 2);
                    for (int i = 0; i < want.Length; i++)
                        Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(got[i]),
                            $"{name} b={bits} high={high} batch={batch} at {i}: {want[i]} vs {got[i]}");
                }
            }
    }

    [Fact]
    public void PanelChunksTileEachGroupOnceAndBlocksCoverTheBatch()
    {
        foreach (int lanes in new[] { 4, 8, 16 })
            for (int vc = 1; vc <= 4; vc++)
            {
                // Every vector's chunk (12·lanes bytes) of every lane set lies inside the group's vc records, none overlapping.
                var used = new bool[vc * E8ActivationLayout.PanelRecord];
                for (int j = 0; j < 16 / lanes; j++)
                    for (int v = 0; v < vc; v++)
                        for (int s = 0; s < 2; s++)
                        {
                            int o = E8ActivationLayout.PanelOffset(lanes, vc, j, v, s);
                            for (int b = o; b < o + 12 * lanes; b++) { Assert.False(used[b]); used[b] = true; }
                        }
                Assert.All(used, Assert.True);
            }
        for (int batch = 1; batch <= 17; batch++)
        {
            var sizes = new List<int>();
            for (int left = batch; left > 0; left -= sizes[^1]) sizes.Add(E8ActivationLayout.VectorBlock(left));
            Assert.Equal(batch, sizes.Sum());
            Assert.All(sizes, n => Assert.InRange(n, 1, 4));
            Assert.True(sizes.Max() - sizes.Min() <= 1, $"batch {batch}: {string.Join("+", sizes)}");
        }
    }

    [Fact]
    public void GroupedActivationsAreAbsmaxPerGroupInTheKernelsByteOrder()
    {
        // Entry i of a group, x̃ = round(x·127/absmax) to nearest (ties to even), sits at 4·(i / 8) + (i / 2) % 4, plus 128 if i is odd.
        var rng = new Random(5);
        foreach (int cols in new[] { 256, 300, 777, 1024 })
        {
            int batch = 4, groups = (cols + 255) / 256;
            var x = new float[batch * cols];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 6 - 3);
            // Vector 1, group 0: absmax 127, so x·127/absmax is x and the halves are ties; vector 2: a zero group 0; vector 3: a NaN.
            for (int i = 0; i < 256 && i < cols; i++) x[cols + i] = (i % 7 - 3) + 0.5f;
            x[cols + 5] = 127f;
            Array.Clear(x, 2 * cols, Math.Min(256, cols));
            x[3 * cols + cols - 1] = float.NaN;
            foreach (int threads in new[] { 1, 2 })
            {
                using var a = E8ActivationLayout.Grouped(x, batch, cols, groups, 16, GroupedParts.None, 8, threads);
                for (int v = 0; v < batch; v++)
                    for (int g = 0; g < groups; g++)
                    {
                        int n = Math.Min(256, cols - 256 * g);
                        var src = x.AsSpan(v * cols + 256 * g, n);
                        float amax = 0f;
                        bool nan = false;
                        foreach (float f in src) { amax = MathF.Max(amax, MathF.Abs(f)); nan |= float.IsNaN(f); }
                        bool live = amax > 0f && !nan;
                        Assert.Equal(live ? amax / 127f : 0f, a.Xg[v * groups + g]);
                        for (int i = 0; i < 256; i++)
                        {
                            int want = live && i < n ? (int)Math.Clamp(Math.Round(src[i] * (127f / amax), MidpointRounding.ToEven), -127, 127) : 0;
                            int at = v * a.PaddedCols + 256 * g + 4 * (i / 8) + (i / 2) % 4 + 128 * (i % 2);
                            Assert.True(want == a.Q[at], $"cols {cols} threads {threads} vector {v} group {g} entry {i}: {a.Q[at]}, expected {want}");
                        }
                    }
                Assert.Equal(-2, a.Q[a.PaddedCols]); // entry 0 of vector 1: −2.5 → −2 (ties to even)
            }
        }
    }

    [Fact]
    public void GroupedLayoutIsTheSameOnOneThreadAndOnSeveral()
    {
        // 8 × 4400 values in 18 groups: above the size at which runs of 16 groups are spread over threads (two runs); a
        // partial last group.
        int batch = 8, cols = 4400, groups = 18;
        var rng = new Random(9);
        var x = new float[batch * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * (1 + i % 13);
        foreach (int lanes in new[] { 4, 8, 16 })
            foreach (var parts in new[] { GroupedParts.AdditiveTerms | GroupedParts.Panel, GroupedParts.GemmPanel })
            {
                using var one = E8ActivationLayout.Grouped(x, batch, cols, groups, 16, parts, lanes, 1);
                using var two = E8ActivationLayout.Grouped(x, batch, cols, groups, 16, parts, lanes, 2);
                int nq = batch * one.PaddedCols, nb = batch * one.Blocks, ng = batch * groups;
                Assert.Equal(one.Q.AsSpan(0, nq), two.Q.AsSpan(0, nq));
                Assert.Equal(one.Xg.AsSpan(0, ng), two.Xg.AsSpan(0, ng));
                if ((parts & GroupedParts.GemmPanel) != 0)
                    Assert.Equal(one.GemmPanel.AsSpan(0, ng * E8ActivationLayout.GemmRecord), two.GemmPanel.AsSpan(0, ng * E8ActivationLayout.GemmRecord));
                else
                {
                    Assert.Equal(one.E0.AsSpan(0, nb), two.E0.AsSpan(0, nb));
                    Assert.Equal(one.E1.AsSpan(0, nb), two.E1.AsSpan(0, nb));
                    Assert.Equal(one.Panel.AsSpan(0, ng * E8ActivationLayout.PanelRecord), two.Panel.AsSpan(0, ng * E8ActivationLayout.PanelRecord));
                    Assert.Equal(one.XgPanel.AsSpan(0, ng), two.XgPanel.AsSpan(0, ng));
                }
            }
    }

    [Fact]
    public void Int8QuantizationIsAbsmaxPerBlock()
    {
        float[] x = [1f, -2f, 0.5f, 0f, 0f, 0f, 0f, 0.25f, /* block 2 */ 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, /* partial */ 3f];
        var a = Int8Activations.Quantize(x, 1, 17);
        Assert.Equal(3, a.Blocks);
        Assert.Equal(2f / 127f, a.Scales[0]);
        Assert.Equal(new sbyte[] { 64, -127, 32, 0, 0, 0, 0, 16 }, a.Values[..8]);
        Assert.Equal(0f, a.Scales[1]);
        Assert.Equal(127, a.Values[16]);
        Assert.Equal(0, a.Values[17]);
        Assert.Equal(3f, a[0, 16], 6);
    }

    [Fact]
    public void SerializationRoundTripsAndRejectsHostileFields()
    {
        var m = PackedE8Matrix.FromCodes(RandomCodes(4, 270, 3, 6, 9));
        var ms = new MemoryStream();
        m.WriteTo(ms);
        var bytes = ms.ToArray();
        var m2 = PackedE8Matrix.ReadFrom(bytes, 4, 270);
        var x = E8BoxKernelTests.Gaussian(270, 1);
        var y1 = new float[4]; var y2 = new float[4];
        m.Multiply(x, y1); m2.Multiply(x, y2);
        Assert.Equal(y1, y2);

        Assert.Throws<InvalidDataException>(() => PackedE8Matrix.ReadFrom(bytes.AsSpan(0, 10), 4, 270));
        Assert.Throws<InvalidDataException>(() => PackedE8Matrix.ReadFrom(bytes, 5, 270));
        Assert.Throws<InvalidDataException>(() => PackedE8Matrix.ReadFrom(bytes, int.MaxValue, int.MaxValue));
        var bad = (byte[])bytes.Clone(); bad[0] = 5;
        Assert.Throws<InvalidDataException>(() => PackedE8Matrix.ReadFrom(bad, 4, 270));
        bad = (byte[])bytes.Clone(); bad[1] = 17;
        Assert.Throws<InvalidDataException>(() => PackedE8Matrix.ReadFrom(bad, 4, 270));
        // Side field of block 0, row 0: index 7 ≥ k = 6.
        int side = 4 + 4 * 6 + 4 * 4 + 96;
        bad = (byte[])bytes.Clone(); bad[side] = (byte)((bad[side] & 0xF8) | 7);
        Assert.Throws<InvalidDataException>(() => PackedE8Matrix.ReadFrom(bad, 4, 270));
        // Flipping the stored parity bit.
        bad = (byte[])bytes.Clone(); bad[side] ^= 8;
        Assert.Throws<InvalidDataException>(() => PackedE8Matrix.ReadFrom(bad, 4, 270));
    }

    [Fact]
    public void LevelNamesTheBestVariant()
    {
        string level = KernelSupport.Level;
        Assert.Contains(level, new[] { "avx512", "avx-vnni", "avx2", "vector128", "scalar" });
        // The level's own variant, or on AVX-512 the AVX2 one when it measured faster at start-up (E8Kernel.Best).
        if (Environment.GetEnvironmentVariable("GOSSET_E8_KERNEL") is not { Length: > 0 })
            Assert.True(E8Kernel.Best.Name.StartsWith(level == "vector128" ? "vector128" : level) || (level == "avx512" && E8Kernel.Best.Name == "avx2"),
                $"level {level}, best {E8Kernel.Best.Name}");
        // The runtime knobs each turn a level off.
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") == "0") Assert.NotEqual("avx512", level);
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVXVNNI") == "0") Assert.NotEqual("avx-vnni", level);
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX2") == "0") Assert.DoesNotContain(level, new[] { "avx512", "avx-vnni", "avx2" });
    }
}
