using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gosset.Kernels;

/// <summary>Instruction-set level of a kernel variant. Every variant the CPU supports can be chosen explicitly (tests run them all).</summary>
public enum KernelIsa
{
    /// <summary>Plain scalar code: the reference every other variant is tested against.</summary>
    Scalar = 0,
    /// <summary>128-bit vectors (SSE4.1 / AdvSimd through the cross-platform Vector128 API).</summary>
    Vector128 = 1,
    /// <summary>256-bit vectors (AVX2 + FMA; AVX-VNNI for int8 dot products where present).</summary>
    Vector256 = 2,
    /// <summary>512-bit vectors (AVX-512 F + BW).</summary>
    Vector512 = 3,
}

/// <summary>
/// Which <see cref="KernelIsa"/> levels this process can run. Follows the .NET 10 runtime knobs:
/// <c>DOTNET_EnableAVX512=0</c> (no 512-bit vectors, no AVX-512 instructions), <c>DOTNET_EnableAVXVNNI=0</c>,
/// <c>DOTNET_EnableAVX2=0</c>; each only turns features off.
/// </summary>
public static class KernelSupport
{
    /// <summary>True when kernels of level <paramref name="isa"/> can run here.</summary>
    public static bool IsSupported(KernelIsa isa) => isa switch
    {
        KernelIsa.Scalar => true,
        KernelIsa.Vector128 => Vector128.IsHardwareAccelerated && (Sse41.IsSupported || !System.Runtime.Intrinsics.X86.X86Base.IsSupported),
        KernelIsa.Vector256 => Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported,
        KernelIsa.Vector512 => Vector512.IsHardwareAccelerated && Avx512F.IsSupported && Avx512BW.IsSupported,
        _ => false,
    };

    /// <summary>The widest supported level.</summary>
    public static KernelIsa Best { get; } =
        IsSupported(KernelIsa.Vector512) ? KernelIsa.Vector512 :
        IsSupported(KernelIsa.Vector256) ? KernelIsa.Vector256 :
        IsSupported(KernelIsa.Vector128) ? KernelIsa.Vector128 : KernelIsa.Scalar;

    /// <summary>Every supported level, scalar first.</summary>
    public static IReadOnlyList<KernelIsa> All { get; } =
        Enum.GetValues<KernelIsa>().Where(IsSupported).ToArray();

    /// <summary>
    /// The instruction-set level the E8 kernels use in this process (<see cref="E8Kernel.Best"/>):
    /// "avx512" (512-bit vpmaddubsw/vpmaddwd, vpermps; .NET 10 has no 512-bit vpdpbusd), "avx-vnni"
    /// (256-bit vpdpbusd), "avx2" (256-bit vpmaddubsw/vpmaddwd), "vector128" or "scalar".
    /// </summary>
    public static string Level { get; } =
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported && Avx512BW.IsSupported ? "avx512" :
        Vector256.IsHardwareAccelerated && Avx2.IsSupported && AvxVnni.IsSupported ? "avx-vnni" :
        Vector256.IsHardwareAccelerated && Avx2.IsSupported ? "avx2" :
        Vector128.IsHardwareAccelerated ? "vector128" : "scalar";

    /// <summary>A one-line description of the instruction sets in use (for benchmark reports).</summary>
    public static string Describe() =>
        $"level={Level}; best={Best}; avx512f={Avx512F.IsSupported} avx512bw={Avx512BW.IsSupported} avx2={Avx2.IsSupported} " +
        $"fma={Fma.IsSupported} avxvnni={AvxVnni.IsSupported}";

    internal static void Require(KernelIsa isa)
    {
        if (!IsSupported(isa)) throw new PlatformNotSupportedException($"Kernel level {isa} is not supported on this CPU/runtime.");
    }
}

/// <summary>How activations enter a quantized matrix–vector product.</summary>
public enum ActivationMode
{
    /// <summary>fp32 activations, exact (W4A32): decoded weights meet the float input.</summary>
    Float32 = 0,
    /// <summary>Activations rounded to int8 with one absmax scale per 8-block (W4A8), integer dot products.</summary>
    Int8 = 1,
    /// <summary>Activations quantized with the 4-bit <see cref="E8BoxCode"/> (W4A4): doubled E8 coordinates as int8, integer dot products.</summary>
    E8Box4 = 2,
    /// <summary>
    /// Activations rounded to int8 with one absmax scale per 256-group (W4A8, the granularity of llama.cpp's q8_K):
    /// a whole group is added in integers, weight block scales included (they must lie on the kernel grid,
    /// <see cref="PackedE8Matrix.HasGridScales"/>). The E8 kernels' default.
    /// </summary>
    Int8Group = 3,
}
