using Gosset.Codes;
using Gosset.Kernels;

namespace Gosset.Tests.Kernels;

public class VoronoiBatchTests
{
    public static TheoryData<KernelIsa> Isas()
    {
        var d = new TheoryData<KernelIsa>();
        foreach (var k in KernelSupport.All) if (k != KernelIsa.Scalar) d.Add(k); // scalar against itself could not fail
        return d;
    }

    private static readonly int[] Qs = [2, 3, 4, 5, 7, 8, 14, 16, 31, 64, 255, 256];

    // Gaussian blocks at several scales, lattice points placed exactly (many on coarse-cell
    // boundaries, where tie rules decide), and a few absurd values that take the scalar path.
    private static (float[] X, float[] Beta) Inputs(int q, int seed)
    {
        var rng = new Random(seed);
        int n = 203;
        var x = E8BoxKernelTests.Gaussian(8 * n, seed);
        var beta = new float[n];
        for (int b = 0; b < n; b++)
        {
            beta[b] = (float)Math.Pow(2, rng.Next(-6, 2)) * 0.37f;
            if (b % 3 == 1)
            {
                int p = rng.Next(2), sum, range = b % 2 == 0 ? q : q / 2;
                int[] v = new int[8];
                do
                {
                    sum = 0;
                    for (int i = 0; i < 8; i++) { v[i] = 2 * rng.Next(-range - 1, range + 2) + p; sum += v[i]; }
                } while ((sum & 3) != 0);
                for (int i = 0; i < 8; i++) x[8 * b + i] = beta[b] * 0.5f * v[i];
            }
        }
        x[8 * 5] = 3e9f; x[8 * 7 + 3] = -1e30f;
        return (x, beta);
    }

    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(Isas))]
    public void EncodeAndDecodeAreBitExactWithVoronoiCode(KernelIsa isa)
    {
        foreach (int q in Qs)
        {
            var code = new VoronoiCode(q);
            var (x, beta) = Inputs(q, q);
            int n = beta.Length;
            var dRef = new byte[8 * n]; var dGot = new byte[8 * n];
            var oRef = new bool[n]; var oGot = new bool[n];
            VoronoiBatch.Encode(code, x, beta, dRef, oRef, KernelIsa.Scalar);
            VoronoiBatch.Encode(code, x, beta, dGot, oGot, isa);
            for (int b = 0; b < n; b++)
            {
                Assert.True(oRef[b] == oGot[b], $"q={q} block {b}: overload {oRef[b]} vs {oGot[b]}");
                for (int i = 0; i < 8; i++) Assert.True(dRef[8 * b + i] == dGot[8 * b + i], $"q={q} block {b} digit {i}");
            }
            var xRef = new float[8 * n]; var xGot = new float[8 * n];
            VoronoiBatch.Decode(code, dRef, beta, xRef, KernelIsa.Scalar);
            VoronoiBatch.Decode(code, dRef, beta, xGot, isa);
            for (int i = 0; i < 8 * n; i++)
                Assert.True(BitConverter.SingleToInt32Bits(xRef[i]) == BitConverter.SingleToInt32Bits(xGot[i]), $"q={q} entry {i}");
            // no overload ⇒ exact lattice point decoded
            int exact = 0;
            for (int b = 1; b < n; b += 3)
                if (!oRef[b]) { exact++; for (int i = 0; i < 8; i++) Assert.Equal(x[8 * b + i], xRef[8 * b + i]); }
            if (q >= 8) Assert.True(exact > 0, $"q={q}: no exact block");
        }
    }

    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(Isas))]
    public void EncodeBestWithKScalesIsBitExact(KernelIsa isa)
    {
        var code = new VoronoiCode(14);
        var x = E8BoxKernelTests.Gaussian(8 * 300, 77);
        float[] scales = [4.0f / 14, 5.5f / 14, 7.0f / 14, 18.0f / 14];
        int n = 300;
        var dR = new byte[8 * n]; var dG = new byte[8 * n];
        var sR = new byte[n]; var sG = new byte[n];
        var yR = new float[8 * n]; var yG = new float[8 * n];
        VoronoiBatch.EncodeBest(code, x, scales, dR, sR, yR, KernelIsa.Scalar);
        VoronoiBatch.EncodeBest(code, x, scales, dG, sG, yG, isa);
        Assert.Equal(dR, dG);
        Assert.Equal(sR, sG);
        Assert.Equal(yR, yG);
        double e = 0; for (int i = 0; i < x.Length; i++) e += (x[i] - yR[i]) * (double)(x[i] - yR[i]);
        Assert.InRange(e / x.Length, 0.003, 0.01); // NestQuant weights set at q = 14: about 0.0065
    }

    /// <summary>
    /// Every width of the generic Voronoi SIMD code, called directly, so the 512- and 256-bit
    /// paths run (emulated) even on a CPU or a CI leg without them.
    /// </summary>
    [Fact, Trait("Category", "Simd")]
    public void EveryWidthIsBitExactEvenUnaccelerated()
    {
        foreach (int q in new[] { 3, 16, 255 })
        {
            WidthCase<Gosset.Kernels.Simd.F128, Gosset.Kernels.Simd.I128>(q);
            WidthCase<Gosset.Kernels.Simd.F256, Gosset.Kernels.Simd.I256>(q);
            WidthCase<Gosset.Kernels.Simd.F512, Gosset.Kernels.Simd.I512>(q);
        }
    }

    private static unsafe void WidthCase<TF, TI>(int q)
        where TF : unmanaged, Gosset.Kernels.Simd.IFloatVec<TF, TI> where TI : unmanaged, Gosset.Kernels.Simd.IIntVec<TF, TI>
    {
        int lanes = TI.Lanes;
        var code = new VoronoiCode(q);
        var (x, beta) = Inputs(q, q + lanes);
        var xs = new float[8 * lanes]; var bs = new float[lanes]; var ds = new int[8 * lanes]; var ov = new int[lanes]; var ys = new float[8 * lanes];
        var dRef = new byte[8]; var yRef = new float[8];
        int checkedBlocks = 0;
        for (int b0 = 0; b0 + lanes <= beta.Length; b0 += lanes)
        {
            for (int l = 0; l < lanes; l++) { bs[l] = beta[b0 + l]; for (int i = 0; i < 8; i++) xs[i * lanes + l] = x[8 * (b0 + l) + i]; }
            bool ok;
            fixed (float* xp = xs, bp = bs, yp = ys) fixed (int* dp = ds, op = ov)
            {
                ok = Gosset.Kernels.Simd.VoronoiSimd<TF, TI>.EncodeBatch(xp, bp, q, dp, op);
                if (ok) Gosset.Kernels.Simd.VoronoiSimd<TF, TI>.DecodeBatch(dp, bp, q, yp);
            }
            if (!ok) continue; // batches with absurd values take the scalar path in VoronoiBatch
            for (int l = 0; l < lanes; l++)
            {
                bool over = code.Encode(x.AsSpan(8 * (b0 + l), 8), beta[b0 + l], default, dRef);
                code.Decode(dRef, beta[b0 + l], default, yRef);
                Assert.Equal(over, ov[l] != 0);
                for (int i = 0; i < 8; i++)
                {
                    Assert.Equal(dRef[i], ds[i * lanes + l]);
                    Assert.Equal(BitConverter.SingleToInt32Bits(yRef[i]), BitConverter.SingleToInt32Bits(ys[i * lanes + l]));
                }
                checkedBlocks++;
            }
        }
        Assert.True(checkedBlocks > beta.Length / 2, $"lanes {lanes}, q {q}: only {checkedBlocks} blocks checked");
    }

    /// <summary>The batch encoder with k scales and the scalar per-block quantizer pick the same scale and digits (issue 9: two implementations of one rule).</summary>
    [Fact]
    public void EncodeBestAgreesWithE8VectorQuantizer()
    {
        var scales = new ScaleSet([4.0f / 14, 5.5f / 14, 7.0f / 14, 18.0f / 14]);
        var vq = new E8VectorQuantizer(14, scales);
        int n = 2000;
        var x = E8BoxKernelTests.Gaussian(8 * n, 123);
        var d1 = new byte[8 * n]; var s1 = new byte[n];
        var d2 = new byte[8 * n]; var s2 = new byte[n]; var y2 = new float[8 * n];
        vq.Quantize(x, d1, s1);
        VoronoiBatch.EncodeBest(vq.Code, x, scales.Betas, d2, s2, y2);
        int differ = 0;
        for (int b = 0; b < n; b++)
            if (s1[b] != s2[b] || !d1.AsSpan(8 * b, 8).SequenceEqual(d2.AsSpan(8 * b, 8))) differ++;
        Assert.Equal(0, differ);
    }
}
