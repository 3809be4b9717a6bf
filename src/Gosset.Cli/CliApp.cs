using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Gosset.Cli.Commands;

namespace Gosset.Cli;

/// <summary>The <c>gosset</c> command line: a thin layer over the library.</summary>
public static class CliApp
{
    /// <summary>Exit code of every user error (bad option, bad input, unreadable file).</summary>
    public const int UserErrorCode = 2;

    /// <summary>Exit code of an unexpected exception (a bug); set GOSSET_DEBUG=1 to see its stack trace.</summary>
    public const int InternalErrorCode = 70;

    /// <summary>Builds the root command with every subcommand.</summary>
    public static Command BuildRoot()
    {
        // A named command rather than RootCommand, whose name is the host's file name
        // ("Gosset.Cli" under `dotnet run`, "testhost" in tests): help always says `gosset`.
        var root = new Command("gosset", "Gosset: nested-lattice (E8) quantization of matrix products and LLMs.")
        {
            new HelpOption(),
            new VersionOption(),
        };
        foreach (var c in CommandRegistry.All()) root.Subcommands.Add(c);
        return root;
    }

    /// <summary>
    /// Runs the CLI. Every user error, a parse error included, prints one <c>error: …</c> line to
    /// stderr and returns <see cref="UserErrorCode"/>; <c>--help</c> and <c>--version</c> return 0.
    /// </summary>
    public static int Run(string[] args)
    {
        // Tables must not wrap when the output goes to a file or a pipe.
        if (Console.IsOutputRedirected) Spectre.Console.AnsiConsole.Profile.Width = 200;
        var parse = BuildRoot().Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            // One line: the first error, with a pointer to the help instead of the help itself.
            // "Required command was not provided" comes with a more precise error when a word was not recognised.
            string msg = parse.Errors.OrderBy(e => e.Message.StartsWith("Required command", StringComparison.Ordinal) ? 1 : 0)
                .Select(e => e.Message).FirstOrDefault() ?? "invalid command line";
            string name = parse.CommandResult.Command.Name;
            string cmd = name == "gosset" ? name : "gosset " + name;
            Console.Error.WriteLine($"error: {OneLine(msg)} (see `{cmd} --help`)");
            return UserErrorCode;
        }
        try
        {
            if (parse.Action is not HelpAction) CliPaths.CheckOutputs(parse);
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (UserError(e) is { } msg)
        {
            Console.Out.Flush();
            Console.Error.WriteLine($"error: {OneLine(msg)}");
            return UserErrorCode;
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("GOSSET_DEBUG") != "1")
        {
            // A bug, not a user error: still one line (GOSSET_DEBUG=1 shows the stack trace), and
            // a distinct code so that tests and scripts never mistake it for a rejected input.
            Console.Out.Flush();
            Console.Error.WriteLine($"error: internal error ({e.GetType().Name}): {OneLine(e.Message)}");
            return InternalErrorCode;
        }
    }

    private static string OneLine(string s) => string.Join(' ', s.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

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
