using Gosset.Rotations;
using System.Numerics.Tensors;
using Gosset.Llm.Quantization;

namespace Gosset.Llm.Inference;

/// <summary>Rows of a weight matrix [out][in], stored in float or as codes.</summary>
internal abstract class WeightMatrix
{
    protected WeightMatrix(int rows, int cols) { Rows = rows; Cols = cols; }
    public int Rows { get; }
    public int Cols { get; }
    /// <summary>Stored bits of the whole matrix (side information included).</summary>
    public abstract long Bits { get; }
    /// <summary>Row r, either a view of stored floats or decoded into <paramref name="scratch"/>.</summary>
    public abstract ReadOnlySpan<float> Row(int r, Span<float> scratch);
}

/// <summary>Float32 rows.</summary>
internal sealed class DenseWeights(float[] w, int rows, int cols) : WeightMatrix(rows, cols)
{
    public float[] Data { get; } = w;
    public override long Bits => 32L * Rows * Cols;
    public override ReadOnlySpan<float> Row(int r, Span<float> scratch) => Data.AsSpan(r * Cols, Cols);
}

/// <summary>Rows kept as codes of a <see cref="VectorCodec"/> and decoded on use.</summary>
internal sealed class CodedWeights(VectorCodec codec, byte[] codes, int rows) : WeightMatrix(rows, codec.Length)
{
    public VectorCodec Codec { get; } = codec;
    public byte[] Codes { get; } = codes;
    public override long Bits => Codec.Bits * Rows;
    public override ReadOnlySpan<float> Row(int r, Span<float> scratch)
    {
        Codec.Decode(Codes.AsSpan(r * Codec.CodeBytes, Codec.CodeBytes), scratch);
        return scratch[..Cols];
    }
}

/// <summary>Accumulates H = Σ x xᵀ of a linear layer's (rotated) inputs for LDLQ.</summary>
internal sealed class HessianAccumulator(int n)
{
    public int N { get; } = n;
    public double[] H { get; } = new double[n * n];
    public long Count { get; private set; }
    /// <summary>Up to <see cref="MaxSamples"/> of the inputs seen, for fitting activation scale sets.</summary>
    public List<float[]> Samples { get; } = new();
    public int MaxSamples { get; init; } = 2048;
    private readonly object _lock = new();

    public void Add(float[] x, int tokens)
    {
        var local = new double[N * N];
        for (int t = 0; t < tokens; t++)
        {
            var v = x.AsSpan(t * N, N);
            for (int i = 0; i < N; i++)
            {
                double vi = v[i];
                for (int j = 0; j <= i; j++) local[i * N + j] += vi * v[j];
            }
        }
        lock (_lock)
        {
            for (int i = 0; i < N; i++)
                for (int j = 0; j <= i; j++) { H[i * N + j] += local[i * N + j]; if (i != j) H[j * N + i] += local[i * N + j]; }
            Count += tokens;
            for (int t = 0; t < tokens && Samples.Count < MaxSamples; t += 3) Samples.Add(x.AsSpan(t * N, N).ToArray());
        }
    }
}

/// <summary>
/// y = W·x for every token of a batch, with the NestQuant placement: the input is padded to the weight
/// width, rotated (the weights were rotated along their input dimension by the same R, so W·x = (W Rᵀ)(R x)),
/// and quantized per token before the product.
/// </summary>
internal sealed class Linear
{
    public Linear(int inDim, WeightMatrix weights, IRotation? rotation = null, VectorCodec? activations = null)
    {
        In = inDim;
        Weights = weights;
        Rotation = rotation;
        Activations = activations;
        if (weights.Cols < inDim) throw new ArgumentException("weights narrower than the input");
        if (rotation is not null && rotation.Length != weights.Cols) throw new ArgumentException("rotation length must equal the weight width");
        if (activations is not null && activations.Length != weights.Cols) throw new ArgumentException("activation codec length must equal the weight width");
    }

    public int In { get; }
    public int Out => Weights.Rows;
    public int Width => Weights.Cols;
    public WeightMatrix Weights { get; }
    public IRotation? Rotation { get; }
    public VectorCodec? Activations { get; }
    /// <summary>When set, every forward call adds its (rotated, unquantized) inputs to this accumulator.</summary>
    public HessianAccumulator? Calibration { get; set; }

    /// <summary>y[t, :] = W · x[t, :] for t &lt; tokens; x is [tokens][In], y is [tokens][Out].</summary>
    public void Forward(float[] x, int tokens, float[] y)
    {
        int width = Width;
        float[] input = x;
        if (Rotation is not null || Activations is not null || width != In || Calibration is not null)
        {
            input = new float[tokens * width];
            var raw = Calibration is not null ? new float[tokens * width] : null;
            ForTokens(tokens, In * 8, t =>
            {
                Span<float> buf = stackalloc float[width];
                buf.Clear();
                x.AsSpan(t * In, In).CopyTo(buf);
                var dst = input.AsSpan(t * width, width);
                if (Rotation is not null) Rotation.Apply(buf, dst); else buf.CopyTo(dst);
                if (raw is not null) dst.CopyTo(raw.AsSpan(t * width, width));
                if (Activations is not null) { dst.CopyTo(buf); Activations.Roundtrip(buf, dst); }
            });
            if (raw is not null) Calibration!.Add(raw, tokens);
        }
        long work = (long)tokens * Out * width;
        int chunks = work < 1 << 16 ? 1 : Math.Min(Out, 4 * Environment.ProcessorCount);
        int per = (Out + chunks - 1) / chunks;
        var weights = Weights;
        int outDim = Out;
        void RowRange(int c)
        {
            Span<float> scratch = stackalloc float[width];
            int end = Math.Min(outDim, (c + 1) * per);
            for (int r = c * per; r < end; r++)
            {
                var row = weights.Row(r, scratch);
                for (int t = 0; t < tokens; t++)
                    y[t * outDim + r] = TensorPrimitives.Dot(row, input.AsSpan(t * width, width));
            }
        }
        if (chunks == 1) RowRange(0);
        else Parallel.For(0, chunks, RowRange);
    }

    internal static void ForTokens(int tokens, int costPerToken, Action<int> body)
    {
        if ((long)tokens * costPerToken < 1 << 15) { for (int t = 0; t < tokens; t++) body(t); }
        else Parallel.For(0, tokens, body);
    }
}
