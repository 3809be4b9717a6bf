namespace Gosset.Tests.Support;

/// <summary>Locates the shared data folder (../shared/data next to the repository) for tests.</summary>
public static class TestData
{
    private static readonly Lazy<string> Root = new(Find);

    /// <summary>Absolute path of shared/data. Set GOSSET_SHARED_DATA to override.</summary>
    public static string Dir => Root.Value;

    /// <summary>Path of a file under shared/data (e.g. "stories260K/stories260K.bin").</summary>
    public static string File(string relative) => Path.Combine(Dir, relative);

    private static string Find()
    {
        string? env = Environment.GetEnvironmentVariable("GOSSET_SHARED_DATA");
        if (!string.IsNullOrEmpty(env)) return env;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "shared", "data");
            if (Directory.Exists(Path.Combine(candidate, "stories260K"))) return candidate;
        }
        throw new DirectoryNotFoundException(
            "shared/data not found above " + AppContext.BaseDirectory + "; set GOSSET_SHARED_DATA.");
    }
}
