using BenchmarkDotNet.Attributes;
using Gosset.Kernels;

namespace Gosset.Benchmarks;

/// <summary>GEMV y = Wx: fp32 (TensorPrimitives) vs E8 4-bit box code vs INT4, same threads.</summary>
[MemoryDiagnoser]
public class GemvBenchmarks
{
    [Params("4096x4096", "14336x4096", "4096x14336")]
    public string Shape { get; set; } = "4096x4096";

    [Params(1, 8)]
    public int Batch { get; set; } = 1;

    private int _rows, _cols;
    private float[] _w = [], _x = [], _y = [];
    private PackedE8Matrix _e8 = null!;
    private PackedInt4Matrix _int4 = null!;

    [GlobalSetup]
    public void Setup()
    {
        var p = Shape.Split('x');
        _rows = int.Parse(p[0]); _cols = int.Parse(p[1]);
        _w = Data.RandomMatrix(_rows, _cols, 1);
        _x = Data.RandomMatrix(Batch, _cols, 2);
        _y = new float[Batch * _rows];
        _e8 = PackedE8Matrix.Quantize(_w, _rows, _cols);
        _int4 = PackedInt4Matrix.Quantize(_w, _rows, _cols);
    }

    [Benchmark(Baseline = true)]
    public void Fp32() => DenseGemv.Multiply(_w, _rows, _cols, _x, _y, Batch);

    [Benchmark]
    public void E8() => _e8.Multiply(_x, _y, Batch, ActivationMode.Float32);

    [Benchmark]
    public void E8W4A8() => _e8.Multiply(_x, _y, Batch, ActivationMode.Int8);

    [Benchmark]
    public void E8W4A4() => _e8.Multiply(_x, _y, Batch, ActivationMode.E8Box4);

    [Benchmark]
    public void Int4() => _int4.Multiply(_x, _y, Batch, ActivationMode.Float32);

    [Benchmark]
    public void Int4W4A8() => _int4.Multiply(_x, _y, Batch, ActivationMode.Int8);
}

/// <summary>E8 box-code GEMV per kernel variant (every variant this machine runs), int8 activations.</summary>
public class E8VariantBenchmarks
{
    public static IEnumerable<string> Variants => E8Kernel.All.Where(k => k.IsAccelerated && k.Name != "scalar").Select(k => k.Name);

    [ParamsSource(nameof(Variants))]
    public string Variant { get; set; } = "avx2";

    private PackedE8Matrix _m = null!;
    private float[] _x = [], _y = [];

    [GlobalSetup]
    public void Setup()
    {
        var w = Data.RandomMatrix(14336, 4096, 3);
        _m = PackedE8Matrix.Quantize(w, 14336, 4096);
        _x = Data.RandomMatrix(1, 4096, 4);
        _y = new float[14336];
    }

    [Benchmark]
    public void Gemv() => _m.Multiply(E8Kernel.Get(Variant), _x, _y, 1, ActivationMode.Int8);

    [Benchmark]
    public PackedE8Matrix Encode() => PackedE8Matrix.Quantize(_x.AsSpan(), 1, 4096);
}

internal static class Data
{
    /// <summary>Uniform(−1, 1) values from a fixed seed.</summary>
    public static float[] RandomMatrix(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        var a = new float[(long)rows * cols];
        for (long i = 0; i < a.Length; i++) a[i] = (float)(2 * rng.NextDouble() - 1);
        return a;
    }
}
