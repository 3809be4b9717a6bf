namespace Gosset;

/// <summary>
/// An error caused by the caller's input (bad shapes, NaN/Inf, corrupt files, unsupported
/// parameters). The CLI prints its message as one line and exits with a non-zero code.
/// </summary>
public class GossetException : Exception
{
    /// <summary>Creates the exception with a message meant for the user.</summary>
    public GossetException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and the underlying cause.</summary>
    public GossetException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A file that cannot be read as what it claims to be (truncated, corrupt, wrong format).</summary>
public sealed class InvalidFileException : GossetException
{
    /// <summary>Creates the exception naming the file and the problem.</summary>
    public InvalidFileException(string path, string problem) : base($"{path}: {problem}") { }
}
