using System.CommandLine;
using System.Text.Json.Nodes;
using Gosset.Harness;
using Gosset.IO;
using Gosset.Matrix;
using Gosset.Theory;
using Spectre.Console;

namespace Gosset.Cli.Commands;

/// <summary><c>gosset matmul</c>: estimate AᵀB from independent encodings of A and B.</summary>
internal static class MatmulCommand
{
    public static Command Create()
    {
        var a = new Option<string>("--a") { Description = "A as .npy (n×a)", Required = true };
        var b = new Option<string>("--b") { Description = "B as .npy (n×b)", Required = true };
        var bits = new Option<double>("--bits") { Description = "Rate in bits/entry; the best configuration at or below bits + 0.1 is chosen", Required = true };
        var method = new Option<string>("--method") { Description = "Method: " + string.Join(", ", MatrixMethod.KnownNames), DefaultValueFactory = _ => "e8" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the shared rotation", DefaultValueFactory = _ => 1UL };
        var group = new Option<int>("--group") { Description = "Group size of the INT baselines", DefaultValueFactory = _ => IntMethod.DefaultGroup };
        var outPath = new Option<string?>("--out") { Description = "Write the estimate Ĉ (a×b) as .npy" };
        var json = new Option<string?>("--json") { Description = "Write the result as JSON" };
        var cmd = new Command("matmul", "Estimate AᵀB from independent encodings of A and B at a given rate.") { a, b, bits, method, seed, group, outPath, json };
        cmd.SetAction(pr =>
        {
            RdCommand.CheckOutputDir(pr.GetValue(outPath)); RdCommand.CheckOutputDir(pr.GetValue(json));
            var A = MatrixFiles.Read(pr.GetValue(a)!);
            var B = MatrixFiles.Read(pr.GetValue(b)!);
            if (A.Rows != B.Rows) throw new GossetException($"Shapes do not match for AᵀB: A is {A.Rows}×{A.Cols}, B is {B.Rows}×{B.Cols} (rows must agree).");
            A.ThrowIfNotFinite("A"); B.ThrowIfNotFinite("B");
            var m = MatrixMethod.Get(pr.GetValue(method)!, pr.GetValue(group));
            var (r, c) = BestAtRate(A, B, m, pr.GetValue(bits), pr.GetValue(seed));
            Report(r);
            if (pr.GetValue(outPath) is { } o) { Npy.Write(o, c); AnsiConsole.MarkupLine($"[grey]wrote {Markup.Escape(o)}[/]"); }
            CliOutput.WriteJson(pr.GetValue(json), Json(r));
            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// Walks the method's configurations down from bits + 0.1 in steps of 0.05 bit and keeps the
    /// first whose stored rate (both matrices, everything counted) is at most bits + 0.1: the
    /// configurations are ordered by rate, and distortion falls with rate.
    /// </summary>
    internal static (RdResult, DenseMatrix) BestAtRate(DenseMatrix A, DenseMatrix B, MatrixMethod m, double bits, ulong seed)
    {
        if (!(bits >= 0.25 && bits <= 8.5)) throw new GossetException($"--bits {bits} is out of range (0.25 to 8.5).");
        string? last = null;
        for (double t = bits + 0.1; t >= Math.Max(0.2, bits - 2); t -= 0.05)
        {
            if (!m.Supports(t)) continue;
            var qa = m.Encode(A, t, seed);
            string config = qa.Describe();
            if (config == last) continue;
            last = config;
            var qb = m.Encode(B, t, seed);
            double rate = (double)(qa.TotalBits + qb.TotalBits) / ((long)A.Rows * A.Cols + (long)B.Rows * B.Cols);
            if (rate > bits + 0.1 + 1e-12) continue;
            var r = RdHarness.Measure(A, B, qa, qb, m.Name, bits, m.Describe(qa));
            return (r, ProductEstimator.Estimate(qa, qb));
        }
        throw new GossetException($"No {m.Name} configuration fits in {bits} + 0.1 bits/entry for this shape (side information alone may exceed it).");
    }

    internal static void Report(RdResult r)
        => AnsiConsole.Write(CliOutput.RdTable([r]));

    internal static JsonObject Json(RdResult r)
    {
        var o = CliOutput.RdRow(r);
        o["r_star"] = RateDistortion.RStar;
        return o;
    }
}
