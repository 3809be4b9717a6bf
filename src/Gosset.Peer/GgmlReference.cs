using System.Runtime.InteropServices;
using Gosset.Llm.Loading;

namespace Gosset.Peer;

/// <summary>ggml's own quantization and dequantization of blocks, as an independent reference for Gosset's GGUF reader.</summary>
internal static unsafe class GgmlReference
{
    /// <summary>Quantizes rows × cols floats to <paramref name="type"/> with <c>ggml_quantize_chunk</c>.</summary>
    public static byte[] Quantize(GgufTensorType type, float[] x, int rows, int cols)
    {
        GgmlNative.EnsureLoaded();
        long bytes = (long)GgmlNative.RowSize((int)type, cols) * rows;
        var q = new byte[bytes];
        fixed (float* src = x)
        fixed (byte* dst = q)
        {
            nuint n = GgmlNative.QuantizeChunk((int)type, src, dst, 0, rows, cols, null);
            if ((long)n != bytes) throw new InvalidOperationException($"ggml_quantize_chunk wrote {n} bytes, expected {bytes}");
        }
        return q;
    }

    /// <summary>Dequantizes with <c>ggml_get_type_traits(type)->to_float</c>.</summary>
    public static void ToFloat(GgufTensorType type, byte[] q, float[] y)
    {
        nint get = GgmlNative.BaseExport("ggml_get_type_traits");
        if (get == 0) throw new PeerUnavailableException("ggml_get_type_traits is not exported");
        // struct ggml_type_traits { const char *type_name; int64 blck_size; int64 blck_size_interleave; size_t type_size; bool is_quantized; to_float; ... }
        byte* traits = ((delegate* unmanaged<int, byte*>)get)((int)type);
        long blck = *(long*)(traits + 8), size = *(long*)(traits + 24);
        if (blck != GgufTypes.BlockElements(type) || size != GgufTypes.BlockBytes(type))
            throw new InvalidOperationException($"ggml reports {type} as {size} bytes per {blck}; the traits layout is not the expected one");
        var toFloat = *(delegate* unmanaged<void*, float*, long, void>*)(traits + 40);
        fixed (byte* src = q)
        fixed (float* dst = y) toFloat(src, dst, y.Length);
    }
}
