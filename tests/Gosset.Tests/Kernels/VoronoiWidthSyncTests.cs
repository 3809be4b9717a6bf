namespace Gosset.Tests.Kernels;

/// <summary>
/// VoronoiVector256/128 are the 512-bit template with the vector aliases, the lane count and the
/// comments' widths changed. This keeps the copies from drifting apart.
/// </summary>
public class VoronoiWidthSyncTests
{
    [Theory]
    [InlineData(256, 8)]
    [InlineData(128, 4)]
    public void Width_variants_are_the_template_with_aliases_and_lanes_changed(int bits, int lanes)
    {
        string dir = FindKernelsDir();
        string Body(string text) => string.Join('\n', text.Replace("\r", "").Split('\n').SkipWhile(l => l.StartsWith("//")));
        string template = Body(File.ReadAllText(Path.Combine(dir, "VoronoiVector512.cs")))
            .Replace("Vector512", $"Vector{bits}")
            .Replace("512-bit", $"{bits}-bit")
            .Replace("on 16 blocks at once", $"on {lanes} blocks at once")
            .Replace("Lanes = 16;", $"Lanes = {lanes};");
        string copy = Body(File.ReadAllText(Path.Combine(dir, $"VoronoiVector{bits}.cs")));
        Assert.Equal(template, copy);
    }

    private static string FindKernelsDir()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            string k = Path.Combine(d.FullName, "src", "Gosset", "Kernels");
            if (File.Exists(Path.Combine(k, "VoronoiVector512.cs"))) return k;
        }
        throw new DirectoryNotFoundException("src/Gosset/Kernels not found above " + AppContext.BaseDirectory);
    }
}
