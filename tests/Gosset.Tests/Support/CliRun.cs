using Gosset.Cli;

namespace Gosset.Tests.Support;

/// <summary>Runs the CLI in-process with stdout and stderr captured (callers sit in the "cli" collection: the console is process-wide).</summary>
internal static class CliRun
{
    /// <summary>Exit code, stdout and stderr of <c>gosset <paramref name="args"/></c>.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (o, e) = (Console.Out, Console.Error);
        var (so, se) = (new StringWriter(), new StringWriter());
        Console.SetOut(so); Console.SetError(se);
        try { return (CliApp.Run(args), so.ToString(), se.ToString()); }
        finally { Console.SetOut(o); Console.SetError(e); }
    }
}
