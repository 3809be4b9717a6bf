using System.CommandLine;
using System.Text.Json.Nodes;
using Gosset.Harness;
using Gosset.Matrix;
using Gosset.Theory;
using Spectre.Console;

namespace Gosset.Cli.Commands;

/// <summary>
/// <c>gosset robust</c>: the universal guarantee in practice. For non-Gaussian pairs (heavy tails,
/// sparsity, low rank, outlier rows/columns, large means, correlated factors, real model weights)
/// run <c>matmul --bits R</c> and compare the distortion with an iid Gaussian pair of the same shape.
/// </summary>
internal static class RobustCommand
{
    public static Command Create()
    {
        var n = new Option<int>("--n") { Description = "Rows n of the synthetic pairs", DefaultValueFactory = _ => 4096 };
        var a = new Option<int>("--a") { Description = "Columns of A", DefaultValueFactory = _ => 256 };
        var b = new Option<int>("--b") { Description = "Columns of B", DefaultValueFactory = _ => 256 };
        var bits = new Option<double>("--bits") { Description = "Rate (as in matmul --bits)", DefaultValueFactory = _ => 4.0 };
        var method = new Option<string>("--method") { Description = "Method", DefaultValueFactory = _ => "e8" };
        var sources = new Option<string>("--sources") { Description = "Synthetic sources, comma separated", DefaultValueFactory = _ => string.Join(",", MatrixSources.Names.Where(s => s != "gaussian")) };
        var model = new Option<string?>("--model") { Description = "Also test real weights from a Llama checkpoint (llama2.c .bin or HF folder)" };
        var seed = new Option<ulong>("--seed") { Description = "Seed", DefaultValueFactory = _ => 1UL };
        var json = new Option<string?>("--json") { Description = "Write the results as JSON" };
        var cmd = new Command("robust", "Distortion of non-Gaussian and real-weight products vs an iid Gaussian pair of the same shape.")
        { n, a, b, bits, method, sources, model, seed, json };
        cmd.SetAction(pr =>
        {
            RdCommand.CheckOutputDir(pr.GetValue(json));
            var m = MatrixMethod.Get(pr.GetValue(method)!);
            double r = pr.GetValue(bits);
            ulong s = pr.GetValue(seed);
            var pairs = new List<(string Name, DenseMatrix A, DenseMatrix B)>();
            foreach (var src in pr.GetValue(sources)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var (x, y) = MatrixSources.Pair(src, pr.GetValue(n), pr.GetValue(a), pr.GetValue(b), s + 17);
                pairs.Add((src, x, y));
            }
            if (pr.GetValue(model) is { } path) pairs.AddRange(ModelWeightPairs.Load(path));
            var rows = new JsonArray();
            var table = new Table().Border(TableBorder.Rounded);
            foreach (var h in new[] { "source", "n", "a", "b", "bits/entry", "D", "Gaussian D (same shape)", "Δ dB", "gap to Γ dB", "rel. err" })
                table.AddColumn(new TableColumn(h).RightAligned());
            var gaussCache = new Dictionary<(int, int, int), RdResult>();
            AnsiConsole.Progress().AutoClear(true).Start(ctx =>
            {
                var task = ctx.AddTask("robustness", maxValue: pairs.Count);
                foreach (var (name, x, y) in pairs)
                {
                    task.Description = name;
                    var key = (x.Rows, x.Cols, y.Cols);
                    if (!gaussCache.TryGetValue(key, out var g))
                    {
                        var (ga, gb) = MatrixSources.Pair("gaussian", x.Rows, x.Cols, y.Cols, s);
                        g = MatmulCommand.BestAtRate(ga, gb, m, r, s).Item1;
                        gaussCache[key] = g;
                    }
                    var res = MatmulCommand.BestAtRate(x, y, m, r, s).Item1;
                    double delta = RateDistortion.Db(res.Error.Distortion, g.Error.Distortion);
                    table.AddRow(name, x.Rows.ToString(), x.Cols.ToString(), y.Cols.ToString(), CliOutput.F(res.BitsPerEntry, "0.000"),
                        CliOutput.F(res.Error.Distortion, "0.000E+0"), CliOutput.F(g.Error.Distortion, "0.000E+0"), CliOutput.F(delta, "+0.00;-0.00;0.00"),
                        CliOutput.F(res.GapDb, "0.00"), CliOutput.F(res.Error.RelativeError, "0.0000"));
                    var row = CliOutput.RdRow(res);
                    row["source"] = name; row["n"] = x.Rows; row["a"] = x.Cols; row["b"] = y.Cols;
                    row["gaussian_distortion"] = g.Error.Distortion; row["gaussian_bits_per_entry"] = g.BitsPerEntry; row["delta_db"] = delta;
                    rows.Add(row);
                    task.Increment(1);
                }
            });
            AnsiConsole.Write(table);
            CliOutput.WriteJson(pr.GetValue(json), new JsonObject { ["bits"] = r, ["method"] = m.Name, ["results"] = rows });
            return 0;
        });
        return cmd;
    }
}
