namespace Gosset.Peer;

/// <summary>llama.cpp's GEMV times for one shape, measured in one round-robin loop with Gosset's kernels.</summary>
/// <param name="Ms">Minimum ms per llama.cpp type, keyed "{type}_ms" (f32_ms, q4_0_ms, q4_K_ms, iq4_xs_ms, iq4_nl_ms, q8_0_ms, q2_K_ms, q3_K_ms).</param>
/// <param name="GossetMs">Minimum ms of the Gosset kernels timed in the same loop, keyed "{name}_ms".</param>
/// <param name="Layouts">Buffer type each llama.cpp weight lived in ("CPU_REPACK" = interleaved rows, as llama.cpp uses by default; "CPU" = plain).</param>
/// <param name="Ggml">ggml version and the libggml-cpu build that LLamaSharp loaded.</param>
public sealed record PeerGemvRow(IReadOnlyDictionary<string, double> Ms, IReadOnlyDictionary<string, double> GossetMs,
    IReadOnlyDictionary<string, string> Layouts, string Ggml);

/// <summary>Interleaves llama.cpp's ggml <c>mul_mat</c> with Gosset's GEMV kernels on one shape.</summary>
public static class PeerGemvBench
{
    /// <summary>
    /// Times every llama.cpp type of <see cref="LlamaCppGemv.DefaultTypes"/> and each Gosset action, one run of each
    /// per repetition in turn (after a warm-up), and keeps the minimum.
    /// </summary>
    public static PeerGemvRow Measure(int rows, int cols, int batch, int threads, int reps, IReadOnlyList<(string Name, Action Run)> gosset)
    {
        ArgumentNullException.ThrowIfNull(gosset);
        using var set = LlamaCppGemv.Prepare(rows, cols, batch, threads);
        var actions = set.Items.Select(i => (Action)i.Mm.Run).Concat(gosset.Select(g => g.Run)).ToArray();
        var times = Alternate(reps, actions);
        var ms = new Dictionary<string, double>(StringComparer.Ordinal);
        var layouts = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < set.Items.Count; i++)
        {
            ms[set.Items[i].Key + "_ms"] = times[i].Min();
            layouts[set.Items[i].Key] = set.Items[i].Mm.Layout;
        }
        var g = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int i = 0; i < gosset.Count; i++) g[gosset[i].Name + "_ms"] = times[set.Items.Count + i].Min();
        return new PeerGemvRow(ms, g, layouts, $"ggml {LlamaCppGemv.GgmlVersion} ({LlamaCppRuntime.LoadedBuild} build, LLamaSharp.Backend.Cpu 0.30.0)");
    }

    /// <summary>
    /// Round-robin timing (ms per action and repetition) after a warm-up of each action. Each timed run directly
    /// follows an untimed run of the same action: ggml's OpenMP workers and .NET's pool workers spin for a while
    /// after a parallel region and then sleep, so the timed run finds its own engine's threads awake (as in a
    /// decode loop, where products follow each other) rather than the other engine's threads spinning or its
    /// own asleep. Gosset's workers are parked before every action (<see cref="Gosset.Kernels.RowParallel.Park"/>).
    /// </summary>
    public static List<double>[] Alternate(int reps, Action[] actions)
    {
        ArgumentNullException.ThrowIfNull(actions);
        var res = actions.Select(_ => new List<double>()).ToArray();
        var sw = new System.Diagnostics.Stopwatch();
        foreach (var a in actions)
        {
            sw.Restart();
            for (int i = 0; i < 3 || (sw.ElapsedMilliseconds < 250 && i < 200); i++) a();
        }
        for (int r = 0; r < reps; r++)
            for (int k = 0; k < actions.Length; k++)
            {
                Gosset.Kernels.RowParallel.Park(); // Gosset's idle workers must not spin on the cores the next action uses
                actions[k]();
                sw.Restart();
                actions[k]();
                res[k].Add(sw.Elapsed.TotalMilliseconds);
            }
        return res;
    }
}
