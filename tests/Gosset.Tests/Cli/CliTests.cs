using System.Text.Json;
using Gosset.Cli;
using Gosset.IO;
using Gosset.Matrix;
using Gosset.Tests.Matrix;
using Gosset.Tests.Support;

namespace Gosset.Tests.Cli;

[Collection("cli")] // the CLI writes to the process console
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    private static int Run(params string[] args)
    {
        (int code, _, LastError) = CliRun.Run(args);
        return code;
    }

    private static string LastError = "";

    [Fact]
    public void Rd_writes_the_documented_json_fields()
    {
        Assert.Equal(0, Run("rd", "--n", "256", "--a", "16", "--b", "12", "--rates", "3,4", "--methods", "e8,int-rot", "--json", P("rd.json")));
        using var doc = JsonDocument.Parse(File.ReadAllText(P("rd.json")));
        var rows = doc.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(4, rows.Count);
        foreach (var r in rows)
            foreach (var f in new[] { "method", "q", "k", "group", "rotation", "kernels", "bits_per_entry", "within_budget", "distortion", "gamma", "gap_db", "relative_error", "mse_a", "mse_b" })
                Assert.True(r.TryGetProperty(f, out _), $"missing {f}");
        var e8 = rows.First(r => r.GetProperty("method").GetString() == "e8" && r.GetProperty("target_rate").GetDouble() == 4);
        Assert.Equal(JsonValueKind.Number, e8.GetProperty("q").ValueKind);
        // Nominal rate: 4-bit codes of 256-entry columns store 34/7 = 4.857 bits/entry (measured), over the --bits rule's 4.25.
        Assert.InRange(e8.GetProperty("bits_per_entry").GetDouble(), 4.83, 4.88);
        Assert.False(e8.GetProperty("within_budget").GetBoolean());
        Assert.Contains("warning: e8 at 4: stored 4.86 bits/entry, above the --bits rule's 4.25", LastError);
        Assert.True(e8.GetProperty("kernels").GetBoolean());
        Assert.False(rows.First(r => r.GetProperty("method").GetString() == "int-rot").GetProperty("kernels").GetBoolean());
    }

    [Fact]
    public void Rd_budget_follows_the_bits_rule_as_matmul_does()
    {
        Npy.Write(P("a.npy"), E8MatrixQuantizerTests.Gaussian(256, 16, 1));
        Npy.Write(P("b.npy"), E8MatrixQuantizerTests.Gaussian(256, 12, 2));
        Assert.Equal(0, Run("rd", "--source", P("a.npy") + "," + P("b.npy"), "--rates", "3,4", "--budget", "--methods", "e8,int-rot", "--json", P("rd.json")));
        using var doc = JsonDocument.Parse(File.ReadAllText(P("rd.json")));
        Assert.Equal("budget", doc.RootElement.GetProperty("rates").GetString());
        var rows = doc.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(4, rows.Count);
        foreach (var r in rows)
        {
            double bits = r.GetProperty("bits_per_entry").GetDouble(), target = r.GetProperty("target_rate").GetDouble();
            string method = r.GetProperty("method").GetString()!;
            // the rule: stored ≤ R + 0.25 (every configuration here fits: e8 takes a smaller code than the nominal 4.857)
            Assert.True(bits <= target + Gosset.Harness.RateBudget.Allowance, $"{method} at {target}: {bits}");
            Assert.True(r.GetProperty("within_budget").GetBoolean());
            // and the same configuration as matmul --bits on the same matrices
            Assert.Equal(0, Run("matmul", "--a", P("a.npy"), "--b", P("b.npy"), "--bits", target.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--method", method, "--out", P("c.npy"), "--json", P("m.json")));
            using var m = JsonDocument.Parse(File.ReadAllText(P("m.json")));
            Assert.Equal(m.RootElement.GetProperty("bits_per_entry").GetDouble(), bits, 12);
        }
    }

    [Fact]
    public void Matmul_estimates_the_product_and_writes_it()
    {
        Npy.Write(P("a.npy"), E8MatrixQuantizerTests.Gaussian(512, 20, 1));
        Npy.Write(P("b.npy"), E8MatrixQuantizerTests.Gaussian(512, 10, 2));
        Assert.Equal(0, Run("matmul", "--a", P("a.npy"), "--b", P("b.npy"), "--bits", "4", "--out", P("c.npy"), "--json", P("m.json")));
        var c = Npy.Read(P("c.npy"));
        Assert.Equal((20, 10), (c.Rows, c.Cols));
        using var doc = JsonDocument.Parse(File.ReadAllText(P("m.json")));
        var root = doc.RootElement;
        Assert.True(root.GetProperty("bits_per_entry").GetDouble() <= 4 + Gosset.Harness.RateBudget.Allowance);
        foreach (var f in new[] { "bits_per_entry", "relative_error", "distortion", "gamma", "gap_db" }) Assert.True(root.TryGetProperty(f, out _));
    }

    [Fact]
    public void Matmul_with_a_float_b_feeds_a_gq_to_the_kernels()
    {
        var b = E8MatrixQuantizerTests.Gaussian(512, 6, 2);
        Npy.Write(P("a.npy"), E8MatrixQuantizerTests.Gaussian(512, 20, 1));
        Npy.Write(P("b.npy"), b);
        Assert.Equal(0, Run("quantize", "--in", P("a.npy"), "--bits", "4", "--out", P("a.gq")));
        Assert.Equal(0, Run("matmul", "--a", P("a.gq"), "--b", P("b.npy"), "--float-b", "--out", P("c.npy"), "--json", P("m.json")));
        using (var doc = JsonDocument.Parse(File.ReadAllText(P("m.json"))))
        {
            Assert.True(doc.RootElement.GetProperty("kernels").GetBoolean());
            Assert.True(doc.RootElement.GetProperty("float_b").GetBoolean());
        }
        // The kernels' product equals the decoded .gq times B (double-precision reference).
        var c = Npy.Read(P("c.npy"));
        var reference = ProductEstimator.ExactProduct(GqFormat.Load(P("a.gq")).Dequantize(), b);
        for (int j = 0; j < 6; j++)
            for (int i = 0; i < 20; i++) Assert.Equal(reference[j * 20 + i], c[i, j], 1e-3);
        // A raw A is coded at the budget and the error against the exact product reported; a coded B is refused.
        Assert.Equal(0, Run("matmul", "--a", P("a.npy"), "--b", P("b.npy"), "--float-b", "--bits", "4", "--out", P("c2.npy"), "--json", P("m2.json")));
        double measured = ProductError.Measure(Npy.Read(P("a.npy")), b, Npy.Read(P("c2.npy"))).RelativeError;
        using (var doc = JsonDocument.Parse(File.ReadAllText(P("m2.json"))))
            Assert.Equal(measured, doc.RootElement.GetProperty("relative_error").GetDouble(), 9);
        Assert.Equal(2, Run("matmul", "--a", P("a.gq"), "--b", P("a.gq"), "--float-b"));
        Assert.Contains("--float-b keeps B in float", LastError);
    }

    [Fact]
    public void Quantize_dequantize_round_trip()
    {
        var x = E8MatrixQuantizerTests.Gaussian(300, 5, 3);
        Npy.Write(P("x.npy"), x);
        Assert.Equal(0, Run("quantize", "--in", P("x.npy"), "--bits", "5", "--out", P("x.gq"), "--json", P("q.json")));
        Assert.Equal(0, Run("dequantize", "--in", P("x.gq"), "--out", P("y.npy")));
        var y = Npy.Read(P("y.npy"));
        Assert.InRange(ProductError.NormalizedMse(x, y), 0.002617, 0.002779); // measured 0.002698 (300×5, 5 bits), ±3 %
        using var doc = JsonDocument.Parse(File.ReadAllText(P("q.json")));
        Assert.Equal(new FileInfo(P("x.gq")).Length, doc.RootElement.GetProperty("bytes").GetInt64());
    }

    [Fact]
    public void Quantize_reads_a_named_safetensors_tensor_along_rows()
    {
        var w = E8MatrixQuantizerTests.Gaussian(24, 40, 9);   // stored as [24, 40]
        SafeTensors.Write(P("m.safetensors"), [new("layer.weight", w), new("other", E8MatrixQuantizerTests.Gaussian(3, 3, 1))]);
        Assert.Equal(0, Run("quantize", "--in", P("m.safetensors") + ":layer.weight", "--bits", "6", "--transpose", "--out", P("w.gq"), "--json", P("w.json")));
        var q = GqFormat.Load(P("w.gq"));
        Assert.Equal((40, 24), (q.Rows, q.Cols)); // --transpose codes the 24 rows (length 40)
        Assert.NotEqual(0, Run("quantize", "--in", P("m.safetensors"), "--bits", "6", "--out", P("x.gq")));
        Assert.Contains("layer.weight", LastError);
        Assert.NotEqual(0, Run("quantize", "--in", P("m.safetensors") + ":missing", "--bits", "6", "--out", P("x.gq")));
        Assert.False(File.Exists(P("x.gq")));
    }

    [Fact]
    public void Bad_inputs_fail_with_one_line_and_write_nothing()
    {
        var good = E8MatrixQuantizerTests.Gaussian(64, 4, 1);
        Npy.Write(P("good.npy"), good);
        var bad = E8MatrixQuantizerTests.Gaussian(64, 4, 1);
        bad[5, 2] = float.NaN;
        Npy.Write(P("nan.npy"), bad);
        Npy.Write(P("short.npy"), E8MatrixQuantizerTests.Gaussian(32, 4, 1));
        File.WriteAllBytes(P("corrupt.gq"), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        File.WriteAllBytes(P("trunc.npy"), File.ReadAllBytes(P("good.npy"))[..100]);

        void Fails(string output, params string[] args)
        {
            int code = Run(args);
            Assert.Equal(CliApp.UserErrorCode, code);
            Assert.Single(LastError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("error: ", LastError);
            Assert.False(File.Exists(output), $"{output} must not be written");
            Assert.DoesNotContain("   at ", LastError); // no stack trace
            Assert.True(Directory.GetFiles(_dir, "*.tmp").Length == 0 && Directory.GetFiles(_dir, ".*").Length == 0, "no temporary files left");
        }

        Fails(P("o1.npy"), "matmul", "--a", P("nan.npy"), "--b", P("good.npy"), "--bits", "4", "--out", P("o1.npy"));
        Assert.Contains("NaN", LastError);
        Fails(P("o2.npy"), "matmul", "--a", P("short.npy"), "--b", P("good.npy"), "--bits", "4", "--out", P("o2.npy"));
        Assert.Contains("rows", LastError);
        Fails(P("o3.npy"), "matmul", "--a", P("good.npy"), "--b", P("good.npy"), "--bits", "4", "--method", "nope", "--out", P("o3.npy"));
        Assert.Contains("Unknown method", LastError);
        Fails(P("o4.npy"), "matmul", "--a", P("good.npy"), "--b", P("good.npy"), "--bits", "12", "--out", P("o4.npy"));
        Fails(P("o5.npy"), "dequantize", "--in", P("corrupt.gq"), "--out", P("o5.npy"));
        Fails(P("o6.npy"), "dequantize", "--in", P("missing.gq"), "--out", P("o6.npy"));
        Fails(P("o7.gq"), "quantize", "--in", P("trunc.npy"), "--bits", "4", "--out", P("o7.gq"));
        Fails(P("o8.json"), "rd", "--rates", "0.1", "--json", P("o8.json"));
        Fails(P("o9.json"), "rd", "--n", "0", "--json", P("o9.json"));
        Fails(P("o10.gq"), "quantize", "--in", P("good.npy"), "--bits", "4", "--out", P("o10.gq"), "--method", "int", "--group", "0");
    }
}
