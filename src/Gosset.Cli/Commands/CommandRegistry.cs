using System.CommandLine;

namespace Gosset.Cli.Commands;

/// <summary>Every subcommand of <c>gosset</c>, one factory per file in this folder.</summary>
internal static class CommandRegistry
{
    public static IEnumerable<Command> All()
    {
        // Each line registers one command (keep one per line: parallel work merges cleanly).
        yield return BenchCommand.Create();
        yield break;
    }
}
