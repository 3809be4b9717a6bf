using Gosset.IO;
using ScottPlot;

namespace Gosset.Cli.Plotting;

/// <summary>One series of a category chart: a value per category (NaN leaves a category empty).</summary>
/// <param name="Name">Legend text, e.g. <c>W4A4KV4 e8</c>.</param>
/// <param name="Values">One value per category, in category order.</param>
internal sealed record CategorySeries(string Name, IReadOnlyList<double> Values);

/// <summary>How <see cref="LinePlot"/> draws its series.</summary>
internal enum CategoryStyle
{
    /// <summary>Grouped bars, one bar per series inside each category.</summary>
    Bars,
    /// <summary>Markers joined by lines, one line per series.</summary>
    Lines,
}

/// <summary>
/// Values against named categories (e.g. perplexity or KL divergence per quantization setting),
/// as grouped bars or marker lines, with an optional horizontal reference (e.g. the float model);
/// written atomically as PNG.
/// </summary>
internal static class LinePlot
{
    /// <summary>Renders the chart and writes it atomically to <paramref name="path"/>.</summary>
    public static void Write(string path, string title, IReadOnlyList<string> categories, IReadOnlyList<CategorySeries> series,
        string yLabel, CategoryStyle style = CategoryStyle.Bars, bool logY = false,
        (string Name, double Value)? reference = null, string xLabel = "", int width = 1000, int height = 620)
    {
        byte[] png = Render(title, categories, series, yLabel, style, logY, reference, xLabel, width, height);
        AtomicFile.WriteAllBytes(path, png);
    }

    /// <summary>Renders the chart to PNG bytes.</summary>
    public static byte[] Render(string title, IReadOnlyList<string> categories, IReadOnlyList<CategorySeries> series,
        string yLabel, CategoryStyle style = CategoryStyle.Bars, bool logY = false,
        (string Name, double Value)? reference = null, string xLabel = "", int width = 1000, int height = 620)
    {
        ArgumentNullException.ThrowIfNull(categories);
        ArgumentNullException.ThrowIfNull(series);
        foreach (var s in series)
            if (s.Values.Count != categories.Count)
                throw new ArgumentException($"Series '{s.Name}' has {s.Values.Count} values for {categories.Count} categories.");
        var plt = new Plot();
        PlotStyle.Apply(plt);
        var palette = new ScottPlot.Palettes.Category10();
        Func<double, double> map = logY ? Math.Log10 : v => v;
        bool Usable(double v) => double.IsFinite(v) && (!logY || v > 0);
        double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
        int nSeries = Math.Max(1, series.Count);
        double groupWidth = 0.8, barWidth = groupWidth / nSeries;
        // On a log axis bars start at the decade below the smallest value instead of at log(0).
        double barBase = 0;
        if (logY)
        {
            var all = series.SelectMany(s => s.Values).Where(Usable).Select(map).ToList();
            if (reference is { } rr && Usable(rr.Value)) all.Add(map(rr.Value));
            barBase = all.Count == 0 ? 0 : Math.Floor(all.Min() - 0.25); // the smallest bar stays visible
        }

        for (int s = 0; s < series.Count; s++)
        {
            var color = palette.GetColor(s);
            var vals = series[s].Values;
            if (style == CategoryStyle.Bars)
            {
                var bars = new List<Bar>();
                for (int c = 0; c < categories.Count; c++)
                {
                    if (!Usable(vals[c])) continue;
                    double v = map(vals[c]);
                    bars.Add(new Bar
                    {
                        Position = c - groupWidth / 2 + barWidth * (s + 0.5),
                        Value = v,
                        ValueBase = barBase,
                        Size = barWidth * 0.92,
                        FillColor = color,
                        LineWidth = 0,
                    });
                    lo = Math.Min(lo, v); hi = Math.Max(hi, v);
                }
                var plottable = plt.Add.Bars(bars);
                plottable.LegendText = series[s].Name;
            }
            else
            {
                var idx = Enumerable.Range(0, categories.Count).Where(c => Usable(vals[c])).ToArray();
                if (idx.Length == 0) continue;
                var ys = idx.Select(c => map(vals[c])).ToArray();
                var sc = plt.Add.Scatter(idx.Select(c => (double)c).ToArray(), ys, color);
                sc.LegendText = series[s].Name;
                sc.MarkerSize = 9;
                sc.LineWidth = 1.5f;
                lo = Math.Min(lo, ys.Min()); hi = Math.Max(hi, ys.Max());
            }
        }
        if (reference is { } r && Usable(r.Value))
        {
            double v = map(r.Value);
            var line = plt.Add.HorizontalLine(v, 2, Colors.Black, LinePattern.Dashed);
            line.LegendText = r.Name;
            lo = Math.Min(lo, v); hi = Math.Max(hi, v);
        }

        plt.Axes.Bottom.SetTicks(Enumerable.Range(0, categories.Count).Select(c => (double)c).ToArray(), categories.ToArray());
        plt.Axes.Bottom.MajorTickStyle.Length = 0;
        plt.Grid.XAxisStyle.IsVisible = false;
        plt.Axes.SetLimitsX(-0.6, categories.Count - 0.4);
        if (logY) PlotStyle.LogY(plt);
        if (!double.IsInfinity(lo))
        {
            if (style == CategoryStyle.Bars) lo = Math.Min(lo, barBase);
            double pad = Math.Max(1e-9, 0.08 * (hi - lo));
            if (hi == lo) pad = Math.Max(Math.Abs(hi) * 0.1, 0.1);
            plt.Axes.SetLimitsY(style == CategoryStyle.Bars && lo >= barBase ? barBase : lo - pad, hi + pad);
        }
        plt.Title(title);
        plt.XLabel(xLabel);
        plt.YLabel(yLabel);
        plt.ShowLegend(Alignment.UpperLeft);
        return plt.GetImageBytes(width, height, ImageFormat.Png);
    }
}
