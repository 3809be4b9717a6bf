using Gosset.Theory;

namespace Gosset.Tests.Theory;

public class RateDistortionTests
{
    [Fact]
    public void RStar_solves_its_equation_and_the_tangent_touches_phi()
    {
        double r = RateDistortion.RStar;
        Assert.Equal(0.5 * Math.Log2(1 + 4 * r * Math.Log(2)), r, 10);
        Assert.InRange(r, 0.905, 0.908);
        Assert.InRange(RateDistortion.Phi(r), 0.487, 0.490);
        // the line through (0,1) and (R*, φ(R*)) has the slope of φ at R* (tangency)
        double h = 1e-6;
        double slope = (RateDistortion.Phi(r + h) - RateDistortion.Phi(r - h)) / (2 * h);
        Assert.Equal(-(1 - RateDistortion.Phi(r)) / r, slope, 5);
        // and Γ lies below φ everywhere left of R* (time sharing helps)
        for (double x = 0.05; x < r; x += 0.05) Assert.True(RateDistortion.Gamma(x) <= RateDistortion.Phi(x) + 1e-12);
    }

    [Theory]
    [InlineData(1, 0.4375)]
    [InlineData(2, 0.12109375)]          // 2/16 − 1/256
    [InlineData(4, 2.0 / 256 - 1.0 / 65536)]
    [InlineData(8, 2.0 / 65536 - 1.0 / 4294967296)]
    public void Gamma_matches_closed_form_above_RStar(double r, double expected)
        => Assert.Equal(expected, RateDistortion.Gamma(r), 12);

    [Fact]
    public void Gamma_is_one_at_zero_and_continuous_at_RStar()
    {
        Assert.Equal(1.0, RateDistortion.Gamma(0), 12);
        double r = RateDistortion.RStar;
        Assert.Equal(RateDistortion.Gamma(r - 1e-9), RateDistortion.Gamma(r + 1e-9), 6);
        Assert.Equal(0.0, RateDistortion.GapDb(RateDistortion.Gamma(3), 3), 12);
        Assert.Equal(10.0, RateDistortion.GapDb(10 * RateDistortion.Gamma(3), 3), 9);
        Assert.Throws<ArgumentOutOfRangeException>(() => RateDistortion.Gamma(-1));
    }
}
