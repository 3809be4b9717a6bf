using System.Diagnostics;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Gosset.Peer;

/// <summary>llama.cpp quantization types that <see cref="LlamaCppRuntime.Quantize"/> produces.</summary>
public enum LlamaCppQuant
{
    /// <summary>Q4_0 throughout.</summary>
    Q4_0,
    /// <summary>llama.cpp's Q4_K_M mix (Q4_K with some Q6_K).</summary>
    Q4_K_M,
    /// <summary>IQ4_XS.</summary>
    IQ4_XS,
    /// <summary>IQ4_NL.</summary>
    IQ4_NL,
    /// <summary>Q8_0.</summary>
    Q8_0,
    /// <summary>llama.cpp's Q2_K mix.</summary>
    Q2_K,
    /// <summary>llama.cpp's Q3_K_M mix.</summary>
    Q3_K_M,
    /// <summary>llama.cpp's Q5_K_M mix.</summary>
    Q5_K_M,
}

/// <summary>Which of LLamaSharp.Backend.Cpu's native builds to load (each is compiled for one instruction-set level).</summary>
public enum LlamaCppBuild
{
    /// <summary>The one LLamaSharp picks for this CPU (the highest level it supports).</summary>
    Auto,
    /// <summary>The AVX-512 build.</summary>
    Avx512,
    /// <summary>The AVX2 build (FMA, F16C; what an AVX2-only CPU runs).</summary>
    Avx2,
    /// <summary>The AVX build.</summary>
    Avx,
    /// <summary>The build without AVX.</summary>
    NoAvx,
}

/// <summary>Loads llama.cpp through LLamaSharp and runs its quantizer.</summary>
public static class LlamaCppRuntime
{
    private static readonly Lock Gate = new();
    private static bool _loaded;
    private static readonly string? BuildFromEnvironment = Environment.GetEnvironmentVariable(BuildVariable);
    // Null: the variable names no build, reported when llama.cpp loads unless a build is set explicitly first.
    private static LlamaCppBuild? _build = ParseBuild(BuildFromEnvironment);

    /// <summary>The environment variable that selects the native build (auto, avx512, avx2, avx, noavx), inherited by worker processes.</summary>
    public const string BuildVariable = "GOSSET_LLAMACPP_BUILD";

    /// <summary>
    /// The native build loaded on first use: <see cref="LlamaCppBuild.Auto"/> unless <see cref="BuildVariable"/> names one. Setting
    /// another one lets an AVX-512 machine time llama.cpp as an AVX2-only CPU would run it (beside Gosset's kernels at
    /// <c>DOTNET_EnableAVX512=0</c>).
    /// </summary>
    /// <exception cref="InvalidOperationException">llama.cpp is already loaded with a different build.</exception>
    public static LlamaCppBuild Build
    {
        get => _build ?? LlamaCppBuild.Auto;
        set
        {
            lock (Gate)
            {
                if (_loaded && value != _build) throw new InvalidOperationException($"llama.cpp is already loaded ({_build} build)");
                _build = value;
            }
        }
    }

    /// <summary>Parses auto, avx512, avx2, avx or noavx (case-insensitive); null for anything else.</summary>
    /// <param name="name">The build's name, or null.</param>
    public static LlamaCppBuild? ParseBuild(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => LlamaCppBuild.Auto,
        "avx512" => LlamaCppBuild.Avx512,
        "avx2" => LlamaCppBuild.Avx2,
        "avx" => LlamaCppBuild.Avx,
        "noavx" => LlamaCppBuild.NoAvx,
        _ => null,
    };
    private static NativeLogConfig.LLamaLogCallback? _log;

    /// <summary>The last warning or error llama.cpp logged (it explains most failures).</summary>
    public static string LastMessage { get; private set; } = "";

    /// <summary>Loads the native llama.cpp libraries once (the <see cref="Build"/> selected; by default LLamaSharp picks the one for this CPU); llama.cpp's log is muted unless GOSSET_PEER_LOG=1.</summary>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_loaded) return;
            if (_build is not { } build)
                throw new PeerUnavailableException($"{BuildVariable}={BuildFromEnvironment} is not one of auto, avx512, avx2, avx, noavx");
            try
            {
                bool verbose = Environment.GetEnvironmentVariable("GOSSET_PEER_LOG") == "1";
                _log = (level, message) =>
                {
                    if (verbose) Console.Error.Write(message);
                    if (level is LLamaLogLevel.Error or LLamaLogLevel.Warning && !string.IsNullOrWhiteSpace(message))
                        LastMessage = message.Trim();
                };
                if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
                {
                    NativeLibraryConfig.All.WithLogCallback(_log);
                    if (build != LlamaCppBuild.Auto)
                        NativeLibraryConfig.All.WithAvx(build switch
                        {
                            LlamaCppBuild.Avx512 => AvxLevel.Avx512,
                            LlamaCppBuild.Avx2 => AvxLevel.Avx2,
                            LlamaCppBuild.Avx => AvxLevel.Avx,
                            _ => AvxLevel.None,
                        });
                }
                NativeApi.llama_empty_call();
                // LLamaSharp falls back to another build when the requested one does not load (without fallback it loads
                // none, even the requested one): another build's timings must not pass for the requested one's.
                LoadedBuild = Path.GetFileName(Path.GetDirectoryName(MappedLibrary("libggml-cpu.so"))) ?? "";
                if (build != LlamaCppBuild.Auto && LoadedBuild.Length > 0 && LoadedBuild != build.ToString().ToLowerInvariant())
                    throw new PeerUnavailableException($"llama.cpp's {build} build was requested but LLamaSharp loaded the one in {LoadedBuild}/");
            }
            catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or LLama.Exceptions.RuntimeError or EntryPointNotFoundException or BadImageFormatException)
            {
                throw new PeerUnavailableException($"llama.cpp (LLamaSharp.Backend.Cpu, {build} build) could not be loaded: " + e.Message);
            }
            _loaded = true;
        }
    }

    /// <summary>The folder of the loaded native build (avx512, avx2, avx, noavx); empty before loading or where the process's mappings do not tell.</summary>
    public static string LoadedBuild { get; private set; } = "";

    /// <summary>The full path of the mapped native library named <paramref name="fileName"/> (from /proc/self/maps), or null (not mapped, or not Linux).</summary>
    /// <param name="fileName">The library's file name, e.g. libggml-cpu.so.</param>
    internal static string? MappedLibrary(string fileName)
    {
        if (!OperatingSystem.IsLinux()) return null;
        foreach (string line in File.ReadLines("/proc/self/maps"))
            if (line.EndsWith("/" + fileName, StringComparison.Ordinal))
                return line[line.IndexOf('/')..];
        return null;
    }

    /// <summary>
    /// Quantizes a GGUF file with llama.cpp's quantizer (<c>llama_model_quantize</c>), atomically. With
    /// <paramref name="keepEmbeddingsF16"/> the token embedding and output tensors stay F16 (llama.cpp's default
    /// quantizes them too, e.g. to Q6_K under Q4_K_M); the linear layers follow llama.cpp's own rules either way.
    /// </summary>
    public static void Quantize(string source, string destination, LlamaCppQuant type, int threads, bool keepEmbeddingsF16 = false)
    {
        EnsureLoaded();
        var ftype = type switch
        {
            LlamaCppQuant.Q4_0 => LLamaFtype.MOSTLY_Q4_0,
            LlamaCppQuant.Q4_K_M => LLamaFtype.MOSTLY_Q4_K_M,
            LlamaCppQuant.IQ4_XS => LLamaFtype.MOSTLY_IQ4_XS,
            LlamaCppQuant.IQ4_NL => LLamaFtype.MOSTLY_IQ4_NL,
            LlamaCppQuant.Q2_K => LLamaFtype.MOSTLY_Q2_K,
            LlamaCppQuant.Q3_K_M => LLamaFtype.MOSTLY_Q3_K_M,
            LlamaCppQuant.Q5_K_M => LLamaFtype.MOSTLY_Q5_K_M,
            _ => LLamaFtype.MOSTLY_Q8_0,
        };
        string full = Path.GetFullPath(destination);
        string tmp = Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            var p = LLamaModelQuantizeParams.Default();
            p.ftype = ftype;
            p.nthread = threads;
            p.allow_requantize = true;
            p.quantize_output_tensor = true;
            if (keepEmbeddingsF16)
            {
                p.token_embedding_type = GGMLType.GGML_TYPE_F16;
                p.output_tensor_type = GGMLType.GGML_TYPE_F16;
            }
            if (NativeApi.llama_model_quantize(source, tmp, ref p) != 0)
                throw new GossetException($"llama.cpp could not quantize {source} to {type}: {LastMessage}");
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}

/// <summary>A GGUF model loaded in llama.cpp (through LLamaSharp) with one context: logits for windows, prefill and decode timing.</summary>
public sealed class LlamaCppModel : IDisposable
{
    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;
    private readonly LLamaBatch _batch = new();

    /// <summary>Loads <paramref name="ggufPath"/> with a context of <paramref name="contextSize"/> tokens, processed in one batch.</summary>
    public LlamaCppModel(string ggufPath, int contextSize, int threads)
    {
        LlamaCppRuntime.EnsureLoaded();
        var p = new ModelParams(ggufPath)
        {
            ContextSize = (uint)contextSize,
            BatchSize = (uint)contextSize,
            UBatchSize = (uint)contextSize,
            Threads = threads,
            BatchThreads = threads,
            GpuLayerCount = 0,
            FlashAttention = false,
        };
        _weights = LLamaWeights.LoadFromFile(p);
        try { _context = _weights.CreateContext(p); }
        catch { _weights.Dispose(); throw; }
        VocabSize = _weights.Vocab.Count;
    }

    /// <summary>Vocabulary size.</summary>
    public int VocabSize { get; }

    /// <summary>llama.cpp's own tokenization of <paramref name="text"/> with the file's vocabulary.</summary>
    public int[] Tokenize(string text, bool addBos) =>
        _weights.Tokenize(text, addBos, special: false, System.Text.Encoding.UTF8).Select(t => (int)t).ToArray();

    /// <summary>Logits [tokens.Length][vocab] of a window fed at positions 0.. with an empty cache.</summary>
    public float[] WindowLogits(ReadOnlySpan<int> tokens)
    {
        _context.NativeHandle.MemoryClear(true);
        _batch.Clear();
        for (int i = 0; i < tokens.Length; i++) _batch.Add((LLamaToken)tokens[i], (LLamaPos)i, (LLamaSeqId)0, true);
        Decode();
        var y = new float[(long)tokens.Length * VocabSize];
        for (int i = 0; i < tokens.Length; i++) _context.NativeHandle.GetLogitsIth(i).CopyTo(y.AsSpan(i * VocabSize, VocabSize));
        return y;
    }

    private void Decode()
    {
        var r = _context.Decode(_batch);
        if (r != DecodeResult.Ok) throw new GossetException($"llama.cpp decode failed: {r}");
    }

    /// <summary>
    /// Feeds <paramref name="prompt"/> as one batch (prefill), then <paramref name="genTokens"/> greedy tokens one at a time
    /// (decode). Returns (prefill seconds, decode seconds).
    /// </summary>
    public (double Prefill, double Decode) Time(ReadOnlySpan<int> prompt, int genTokens)
    {
        _context.NativeHandle.MemoryClear(true);
        _batch.Clear();
        for (int i = 0; i < prompt.Length; i++) _batch.Add((LLamaToken)prompt[i], (LLamaPos)i, (LLamaSeqId)0, i == prompt.Length - 1);
        long t0 = Stopwatch.GetTimestamp();
        Decode();
        int next = ArgMax(_context.NativeHandle.GetLogitsIth(prompt.Length - 1));
        double prefill = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        t0 = Stopwatch.GetTimestamp();
        for (int g = 0; g < genTokens; g++)
        {
            _batch.Clear();
            _batch.Add((LLamaToken)next, (LLamaPos)(prompt.Length + g), (LLamaSeqId)0, true);
            Decode();
            next = ArgMax(_context.NativeHandle.GetLogitsIth(0));
        }
        return (prefill, Stopwatch.GetElapsedTime(t0).TotalSeconds);
    }

    private static int ArgMax(ReadOnlySpan<float> a)
    {
        int best = 0;
        for (int i = 1; i < a.Length; i++) if (a[i] > a[best]) best = i;
        return best;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
