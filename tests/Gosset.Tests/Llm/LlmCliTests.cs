using System.Text.Json;
using Gosset.Tests.Support;

namespace Gosset.Tests.Llm;

[Collection("cli")] // the CLI writes to the process console
public sealed class LlmCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-llmcli-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);
    private string P(string name) => Path.Combine(_dir, name);

    private static string LastError = "";
    private static string LastOut = "";

    private static int Run(params string[] args)
    {
        (int code, LastOut, LastError) = CliRun.Run(args);
        return code;
    }

    private string SmallText()
    {
        string p = P("small.txt");
        File.WriteAllBytes(p, File.ReadAllBytes(Stories.ValText)[..6000]);
        return p;
    }

    [DataFact]
    public void EvalWritesTheDocumentedJsonFields()
    {
        Assert.Equal(0, Run("eval", "--model", Stories.ModelPath, "--text", SmallText(), "--ctx", "256", "--windows", "2",
            "--quant", "w4a4kv4", "--method", "int-rot", "--classifier", "source", "--json", P("e.json")));
        using var doc = JsonDocument.Parse(File.ReadAllText(P("e.json")));
        var r = doc.RootElement;
        foreach (var f in new[] { "nll", "ppl", "kl", "top1_agreement", "tokens", "bits_per_weight", "bits_per_activation", "kv_bytes_per_token", "quant" })
            Assert.True(r.TryGetProperty(f, out _), $"missing {f}");
        Assert.Equal(512, r.GetProperty("tokens").GetInt64());
        // Measured by this test (int-rot w4a4kv4, source classifier, 2 windows of 256 of the first 6000 bytes): KL 1.2584 with AVX-512, 1.3493
        // with DOTNET_EnableAVX512=0 or DOTNET_EnableAVX2=0, 1.3245 with DOTNET_EnableHWIntrinsic=0 — 4-bit activation and
        // KV rounding flips with the float summation order of each vector width; the window spans the three, 3 % beyond.
        Assert.InRange(r.GetProperty("kl").GetDouble(), 1.221, 1.390);
        Assert.Equal(Math.Exp(r.GetProperty("nll").GetDouble()), r.GetProperty("ppl").GetDouble(), 9);
    }

    [DataFact]
    public void GenerateGreedyMatchesGoldenText()
    {
        var g = Stories.Golden.GetProperty("greedy");
        Assert.Equal(0, Run("generate", "--model", Stories.ModelPath, "--prompt", "", "--steps", g.GetProperty("steps").GetInt32().ToString(), "--json", P("g.json")));
        using var doc = JsonDocument.Parse(File.ReadAllText(P("g.json")));
        Assert.Equal(g.GetProperty("text").GetString(), doc.RootElement.GetProperty("text").GetString());
        Assert.Contains("tok/s", LastError);
        // A float cache: K and V of every layer and position as float32.
        var c = Stories.Weights.Config;
        long positions = Math.Min(g.GetProperty("steps").GetInt32(), c.SeqLen);
        Assert.Equal(c.Layers * positions * c.KvDim * 2 * 4, doc.RootElement.GetProperty("kv_cache_bytes").GetInt64());
    }

    [DataFact]
    public void E8BoxRunsFromTheCliAndBadRecipesExitTwo()
    {
        Assert.Equal(0, Run("quantize-model", "--model", Stories.ModelPath, "--out", P("box.gqm"), "--quant", "w4a4", "--method", "e8-box"));
        Assert.Equal(0, Run("generate", "--model", P("box.gqm"), "--prompt", "Once", "--steps", "20", "--json", P("b.json")));
        Assert.Contains("tok/s", LastError);
        Assert.Contains("e8-box4", LastError);
        using (var doc = JsonDocument.Parse(File.ReadAllText(P("b.json"))))
            Assert.True(doc.RootElement.GetProperty("tokens_per_second").GetDouble() > 0);
        Assert.Equal(0, Run("eval", "--model", Stories.ModelPath, "--text", SmallText(), "--ctx", "256", "--windows", "1",
            "--quant", "w4", "--weights", "e8-box:4", "--json", P("e.json")));
        Assert.Equal(2, Run("eval", "--model", Stories.ModelPath, "--text", SmallText(), "--quant", "w4", "--keys", "e8-box:4"));
        Assert.Equal(2, Run("generate", "--model", Stories.ModelPath, "--quant", "w3", "--method", "e8-box"));
        Assert.Equal(2, Run("generate", "--model", Stories.ModelPath, "--quant", "w4", "--method", "e8-box", "--ldlq", "--calib", SmallText()));
    }

    [DataFact]
    public void QuantizeModelWritesAGqmThatEvalAndGenerateLoad()
    {
        string text = SmallText();
        Assert.Equal(0, Run("quantize-model", "--model", Stories.ModelPath, "--out", P("m.gqm"), "--quant", "w4", "--method", "e8-voronoi"));
        Assert.True(new FileInfo(P("m.gqm")).Length < new FileInfo(Stories.ModelPath).Length / 2);
        Assert.Equal(0, Run("eval", "--model", P("m.gqm"), "--reference", Stories.ModelPath, "--text", text, "--ctx", "256", "--windows", "1", "--json", P("q.json")));
        Assert.Equal(0, Run("eval", "--model", Stories.ModelPath, "--text", text, "--ctx", "256", "--windows", "1", "--quant", "w4", "--method", "e8-voronoi", "--json", P("d.json")));
        using var a = JsonDocument.Parse(File.ReadAllText(P("q.json")));
        using var b = JsonDocument.Parse(File.ReadAllText(P("d.json")));
        Assert.Equal(b.RootElement.GetProperty("nll").GetDouble(), a.RootElement.GetProperty("nll").GetDouble(), 9);
        Assert.Equal(b.RootElement.GetProperty("kl").GetDouble(), a.RootElement.GetProperty("kl").GetDouble(), 9);
        Assert.Equal(0, Run("generate", "--model", P("m.gqm"), "--tokenizer", Stories.TokenizerPath, "--prompt", "Once upon a time", "--steps", "20"));
        Assert.StartsWith("Once upon a time", LastOut);
    }

    [DataFact]
    public void GqmRunsAfterItsSourceFolderIsDeleted()
    {
        // A copy of the model and its tokenizer in a folder of their own, quantized, then deleted: the .gqm must carry everything.
        string src = P("src");
        Directory.CreateDirectory(src);
        File.Copy(Stories.ModelPath, Path.Combine(src, "model.bin"));
        File.Copy(Stories.TokenizerPath, Path.Combine(src, "tok512.bin"));
        Assert.Equal(0, Run("quantize-model", "--model", Path.Combine(src, "model.bin"), "--out", P("self.gqm"), "--quant", "w4", "--method", "e8-box"));
        Assert.Equal(0, Run("generate", "--model", Path.Combine(src, "model.bin"), "--quant", "w4", "--method", "e8-box", "--prompt", "Once upon a time", "--steps", "24"));
        string direct = LastOut;
        Directory.Delete(src, recursive: true);
        Assert.Equal(0, Run("generate", "--model", P("self.gqm"), "--prompt", "Once upon a time", "--steps", "24"));
        Assert.Equal(direct, LastOut);
        Assert.StartsWith("Once upon a time", LastOut);
        // KL needs the float model, named explicitly; without it eval says it was not measured.
        Assert.Equal(0, Run("eval", "--model", P("self.gqm"), "--text", SmallText(), "--ctx", "128", "--windows", "1", "--json", P("e.json")));
        using var e = JsonDocument.Parse(File.ReadAllText(P("e.json")));
        Assert.Equal(JsonValueKind.Null, e.RootElement.GetProperty("kl").ValueKind);
    }

    [DataFact]
    public void UserErrorsExitNonZeroWithOneLine()
    {
        string empty = P("empty.txt");
        File.WriteAllText(empty, "");
        string garbage = P("garbage.bin");
        File.WriteAllBytes(garbage, new byte[5000]);
        var cases = new[]
        {
            new[] { "eval", "--model", Stories.ModelPath, "--text", empty },
            new[] { "eval", "--model", Stories.ModelPath, "--text", SmallText(), "--ctx", "1024" },
            new[] { "eval", "--model", garbage, "--tokenizer", Stories.TokenizerPath, "--text", SmallText() },
            new[] { "eval", "--model", P("missing.bin"), "--text", SmallText() },
            new[] { "eval", "--model", Stories.ModelPath, "--text", SmallText(), "--quant", "w4z" },
            // eval calibrates on its own text after the scored windows; generate has no text to fall back on.
            new[] { "generate", "--model", Stories.ModelPath, "--prompt", "hi", "--quant", "w4", "--ldlq" },
            new[] { "generate", "--model", Stories.ModelPath, "--tokenizer", garbage, "--prompt", "hi" },
        };
        foreach (var args in cases)
        {
            Assert.NotEqual(0, Run(args));
            Assert.StartsWith("error: ", LastError);
            Assert.Single(LastError.Trim().Split('\n'));
        }
    }
}
