using ScottPlot;

namespace Gosset.Cli.Plotting;

/// <summary>Shared look of Gosset charts: white background, light grid, log axis helper.</summary>
internal static class PlotStyle
{
    /// <summary>Font sizes and grid colours used by every chart.</summary>
    public static void Apply(Plot plt)
    {
        plt.Font.Set(SansFont.Value);
        plt.Axes.Title.Label.FontSize = 20;
        plt.Axes.Left.Label.FontSize = 16;
        plt.Axes.Bottom.Label.FontSize = 16;
        plt.Axes.Left.TickLabelStyle.FontSize = 13;
        plt.Axes.Bottom.TickLabelStyle.FontSize = 13;
        plt.Grid.MajorLineColor = Colors.Black.WithOpacity(0.12);
        plt.Grid.MinorLineColor = Colors.Black.WithOpacity(0.05);
        plt.Grid.MinorLineWidth = 1;
    }

    private static readonly Lazy<string> SansFont = new(PickSansFont);

    /// <summary>
    /// A sans-serif family that is actually installed. SkiaSharp's dependency-free Linux build
    /// reads fonts from the usual folders (e.g. /usr/share/fonts) without fontconfig, so generic
    /// names may resolve to a serif face; without any font, charts have no text: say so on stderr.
    /// </summary>
    private static string PickSansFont()
    {
        var installed = new HashSet<string>(SkiaSharp.SKFontManager.Default.GetFontFamilies(), StringComparer.OrdinalIgnoreCase);
        if (installed.Count == 0)
            Console.Error.WriteLine("warning: no system fonts found; chart text will be missing (install a font package such as fonts-dejavu-core).");
        string[] preferred = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica", "FreeSans", "Segoe UI"];
        return preferred.FirstOrDefault(installed.Contains) ?? Fonts.Sans;
    }

    /// <summary>Labels the left axis as 10^k for data already plotted as log₁₀ values, with log-spaced minor ticks.</summary>
    public static void LogY(Plot plt)
    {
        var ticks = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = y => FormatPowerOfTen(y),
        };
        plt.Axes.Left.TickGenerator = ticks;
    }

    /// <summary>Formats 10^y compactly (1, 0.1, 0.01, then 1e-3 …).</summary>
    public static string FormatPowerOfTen(double y)
    {
        int k = (int)Math.Round(y);
        return k switch
        {
            >= 0 and <= 3 => Math.Pow(10, k).ToString("0", System.Globalization.CultureInfo.InvariantCulture),
            -1 => "0.1",
            -2 => "0.01",
            _ => "1e" + k.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
    }
}
