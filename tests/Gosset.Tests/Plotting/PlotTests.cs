using Gosset.Cli.Plotting;

namespace Gosset.Tests.Plotting;

public sealed class PlotTests : IDisposable
{
    // Set GOSSET_KEEP_PLOTS=/some/dir to keep the rendered images for a visual check.
    private readonly string _dir = Environment.GetEnvironmentVariable("GOSSET_KEEP_PLOTS") is { Length: > 0 } keep
        ? Directory.CreateDirectory(keep).FullName
        : Directory.CreateTempSubdirectory("gosset-plot-").FullName;

    public void Dispose()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("GOSSET_KEEP_PLOTS"))) Directory.Delete(_dir, true);
    }

    private static double Gamma(double r)
    {
        const double rStar = 0.9063, phiStar = 0.4883;
        double phi = 2 * Math.Pow(2, -2 * r) - Math.Pow(2, -4 * r);
        return r >= rStar ? phi : 1 - (1 - phiStar) * r / rStar;
    }

    private static void AssertPng(string path, int width, int height)
    {
        byte[] b = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, b[..8]);
        int w = (b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19];
        int h = (b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23];
        Assert.Equal((width, height), (w, h));
        Assert.True(b.Length > 10_000, "image looks empty");
    }

    [Fact]
    public void RdPlotWritesPng()
    {
        string p = Path.Combine(_dir, "rd.png");
        double[] rates = [2, 3, 4, 5, 6, 7, 8];
        var intRd = new RdSeries("int-g128", rates.Select(r => r + 0.125).ToArray(), rates.Select(r => 3.2 * Gamma(r) * Math.Pow(1.1, r)).ToArray());
        var e8 = new RdSeries("e8 k=4", rates.Select(r => r + 0.06).ToArray(), rates.Select(r => 1.6 * Gamma(r)).ToArray());
        RdPlot.Write(p, "Distortion of AᵀB, iid N(0,1), n = 4096", [intRd, e8], new TheoryCurve("Γ(R)", Gamma, 0.25, 8.5));
        AssertPng(p, 1000, 680);
        Assert.Single(Directory.GetFiles(_dir, "rd*"));
    }

    [Fact]
    public void LinePlotWritesBarsAndLines()
    {
        string[] cats = ["FP32", "W4A16", "W4A4", "W4A4KV4"];
        var e8 = new CategorySeries("e8", [6.14, 6.31, 6.5, 6.6]);
        var i4 = new CategorySeries("int4", [6.14, 6.9, 8.0, double.NaN]);
        string bars = Path.Combine(_dir, "ppl-bars.png");
        LinePlot.Write(bars, "Perplexity", cats, [e8, i4], "perplexity", reference: ("float", 6.14));
        AssertPng(bars, 1000, 620);
        string lines = Path.Combine(_dir, "kl-lines.png");
        LinePlot.Write(lines, "KL divergence", cats, [new("e8", [1e-4, 0.01, 0.03, 0.05]), new("int4", [1e-4, 0.03, 0.2, 0.4])],
            "KL (nats/token)", CategoryStyle.Lines, logY: true);
        AssertPng(lines, 1000, 620);
        string logBars = Path.Combine(_dir, "kl-bars.png");
        LinePlot.Write(logBars, "KL divergence", cats, [new("e8", [1e-4, 0.01, 0.03, 0.05])], "KL", CategoryStyle.Bars, logY: true);
        AssertPng(logBars, 1000, 620);
        Assert.Throws<ArgumentException>(() => LinePlot.Render("x", cats, [new("bad", [1, 2])], "y"));
    }
}
