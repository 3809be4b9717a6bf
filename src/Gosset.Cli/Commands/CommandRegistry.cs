using System.CommandLine;

namespace Gosset.Cli.Commands;

/// <summary>Every subcommand of <c>gosset</c>, one factory per file in this folder.</summary>
internal static class CommandRegistry
{
    public static IEnumerable<Command> All()
    {
        // Each line registers one command (keep one per line: parallel work merges cleanly).
        yield return DemoCommand.Create();
        yield return RdCommand.Create();
        yield return MatmulCommand.Create();
        yield return QuantizeCommand.Create();
        yield return QuantizeCommand.CreateDequantize();
        yield return RobustCommand.Create();
        yield return ScalesCommand.Create();
        yield return GenerateCommand.Create();
        yield return EvalCommand.Create();
        yield return QuantizeModelCommand.Create();
        yield return SynthModelCommand.Create();
        yield return LlmSweepCommand.Create();
        yield return BenchCommand.Create();
        yield return ExportGgufCommand.Create();
        yield return BenchModelCommand.Create();
        yield return BenchModelCommand.CreateWorker();
        yield return BenchModelCommand.CreateQuality();
        yield return InfoCommand.Create();
        yield return FuzzCommand.Create();
    }
}
