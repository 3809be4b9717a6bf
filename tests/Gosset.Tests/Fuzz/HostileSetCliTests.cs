using Gosset.Cli.Fuzzing;

namespace Gosset.Tests.Fuzz;

/// <summary>
/// A fresh hostile set (new seed each run) through the real gosset binary in a child process: one
/// file per reader here (the full set is `gosset fuzz --hostile-set DIR`, see docs/robustness.md).
/// </summary>
[Collection("Fuzz")]
public sealed class HostileSetCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-hostile-set-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Hostile_files_through_the_binary_exit_2_with_one_line_quickly_and_small()
    {
        ulong seed = (ulong)Environment.TickCount64;
        var files = HostileSet.Write(_dir, seed);
        Assert.Equal(FuzzRunner.Readers.Count - 1, files.Select(f => f.Reader).Distinct().Count()); // all but the bare packed matrix
        // the structured set must be mostly refused, or it tests nothing
        int typed = files.Count(f => f.InProcess == FuzzOutcome.TypedError);
        Assert.True(typed >= files.Count * 2 / 3, $"seed {seed}: only {typed} of {files.Count} refused in-process");
        var pick = files.Where(f => f.InProcess == FuzzOutcome.TypedError).GroupBy(f => f.Reader).Select(g => g.First()).ToList();
        foreach (var f in pick)
        {
            var c = HostileSet.Check(f);
            Assert.True(c.Problem == null, $"seed {seed}, {Path.GetFileName(f.Path)}: {c.Problem}; stderr: {string.Join(" | ", c.StderrLines)}");
            Assert.Equal(2, c.ExitCode);
            if (OperatingSystem.IsLinux()) Assert.True(c.PeakRssBytes > 0, "peak RSS was not measured");
        }
    }
}
