namespace Gosset.Llm.Inference;

/// <summary>Memory figures of this process as the kernel reports them (Linux /proc; null elsewhere).</summary>
public static class ProcessMemory
{
    /// <summary>Peak resident set size in bytes (VmHWM), or null when /proc/self/status is unavailable.</summary>
    public static long? PeakRssBytes() => Field("VmHWM:");

    /// <summary>Current resident set size in bytes (VmRSS), or null.</summary>
    public static long? RssBytes() => Field("VmRSS:");

    private static long? Field(string name)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(name, StringComparison.Ordinal))
                {
                    var parts = line[name.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture) * 1024; // kB
                }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}
