using System.CommandLine;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text.Json.Nodes;
using Gosset.Kernels;

namespace Gosset.Cli.Commands;

/// <summary><c>gosset info</c>: version, runtime and the kernel level this process runs (CI prints it per leg).</summary>
internal static class InfoCommand
{
    /// <summary>Kernel levels from narrowest to widest, as <see cref="KernelLevel"/> names them.</summary>
    public static readonly IReadOnlyList<string> Levels = ["scalar", "vector128", "avx2", "avx-vnni", "avx512"];

    /// <summary>
    /// The instruction-set level of the E8 kernels in this process, after the DOTNET_Enable* knobs
    /// (<see cref="KernelSupport.Level"/>: avx512, avx-vnni, avx2, vector128 or scalar).
    /// </summary>
    public static string KernelLevel => KernelSupport.Level;

    /// <summary>Instruction sets the runtime reports as usable, after the DOTNET_Enable* knobs.</summary>
    public static IReadOnlyList<(string Name, bool On)> InstructionSets =>
    [
        ("avx512f", Avx512F.IsSupported), ("avx512bw", Avx512BW.IsSupported), ("avx2", Avx2.IsSupported),
        ("fma", Fma.IsSupported), ("avxvnni", AvxVnni.IsSupported), ("sse4.1", Sse41.IsSupported),
    ];

    public static Command Create()
    {
        var json = new Option<string?>("--json") { Description = "Write the same facts as JSON" };
        var cmd = new Command("info", "Print the version, the runtime and the kernel level (SIMD width) this process uses.") { json };
        cmd.SetAction(pr =>
        {
            string version = typeof(InfoCommand).Assembly.GetName().Version?.ToString(3) ?? "?";
            Console.WriteLine($"gosset {version}");
            Console.WriteLine($"runtime: {RuntimeInformation.FrameworkDescription} {RuntimeInformation.ProcessArchitecture}");
            Console.WriteLine($"kernel level: {KernelLevel}");
            Console.WriteLine($"e8 kernel: {Gosset.Kernels.E8Kernel.Best.Name} (on AVX-512 the faster of avx512 / avx2, timed at start-up; GOSSET_E8_KERNEL overrides)");
            Console.WriteLine("instruction sets: " + string.Join(' ', InstructionSets.Select(s => $"{s.Name}={(s.On ? "on" : "off")}")));
            var isa = new JsonObject();
            foreach (var (name, on) in InstructionSets) isa[name] = on;
            CliOutput.WriteJson(pr.GetValue(json), new JsonObject
            {
                ["version"] = version, ["runtime"] = RuntimeInformation.FrameworkDescription,
                ["kernel_level"] = KernelLevel, ["e8_kernel"] = Gosset.Kernels.E8Kernel.Best.Name, ["instruction_sets"] = isa,
            });
            return 0;
        });
        return cmd;
    }
}
