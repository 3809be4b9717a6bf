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
        _w = KernelBenchmark.RandomMatrix(_rows, _cols, 1);
        _x = KernelBenchmark.RandomMatrix(Batch, _cols, 2);
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

/// <summary>E8 box code: decode to fp32 per kernel level, and encode.</summary>
public class E8CodecBenchmarks
{
    [Params(KernelIsa.Scalar, KernelIsa.Vector128, KernelIsa.Vector256, KernelIsa.Vector512)]
    public KernelIsa Isa { get; set; }

    private PackedE8Matrix _m = null!;
    private float[] _w = [], _dst = [];

    [GlobalSetup]
    public void Setup()
    {
        _w = KernelBenchmark.RandomMatrix(1024, 4096, 3);
        _m = PackedE8Matrix.Quantize(_w, 1024, 4096);
        _dst = new float[_w.Length];
    }

    [Benchmark]
    public void Decode()
    {
        if (!KernelSupport.IsSupported(Isa)) return;
        _m.DequantizeRows(0, _m.Rows, _dst, Isa);
    }

    [Benchmark]
    public PackedE8Matrix Encode() => PackedE8Matrix.Quantize(_w.AsSpan(0, 64 * 4096), 64, 4096);
}
