using System.CommandLine;

namespace Gosset.Cli;

/// <summary>
/// Output paths are checked before a command does any work: their folder exists, and none of them
/// is one of the command's inputs (also through a symbolic link or a relative path) or another output.
/// </summary>
internal static class CliPaths
{
    /// <summary>Options that name a file the command writes; every other string option may name an input.</summary>
    public static readonly IReadOnlySet<string> OutputOptions = new HashSet<string>(StringComparer.Ordinal) { "--out", "--json", "--plot", "--png" };

    /// <summary>Checks the outputs of a parsed command line against its inputs; throws <see cref="GossetException"/>.</summary>
    public static void CheckOutputs(ParseResult parse)
    {
        var inputs = new List<(string Option, string Path)>();
        var outputs = new List<(string Option, string Path)>();
        foreach (var option in parse.CommandResult.Command.Options)
        {
            if (option.ValueType != typeof(string)) continue;
            string? value = parse.GetResult(option) is { } r ? r.GetValueOrDefault<string?>() : null;
            if (string.IsNullOrEmpty(value)) continue;
            if (OutputOptions.Contains(option.Name)) outputs.Add((option.Name, value));
            else
                // Inputs may be lists (A.npy,B.npy) or name a tensor (X.safetensors:NAME).
                foreach (string part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    foreach (string candidate in new[] { part, StripTensorName(part) }.Distinct())
                        if (File.Exists(candidate) || Directory.Exists(candidate)) inputs.Add((option.Name, candidate));
        }
        Check(inputs, outputs);
    }

    /// <summary>Checks explicit paths (for callers outside the command line).</summary>
    public static void Check(IEnumerable<(string Option, string Path)> inputs, IEnumerable<(string Option, string Path)> outputs)
    {
        var seen = new Dictionary<string, string>(PathComparer);
        foreach (var (option, path) in inputs)
            seen.TryAdd(Canonical(path), option);
        var written = new Dictionary<string, string>(PathComparer);
        foreach (var (option, path) in outputs)
        {
            string full = Canonical(path);
            string dir = Path.GetDirectoryName(full) ?? ".";
            if (!Directory.Exists(dir)) throw new GossetException($"Output directory does not exist: {dir} ({option} {path}).");
            if (Directory.Exists(full) && option != "--out") throw new GossetException($"{option} {path} is a directory.");
            if (seen.TryGetValue(full, out string? input))
                throw new GossetException($"{option} {path} is the input given by {input}; refusing to overwrite an input.");
            if (!written.TryAdd(full, option))
                throw new GossetException($"{option} {path} is also the output of {written[full]}.");
        }
    }

    private static StringComparer PathComparer => OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal;

    private static string StripTensorName(string spec)
    {
        int colon = spec.LastIndexOf(':');
        return colon > 1 ? spec[..colon] : spec;
    }

    /// <summary>The absolute path with every symbolic link along it resolved (the file itself need not exist).</summary>
    internal static string Canonical(string path)
    {
        string full = Path.GetFullPath(path);
        string root = Path.GetPathRoot(full) ?? "/";
        string current = root;
        foreach (string part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, part);
            FileSystemInfo info = Directory.Exists(current) ? new DirectoryInfo(current) : new FileInfo(current);
            if (info.Exists && info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target)
                current = Canonical(target.FullName);
        }
        return current;
    }
}
