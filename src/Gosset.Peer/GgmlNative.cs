using System.Runtime.InteropServices;

namespace Gosset.Peer;

/// <summary>
/// Entry points of the ggml libraries that LLamaSharp.Backend.Cpu ships (ggml 0.18 C API), bound to the very
/// files LLamaSharp loaded (found in /proc/self/maps), so ggml and llama.cpp share one copy.
/// </summary>
internal static unsafe class GgmlNative
{
    [StructLayout(LayoutKind.Sequential)]
    internal struct InitParams
    {
        public nuint MemSize;
        public void* MemBuffer;
        public byte NoAlloc; // C bool
    }

    internal static delegate* unmanaged<InitParams, nint> Init;
    internal static delegate* unmanaged<nint, void> Free;
    internal static delegate* unmanaged<nuint> TensorOverhead;
    internal static delegate* unmanaged<nuint> GraphOverhead;
    internal static delegate* unmanaged<nint, int, long, long, nint> NewTensor2d;
    internal static delegate* unmanaged<nint, nint, nint, nint> MulMat;
    internal static delegate* unmanaged<nint, nint> NewGraph;
    internal static delegate* unmanaged<nint, nint, void> BuildForwardExpand;
    internal static delegate* unmanaged<int, float*, void*, long, long, long, float*, nuint> QuantizeChunk;
    internal static delegate* unmanaged<int, long, nuint> RowSize;
    internal static delegate* unmanaged<nint> CpuInit;
    internal static delegate* unmanaged<nint, int, void> CpuSetThreads;
    internal static delegate* unmanaged<nint> CpuReg;
    internal static delegate* unmanaged<nint, nuint, nint> RegDevGet;
    internal static delegate* unmanaged<nint, byte*, nint> RegGetProcAddress;
    internal static delegate* unmanaged<nint> CpuBufferType;
    internal static delegate* unmanaged<nint, byte*> BuftName;
    internal static delegate* unmanaged<nint, nint, nint> AllocCtxTensorsFromBuft;
    internal static delegate* unmanaged<nint, void> BufferFree;
    internal static delegate* unmanaged<nint, void*, nuint, nuint, void> TensorSet;
    internal static delegate* unmanaged<nint, void*, nuint, nuint, void> TensorGet;
    internal static delegate* unmanaged<nint, nint, int> GraphCompute;
    internal static delegate* unmanaged<nint, void> BackendFree;
    internal static delegate* unmanaged<nint, nint, byte> DevSupportsOp;
    internal static delegate* unmanaged<byte*> Version;

    /// <summary>Paths of the libraries in use.</summary>
    internal static string BasePath { get; private set; } = "";
    internal static string CpuPath { get; private set; } = "";

    private static readonly Lock Gate = new();
    private static bool _loaded;

    /// <summary>Loads llama.cpp through LLamaSharp and binds the ggml entry points; throws <see cref="PeerUnavailableException"/> when impossible.</summary>
    internal static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_loaded) return;
            LlamaCppRuntime.EnsureLoaded();
            if (!OperatingSystem.IsLinux())
                throw new PeerUnavailableException("ggml GEMV timing locates the loaded ggml libraries through /proc/self/maps, which exists on Linux only");
            string? basePath = LlamaCppRuntime.MappedLibrary("libggml-base.so"), cpuPath = LlamaCppRuntime.MappedLibrary("libggml-cpu.so");
            if (basePath is null || cpuPath is null)
                throw new PeerUnavailableException("LLamaSharp loaded llama.cpp but libggml-base.so / libggml-cpu.so are not mapped in this process");
            nint b = NativeLibrary.Load(basePath), c = NativeLibrary.Load(cpuPath);
            nint E(nint lib, string name) => NativeLibrary.TryGetExport(lib, name, out nint f) ? f
                : throw new PeerUnavailableException($"{name} is not exported by {(lib == b ? basePath : cpuPath)}");
            Init = (delegate* unmanaged<InitParams, nint>)E(b, "ggml_init");
            Free = (delegate* unmanaged<nint, void>)E(b, "ggml_free");
            TensorOverhead = (delegate* unmanaged<nuint>)E(b, "ggml_tensor_overhead");
            GraphOverhead = (delegate* unmanaged<nuint>)E(b, "ggml_graph_overhead");
            NewTensor2d = (delegate* unmanaged<nint, int, long, long, nint>)E(b, "ggml_new_tensor_2d");
            MulMat = (delegate* unmanaged<nint, nint, nint, nint>)E(b, "ggml_mul_mat");
            NewGraph = (delegate* unmanaged<nint, nint>)E(b, "ggml_new_graph");
            BuildForwardExpand = (delegate* unmanaged<nint, nint, void>)E(b, "ggml_build_forward_expand");
            QuantizeChunk = (delegate* unmanaged<int, float*, void*, long, long, long, float*, nuint>)E(b, "ggml_quantize_chunk");
            RowSize = (delegate* unmanaged<int, long, nuint>)E(b, "ggml_row_size");
            CpuInit = (delegate* unmanaged<nint>)E(c, "ggml_backend_cpu_init");
            CpuSetThreads = (delegate* unmanaged<nint, int, void>)E(c, "ggml_backend_cpu_set_n_threads");
            CpuReg = (delegate* unmanaged<nint>)E(c, "ggml_backend_cpu_reg");
            RegDevGet = (delegate* unmanaged<nint, nuint, nint>)E(b, "ggml_backend_reg_dev_get");
            RegGetProcAddress = (delegate* unmanaged<nint, byte*, nint>)E(b, "ggml_backend_reg_get_proc_address");
            CpuBufferType = (delegate* unmanaged<nint>)E(b, "ggml_backend_cpu_buffer_type");
            BuftName = (delegate* unmanaged<nint, byte*>)E(b, "ggml_backend_buft_name");
            AllocCtxTensorsFromBuft = (delegate* unmanaged<nint, nint, nint>)E(b, "ggml_backend_alloc_ctx_tensors_from_buft");
            BufferFree = (delegate* unmanaged<nint, void>)E(b, "ggml_backend_buffer_free");
            TensorSet = (delegate* unmanaged<nint, void*, nuint, nuint, void>)E(b, "ggml_backend_tensor_set");
            TensorGet = (delegate* unmanaged<nint, void*, nuint, nuint, void>)E(b, "ggml_backend_tensor_get");
            GraphCompute = (delegate* unmanaged<nint, nint, int>)E(b, "ggml_backend_graph_compute");
            BackendFree = (delegate* unmanaged<nint, void>)E(b, "ggml_backend_free");
            DevSupportsOp = (delegate* unmanaged<nint, nint, byte>)E(b, "ggml_backend_dev_supports_op");
            Version = (delegate* unmanaged<byte*>)E(b, "ggml_version");
            BasePath = basePath;
            CpuPath = cpuPath;
            _loaded = true;
        }
    }

    /// <summary>The exported function <paramref name="name"/> of libggml-base, or 0.</summary>
    internal static nint BaseExport(string name)
    {
        EnsureLoaded();
        return NativeLibrary.TryGetExport(NativeLibrary.Load(BasePath), name, out nint f) ? f : 0;
    }

    internal static string Str(byte* p) => p == null ? "" : Marshal.PtrToStringUTF8((nint)p) ?? "";
}

/// <summary>llama.cpp could not be loaded or called on this machine; the message says why.</summary>
public sealed class PeerUnavailableException(string message) : GossetException(message);
