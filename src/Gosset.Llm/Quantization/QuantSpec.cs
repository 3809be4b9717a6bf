using System.Globalization;
using System.Text.RegularExpressions;

namespace Gosset.Llm.Quantization;

/// <summary>How one kind of tensor is quantized.</summary>
public enum QuantMethod
{
    /// <summary>Float32, not quantized.</summary>
    Fp,
    /// <summary>E8 Voronoi code with k scales per 8-block after a random rotation (NestQuant).</summary>
    E8,
    /// <summary>INT-b round-to-nearest with absmax scales per group, no rotation.</summary>
    Int,
    /// <summary>INT-b round-to-nearest after the same random rotation as E8.</summary>
    IntRot,
    /// <summary>
    /// The fast kernels' 4-bit E8 box code (<see cref="Gosset.Kernels.E8BoxCode"/>, 4.25 bits per entry plus an fp32 scale
    /// per row / vector) after the same random rotation; weights are stored as a <see cref="Gosset.Kernels.PackedE8Matrix"/>
    /// and products run on its kernels. Weights and activations only, 4 bits only.
    /// </summary>
    E8Box,
    /// <summary>
    /// The kernel-native E8 box code at b = 2, 3, 4 bits (<see cref="Gosset.Codes.E8BoxCodes"/>; user name <c>e8</c>): fitted
    /// block scales and index code per tensor kind, a fixed index budget per group, an 8-bit row scale.
    /// </summary>
    E8Kernel,
}

/// <summary>Which scale set the E8 codecs use.</summary>
public enum ScaleSetChoice
{
    /// <summary>The published NestQuant β₀ sets (per tensor kind), β = β₀ / q.</summary>
    NestQuant,
    /// <summary>The core library's set tuned on a Gaussian block model (what rotation makes of most data).</summary>
    Gaussian,
    /// <summary>Sets fitted on this model's rotated weights and on calibration activations / keys / values.</summary>
    Fitted,
}

/// <summary>Quantization of one tensor kind: method and bits per entry (before side information).</summary>
/// <param name="Method">The method.</param>
/// <param name="Bits">Nominal bits per entry (2..8); ignored for <see cref="QuantMethod.Fp"/>.</param>
public sealed record TensorQuant(QuantMethod Method, int Bits)
{
    /// <summary>Not quantized.</summary>
    public static TensorQuant Fp { get; } = new(QuantMethod.Fp, 32);
    /// <summary>True unless float.</summary>
    public bool IsQuantized => Method != QuantMethod.Fp;
    /// <summary>True when the method rotates first.</summary>
    public bool Rotates => Method is QuantMethod.E8 or QuantMethod.IntRot or QuantMethod.E8Box or QuantMethod.E8Kernel;
    /// <summary>Explicit E8 nesting ratio (0 = derived from <see cref="Bits"/>).</summary>
    public int QOverride { get; init; }
    /// <summary>E8 nesting ratio: <see cref="QOverride"/> when set, else q = round(2^b · 7/8) (q = 14 at 4 bits, 7 at 3 bits).</summary>
    public int E8Q => QOverride > 0 ? QOverride : Math.Max(2, (int)Math.Round(Math.Pow(2, Math.Min(Bits, 8)) * 7 / 8));
    /// <inheritdoc/>
    public override string ToString() => Method switch
    {
        QuantMethod.Fp => "fp",
        QuantMethod.E8 => $"e8-voronoi(q={E8Q})",
        QuantMethod.E8Kernel => $"e8(b={Bits})",
        QuantMethod.Int => $"int{Bits}",
        QuantMethod.E8Box => "e8-box4",
        _ => $"int{Bits}+rot",
    };
}

/// <summary>
/// A complete quantization recipe: method and bits for weights, activations, keys and values, plus the
/// knobs of each method. Parse the compact CLI form with <see cref="Parse"/> (e.g. "w4a4kv4" + "e8").
/// </summary>
public sealed record QuantSpec
{
    /// <summary>Weights of every linear layer (rows, along the input dimension).</summary>
    public TensorQuant Weights { get; init; } = TensorQuant.Fp;
    /// <summary>Input activations of every linear layer (per token).</summary>
    public TensorQuant Activations { get; init; } = TensorQuant.Fp;
    /// <summary>Key cache (per token, all KV heads share one scale).</summary>
    public TensorQuant Keys { get; init; } = TensorQuant.Fp;
    /// <summary>Value cache (per token, all KV heads share one scale).</summary>
    public TensorQuant Values { get; init; } = TensorQuant.Fp;
    /// <summary>INT group size for weights (entries per fp16 absmax scale).</summary>
    public int WeightGroup { get; init; } = 64;
    /// <summary>INT group size for activations; 0 = the whole vector (one scale per token).</summary>
    public int ActivationGroup { get; init; }
    /// <summary>INT group size for K/V; 0 = the whole kv vector of a token.</summary>
    public int KvGroup { get; init; }
    /// <summary>E8 scales per block (k).</summary>
    public int Scales { get; init; } = 4;
    /// <summary>E8 scales per block for K and V (0 = <see cref="Scales"/>).</summary>
    public int KvScales { get; init; }
    /// <summary>Scales per block for a tensor kind.</summary>
    public int ScalesFor(bool kv) => kv && KvScales > 0 ? KvScales : Scales;
    /// <summary>Published or fitted E8 scale sets.</summary>
    public ScaleSetChoice ScaleSet { get; init; } = ScaleSetChoice.NestQuant;
    /// <summary>LDLQ (GPTQ-style, block 8) error feedback for weights, with Hessians from calibration text.</summary>
    public bool Ldlq { get; init; }
    /// <summary>QA-LDLQ: LDLQ towards W·H·(H+J)⁻¹ with Hessian H+J, J the activation quantization noise (needs quantized activations).</summary>
    public bool QaLdlq { get; init; }
    /// <summary>Relative damping added to the Hessian diagonal for LDLQ.</summary>
    public double Damping { get; init; } = 0.01;
    /// <summary>Subtract a calibrated per-channel mean from K and V before quantizing (added back on read; a constant key offset does not change softmax).</summary>
    public bool KvCenter { get; init; }
    /// <summary>Divide K and V by a calibrated per-channel standard deviation before quantizing (multiplied back on read).</summary>
    public bool KvChannelScale { get; init; }
    /// <summary>
    /// Scale key channels by (E[q_c²] / Var k_c)^(1/4) before quantizing (calibrated): equalizes the error that
    /// each channel adds to the attention scores q·k rather than to k itself.
    /// </summary>
    public bool KeyQueryWeighting { get; init; }
    /// <summary>
    /// E8 K/V without per-token side information: one calibrated scale per layer (after the optional
    /// centering / channel scaling) instead of an fp16 RMS per token; the k per-block scales adapt to each head vector.
    /// </summary>
    public bool KvFixedScale { get; init; }
    /// <summary>E8 box code: scales per block for weights (K/V and activations use <see cref="Scales"/> / <see cref="KvScales"/> when set, else this).</summary>
    public int BoxScales { get; init; } = 4;
    /// <summary>E8 box code: index bits per 8-block (the fixed group budget); 0 = plain ⌈log2 k⌉-bit indices.</summary>
    public double BoxIndexBits { get; init; }
    /// <summary>
    /// Weight-only e8 layers multiply exact fp32 activations instead of the kernels' default int8 per 256-group
    /// (<see cref="Gosset.Kernels.PackedE8Matrix.DefaultActivationMode"/>); an ablation, slower.
    /// </summary>
    public bool FloatKernelActivations { get; init; }
    /// <summary>Seed of the random rotations.</summary>
    public ulong Seed { get; init; } = 0x9E3779B97F4A7C15;

    /// <summary>True when anything is quantized.</summary>
    public bool IsQuantized => Weights.IsQuantized || Activations.IsQuantized || Keys.IsQuantized || Values.IsQuantized;

    /// <summary>
    /// Parses "fp", or a concatenation of w&lt;b&gt;, a&lt;b&gt;, kv&lt;b&gt; (or k&lt;b&gt;, v&lt;b&gt;), e.g. "w4", "w4a4kv4", "w3a3kv3",
    /// with one method (e8, int, int-rot, e8-box) for every quantized tensor. With e8-box (4 bits only) weights and
    /// activations use the kernels' box code and the K/V cache the E8 Voronoi code at the same bits (the kernels have no KV path).
    /// </summary>
    public static QuantSpec Parse(string spec, string method = "e8")
        => ParseCore(spec, method);

    private static QuantSpec ParseCore(string spec, string method)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var m = ParseMethod(method);
        spec = spec.Trim().ToLowerInvariant();
        if (spec is "fp" or "fp32" or "none" or "") return new QuantSpec();
        var match = Regex.Match(spec, @"^(?:w(?<w>\d+))?(?:a(?<a>\d+))?(?:kv(?<kv>\d+)|(?:k(?<k>\d+))?(?:v(?<v>\d+))?)?$");
        if (!match.Success || match.Length == 0 || spec.Length == 0)
            throw new GossetException($"--quant \"{spec}\" is not understood; use fp or e.g. w4, w4a4, w4a4kv4, w3a3kv3, w4k4v8");
        TensorQuant T(string g)
        {
            if (!match.Groups[g].Success) return TensorQuant.Fp;
            int b = int.Parse(match.Groups[g].Value, CultureInfo.InvariantCulture);
            if (b is < 2 or > 8) throw new GossetException($"--quant: {b} bits is outside 2..8");
            if (m == QuantMethod.E8Box && g is "kv" or "k" or "v") return new TensorQuant(QuantMethod.E8, b);
            if (m == QuantMethod.E8Box && b != 4) throw new GossetException($"--method e8-box-fixed is a 4-bit code; --quant asks for {b} bits");
            if (m == QuantMethod.E8Kernel && b is < 2 or > 4) throw new GossetException($"--method e8 (the E8 box code) has 2, 3 or 4 bits; --quant asks for {b} bits");
            return new TensorQuant(m, b);
        }
        var kv = T("kv");
        return new QuantSpec
        {
            Weights = T("w"), Activations = T("a"),
            Keys = kv.IsQuantized ? kv : T("k"), Values = kv.IsQuantized ? kv : T("v"),
        };
    }

    /// <summary>Parses e8 | int | int-rot | e8-box | fp.</summary>
    public static QuantMethod ParseMethod(string method) => method.Trim().ToLowerInvariant() switch
    {
        "e8" => QuantMethod.E8Kernel,
        "e8-voronoi" or "nestquant" => QuantMethod.E8,
        "int" or "rtn" => QuantMethod.Int,
        "int-rot" or "introt" or "int+rot" or "quarot" => QuantMethod.IntRot,
        "e8-box-fixed" or "e8-box" or "e8box" => QuantMethod.E8Box,
        "fp" => QuantMethod.Fp,
        _ => throw new GossetException($"--method \"{method}\" is not one of e8, e8-voronoi, int, int-rot, e8-box-fixed"),
    };

    /// <summary>
    /// Throws a <see cref="GossetException"/> when the combination cannot run: e8-box only for weights and activations at
    /// 4 bits, e8-box activations only with e8-box weights (they are quantized inside the kernel), no LDLQ for e8-box weights.
    /// </summary>
    public void Validate()
    {
        if (Keys.Method == QuantMethod.E8Box || Values.Method == QuantMethod.E8Box)
            throw new GossetException("e8-box is a weight and activation format (the kernels have no KV cache path); use e8, int or int-rot for --keys/--values");
        foreach (var (t, what) in new[] { (Weights, "weights"), (Activations, "activations") })
            if (t.Method == QuantMethod.E8Box && t.Bits != 4) throw new GossetException($"e8-box is a 4-bit code; {what} ask for {t.Bits} bits");
        if (Activations.Method == QuantMethod.E8Box && Weights.Method != QuantMethod.E8Box)
            throw new GossetException("e8-box activations are quantized inside the e8-box kernels: they need e8-box weights (--weights e8-box:4)");
        if (Ldlq && Weights.Method == QuantMethod.E8Box)
            throw new GossetException("--ldlq is not available for e8-box weights (the kernels' encoder rounds each row on its own)");
    }

    /// <summary>A one-line description, e.g. "W e8(q=14) A e8(q=14) K e8(q=14) V e8(q=14) k=4 nestquant".</summary>
    public override string ToString()
    {
        if (!IsQuantized) return "fp";
        var s = $"W {Weights} A {Activations} K {Keys} V {Values}";
        if (new[] { Weights, Activations, Keys, Values }.Any(t => t.Method == QuantMethod.E8Kernel))
            s += $" box-k={BoxScales} index-bits={(!(BoxIndexBits > 0) ? "fixed" : BoxIndexBits.ToString(CultureInfo.InvariantCulture))}";
        if (new[] { Weights, Activations, Keys, Values }.Any(t => t.Method == QuantMethod.E8))
            s += $" k={Scales}{(KvScales > 0 && KvScales != Scales ? $" kv-k={KvScales}" : "")} {ScaleSet.ToString().ToLowerInvariant()}-scales";
        if (Weights.Method is QuantMethod.Int or QuantMethod.IntRot) s += $" wgroup={WeightGroup}";
        if (Ldlq) s += $" {(QaLdlq && Activations.IsQuantized ? "qa-ldlq" : "ldlq")}(damp={Damping.ToString(CultureInfo.InvariantCulture)})";
        if ((Keys.IsQuantized || Values.IsQuantized) && (KvCenter || KvChannelScale || KeyQueryWeighting || KvFixedScale))
            s += " kv-calib(" + string.Join("+", new[] { KvCenter ? "center" : null, KvChannelScale ? "scale" : null, KeyQueryWeighting ? "k-qweight" : null, KvFixedScale ? "fixed-scale" : null }.Where(x => x is not null)) + ")";
        return s;
    }
}
