using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Gosset.Cli.Fuzzing;
using Gosset.Util;
using Spectre.Console;

namespace Gosset.Cli.Commands;

/// <summary>
/// <c>gosset fuzz</c>: a longer fuzz run over every file reader (in-process, through the code the
/// CLI runs), or, with <c>--hostile-set</c>, a fresh set of hostile files checked through the real
/// binary (exit 2, one line, under 5 s and 400 MB each).
/// </summary>
internal static class FuzzCommand
{
    public static Command Create()
    {
        var seconds = new Option<double>("--seconds") { Description = "How long to fuzz", DefaultValueFactory = _ => 60 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the case generator (same seed, same cases)", DefaultValueFactory = _ => 1UL };
        var json = new Option<string?>("--json") { Description = "Write the summary as JSON" };
        var findings = new Option<string>("--findings") { Description = "Folder for reproducers of findings", DefaultValueFactory = _ => "fuzz-findings" };
        var hostile = new Option<string?>("--hostile-set") { Description = "Instead: write a fresh hostile set into this folder and check each file through the gosset binary" };
        var cmd = new Command("fuzz", "Fuzz every file reader (npy, safetensors, .gq, llama2.c checkpoint and tokenizer, packed E8, .gqm, GGUF, HF config.json and tokenizer.json, SentencePiece tokenizer.model): typed error or correct result, bounded time and memory.")
            { seconds, seed, json, findings, hostile };
        cmd.SetAction(pr =>
        {
            string? jsonPath = pr.GetValue(json);
            RdCommand.CheckOutputDir(jsonPath);
            if (pr.GetValue(hostile) is { } dir) return RunHostileSet(dir, pr.GetValue(seed), jsonPath);
            double limit = pr.GetValue(seconds);
            if (!(limit > 0 && limit <= 86400)) throw new GossetException($"--seconds {limit} is out of range (0 to 86400).");
            return RunFuzz(limit, pr.GetValue(seed), pr.GetValue(findings)!, jsonPath);
        });
        return cmd;
    }

    private sealed class Stats
    {
        public long Cases, Accepted, Typed, Untyped, Crashes, Slow, Heavy;
        public double MaxSeconds;
        public long MaxAllocated;
        public string MaxSecondsCase = "", MaxAllocatedCase = "";
    }

    private static int RunFuzz(double limit, ulong seed, string findingsDir, string? jsonPath)
    {
        var readers = FuzzRunner.Readers;
        var stats = readers.ToDictionary(r => r.Name, _ => new Stats());
        var found = new List<JsonObject>();
        string scratch = Directory.CreateTempSubdirectory("gosset-fuzz-").FullName;
        var rng = new SplitMix64(seed);
        var clock = Stopwatch.StartNew();
        long n = 0;
        try
        {
            while (clock.Elapsed.TotalSeconds < limit)
            {
                var reader = readers[(int)(n % readers.Count)];
                ulong caseSeed = rng.NextUInt64();
                var crng = new SplitMix64(caseSeed);
                var c = (n / readers.Count) % 2 == 0 ? reader.Hostile(ref crng) : reader.Mutation(ref crng);
                var r = FuzzRunner.Run(reader, c, scratch);
                var s = stats[reader.Name];
                s.Cases++;
                switch (r.Outcome)
                {
                    case FuzzOutcome.Accepted: s.Accepted++; break;
                    case FuzzOutcome.TypedError: s.Typed++; break;
                    case FuzzOutcome.UntypedError: s.Untyped++; break;
                    default: s.Crashes++; break;
                }
                if (r.Seconds > FuzzResult.MaxSeconds) s.Slow++;
                if (r.AllocatedBytes > FuzzResult.MaxAllocated) s.Heavy++;
                if (r.Seconds > s.MaxSeconds) { s.MaxSeconds = r.Seconds; s.MaxSecondsCase = c.Kind; }
                if (r.AllocatedBytes > s.MaxAllocated) { s.MaxAllocated = r.AllocatedBytes; s.MaxAllocatedCase = c.Kind; }
                if (r.IsFinding)
                {
                    Directory.CreateDirectory(findingsDir);
                    string file = Path.Combine(findingsDir, $"{reader.Name}-{caseSeed:x16}{reader.Extension}");
                    File.WriteAllBytes(file, c.Bytes);
                    found.Add(new JsonObject
                    {
                        ["reader"] = reader.Name, ["kind"] = c.Kind, ["case_seed"] = caseSeed.ToString("x16", CultureInfo.InvariantCulture), ["arg"] = c.Arg,
                        ["outcome"] = r.Outcome.ToString(), ["seconds"] = r.Seconds, ["allocated_bytes"] = r.AllocatedBytes, ["message"] = r.Message, ["reproducer"] = file,
                    });
                }
                n++;
            }
        }
        finally { Directory.Delete(scratch, recursive: true); }

        var table = new Table().AddColumns("reader", "cases", "accepted", "typed errors", "untyped", "crashes", "> 2 s", "> 400 MB", "max s", "max MB");
        foreach (var (name, s) in stats)
            table.AddRow(name, $"{s.Cases}", $"{s.Accepted}", $"{s.Typed}", $"{s.Untyped}", $"{s.Crashes}", $"{s.Slow}", $"{s.Heavy}",
                $"{s.MaxSeconds:F3}", $"{s.MaxAllocated / 1048576.0:F1}");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"{n} cases in {clock.Elapsed.TotalSeconds:F0} s, seed {seed}: [bold]{found.Count}[/] findings" + (found.Count > 0 ? $" (reproducers in {Markup.Escape(findingsDir)})" : ""));
        var readersJson = new JsonObject();
        foreach (var (name, s) in stats)
            readersJson[name] = new JsonObject
            {
                ["cases"] = s.Cases, ["accepted"] = s.Accepted, ["typed_errors"] = s.Typed, ["untyped_errors"] = s.Untyped, ["crashes"] = s.Crashes,
                ["over_time"] = s.Slow, ["over_memory"] = s.Heavy, ["max_seconds"] = s.MaxSeconds, ["max_seconds_case"] = s.MaxSecondsCase,
                ["max_allocated_bytes"] = s.MaxAllocated, ["max_allocated_case"] = s.MaxAllocatedCase,
            };
        CliOutput.WriteJson(jsonPath, new JsonObject
        {
            ["seed"] = seed, ["seconds"] = clock.Elapsed.TotalSeconds, ["cases"] = n, ["findings"] = new JsonArray(found.ToArray()), ["readers"] = readersJson,
            ["limits"] = new JsonObject { ["seconds_per_case"] = FuzzResult.MaxSeconds, ["allocated_bytes_per_case"] = FuzzResult.MaxAllocated },
        });
        return found.Count == 0 ? 0 : 1;
    }

    private static int RunHostileSet(string dir, ulong seed, string? jsonPath)
    {
        var files = HostileSet.Write(dir, seed);
        var checks = files.Select(HostileSet.Check).ToList();
        var table = new Table().AddColumns("file", "in-process", "exit", "stderr lines", "s", "peak RSS MB", "problem");
        foreach (var c in checks)
            table.AddRow(Markup.Escape(Path.GetFileName(c.File.Path)), c.File.InProcess.ToString(), $"{c.ExitCode}", $"{c.StderrLines.Length}",
                $"{c.Seconds:F2}", $"{c.PeakRssBytes / 1048576.0:F0}", Markup.Escape(c.Problem ?? ""));
        AnsiConsole.Write(table);
        int bad = checks.Count(c => c.Problem != null);
        AnsiConsole.MarkupLine($"{checks.Count} hostile files, seed {seed}: [bold]{bad}[/] broke the contract; max {checks.Max(c => c.Seconds):F2} s, max peak RSS {checks.Max(c => c.PeakRssBytes) / 1048576.0:F0} MB");
        CliOutput.WriteJson(jsonPath, new JsonObject { ["seed"] = seed, ["files"] = checks.Count, ["problems"] = bad, ["checks"] = HostileSet.ToJson(checks) });
        return bad == 0 ? 0 : 1;
    }
}
