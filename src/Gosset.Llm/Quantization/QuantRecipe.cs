namespace Gosset.Llm.Quantization;

/// <summary>
/// Everything needed to rebuild a quantized model's structure besides the weight codes: the spec and the
/// E8 scale sets actually used (published or fitted). Stored in .gqm headers.
/// </summary>
internal sealed record QuantRecipe(QuantSpec Spec, float[] WeightBetas, float[] ActivationBetas, float[] KeyBetas, float[] ValueBetas)
{
    /// <summary>Per layer: key shift, key scale, value shift, value scale (each kv_dim), or null.</summary>
    public float[][][]? KvAffine { get; init; }

    /// <summary>The four box tables (weights, activations, keys, values) as JSON-friendly records for .gqm headers.</summary>
    public BoxTableRecord?[] BoxTableRecords() => [BoxTableRecord.Of(WeightTable), BoxTableRecord.Of(ActivationTable), BoxTableRecord.Of(KeyTable), BoxTableRecord.Of(ValueTable)];

    /// <summary>The recipe with tables read from a .gqm header (validated by <see cref="Gosset.Codes.E8BoxTable"/>'s constructor).</summary>
    public QuantRecipe WithBoxTables(BoxTableRecord?[]? t) => t is not { Length: 4 } ? this
        : this with { WeightTable = t[0]?.Table(), ActivationTable = t[1]?.Table(), KeyTable = t[2]?.Table(), ValueTable = t[3]?.Table() };

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

/// <summary>An <see cref="Gosset.Codes.E8BoxTable"/> as stored in a .gqm JSON header.</summary>
internal sealed record BoxTableRecord(int Bits, float[] BlockScales, float RowScaleBase, byte[] PairLengths, int GroupBlocks, int GroupIndexBits)
{
    public static BoxTableRecord? Of(Gosset.Codes.E8BoxTable? t) => t is null ? null
        : new(t.Bits, t.BlockScales, t.RowScaleBase, t.PairLengths, t.GroupBlocks, t.GroupIndexBits);

    /// <exception cref="InvalidDataException">A field is out of range.</exception>
    public Gosset.Codes.E8BoxTable Table()
    {
        try { return new Gosset.Codes.E8BoxTable(Bits, BlockScales ?? [], RowScaleBase, PairLengths ?? [], GroupBlocks, GroupIndexBits); }
        catch (ArgumentException e) { throw new InvalidDataException("bad e8 box table: " + e.Message); }
    }
}
