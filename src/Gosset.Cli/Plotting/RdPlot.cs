using Gosset.IO;
using ScottPlot;

namespace Gosset.Cli.Plotting;

/// <summary>One measured method on a rate–distortion plot: points (bits per entry, distortion).</summary>
/// <param name="Name">Legend text, e.g. <c>e8 k=4</c> or <c>int-g128</c>.</param>
/// <param name="BitsPerEntry">Total stored bits per entry of each point.</param>
/// <param name="Distortion">Distortion of each point (must be &gt; 0 to appear on the log axis).</param>
internal sealed record RdSeries(string Name, IReadOnlyList<double> BitsPerEntry, IReadOnlyList<double> Distortion);

/// <summary>A theoretical curve drawn as a plain line, e.g. Γ(R) over [0.25, 8].</summary>
/// <param name="Name">Legend text.</param>
/// <param name="Function">The curve y = f(x).</param>
/// <param name="XMin">Left end of the drawn range.</param>
/// <param name="XMax">Right end of the drawn range.</param>
internal sealed record TheoryCurve(string Name, Func<double, double> Function, double XMin, double XMax);

/// <summary>
/// Rate–distortion chart: distortion on a log₁₀ axis against bits per entry, one marker-and-line
/// series per method, an optional theory curve, a legend; written atomically as PNG.
/// </summary>
internal static class RdPlot
{
    /// <summary>Renders the chart and writes it to <paramref name="path"/> (atomic: temporary file, then rename).</summary>
    public static void Write(string path, string title, IReadOnlyList<RdSeries> series, TheoryCurve? theory = null,
        string xLabel = "bits per entry (side information included)", string yLabel = "distortion (log scale)",
        int width = 1000, int height = 680)
    {
        byte[] png = Render(title, series, theory, xLabel, yLabel, width, height);
        AtomicFile.WriteAllBytes(path, png);
    }

    /// <summary>Renders the chart to PNG bytes.</summary>
    public static byte[] Render(string title, IReadOnlyList<RdSeries> series, TheoryCurve? theory = null,
        string xLabel = "bits per entry (side information included)", string yLabel = "distortion (log scale)",
        int width = 1000, int height = 680)
    {
        ArgumentNullException.ThrowIfNull(series);
        var plt = new Plot();
        PlotStyle.Apply(plt);
        var palette = new ScottPlot.Palettes.Category10();
        double minLog = double.PositiveInfinity, maxLog = double.NegativeInfinity;
        int index = 0;
        foreach (var s in series)
        {
            if (s.BitsPerEntry.Count != s.Distortion.Count)
                throw new ArgumentException($"Series '{s.Name}' has {s.BitsPerEntry.Count} rates and {s.Distortion.Count} distortions.");
            var pts = Enumerable.Range(0, s.BitsPerEntry.Count)
                .Where(i => double.IsFinite(s.BitsPerEntry[i]) && s.Distortion[i] > 0 && double.IsFinite(s.Distortion[i]))
                .Select(i => (x: s.BitsPerEntry[i], y: Math.Log10(s.Distortion[i])))
                .OrderBy(p => p.x)
                .ToArray();
            var color = palette.GetColor(index);
            var markers = MarkerShapes[index % MarkerShapes.Length];
            index++;
            if (pts.Length == 0) continue;
            var sc = plt.Add.Scatter(pts.Select(p => p.x).ToArray(), pts.Select(p => p.y).ToArray(), color);
            sc.LegendText = s.Name;
            sc.LineWidth = 1.5f;
            sc.MarkerSize = 8;
            sc.MarkerShape = markers;
            foreach (var p in pts) { minLog = Math.Min(minLog, p.y); maxLog = Math.Max(maxLog, p.y); }
        }
        if (theory is not null)
        {
            const int samples = 400;
            var xs = new List<double>(samples + 1);
            var ys = new List<double>(samples + 1);
            for (int i = 0; i <= samples; i++)
            {
                double x = theory.XMin + (theory.XMax - theory.XMin) * i / samples;
                double y = theory.Function(x);
                if (!(y > 0) || !double.IsFinite(y)) continue;
                xs.Add(x);
                ys.Add(Math.Log10(y));
            }
            if (xs.Count > 0)
            {
                var line = plt.Add.Scatter(xs.ToArray(), ys.ToArray(), Colors.Black);
                line.LegendText = theory.Name;
                line.MarkerSize = 0;
                line.LineWidth = 2;
                line.LinePattern = LinePattern.Dashed;
                // The curve usually spans far more decades than the data; keep the data in view.
                if (double.IsInfinity(minLog)) { minLog = ys.Min(); maxLog = ys.Max(); }
                else { minLog = Math.Min(minLog, ys.Where((_, i) => xs[i] >= XMinOf(series)).DefaultIfEmpty(minLog).Min()); maxLog = Math.Max(maxLog, ys.Max()); }
            }
        }

        PlotStyle.LogY(plt);
        if (!double.IsInfinity(minLog))
        {
            double pad = Math.Max(0.1, 0.05 * (maxLog - minLog));
            plt.Axes.SetLimitsY(minLog - pad, maxLog + pad);
        }
        plt.Title(title);
        plt.XLabel(xLabel);
        plt.YLabel(yLabel);
        plt.ShowLegend(Alignment.UpperRight);
        return plt.GetImageBytes(width, height, ImageFormat.Png);
    }

    private static double XMinOf(IReadOnlyList<RdSeries> series)
    {
        var all = series.SelectMany(s => s.BitsPerEntry).Where(double.IsFinite).ToList();
        return all.Count == 0 ? double.NegativeInfinity : all.Min() - 0.25;
    }

    private static readonly MarkerShape[] MarkerShapes =
    [
        MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp,
        MarkerShape.FilledDiamond, MarkerShape.FilledTriangleDown, MarkerShape.OpenCircle, MarkerShape.OpenSquare,
    ];
}
