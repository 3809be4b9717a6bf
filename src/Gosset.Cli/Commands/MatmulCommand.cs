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
        var a = new Option<string>("--a") { Description = "A (n×a): .npy, .safetensors[:NAME], or .gq (already coded)", Required = true };
        var b = new Option<string>("--b") { Description = "B (n×b): .npy, .safetensors[:NAME], or .gq (already coded)", Required = true };
        var bits = new Option<double?>("--bits") { Description = $"Bit budget R: the configuration with the largest stored rate ≤ R + {RateBudget.Allowance} bits/entry, side information included (needed unless both inputs are .gq)" };
        var method = new Option<string>("--method") { Description = "Method: " + string.Join(", ", MatrixMethod.KnownNames), DefaultValueFactory = _ => "e8" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the shared rotation (a .gq input imposes its own)", DefaultValueFactory = _ => 1UL };
        var group = new Option<int>("--group") { Description = "Group size of the INT baselines", DefaultValueFactory = _ => IntMethod.DefaultGroup };
        var outPath = new Option<string?>("--out") { Description = "Write the estimate Ĉ (a×b) as .npy" };
        var json = new Option<string?>("--json") { Description = "Write the result as JSON" };
        var floatB = new Option<bool>("--float-b") { Description = "Keep B in float: Ĉ = ÂᵀB with only A quantized (A a .gq or coded at --bits); an e8 A runs on the GEMM kernels" };
        var cmd = new Command("matmul", "Estimate AᵀB from independent encodings of A and B at a given bit budget.") { a, b, bits, method, seed, group, outPath, json, floatB };
        cmd.SetAction(pr =>
        {
            string specA = pr.GetValue(a)!, specB = pr.GetValue(b)!;
            var m = MatrixMethod.Get(pr.GetValue(method)!, pr.GetValue(group));
            if (pr.GetValue(floatB))
            {
                RunOneSided(specA, specB, m, pr.GetValue(bits), pr.GetValue(seed), pr.GetValue(outPath), pr.GetValue(json));
                return 0;
            }
            if (IsCoded(specA) || IsCoded(specB))
            {
                RunCoded(specA, specB, m, pr.GetValue(bits), pr.GetValue(outPath), pr.GetValue(json));
                return 0;
            }
            double budget = pr.GetValue(bits) ?? throw new GossetException("--bits is required unless both inputs are .gq files.");
            var A = MatrixFiles.Read(specA);
            var B = MatrixFiles.Read(specB);
            CheckShapes(A.Rows, A.Cols, B.Rows, B.Cols);
            A.ThrowIfNotFinite("A"); B.ThrowIfNotFinite("B");
            var (r, c, _) = BestAtRate(A, B, m, budget, pr.GetValue(seed));
            Report(r);
            if (pr.GetValue(outPath) is { } o) { Npy.Write(o, c); AnsiConsole.MarkupLine($"[grey]wrote {Markup.Escape(o)}[/]"); }
            CliOutput.WriteJson(pr.GetValue(json), Json(r));
            return 0;
        });
        return cmd;
    }

    private static bool IsCoded(string spec) => spec.EndsWith(".gq", StringComparison.OrdinalIgnoreCase);

    private static void CheckShapes(int rowsA, int colsA, int rowsB, int colsB)
    {
        if (rowsA != rowsB) throw new GossetException($"Shapes do not match for AᵀB: A is {rowsA}×{colsA}, B is {rowsB}×{colsB} (rows must agree).");
    }

    /// <summary>
    /// At least one factor is a .gq file: it is used as stored; a raw factor is coded with the
    /// method at the budget and the coded factor's rotation. No reference product exists, so the
    /// report gives the rates, not an error.
    /// </summary>
    private static void RunCoded(string specA, string specB, MatrixMethod m, double? bits, string? outPath, string? json)
    {
        QuantizedMatrix? qa = IsCoded(specA) ? GqFormat.Load(specA) : null;
        QuantizedMatrix? qb = IsCoded(specB) ? GqFormat.Load(specB) : null;
        DenseMatrix? A = qa is null ? MatrixFiles.Read(specA) : null;
        DenseMatrix? B = qb is null ? MatrixFiles.Read(specB) : null;
        CheckShapes(qa?.Rows ?? A!.Rows, qa?.Cols ?? A!.Cols, qb?.Rows ?? B!.Rows, qb?.Cols ?? B!.Cols);
        var raw = A ?? B;
        if (raw is not null)
        {
            raw.ThrowIfNotFinite(A is not null ? "A" : "B");
            double budget = bits ?? throw new GossetException($"--bits is required to code {(A is not null ? "A" : "B")}, which is not a .gq file.");
            var coded = (qa ?? qb)!;
            var (codes, _, within) = RateBudget.Encode(m, [raw], budget, coded.RotationSeed);
            Warn(codes, within ? null : budget);
            if (A is not null) qa = codes[0]; else qb = codes[0];
        }
        var c = ProductEstimator.Estimate(qa!, qb!);
        long entries = (long)qa!.Rows * qa.Cols + (long)qb!.Rows * qb.Cols;
        double rate = (double)(qa.TotalBits + qb.TotalBits) / entries;
        AnsiConsole.MarkupLine($"A: {Markup.Escape(qa.Describe())}, {qa.BitsPerEntry:F4} bits/entry");
        AnsiConsole.MarkupLine($"B: {Markup.Escape(qb.Describe())}, {qb.BitsPerEntry:F4} bits/entry");
        AnsiConsole.MarkupLine($"Ĉ = ÂᵀB̂: {c.Rows}×{c.Cols}, [bold]{rate:F4}[/] bits/entry (no reference product: the inputs are coded)");
        if (outPath is not null) { Npy.Write(outPath, c); AnsiConsole.MarkupLine($"[grey]wrote {Markup.Escape(outPath)}[/]"); }
        CliOutput.WriteJson(json, new JsonObject
        {
            ["rows"] = c.Rows, ["cols"] = c.Cols, ["bits_per_entry"] = rate,
            ["bits_per_entry_a"] = qa.BitsPerEntry, ["bits_per_entry_b"] = qb.BitsPerEntry,
            ["detail_a"] = qa.Describe(), ["detail_b"] = qb.Describe(),
        });
    }

    /// <summary>
    /// <c>--float-b</c>: A is quantized (a .gq as stored, or coded with the method at the budget), B stays float, and
    /// Ĉ = ÂᵀB comes from <see cref="QuantizedMatrix.MultiplyTransposed"/> (the kernels for the e8 format). With a raw A
    /// the error against the exact product is reported.
    /// </summary>
    private static void RunOneSided(string specA, string specB, MatrixMethod m, double? bits, ulong seed, string? outPath, string? json)
    {
        if (IsCoded(specB)) throw new GossetException("--float-b keeps B in float: give B as .npy or .safetensors, not a .gq file.");
        var B = MatrixFiles.Read(specB);
        DenseMatrix? A = IsCoded(specA) ? null : MatrixFiles.Read(specA);
        var qa = A is null ? GqFormat.Load(specA) : null;
        CheckShapes(qa?.Rows ?? A!.Rows, qa?.Cols ?? A!.Cols, B.Rows, B.Cols);
        B.ThrowIfNotFinite("B");
        if (A is not null)
        {
            A.ThrowIfNotFinite("A");
            double budget = bits ?? throw new GossetException("--bits is required to code A, which is not a .gq file.");
            var (codes, _, within) = RateBudget.Encode(m, [A], budget, seed);
            Warn(codes, within ? null : budget);
            qa = codes[0];
        }
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        var c = qa!.MultiplyTransposed(B);
        double ms = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        var err = A is null ? null : ProductError.Measure(A, B, c);
        AnsiConsole.MarkupLine($"A: {Markup.Escape(qa.Describe())}, {qa.BitsPerEntry:F4} bits/entry; B: float ({B.Rows}×{B.Cols})");
        AnsiConsole.MarkupLine($"Ĉ = ÂᵀB: {c.Rows}×{c.Cols} in {ms:F1} ms, {(qa.RunsOnKernels ? "on the GEMM kernels (packed codes)" : "from decoded columns")}"
            + (err is null ? " (no reference product: A is coded)" : FormattableString.Invariant($"; relative error {err.RelativeError:E3}, distortion {err.Distortion:E3}")));
        if (outPath is not null) { Npy.Write(outPath, c); AnsiConsole.MarkupLine($"[grey]wrote {Markup.Escape(outPath)}[/]"); }
        var o = new JsonObject
        {
            ["rows"] = c.Rows, ["cols"] = c.Cols, ["float_b"] = true, ["kernels"] = qa.RunsOnKernels,
            ["bits_per_entry_a"] = qa.BitsPerEntry, ["detail_a"] = qa.Describe(), ["ms"] = ms,
        };
        if (err is not null) { o["relative_error"] = err.RelativeError; o["distortion"] = err.Distortion; }
        CliOutput.WriteJson(json, o);
    }

    /// <summary>
    /// Prints one <c>warning:</c> line on stderr when side information dominates the rate, or when
    /// no configuration fitted the budget <paramref name="overBudget"/> (then the rate is above it).
    /// </summary>
    internal static void Warn(IReadOnlyCollection<QuantizedMatrix> codes, double? overBudget = null)
    {
        string? side = RateBudget.SideInformationWarning(codes);
        if (overBudget is { } b)
        {
            double rate = (double)codes.Sum(c => c.TotalBits) / codes.Sum(c => (long)c.Rows * c.Cols);
            Console.Error.WriteLine(FormattableString.Invariant(
                $"warning: no configuration fits --bits {b} (≤ {RateBudget.Limit(b)} bits/entry stored) for this shape; stored at {rate:F2} bits/entry{(side is null ? "" : "; " + side)}"));
        }
        else if (side is not null) Console.Error.WriteLine($"warning: {side}");
    }

    /// <summary>Codes A and B at the configuration <see cref="RateBudget"/> picks and measures the product.</summary>
    internal static (RdResult, DenseMatrix, QuantizedMatrix[]) BestAtRate(DenseMatrix A, DenseMatrix B, MatrixMethod m, double bits, ulong seed)
    {
        var (codes, _, within) = RateBudget.Encode(m, [A, B], bits, seed);
        Warn(codes, within ? null : bits);
        var r = RdHarness.Measure(A, B, codes[0], codes[1], m.Name, bits, m.Describe(codes[0]));
        return (r, ProductEstimator.Estimate(codes[0], codes[1]), codes);
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
