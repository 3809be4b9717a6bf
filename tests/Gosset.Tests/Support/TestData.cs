namespace Gosset.Tests.Support;

/// <summary>
/// Locates the shared data folder (../shared/data next to the repository) for tests. Tests that
/// read it are <see cref="DataFactAttribute"/>/<see cref="DataTheoryAttribute"/>: they skip when the
/// folder is absent (a fresh clone), and fail instead under CI=true, so CI never skips them silently.
/// </summary>
public static class TestData
{
    private static readonly Lazy<string?> Root = new(Find);

    /// <summary>Absolute path of shared/data. Set GOSSET_SHARED_DATA to override.</summary>
    public static string Dir => Root.Value ?? throw new DirectoryNotFoundException(MissingMessage);

    /// <summary>Whether the shared data folder was found.</summary>
    public static bool Available => Root.Value is not null;

    /// <summary>Whether a missing data folder must fail the tests instead of skipping them (CI=true).</summary>
    public static bool Required => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>The skip reason of data tests, or null when they run (data present, or CI=true).</summary>
    public static string? SkipReason => Available || Required ? null : MissingMessage;

    /// <summary>Path of a file under shared/data (e.g. "stories260K/stories260K.bin").</summary>
    public static string File(string relative) => Path.Combine(Dir, relative);

    private static string MissingMessage =>
        "needs ../shared/data (stories260K model, tokenizer, golden.json, texts), not found above "
        + AppContext.BaseDirectory + "; set GOSSET_SHARED_DATA to its path";

    private static string? Find()
    {
        string? env = Environment.GetEnvironmentVariable("GOSSET_SHARED_DATA");
        if (!string.IsNullOrEmpty(env)) return Directory.Exists(Path.Combine(env, "stories260K")) ? Path.GetFullPath(env) : null;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "shared", "data");
            if (Directory.Exists(Path.Combine(candidate, "stories260K"))) return candidate;
        }
        return null;
    }
}

/// <summary>A fact that reads ../shared/data: skipped with the reason when the data is absent (failed under CI=true).</summary>
public sealed class DataFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> from <see cref="TestData.SkipReason"/>.</summary>
    public DataFactAttribute()
    {
        if (TestData.SkipReason is { } reason) Skip = reason;
    }
}

/// <summary>A theory that reads ../shared/data: skipped with the reason when the data is absent (failed under CI=true).</summary>
public sealed class DataTheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> from <see cref="TestData.SkipReason"/>.</summary>
    public DataTheoryAttribute()
    {
        if (TestData.SkipReason is { } reason) Skip = reason;
    }
}
