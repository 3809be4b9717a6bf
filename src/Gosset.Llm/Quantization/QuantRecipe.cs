namespace Gosset.Llm.Quantization;

/// <summary>
/// Everything needed to rebuild a quantized model's structure besides the weight codes: the spec and the
/// E8 scale sets actually used (published or fitted). Stored in .gqm headers.
/// </summary>
internal sealed record QuantRecipe(QuantSpec Spec, float[] WeightBetas, float[] ActivationBetas, float[] KeyBetas, float[] ValueBetas)
{
    /// <summary>Per layer: key shift, key scale, value shift, value scale (each kv_dim), or null.</summary>
    public float[][][]? KvAffine { get; init; }

    /// <summary>E8 box code tables (fitted block scales, index code, budget) per tensor kind, or null when that kind does not use the box code.</summary>
    public Gosset.Codes.E8BoxTable? WeightTable { get; init; }
    /// <summary>E8 box table of the activations.</summary>
    public Gosset.Codes.E8BoxTable? ActivationTable { get; init; }
    /// <summary>E8 box table of the keys.</summary>
    public Gosset.Codes.E8BoxTable? KeyTable { get; init; }
    /// <summary>E8 box table of the values.</summary>
    public Gosset.Codes.E8BoxTable? ValueTable { get; init; }

    public static QuantRecipe Published(QuantSpec spec) => new(spec,
        Set(spec, spec.Weights, TensorKind.Weights, spec.Scales), Set(spec, spec.Activations, TensorKind.Activations, spec.Scales),
        Set(spec, spec.Keys, TensorKind.Keys, spec.ScalesFor(true)), Set(spec, spec.Values, TensorKind.Values, spec.ScalesFor(true)));

    private static float[] Set(QuantSpec spec, TensorQuant t, TensorKind kind, int k) =>
        t.Method != QuantMethod.E8 ? []
        : spec.ScaleSet == ScaleSetChoice.Gaussian ? ScaleSets.Gaussian(t.E8Q, k)
        : ScaleSets.NestQuant(kind, t.E8Q, k);
}
