namespace Gosset.Llm.Quantization;

/// <summary>
/// Everything needed to rebuild a quantized model's structure besides the weight codes: the spec and the
/// E8 scale sets actually used (published or fitted). Stored in .gqm headers.
/// </summary>
internal sealed record QuantRecipe(QuantSpec Spec, float[] WeightBetas, float[] ActivationBetas, float[] KeyBetas, float[] ValueBetas)
{
    /// <summary>Per layer: key shift, key scale, value shift, value scale (each kv_dim), or null.</summary>
    public float[][][]? KvAffine { get; init; }

    public static QuantRecipe Published(QuantSpec spec) => new(spec,
        ScaleSets.NestQuant(TensorKind.Weights, spec.Weights.E8Q, spec.Scales),
        ScaleSets.NestQuant(TensorKind.Activations, spec.Activations.E8Q, spec.Scales),
        ScaleSets.NestQuant(TensorKind.Keys, spec.Keys.E8Q, spec.Scales),
        ScaleSets.NestQuant(TensorKind.Values, spec.Values.E8Q, spec.Scales));
}
