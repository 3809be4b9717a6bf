using Gosset.Codes;
using Gosset.Kernels;
using Gosset.Rotations;
using Gosset.Llm.Quantization;

namespace Gosset.Llm.Inference;

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
/// and quantized per token before the product. Float weights run on the kernels' fp32 baseline
/// (<see cref="DenseGemv"/>), e8-box weights on the box-code kernels (with their activation quantization when
/// <see cref="KernelActivations"/> is <see cref="ActivationMode.E8Box4"/>); both use the kernels' row threading.
/// </summary>
internal sealed class Linear
{
    public Linear(int inDim, PackedMatrix weights, IRotation? rotation = null, VectorCodec? activations = null,
        ActivationMode kernelActivations = ActivationMode.Float32)
    {
        In = inDim;
        Weights = weights;
        Rotation = rotation;
        Activations = activations;
        KernelActivations = kernelActivations;
        if (kernelActivations != ActivationMode.Float32 && (weights is not PackedE8Matrix || activations is not null))
            throw new ArgumentException("kernel-quantized activations need box-code weights and no activation codec");
        if (weights.Cols < inDim) throw new ArgumentException("weights narrower than the input");
        if (rotation is not null && rotation.Length != weights.Cols) throw new ArgumentException("rotation length must equal the weight width");
        if (activations is not null && activations.Length != weights.Cols) throw new ArgumentException("activation codec length must equal the weight width");
    }

    public int In { get; }
    public int Out => Weights.Rows;
    public int Width => Weights.Cols;
    public PackedMatrix Weights { get; }
    public IRotation? Rotation { get; }
    public VectorCodec? Activations { get; }
    /// <summary>How the box-code kernels treat the activations (quantized inside the kernel for <see cref="ActivationMode.E8Box4"/>).</summary>
    public ActivationMode KernelActivations { get; }

    /// <summary>Stored bits of one input vector as this layer quantizes it (32 per entry when float).</summary>
    public double ActivationBits => Activations is not null ? Activations.Bits
        : KernelActivations == ActivationMode.E8Box4 ? E8BoxCode.BitsPerEntry(Width) * Width
        : KernelActivations == ActivationMode.Int8 ? (8.0 + 32.0 / 8) * Width // int8 values + one fp32 scale per 8-block
        : KernelActivations == ActivationMode.Int8Group ? 8.0 * Width + 32.0 * ((Width + 255) / 256) // int8 values + one fp32 scale per 256-group
        : 32.0 * In;
    /// <summary>When set, every forward call adds its (rotated, unquantized) inputs to this accumulator.</summary>
    public HessianAccumulator? Calibration { get; set; }

    /// <summary>
    /// y[t, :] = W · x[t, :] for t &lt; tokens; x is [tokens][In], y is [tokens][Out] (both may be longer). With a
    /// profile, input preparation is timed as <see cref="ProfilePart.ActivationPrep"/> and the product as <paramref name="part"/>.
    /// </summary>
    public void Forward(float[] x, int tokens, float[] y, InferenceProfile? prof = null, ProfilePart part = ProfilePart.FfnLinears)
    {
        long mark = prof is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
        int width = Width;
        float[] input = x;
        float[]? rented = null;
        // W4A4 on the kernels: activations coded with the E8 box code go to the integer kernels as codes
        // (doubled coordinates and block scales), never decoded to float.
        var boxCodec = Weights is PackedE8Matrix && Calibration is null ? Activations as E8BoxCodec : null;
        var codes = boxCodec is not null ? new Int8Activations(tokens, width) : null;
        if (Rotation is not null || Activations is not null || width != In || Calibration is not null)
        {
            // Pooled: the rotated, padded input [tokens, width] is the only scratch a product needs.
            input = rented = System.Buffers.ArrayPool<float>.Shared.Rent(tokens * width);
            var raw = Calibration is not null ? new float[tokens * width] : null;
            ForTokens(tokens, In * 8, t =>
            {
                Span<float> buf = width <= 8192 ? stackalloc float[width] : new float[width];
                buf.Clear();
                x.AsSpan(t * In, In).CopyTo(buf);
                var dst = input.AsSpan(t * width, width);
                if (Rotation is not null) Rotation.Apply(buf, dst); else buf.CopyTo(dst);
                if (raw is not null) dst.CopyTo(raw.AsSpan(t * width, width));
                if (boxCodec is not null)
                {
                    // One token (decoding) has its groups coded on all cores: the same code as the serial encoder's.
                    var code = System.Buffers.ArrayPool<byte>.Shared.Rent(boxCodec.CodeBytes);
                    if (tokens == 1) boxCodec.EncodeParallel(input, t * width, code); else boxCodec.Encode(dst, code);
                    boxCodec.ToBlockInt8(code, codes!.Values.AsSpan(t * width, width), codes.Scales.AsSpan(t * codes.Blocks, codes.Blocks));
                    System.Buffers.ArrayPool<byte>.Shared.Return(code);
                }
                else if (Activations is not null) { dst.CopyTo(buf); Activations.Roundtrip(buf, dst); }
            });
            if (raw is not null) Calibration!.Add(raw, tokens);
        }
        try
        {
            // Small products run on the calling thread (parallel overhead dominates below ~64k multiply-adds).
            int threads = (long)tokens * Out * width < 1 << 16 ? 1 : 0;
            // (Int8Group quantizes inside the kernel's activation layout: that time counts with the product.)
            if (prof is not null && Weights is PackedE8Matrix pb && KernelActivations == ActivationMode.Int8 && codes is null)
            {
                // Same arithmetic as Multiply(..., Int8): quantize, then the product on the int8 form, each timed.
                prof.Lap(ProfilePart.ActivationPrep, ref mark);
                var a8 = Int8Activations.Quantize(input.AsSpan(0, tokens * width), tokens, width);
                prof.Lap(ProfilePart.ActivationPrep, ref mark);
                pb.Multiply(a8, y.AsSpan(0, tokens * Out), null, threads);
                prof.Lap(part, ref mark);
                return;
            }
            prof?.Lap(ProfilePart.ActivationPrep, ref mark);
            if (codes is not null) ((PackedE8Matrix)Weights).Multiply(codes, y.AsSpan(0, tokens * Out), null, threads);
            else Weights.Multiply(input.AsSpan(0, tokens * width), y.AsSpan(0, tokens * Out), tokens, KernelActivations, threads);
            prof?.Lap(part, ref mark);
        }
        finally
        {
            if (rented is not null) System.Buffers.ArrayPool<float>.Shared.Return(rented);
        }
    }

    internal static void ForTokens(int tokens, int costPerToken, Action<int> body)
    {
        if ((long)tokens * costPerToken < 1 << 15) { for (int t = 0; t < tokens; t++) body(t); }
        else RowParallel.ForEach(tokens, body);
    }
}
