using BenchmarkDotNet.Attributes;
using Gosset.Kernels;

namespace Gosset.Benchmarks;

/// <summary>
/// The int8-group activations' layout that every default product builds before its rows (<see cref="E8ActivationLayout.Grouped"/>):
/// group scales and values, and the part the kernel at that batch reads (batch 1 the additive terms, the pre-decoding GEMM
/// its panel, for a kernel of 8 int32 lanes), on one thread and on two.
/// </summary>
[MemoryDiagnoser]
public class ActivationLayoutBenchmarks
{
    [Params(4096, 14336)]
    public int Cols { get; set; } = 14336;

    [Params(1, 16, 64)]
    public int Batch { get; set; } = 16;

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    private float[] _x = [];

    [GlobalSetup]
    public void Setup() => _x = Data.RandomMatrix(Batch, Cols, 3);

    [Benchmark]
    public int Layout()
    {
        var parts = Batch == 1 ? GroupedParts.AdditiveTerms : GroupedParts.GemmPanel;
        using var a = E8ActivationLayout.Grouped(_x, Batch, Cols, (Cols + 255) / 256, 16, parts, 8, Threads);
        return a.Q[0];
    }
}
