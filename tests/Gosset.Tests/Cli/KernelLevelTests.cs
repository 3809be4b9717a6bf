using Gosset.Cli.Commands;

namespace Gosset.Tests.Cli;

/// <summary>
/// CI legs turn instruction sets off with DOTNET_Enable* knobs and say so in GOSSET_EXPECT_OFF
/// (instruction sets that must be off) and GOSSET_EXPECT_LEVEL (the widest level allowed). The
/// expected level is derived independently of the runtime: the CPU's flags from /proc/cpuinfo,
/// minus what the leg turned off, through the kernels' level rule.
/// </summary>
public sealed class KernelLevelTests
{
    [Fact, Trait("Category", "Simd")]
    public void LevelIsWhatTheCiLegAskedFor()
    {
        var off = (Environment.GetEnvironmentVariable("GOSSET_EXPECT_OFF") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        foreach (string name in off)
            Assert.False(InfoCommand.InstructionSets.Single(s => s.Name == name).On, $"{name} should be disabled in this leg");
        string level = InfoCommand.KernelLevel;
        if (Environment.GetEnvironmentVariable("GOSSET_EXPECT_LEVEL") is { Length: > 0 } cap)
            Assert.True(Rank(level) <= Rank(cap), $"level {level} is above the leg's cap {cap}");
        if (ExpectedFromCpuInfo(off) is { } expected)
            Assert.Equal(expected, level);
    }

    private static int Rank(string level)
    {
        int r = InfoCommand.Levels.ToList().IndexOf(level);
        Assert.True(r >= 0, $"unknown level {level}");
        return r;
    }

    /// <summary>The level the CPU offers with the leg's instruction sets removed (x64 Linux only; null elsewhere).</summary>
    private static string? ExpectedFromCpuInfo(HashSet<string> off)
    {
        if (!OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64
            || !File.Exists("/proc/cpuinfo")) return null;
        var flags = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        if (flags is null) return null;
        bool Has(string cpuFlag, string name) => flags.Contains(cpuFlag) && !off.Contains(name);
        // .NET keeps Vector512 unaccelerated on CPUs where 512-bit code throttles (Avx512F on, Vector512 off).
        bool throttled = System.Runtime.Intrinsics.X86.Avx512F.IsSupported && !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
        bool avx2 = Has("avx2", "avx2") && Has("fma", "fma");
        if (avx2 && Has("avx512f", "avx512f") && Has("avx512bw", "avx512bw") && !throttled) return "avx512";
        if (avx2) return Has("avx_vnni", "avxvnni") ? "avx-vnni" : "avx2";
        return Has("sse4_1", "sse4.1") ? "vector128" : "scalar";
    }
}
