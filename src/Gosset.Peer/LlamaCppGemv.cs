using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Gosset.Peer;

/// <summary>ggml weight types that <see cref="LlamaCppGemv"/> can time (ggml type ids).</summary>
public enum GgmlType
{
    /// <summary>float32.</summary>
    F32 = 0,
    /// <summary>float16.</summary>
    F16 = 1,
    /// <summary>4.5 bits: 32-blocks, fp16 scale.</summary>
    Q4_0 = 2,
    /// <summary>8.5 bits: 32-blocks, fp16 scale.</summary>
    Q8_0 = 8,
    /// <summary>2.625 bits: 256-superblocks.</summary>
    Q2_K = 10,
    /// <summary>3.4375 bits: 256-superblocks.</summary>
    Q3_K = 11,
    /// <summary>4.5 bits: 256-superblocks.</summary>
    Q4_K = 12,
    /// <summary>4.5 bits: non-uniform grid, 32-blocks.</summary>
    IQ4_NL = 20,
    /// <summary>4.25 bits: non-uniform grid, 256-superblocks.</summary>
    IQ4_XS = 23,
}

/// <summary>
/// One ggml matrix–vector product set up for timing: W (rows × cols, in <see cref="Type"/>, quantized by ggml's own
/// <c>ggml_quantize_chunk</c> from the same random floats) times X (cols × batch, f32) on ggml's CPU backend.
/// When the CPU backend's extra buffer type (CPU_REPACK, what llama.cpp uses by default) accepts the weight,
/// W lives there, repacked into interleaved rows; otherwise in the plain CPU buffer.
/// </summary>
public sealed unsafe class GgmlMulMat : IDisposable
{
    private nint _ctxW, _ctxX, _bufW, _bufX, _graph, _backend, _y;
    private readonly int _rows, _batch;

    /// <summary>The weight type.</summary>
    public GgmlType Type { get; }
    /// <summary>Name of the buffer type W lives in ("CPU_REPACK" when repacked, "CPU" otherwise).</summary>
    public string Layout { get; }

    /// <summary>Builds the product; <paramref name="weights"/> is rows × cols row-major, <paramref name="x"/> batch × cols.</summary>
    public GgmlMulMat(GgmlType type, int rows, int cols, int batch, int threads, ReadOnlySpan<float> weights, ReadOnlySpan<float> x, bool allowRepack = true)
    {
        GgmlNative.EnsureLoaded();
        if (weights.Length != (long)rows * cols || x.Length != (long)cols * batch) throw new ArgumentException("shape mismatch");
        Type = type;
        _rows = rows;
        _batch = batch;
        try
        {
            nuint meta = GgmlNative.TensorOverhead() * 16 + GgmlNative.GraphOverhead() + (1 << 16);
            _ctxW = GgmlNative.Init(new GgmlNative.InitParams { MemSize = meta, NoAlloc = 1 });
            _ctxX = GgmlNative.Init(new GgmlNative.InitParams { MemSize = meta, NoAlloc = 1 });
            if (_ctxW == 0 || _ctxX == 0) throw new PeerUnavailableException("ggml_init failed");
            nint w = GgmlNative.NewTensor2d(_ctxW, (int)type, cols, rows);
            nint xt = GgmlNative.NewTensor2d(_ctxX, (int)GgmlType.F32, cols, batch);
            _y = GgmlNative.MulMat(_ctxX, w, xt);
            _graph = GgmlNative.NewGraph(_ctxX);
            GgmlNative.BuildForwardExpand(_graph, _y);
            _backend = GgmlNative.CpuInit();
            GgmlNative.CpuSetThreads(_backend, threads);
            nint reg = GgmlNative.CpuReg(), dev = GgmlNative.RegDevGet(reg, 0);
            string layout = "CPU";
            if (allowRepack)
            {
                foreach (nint buft in ExtraBufferTypes(reg, dev))
                {
                    nint buf = GgmlNative.AllocCtxTensorsFromBuft(_ctxW, buft);
                    if (buf == 0) continue;
                    // The device accepts the product with W in this buffer only when the buffer's repacker claims W's type and shape.
                    if (GgmlNative.DevSupportsOp(dev, _y) != 0) { _bufW = buf; layout = GgmlNative.Str(GgmlNative.BuftName(buft)); break; }
                    GgmlNative.BufferFree(buf);
                    GgmlNative.Free(_ctxW);
                    // A tensor stays bound to the buffer it was allocated in: rebuild W and the product.
                    _ctxW = GgmlNative.Init(new GgmlNative.InitParams { MemSize = meta, NoAlloc = 1 });
                    GgmlNative.Free(_ctxX);
                    _ctxX = GgmlNative.Init(new GgmlNative.InitParams { MemSize = meta, NoAlloc = 1 });
                    w = GgmlNative.NewTensor2d(_ctxW, (int)type, cols, rows);
                    xt = GgmlNative.NewTensor2d(_ctxX, (int)GgmlType.F32, cols, batch);
                    _y = GgmlNative.MulMat(_ctxX, w, xt);
                    _graph = GgmlNative.NewGraph(_ctxX);
                    GgmlNative.BuildForwardExpand(_graph, _y);
                }
            }
            if (_bufW == 0) _bufW = GgmlNative.AllocCtxTensorsFromBuft(_ctxW, GgmlNative.CpuBufferType());
            _bufX = GgmlNative.AllocCtxTensorsFromBuft(_ctxX, GgmlNative.CpuBufferType());
            if (_bufW == 0 || _bufX == 0) throw new PeerUnavailableException("ggml could not allocate the tensors");
            Layout = layout;
            nuint rowBytes = GgmlNative.RowSize((int)type, cols);
            var q = new byte[(long)rowBytes * rows];
            fixed (float* src = weights)
            fixed (byte* dst = q)
            {
                if (type == GgmlType.F32) Buffer.MemoryCopy(src, dst, q.Length, q.Length);
                else
                {
                    nuint written = GgmlNative.QuantizeChunk((int)type, src, dst, 0, rows, cols, null);
                    if ((long)written != q.Length) throw new PeerUnavailableException($"ggml_quantize_chunk wrote {written} bytes for {type}, expected {q.Length}");
                }
                GgmlNative.TensorSet(w, dst, 0, (nuint)q.Length);
            }
            fixed (float* xs = x) GgmlNative.TensorSet(xt, xs, 0, (nuint)(4L * x.Length));
            WeightBytes = q.Length;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private static List<nint> ExtraBufferTypes(nint reg, nint dev)
    {
        var list = new List<nint>();
        nint f;
        fixed (byte* name = "ggml_backend_dev_get_extra_bufts\0"u8) f = GgmlNative.RegGetProcAddress(reg, name);
        if (f == 0) return list;
        var get = (delegate* unmanaged<nint, nint*>)f;
        for (nint* p = get(dev); p != null && *p != 0; p++) list.Add(*p);
        return list;
    }

    /// <summary>Bytes of the weight matrix in ggml's (unrepacked) format.</summary>
    public long WeightBytes { get; }

    /// <summary>Runs the product once.</summary>
    public void Run()
    {
        int status = GgmlNative.GraphCompute(_backend, _graph);
        if (status != 0) throw new PeerUnavailableException($"ggml_backend_graph_compute returned status {status}");
    }

    /// <summary>The result Y (batch × rows) of the last run.</summary>
    public float[] Result()
    {
        var y = new float[(long)_rows * _batch];
        fixed (float* p = y) GgmlNative.TensorGet(_y, p, 0, (nuint)(4L * y.Length));
        return y;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_backend != 0) { GgmlNative.BackendFree(_backend); _backend = 0; }
        if (_bufW != 0) { GgmlNative.BufferFree(_bufW); _bufW = 0; }
        if (_bufX != 0) { GgmlNative.BufferFree(_bufX); _bufX = 0; }
        if (_ctxW != 0) { GgmlNative.Free(_ctxW); _ctxW = 0; }
        if (_ctxX != 0) { GgmlNative.Free(_ctxX); _ctxX = 0; }
    }
}

/// <summary>Times llama.cpp's own matrix–vector products (ggml <c>mul_mat</c> on its CPU backend) on Gosset's shapes.</summary>
public static class LlamaCppGemv
{
    /// <summary>Types timed by default, with the key each gets in <see cref="Measure"/>'s result.</summary>
    public static IReadOnlyList<(GgmlType Type, string Key)> DefaultTypes { get; } =
    [
        (GgmlType.F32, "f32"), (GgmlType.Q4_0, "q4_0"), (GgmlType.Q4_K, "q4_K"), (GgmlType.IQ4_XS, "iq4_xs"),
        (GgmlType.IQ4_NL, "iq4_nl"), (GgmlType.Q8_0, "q8_0"), (GgmlType.Q2_K, "q2_K"), (GgmlType.Q3_K, "q3_K"),
    ];

    /// <summary>
    /// Sets up one product per type on the same random N(0,1) weights and activations (seeded), then times them
    /// <paramref name="reps"/> times each, round-robin, after one warm-up each. Returns the minimum ms per type
    /// as <c>"{key}_ms"</c>, plus <c>"{key}_layout"</c> entries are reported through <paramref name="layouts"/>.
    /// </summary>
    public static Dictionary<string, double> Measure(int rows, int cols, int batch, int threads, int reps,
        IReadOnlyList<(GgmlType Type, string Key)>? types = null, Dictionary<string, string>? layouts = null, Action? between = null)
    {
        using var set = Prepare(rows, cols, batch, threads, types);
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (key, _) in set.Items) result[key + "_ms"] = double.PositiveInfinity;
        for (int r = 0; r < reps; r++)
        {
            foreach (var (key, mm) in set.Items) result[key + "_ms"] = Math.Min(result[key + "_ms"], set.TimeOnce(mm));
            between?.Invoke();
        }
        if (layouts is not null) foreach (var (key, mm) in set.Items) layouts[key] = mm.Layout;
        return result;
    }

    /// <summary>Builds the products without timing them (for callers that interleave with their own kernels).</summary>
    public static GemvSet Prepare(int rows, int cols, int batch, int threads, IReadOnlyList<(GgmlType Type, string Key)>? types = null)
    {
        if (rows <= 0 || cols <= 0 || batch <= 0 || threads <= 0) throw new GossetException("rows, cols, batch and threads must be positive");
        var rng = new Random(12345);
        var w = new float[(long)rows * cols];
        var x = new float[(long)cols * batch];
        Gaussian(rng, w);
        Gaussian(rng, x);
        var items = new List<(string, GgmlMulMat)>();
        try
        {
            foreach (var (type, key) in types ?? DefaultTypes)
            {
                if (type != GgmlType.F32 && cols % (type is GgmlType.Q4_0 or GgmlType.Q8_0 or GgmlType.IQ4_NL ? 32 : 256) != 0) continue;
                var mm = new GgmlMulMat(type, rows, cols, batch, threads, w, x);
                mm.Run();
                items.Add((key, mm));
            }
        }
        catch
        {
            foreach (var (_, mm) in items) mm.Dispose();
            throw;
        }
        return new GemvSet(items);
    }

    private static void Gaussian(Random rng, Span<float> a)
    {
        for (int i = 0; i < a.Length; i++)
        {
            double u = 1.0 - rng.NextDouble(), v = rng.NextDouble();
            a[i] = (float)(Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * v));
        }
    }

    /// <summary>The ggml version string of the loaded library.</summary>
    public static unsafe string GgmlVersion
    {
        get { GgmlNative.EnsureLoaded(); return GgmlNative.Str(GgmlNative.Version()); }
    }

    /// <summary>Path of the loaded libggml-cpu.so (which instruction-set build LLamaSharp picked).</summary>
    public static string CpuLibrary
    {
        get { GgmlNative.EnsureLoaded(); return GgmlNative.CpuPath; }
    }
}

/// <summary>Prepared ggml products, one per type.</summary>
public sealed class GemvSet : IDisposable
{
    internal GemvSet(List<(string Key, GgmlMulMat Mm)> items) => Items = items;

    /// <summary>(key, product) pairs.</summary>
    public IReadOnlyList<(string Key, GgmlMulMat Mm)> Items { get; }

    /// <summary>Milliseconds of one run.</summary>
    public double TimeOnce(GgmlMulMat mm)
    {
        ArgumentNullException.ThrowIfNull(mm);
        long t0 = Stopwatch.GetTimestamp();
        mm.Run();
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var (_, mm) in Items) mm.Dispose();
    }
}
