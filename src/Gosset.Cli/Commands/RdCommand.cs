using System.CommandLine;
using System.Text.Json.Nodes;
using Gosset.Harness;
using Gosset.Matrix;
using Gosset.Theory;
using Spectre.Console;

namespace Gosset.Cli.Commands;

/// <summary><c>gosset rd</c>: rate–distortion of matrix-product estimates for several methods and rates.</summary>
internal static class RdCommand
{
    public const string DefaultMethods = "e8,e8-k4-fixed,e8-voronoi,e8-voronoi-mmse,e8-voronoi-k1,int,int-rot,int-clip,int-clip-rot";
    public const string DefaultRates = "2,3,4,5,6,7,8";

    public static Command Create()
    {
        var source = new Option<string>("--source") { Description = "gaussian (default), another synthetic source (" + string.Join(", ", MatrixSources.Names) + "), A.npy (AᵀA) or A.npy,B.npy", DefaultValueFactory = _ => "gaussian" };
        var n = new Option<int>("--n") { Description = "Rows n (inner dimension) of synthetic matrices", DefaultValueFactory = _ => 4096 };
        var a = new Option<int>("--a") { Description = "Columns of A", DefaultValueFactory = _ => 256 };
        var b = new Option<int>("--b") { Description = "Columns of B", DefaultValueFactory = _ => 256 };
        var rates = new Option<string>("--rates") { Description = $"Rates R, comma separated: each method's own configuration for R (nominal: rows and plot use the stored rate, side information included; a row above R + {RateBudget.Allowance} gets a warning and within_budget = false). With --budget, the --bits rule of quantize/matmul instead", DefaultValueFactory = _ => DefaultRates };
        var budget = new Option<bool>("--budget") { Description = $"Apply the --bits rule to each rate: the configuration with the largest stored rate ≤ R + {RateBudget.Allowance} bits/entry for A and B together, as matmul --bits R codes them" };
        var methods = new Option<string>("--methods") { Description = "Methods, comma separated: " + string.Join(", ", MatrixMethod.KnownNames), DefaultValueFactory = _ => DefaultMethods };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the data and of the shared rotation", DefaultValueFactory = _ => 1UL };
        var group = new Option<int>("--group") { Description = "Group size of the INT baselines (entries per fp16 scale)", DefaultValueFactory = _ => IntMethod.DefaultGroup };
        var plot = new Option<string?>("--plot") { Description = "Write a PNG plot of distortion vs rate with Γ(R)" };
        var json = new Option<string?>("--json") { Description = "Write the results as JSON" };
        var cmd = new Command("rd", "Rate–distortion of AᵀB estimates: encode A and B independently per method and rate, compare with Γ(R).")
        { source, n, a, b, rates, budget, methods, seed, group, plot, json };
        cmd.SetAction(pr =>
        {
            var spec = new RdSpec(pr.GetValue(source)!, pr.GetValue(n), pr.GetValue(a), pr.GetValue(b),
                CliOutput.ParseList(pr.GetValue(rates)!, "rate"), pr.GetValue(methods)!, pr.GetValue(seed), pr.GetValue(group), pr.GetValue(budget));
            Run(spec, pr.GetValue(plot), pr.GetValue(json));
            return 0;
        });
        return cmd;
    }

    // Budget: rates follow the --bits rule (RateBudget); otherwise they are the methods' own knobs, because rd traces
    // each method's configurations: the budget would fold neighbouring rates onto one configuration (e8 at 3 and 4 on
    // 1024-row columns, whose 4-bit code stores 4.32) and take 3-4 times longer. Rows always report the stored rate.
    internal sealed record RdSpec(string Source, int N, int A, int B, double[] Rates, string Methods, ulong Seed, int Group = IntMethod.DefaultGroup, bool Budget = false);

    internal static List<RdResult> Run(RdSpec spec, string? plotPath, string? jsonPath)
    {
        var methodList = spec.Methods.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(name => MatrixMethod.Get(name, spec.Group)).ToList();
        if (methodList.Count == 0) throw new GossetException("No method given.");
        foreach (double r in spec.Rates)
            if (!(r >= 0.25 && r <= 8.5)) throw new GossetException($"Rate {r} is out of range: rates must be between 0.25 and 8.5 bits/entry.");
        if (spec.Rates.Length == 0) throw new GossetException("No rate given.");
        CheckOutputDir(plotPath); CheckOutputDir(jsonPath);
        var (A, B) = LoadPair(spec);
        var results = new List<RdResult>();
        var skipped = new List<string>();
        AnsiConsole.MarkupLine($"[grey]A: {A.Rows}×{A.Cols}, B: {B.Rows}×{B.Cols}, source {Markup.Escape(spec.Source)}, seed {spec.Seed}[/]");
        AnsiConsole.Progress().AutoClear(true).Start(ctx =>
        {
            var task = ctx.AddTask("encoding", maxValue: methodList.Count * spec.Rates.Length);
            foreach (var m in methodList)
                foreach (double r in spec.Rates)
                {
                    if (!m.Supports(r)) { skipped.Add($"{m.Name} @ {r}"); task.Increment(1); continue; }
                    task.Description = $"{m.Name} @ {r} bits";
                    results.Add(spec.Budget ? RdHarness.RunBudget(A, B, m, r, spec.Seed) : RdHarness.Run(A, B, m, r, spec.Seed));
                    task.Increment(1);
                }
        });
        AnsiConsole.Write(CliOutput.RdTable(results));
        // the --bits rule's warnings, one line each on stderr (as quantize and matmul give them)
        foreach (var r in results.Where(r => !r.WithinBudget))
            Console.Error.WriteLine(FormattableString.Invariant(
                $"warning: {r.Method} at {r.TargetRate}: stored {r.BitsPerEntry:F2} bits/entry, above the --bits rule's {RateBudget.Limit(r.TargetRate)} ({(spec.Budget ? "no configuration fits this shape" : "nominal rate; --budget applies the rule")}){(r.SideInformationWarning is null ? "" : "; " + r.SideInformationWarning)}"));
        var comparison = CompareWithInt(results);
        if (comparison.Count > 0)
        {
            var t = new Table().Border(TableBorder.Rounded).Title("INT rows vs the best E8 row at an equal or lower rate");
            foreach (var h in new[] { "INT method", "bits/entry", "D", "best E8 row", "E8 bits/entry", "E8 D", "E8 gain dB" }) t.AddColumn(new TableColumn(h).RightAligned());
            foreach (var c in comparison)
                t.AddRow(c.Int.Method, CliOutput.F(c.Int.BitsPerEntry, "0.000"), CliOutput.F(c.Int.Error.Distortion, "0.000E+0"),
                    c.E8?.Method ?? "none", c.E8 == null ? "" : CliOutput.F(c.E8.BitsPerEntry, "0.000"),
                    c.E8 == null ? "" : CliOutput.F(c.E8.Error.Distortion, "0.000E+0"), CliOutput.F(c.GainDb, "+0.00;-0.00"));
            AnsiConsole.Write(t);
        }
        if (skipped.Count > 0) AnsiConsole.MarkupLine($"[grey]no configuration (skipped): {Markup.Escape(string.Join(", ", skipped))}[/]");
        if (jsonPath != null)
        {
            var root = new JsonObject
            {
                ["source"] = spec.Source, ["n"] = A.Rows, ["a"] = A.Cols, ["b"] = B.Cols, ["seed"] = spec.Seed,
                ["r_star"] = RateDistortion.RStar,
                ["rates"] = spec.Budget ? "budget" : "nominal",
                ["results"] = new JsonArray(results.Select(r =>
                {
                    var row = CliOutput.RdRow(r);
                    row["within_budget"] = r.WithinBudget;
                    return (JsonNode)row;
                }).ToArray()),
                ["int_vs_e8"] = new JsonArray(comparison.Select(c => (JsonNode)new JsonObject
                {
                    ["int_method"] = c.Int.Method, ["int_bits_per_entry"] = c.Int.BitsPerEntry, ["int_distortion"] = c.Int.Error.Distortion,
                    ["e8_method"] = c.E8?.Method, ["e8_bits_per_entry"] = c.E8?.BitsPerEntry, ["e8_distortion"] = c.E8?.Error.Distortion,
                    ["e8_gain_db"] = CliOutput.Finite(c.GainDb),
                }).ToArray()),
            };
            CliOutput.WriteJson(jsonPath, root);
            AnsiConsole.MarkupLine($"[grey]wrote {Markup.Escape(jsonPath)}[/]");
        }
        if (plotPath != null)
        {
            WritePlot(plotPath, results, $"AᵀB estimate, {spec.Source}: A {A.Rows}×{A.Cols}, B {B.Rows}×{B.Cols}");
            AnsiConsole.MarkupLine($"[grey]wrote {Markup.Escape(plotPath)}[/]");
        }
        return results;
    }

    internal sealed record IntComparison(RdResult Int, RdResult? E8, double GainDb);

    /// <summary>For every INT row, the E8-family row of least distortion at an equal or lower rate, and its gain in dB.</summary>
    internal static List<IntComparison> CompareWithInt(IReadOnlyList<RdResult> results)
    {
        var e8 = results.Where(r => r.Method.StartsWith("e8", StringComparison.Ordinal) && double.IsFinite(r.Error.Distortion)).ToList();
        return results.Where(r => r.Method.StartsWith("int", StringComparison.Ordinal))
            .Select(r =>
            {
                var best = e8.Where(x => x.BitsPerEntry <= r.BitsPerEntry).OrderBy(x => x.Error.Distortion).FirstOrDefault();
                return new IntComparison(r, best, best == null ? double.NaN : RateDistortion.Db(r.Error.Distortion, best.Error.Distortion));
            }).ToList();
    }

    internal static void WritePlot(string path, IReadOnlyList<RdResult> results, string title)
    {
        var series = results.GroupBy(r => r.Method)
            .Select(g => new Plotting.RdSeries(g.Key, g.Select(r => r.BitsPerEntry).ToList(), g.Select(r => r.Error.Distortion).ToList()))
            .ToList();
        double xmax = Math.Max(1, results.Max(r => r.BitsPerEntry)) + 0.25;
        Plotting.RdPlot.Write(path, title, series, new Plotting.TheoryCurve("Γ(R) (optimal, iid Gaussian)", RateDistortion.Gamma, 0.1, xmax),
            yLabel: "distortion D = ‖AᵀB − Ĉ‖²·n / (‖Ā‖²‖B̄‖²)  (log scale)");
    }

    internal static (DenseMatrix, DenseMatrix) LoadPair(RdSpec spec)
    {
        if (spec.Source.EndsWith(".npy", StringComparison.OrdinalIgnoreCase) || spec.Source.Contains(','))
        {
            var parts = spec.Source.Split(',', StringSplitOptions.TrimEntries);
            if (parts.Length > 2) throw new GossetException("--source takes A.npy or A.npy,B.npy.");
            var a = MatrixFiles.Read(parts[0]);
            var b = parts.Length == 2 ? MatrixFiles.Read(parts[1]) : a;
            if (a.Rows != b.Rows) throw new GossetException($"Shapes do not match for AᵀB: A is {a.Rows}×{a.Cols}, B is {b.Rows}×{b.Cols} (rows must agree).");
            return (a, b);
        }
        if (spec.N < 1 || spec.A < 1 || spec.B < 1) throw new GossetException("--n, --a and --b must be positive.");
        if ((long)spec.N * Math.Max(spec.A, spec.B) > 1L << 28) throw new GossetException("Matrix too large for a synthetic run (n·max(a,b) > 2²⁸).");
        return MatrixSources.Pair(spec.Source.ToLowerInvariant(), spec.N, spec.A, spec.B, spec.Seed);
    }

    internal static void CheckOutputDir(string? path)
    {
        if (string.IsNullOrEmpty(path)) return;
        string dir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        if (!Directory.Exists(dir)) throw new GossetException($"Output directory does not exist: {dir}");
    }
}
