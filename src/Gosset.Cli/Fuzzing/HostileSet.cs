using System.Diagnostics;
using System.Text.Json.Nodes;
using Gosset.Util;

namespace Gosset.Cli.Fuzzing;

/// <summary>One hostile file of a set and the CLI command that reads it.</summary>
/// <param name="Reader">Reader name.</param>
/// <param name="Field">The header field attacked.</param>
/// <param name="Path">The file.</param>
/// <param name="Args">gosset arguments that read it (output paths inside the set's folder).</param>
/// <param name="InProcess">What the reader did with it in this process.</param>
internal sealed record HostileFile(string Reader, string Field, string Path, string[] Args, FuzzOutcome InProcess);

/// <summary>What the real CLI binary did with one hostile file.</summary>
internal sealed record CliCheck(HostileFile File, int ExitCode, string[] StderrLines, double Seconds, long PeakRssBytes)
{
    /// <summary>Wall-clock limit per file.</summary>
    public const double MaxSeconds = 5.0;
    /// <summary>Peak resident set limit per file.</summary>
    public const long MaxRss = 400L << 20;

    /// <summary>
    /// Why the run breaks the contract, or null: a refused file must exit 2 with exactly one
    /// <c>error:</c> line; an accepted one exits 0 or 2 (a later, unrelated check may refuse it); always
    /// under 5 s and 400 MB resident.
    /// </summary>
    public string? Problem
    {
        get
        {
            if (Seconds > MaxSeconds) return $"took {Seconds:F1} s";
            if (PeakRssBytes > MaxRss) return $"peak RSS {PeakRssBytes >> 20} MB";
            if (ExitCode == 2) return StderrLines.Length == 1 && StderrLines[0].StartsWith("error: ", StringComparison.Ordinal) ? null : $"exit 2 with {StderrLines.Length} stderr lines";
            if (ExitCode == 0 && File.InProcess == FuzzOutcome.Accepted) return null;
            return $"exit {ExitCode} (in-process: {File.InProcess})";
        }
    }
}

/// <summary>
/// A fresh set of hostile files (one per reader and header field, valid checksums) and the check of
/// each through the real <c>gosset</c> binary in a child process.
/// </summary>
internal static class HostileSet
{
    /// <summary>Writes one hostile file per reader and field into <paramref name="dir"/>, with the command that reads it.</summary>
    public static List<HostileFile> Write(string dir, ulong seed)
    {
        Directory.CreateDirectory(dir);
        var files = new List<HostileFile>();
        var rng = new SplitMix64(seed);
        string scratch = Directory.CreateTempSubdirectory("gosset-hostile-").FullName;
        try
        {
            // a valid model and tokenizer that hostile tokenizers / models are paired with
            var tokFuzz = new TokenizerFuzz();
            byte[] tok = tokFuzz.Valid(ref rng);
            string tokPath = Path.Combine(dir, "valid-tokenizer.bin");
            File.WriteAllBytes(tokPath, tok);
            foreach (var reader in FuzzRunner.Readers)
            {
                if (reader is PackedE8Fuzz) continue; // no CLI command reads a bare packed matrix (containers do)
                foreach (string field in reader.Fields)
                {
                    if (field == "vocab_arg") continue; // an argument (the model's vocabulary), not a file field
                    var c = reader.Hostile(ref rng, field);
                    string name = $"{reader.Name}-{field}{reader.Extension}";
                    string path = Path.Combine(dir, name);
                    File.WriteAllBytes(path, c.Bytes);
                    string outBase = Path.Combine(dir, "out-" + Path.GetFileNameWithoutExtension(name));
                    if (reader is HfConfigFuzz)
                    {
                        path = Path.Combine(dir, $"{reader.Name}-{field}");
                        HfConfigFuzz.WriteFolder(path, c.Bytes);
                    }
                    string[] args = reader switch
                    {
                        HfConfigFuzz => ["generate", "--model", path, "--prompt", "a", "--steps", "2"],
                        NpyFuzz or SafeTensorsFuzz => ["quantize", "--in", path, "--bits", "4", "--out", outBase + ".gq"],
                        GqFuzz => ["dequantize", "--in", path, "--out", outBase + ".npy"],
                        Llama2cFuzz => ["generate", "--model", path, "--tokenizer", tokPath, "--prompt", "a", "--steps", "2"],
                        GqmFuzz or GgufFuzz => ["generate", "--model", path, "--prompt", "a", "--steps", "2"],
                        // 4 steps: SentencePiece encodes "a" as BOS, "▁", "a"
                        _ => ["generate", "--model", ModelFor(dir, c.Arg, ref rng), "--tokenizer", path, "--prompt", "a", "--steps", "4"],
                    };
                    var inProcess = FuzzRunner.Run(reader, c, scratch).Outcome;
                    files.Add(new HostileFile(reader.Name, field, path, args, inProcess));
                }
            }
        }
        finally { Directory.Delete(scratch, recursive: true); }
        return files;
    }

    // a valid llama2.c model with the vocabulary size the hostile tokenizer was made for
    private static string ModelFor(string dir, int vocab, ref SplitMix64 rng)
    {
        string path = Path.Combine(dir, $"valid-model-{vocab}.bin");
        if (File.Exists(path)) return path;
        var c = new Llm.Loading.LlamaConfig(16, 24, 1, 2, 2, vocab, 16, true);
        var w = new Llm.Loading.LlamaWeights(c);
        var r = rng;
        void Fill(float[] a) { for (int i = 0; i < a.Length; i++) a[i] = 0.1f * (float)Rotations.PortableNormal.Next(ref r); }
        Fill(w.TokenEmbedding); Fill(w.RmsFinal);
        foreach (var set in new[] { w.RmsAtt, w.Wq, w.Wk, w.Wv, w.Wo, w.RmsFfn, w.W1, w.W2, w.W3 }) foreach (var a in set) Fill(a);
        rng = r;
        Llm.Loading.Llama2cLoader.SaveV1(w, path);
        return path;
    }

    /// <summary>How to start this CLI: its apphost next to the assembly, or the dotnet host with the assembly.</summary>
    public static (string FileName, string[] Prefix) Binary()
    {
        string dll = typeof(CliApp).Assembly.Location;
        string apphost = Path.Combine(Path.GetDirectoryName(dll)!, Path.GetFileNameWithoutExtension(dll) + (OperatingSystem.IsWindows() ? ".exe" : ""));
        if (File.Exists(apphost)) return (apphost, []);
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        return (host, [dll]);
    }

    /// <summary>
    /// Runs the real CLI binary on one file: exit code, stderr lines, wall time, and the child's
    /// peak RSS (VmHWM from /proc, sampled every few milliseconds; 0 where /proc is missing). The
    /// child's GC heap is capped at 400 MB as well, so an allocation beyond it fails loudly.
    /// </summary>
    public static CliCheck Check(HostileFile f)
    {
        var (exe, prefix) = Binary();
        var psi = new ProcessStartInfo(exe) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in prefix.Concat(f.Args)) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_GCHeapHardLimit"] = "0x19000000"; // 400 MB
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new GossetException($"cannot start {exe}");
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        long peak = 0;
        string status = $"/proc/{p.Id}/status";
        while (!p.WaitForExit(5))
        {
            peak = Math.Max(peak, ReadHwm(status));
            if (sw.Elapsed.TotalSeconds > 60) { p.Kill(entireProcessTree: true); break; }
        }
        p.WaitForExit();
        double seconds = sw.Elapsed.TotalSeconds;
        _ = stdout.Result;
        string[] lines = stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return new CliCheck(f, p.ExitCode, lines, seconds, peak);
    }

    private static long ReadHwm(string status)
    {
        try
        {
            foreach (string line in File.ReadLines(status))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 0;
    }

    /// <summary>The checks as JSON rows.</summary>
    public static JsonArray ToJson(IEnumerable<CliCheck> checks)
    {
        var a = new JsonArray();
        foreach (var c in checks)
            a.Add(new JsonObject
            {
                ["reader"] = c.File.Reader, ["field"] = c.File.Field, ["file"] = System.IO.Path.GetFileName(c.File.Path),
                ["in_process"] = c.File.InProcess.ToString(), ["exit"] = c.ExitCode, ["stderr_lines"] = c.StderrLines.Length,
                ["seconds"] = Math.Round(c.Seconds, 3), ["peak_rss_mb"] = Math.Round(c.PeakRssBytes / 1048576.0, 1), ["problem"] = c.Problem,
            });
        return a;
    }
}
