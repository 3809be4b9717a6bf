using System.CommandLine;
using System.Text.Json.Nodes;
using Gosset.Codes;
using Gosset.Matrix;
using Gosset.Util;
using Spectre.Console;

namespace Gosset.Cli.Commands;

/// <summary><c>gosset scales</c>: the tuned default scale sets (or sets fitted to a matrix) and their quality on N(0,1).</summary>
internal static class ScalesCommand
{
    public static Command Create()
    {
        var qs = new Option<string>("--q") { Description = "Nesting ratios, comma separated", DefaultValueFactory = _ => "3,4,7,8,14,16,28,32,56,64,111,128,223,256" };
        var ks = new Option<string>("--k") { Description = "Scale counts, comma separated (1, 2, 4, 8, 16)", DefaultValueFactory = _ => "1,2,4,8" };
        var json = new Option<string?>("--json") { Description = "Write the sets as JSON" };
        var cmd = new Command("scales", "Print the tuned default E8 scale sets (β₀ = β·q) with their MSE and index entropy on 65536 N(0,1) blocks.") { qs, ks, json };
        cmd.SetAction(pr =>
        {
            RdCommand.CheckOutputDir(pr.GetValue(json));
            var qList = CliOutput.ParseList(pr.GetValue(qs)!, "q").Select(v => (int)v).ToArray();
            var kList = CliOutput.ParseList(pr.GetValue(ks)!, "k").Select(v => (int)v).ToArray();
            var rng = new SplitMix64(20261122);
            var test = new float[65536 * 8];
            for (int i = 0; i < test.Length; i++) test[i] = (float)rng.NextGaussian();
            var table = new Table().Border(TableBorder.Rounded);
            foreach (var h in new[] { "q", "k", "β₀ = β·q", "MSE/entry", "index entropy (bits/block)", "rate (entropy-coded)" }) table.AddColumn(h);
            var rows = new JsonArray();
            foreach (int q in qList)
                foreach (int k in kList)
                {
                    var opts = new E8MatrixOptions { Q = q, K = k };
                    opts.Validate();
                    var s = ScaleSet.Default(q, k);
                    var vq = new E8VectorQuantizer(q, s);
                    var digits = new byte[test.Length];
                    var idx = new byte[test.Length / 8];
                    double mse = vq.Quantize(test, digits, idx) / test.Length;
                    var counts = new double[k];
                    foreach (byte b in idx) counts[b]++;
                    double h = counts.Where(c => c > 0).Sum(c => -c / idx.Length * Math.Log2(c / idx.Length));
                    string b0 = string.Join(", ", s.TimesQ(q).Select(v => v.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)));
                    table.AddRow(q.ToString(), k.ToString(), b0, mse.ToString("0.000E+0"), h.ToString("0.000"), (Math.Log2(q) + h / 8).ToString("0.000"));
                    rows.Add(new JsonObject { ["q"] = q, ["k"] = k, ["beta"] = new JsonArray(s.Betas.ToArray().Select(v => (JsonNode)v).ToArray()), ["mse"] = mse, ["index_entropy"] = h });
                }
            AnsiConsole.Write(table);
            CliOutput.WriteJson(pr.GetValue(json), new JsonObject { ["sets"] = rows });
            return 0;
        });
        return cmd;
    }
}
