using System.Text.Json;
using System.Text.Json.Nodes;
using Gosset.Harness;
using Gosset.IO;
using Spectre.Console;

namespace Gosset.Cli;

/// <summary>Shared output helpers: JSON files (atomic) and tables.</summary>
internal static class CliOutput
{
    public static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static void WriteJson(string? path, JsonNode node)
    {
        if (string.IsNullOrEmpty(path)) return;
        AtomicFile.WriteAllText(path, node.ToJsonString(Json) + "\n");
    }

    public static JsonObject RdRow(RdResult r) => new()
    {
        ["method"] = r.Method,
        ["q"] = r.Config.Q,
        ["k"] = r.Config.K,
        ["group"] = r.Config.Group,
        ["rotation"] = r.Config.Rotation,
        ["kernels"] = r.Kernels,
        ["target_rate"] = r.TargetRate,
        ["bits_per_entry"] = r.BitsPerEntry,
        ["bits_per_entry_a"] = r.BitsPerEntryA,
        ["bits_per_entry_b"] = r.BitsPerEntryB,
        ["distortion"] = Finite(r.Error.Distortion),
        ["gamma"] = r.Gamma,
        ["gap_db"] = Finite(r.GapDb),
        ["relative_error"] = Finite(r.Error.RelativeError),
        ["frobenius_normalized_error"] = Finite(r.Error.FrobeniusNormalizedError),
        ["mse_a"] = Finite(r.MseA),
        ["mse_b"] = Finite(r.MseB),
        ["detail"] = r.Config.Detail,
    };

    public static double? Finite(double v) => double.IsFinite(v) ? v : null;

    public static Table RdTable(IEnumerable<RdResult> rows)
    {
        var t = new Table().Border(TableBorder.Rounded);
        foreach (var h in new[] { "method", "target", "q", "k", "group", "bits/entry", "D", "Γ(R)", "gap dB", "rel. err", "mse A", "mse B" })
            t.AddColumn(new TableColumn(h).RightAligned());
        foreach (var r in rows)
            t.AddRow(r.Method, F(r.TargetRate, "0.##"), r.Config.Q?.ToString() ?? "", r.Config.K?.ToString() ?? "", r.Config.Group?.ToString() ?? "",
                F(r.BitsPerEntry, "0.000"), F(r.Error.Distortion, "0.000E+0"), F(r.Gamma, "0.000E+0"), F(r.GapDb, "0.00"),
                F(r.Error.RelativeError, "0.0000"), F(r.MseA, "0.000E+0"), F(r.MseB, "0.000E+0"));
        return t;
    }

    public static string F(double v, string fmt) => double.IsFinite(v) ? v.ToString(fmt, System.Globalization.CultureInfo.InvariantCulture) : "n/a";

    public static double[] ParseList(string text, string what)
    {
        try
        {
            return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(s => double.Parse(s, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        }
        catch (FormatException) { throw new GossetException($"Cannot parse {what} list '{text}' (expected numbers separated by commas)."); }
    }
}
