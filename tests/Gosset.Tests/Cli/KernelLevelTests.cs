using Gosset.Cli.Commands;
using Gosset.Kernels;

namespace Gosset.Tests.Cli;

/// <summary>
/// CI legs disable instruction sets with DOTNET_Enable* knobs and name what they expect in
/// GOSSET_EXPECT_LEVEL (the widest level allowed) and GOSSET_EXPECT_OFF (instruction sets that
/// must be off). This proves a leg ran the level it claims, independently of the runtime's own
/// report: the hardware's level is read from /proc/cpuinfo.
/// </summary>
public sealed class KernelLevelTests
{
    [Fact, Trait("Category", "Simd")]
    public void LevelIsWhatTheCiLegAskedFor()
    {
        var hardware = HardwareLevel();
        if (Environment.GetEnvironmentVariable("GOSSET_EXPECT_LEVEL") is { Length: > 0 } capText)
        {
            var cap = Enum.Parse<KernelIsa>(capText);
            var expected = hardware is { } h ? (KernelIsa)Math.Min((int)cap, (int)h) : cap;
            Assert.Equal(expected.ToString(), InfoCommand.KernelLevel);
        }
        else if (hardware is { } h)
        {
            // No knob: dispatch must use everything the CPU has.
            Assert.Equal(h.ToString(), InfoCommand.KernelLevel);
        }
        foreach (string name in (Environment.GetEnvironmentVariable("GOSSET_EXPECT_OFF") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries))
            Assert.False(InfoCommand.InstructionSets.Single(s => s.Name == name).On, $"{name} should be disabled in this leg");
    }

    /// <summary>The level the CPU offers according to the kernel's flags (x64 Linux only; null elsewhere).</summary>
    private static KernelIsa? HardwareLevel()
    {
        if (!OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64
            || !File.Exists("/proc/cpuinfo")) return null;
        var flags = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        if (flags is null) return null;
        // .NET keeps Vector512 unaccelerated on CPUs where 512-bit code throttles (Avx512F on, Vector512 off).
        bool throttled = System.Runtime.Intrinsics.X86.Avx512F.IsSupported && !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
        return flags.Contains("avx512f") && flags.Contains("avx512bw") && !throttled ? KernelIsa.Vector512
            : flags.Contains("avx2") && flags.Contains("fma") ? KernelIsa.Vector256
            : flags.Contains("sse4_1") ? KernelIsa.Vector128 : KernelIsa.Scalar;
    }
}
