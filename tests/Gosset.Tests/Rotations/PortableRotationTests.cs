using Gosset.Rotations;
using Gosset.Util;

namespace Gosset.Tests.Rotations;

/// <summary>
/// The rotation stored as a seed must be the same on every platform: its Gaussian draw uses no libm.
/// Reference values come from an independent Python implementation (SplitMix64, the polar method
/// with math.log, the same Householder QR), which agrees to rounding.
/// </summary>
public class PortableRotationTests
{
    [Fact]
    public void Portable_log_matches_the_platform_log_to_rounding()
    {
        var rng = new SplitMix64(11);
        double worst = 0;
        for (int i = 0; i < 200000; i++)
        {
            double x = rng.NextDouble() + 1e-300;
            if (i % 4 == 1) x = Math.Pow(2, 600 * (rng.NextDouble() - 0.5)) * (1 + rng.NextDouble());
            double a = PortableNormal.Log(x), b = Math.Log(x);
            double err = Math.Abs(a - b) / Math.Max(Math.Abs(b), 1e-300);
            if (Math.Abs(b) > 1e-3) worst = Math.Max(worst, err);
        }
        Assert.True(worst < 1e-15, $"worst relative error {worst:E2}");
        foreach (double x in new[] { 1.0, 2.0, 0.5, Math.E, 1e-300, 1.7976931348623157e308, 0.7071067811865476, 1.4142135623730951 })
            Assert.Equal(Math.Log(x), PortableNormal.Log(x), 14);
        Assert.Equal(0.0, PortableNormal.Log(1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => PortableNormal.Log(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => PortableNormal.Log(double.NaN));
    }

    [Fact]
    public void Normal_stream_matches_the_python_reference()
    {
        var rng = SplitMix64.ForStream(42, 0x4F525448UL, 3);
        double[] expected = [0.46911859006340617, -0.1489357188047123, -0.34485932484554926, -1.12320861043427];
        foreach (double e in expected) Assert.Equal(e, PortableNormal.Next(ref rng), 14);
    }

    [Fact]
    public void Normal_draws_have_the_moments_of_a_standard_normal()
    {
        var rng = new SplitMix64(5);
        const int n = 400000;
        double s1 = 0, s2 = 0, s4 = 0;
        int tail = 0;
        for (int i = 0; i < n; i++)
        {
            double z = PortableNormal.Next(ref rng);
            s1 += z; s2 += z * z; s4 += z * z * z * z;
            if (Math.Abs(z) > 1.959963984540054) tail++;
        }
        // within ~5 standard errors: mean 1/√n ≈ 0.0016, variance √(2/n) ≈ 0.0022, fourth moment √(96/n) ≈ 0.015
        Assert.InRange(s1 / n, -0.008, 0.008);
        Assert.InRange(s2 / n, 0.99, 1.01);
        Assert.InRange(s4 / n, 2.93, 3.07);
        Assert.InRange(tail / (double)n, 0.0485, 0.0515); // P(|z| > 1.96) = 0.05
    }

    [Fact]
    public void Dense_factor_matches_the_python_reference()
    {
        float[] q3 = KroneckerRotation.RandomOrthogonal(3, 42);
        double[] e3 = [0.23182503480318206, -0.05946175148896149, -0.97093843952558, -0.555057677782423, -0.8277767003979155,
            -0.08183341990362836, -0.7988542592821842, 0.5578978709299801, -0.22490406407734836];
        for (int i = 0; i < 9; i++) Assert.Equal((float)e3[i], q3[i]);
        float[] q5 = KroneckerRotation.RandomOrthogonal(5, 7);
        double[] e5 = [0.19343834641361757, -0.13842847923806711, -0.703390199659837, -0.6041707039512656, 0.2892043391481683];
        for (int j = 0; j < 5; j++) Assert.Equal((float)e5[j], q5[j]);
    }
}
