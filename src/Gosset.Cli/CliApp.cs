using System.CommandLine;
using Gosset.Cli.Commands;

namespace Gosset.Cli;

/// <summary>The <c>gosset</c> command line: a thin layer over the library.</summary>
public static class CliApp
{
    /// <summary>Builds the root command with every subcommand.</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("Gosset: nested-lattice (E8) quantization of matrix products and LLMs.");
        foreach (var c in CommandRegistry.All()) root.Subcommands.Add(c);
        return root;
    }

    /// <summary>Runs the CLI; user errors print one line to stderr and return a non-zero code.</summary>
    public static int Run(string[] args)
    {
        // Tables must not wrap when the output goes to a file or a pipe.
        if (Console.IsOutputRedirected) Spectre.Console.AnsiConsole.Profile.Width = 200;
        var root = BuildRoot();
        var parse = root.Parse(args);
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (UserError(e) is { } msg)
        {
            Console.Error.WriteLine($"error: {msg}");
            return 2;
        }
    }

    internal static string? UserError(Exception e) => e switch
    {
        AggregateException { InnerExceptions.Count: > 0 } a => UserError(a.InnerExceptions[0]),
        GossetException g => g.Message,
        FileNotFoundException f => f.Message,
        DirectoryNotFoundException d => d.Message,
        UnauthorizedAccessException u => u.Message,
        ArgumentException a => a.Message,
        InvalidDataException i => i.Message,
        IOException io => io.Message,
        _ => null,
    };
}
