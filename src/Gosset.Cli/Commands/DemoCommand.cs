using System.CommandLine;
using Spectre.Console;

namespace Gosset.Cli.Commands;

/// <summary><c>gosset demo</c>: the README's main job, a rate–distortion run on Gaussian matrices.</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var plot = new Option<string>("--plot") { Description = "PNG to write", DefaultValueFactory = _ => "gosset-demo.png" };
        var json = new Option<string?>("--json") { Description = "Write the results as JSON" };
        var cmd = new Command("demo", "Rate–distortion of E8 vs INT baselines on iid Gaussian matrices (n = 2048, a = b = 128), with Γ(R); writes a PNG.") { plot, json };
        cmd.SetAction(pr =>
        {
            AnsiConsole.MarkupLine("[bold]Gosset demo[/]: A, B ∈ ℝ^{2048×128} iid N(0,1), encoded independently; D = ‖AᵀB − Ĉ‖²·n/(‖A‖²‖B‖²) against Γ(R).");
            RdCommand.Run(new RdCommand.RdSpec("gaussian", 2048, 128, 128, [1, 2, 3, 4, 5, 6, 7, 8], "e8,int,int-rot,int-clip-rot", 1),
                pr.GetValue(plot), pr.GetValue(json));
            return 0;
        });
        return cmd;
    }
}
