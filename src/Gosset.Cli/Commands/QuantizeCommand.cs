using System.CommandLine;
using System.Text.Json.Nodes;
using Gosset.Harness;
using Gosset.IO;
using Gosset.Matrix;
using Spectre.Console;

namespace Gosset.Cli.Commands;

/// <summary><c>gosset quantize</c> and <c>gosset dequantize</c>: round trip of one matrix through a .gq file.</summary>
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var input = new Option<string>("--in") { Description = "Input X.npy or X.safetensors[:NAME] (columns are coded)", Required = true };
        var bits = new Option<double>("--bits") { Description = $"Bit budget R: the configuration with the largest stored rate ≤ R + {RateBudget.Allowance} bits/entry, side information included", Required = true };
        var method = new Option<string>("--method") { Description = "Method: " + string.Join(", ", MatrixMethod.KnownNames), DefaultValueFactory = _ => "e8" };
        var transpose = new Option<bool>("--transpose") { Description = "Code the rows instead of the columns (e.g. weights [out, in] along the input dimension)" };
        var seed = new Option<ulong>("--seed") { Description = "Rotation seed", DefaultValueFactory = _ => 1UL };
        var group = new Option<int>("--group") { Description = "Group size of the INT baselines", DefaultValueFactory = _ => Gosset.Harness.IntMethod.DefaultGroup };
        var output = new Option<string>("--out") { Description = "Output .gq file", Required = true };
        var json = new Option<string?>("--json") { Description = "Write the result as JSON" };
        var cmd = new Command("quantize", "Quantize a matrix to a .gq file; prints size, bits/entry and error.") { input, bits, method, transpose, seed, group, output, json };
        cmd.SetAction(pr =>
        {
            string outPath = pr.GetValue(output)!;
            RdCommand.CheckOutputDir(outPath); RdCommand.CheckOutputDir(pr.GetValue(json));
            RefuseOverwrite(pr.GetValue(input)!, outPath, pr.GetValue(json));
            bool transposed = pr.GetValue(transpose);
            var x = MatrixFiles.Read(pr.GetValue(input)!, transposed);
            x.ThrowIfNotFinite("Input");
            var m = MatrixMethod.Get(pr.GetValue(method)!, pr.GetValue(group));
            var (codes, _, within) = RateBudget.Encode(m, [x], pr.GetValue(bits), pr.GetValue(seed));
            var q = codes[0];
            MatmulCommand.Warn(codes, within ? null : pr.GetValue(bits));
            // the orientation is recorded so that dequantize gives back the input's own shape
            GqFormat.Save(outPath, q, transposed ? GqOrientation.Rows : GqOrientation.Columns);
            var back = GqFormat.Load(outPath).Dequantize();
            double nmse = ProductError.NormalizedMse(x, back);
            long bytes = new FileInfo(outPath).Length;
            AnsiConsole.MarkupLine($"{Markup.Escape(q.Describe())}");
            AnsiConsole.MarkupLine($"{x.Rows}×{x.Cols} → {bytes} bytes, [bold]{q.BitsPerEntry:F4}[/] bits/entry, normalised MSE {nmse:E3}");
            CliOutput.WriteJson(pr.GetValue(json), new JsonObject
            {
                ["rows"] = x.Rows, ["cols"] = x.Cols, ["bytes"] = bytes, ["bits_per_entry"] = q.BitsPerEntry,
                ["normalized_mse"] = nmse, ["method"] = m.Name, ["detail"] = q.Describe(),
            });
            return 0;
        });
        return cmd;
    }

    public static Command CreateDequantize()
    {
        var input = new Option<string>("--in") { Description = "Input .gq file", Required = true };
        var output = new Option<string>("--out") { Description = "Output .npy file", Required = true };
        var json = new Option<string?>("--json") { Description = "Write a summary as JSON" };
        var cmd = new Command("dequantize", "Decode a .gq file to .npy.") { input, output, json };
        cmd.SetAction(pr =>
        {
            string outPath = pr.GetValue(output)!;
            RdCommand.CheckOutputDir(outPath); RdCommand.CheckOutputDir(pr.GetValue(json));
            RefuseOverwrite(pr.GetValue(input)!, outPath, pr.GetValue(json));
            var file = GqFormat.LoadFile(pr.GetValue(input)!);
            var q = file.Matrix;
            var x = file.Dequantize(); // in the input's orientation (transposed back after quantize --transpose)
            Npy.Write(outPath, x);
            AnsiConsole.MarkupLine($"{Markup.Escape(q.Describe())}");
            AnsiConsole.MarkupLine($"{x.Rows}×{x.Cols}, {q.TotalBits / 8} bytes stored, [bold]{q.BitsPerEntry:F4}[/] bits/entry → {Markup.Escape(outPath)}");
            CliOutput.WriteJson(pr.GetValue(json), new JsonObject
            {
                ["rows"] = x.Rows, ["cols"] = x.Cols, ["bytes"] = q.TotalBits / 8, ["bits_per_entry"] = q.BitsPerEntry, ["detail"] = q.Describe(),
                ["orientation"] = file.Header.Orientation == GqOrientation.Rows ? "rows" : "columns",
            });
            return 0;
        });
        return cmd;
    }

    /// <summary>An output path that names an input would destroy it before (or while) it is read.</summary>
    internal static void RefuseOverwrite(string input, string output, string? json)
    {
        string inFull = Path.GetFullPath(input.EndsWith(".npy", StringComparison.OrdinalIgnoreCase) || !input.Contains(".safetensors:", StringComparison.OrdinalIgnoreCase)
            ? input : input[..(input.LastIndexOf(':'))]);
        foreach (string? o in new[] { output, json })
            if (o != null && string.Equals(Path.GetFullPath(o), inFull, OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal))
                throw new GossetException($"output {o} is the input file; choose another path.");
        if (json != null && string.Equals(Path.GetFullPath(json), Path.GetFullPath(output), StringComparison.Ordinal))
            throw new GossetException($"--json {json} is the same file as --out; choose another path.");
    }
}
