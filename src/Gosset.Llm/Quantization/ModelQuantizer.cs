using Gosset.Codes;
using Gosset.Kernels;
using Gosset.Rotations;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;

namespace Gosset.Llm.Quantization;

/// <summary>
/// Builds quantized models with the NestQuant placement: every linear layer's weights (rows, rotated along
/// the input dimension), the input activations of every linear layer (per token, same rotation) and the
/// K/V cache (per token; a per-head rotation is applied to queries, keys and values and undone after attention).
/// Embeddings, the classifier, norms, queries and softmax stay float.
/// </summary>
public static class ModelQuantizer
{
    internal static readonly string[] Names = ["wq", "wk", "wv", "wo", "w1", "w2", "w3"];

    /// <summary>Input group of a linear layer: layers in one group read the same activation.</summary>
    internal static int Group(string name) => name switch { "wq" or "wk" or "wv" => 0, "wo" => 1, "w1" or "w3" => 2, _ => 3 };

    /// <summary>
    /// Quantizes a model. Calibration tokens (a BOS-prefixed stream, scored in windows of
    /// <paramref name="calibCtx"/>) are needed for LDLQ and for fitted scale sets.
    /// </summary>
    public static LlamaModel Quantize(LlamaWeights weights, QuantSpec spec, int[]? calibTokens = null, int calibCtx = 512, int calibWindows = 4)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(spec);
        if (!spec.IsQuantized) return LlamaModel.FromWeights(weights);
        spec.Validate();
        var c = weights.Config;
        if (spec.Keys.Method == QuantMethod.E8 && c.KvDim % 8 != 0 || spec.Values.Method == QuantMethod.E8 && c.KvDim % 8 != 0)
            throw new GossetException($"E8 KV quantization needs kv_dim divisible by 8 (kv_dim = {c.KvDim})");
        var recipe = QuantRecipe.Published(spec);
        Calibration? cal = null;
        bool kvCal = (spec.Keys.IsQuantized || spec.Values.IsQuantized) && (spec.KvCenter || spec.KvChannelScale || spec.KeyQueryWeighting || spec.KvFixedScale);
        if (spec.Ldlq || spec.ScaleSet == ScaleSetChoice.Fitted || kvCal)
        {
            if (calibTokens is null || calibTokens.Length < 2)
                throw new GossetException("LDLQ, fitted scale sets and KV calibration need calibration text (--calib)");
            cal = Calibrate(weights, recipe, calibTokens, Math.Min(calibCtx, c.SeqLen), calibWindows);
            if (kvCal) recipe = recipe with { KvAffine = KvStatistics(cal, spec, c.KvDim) };
        }
        if (spec.ScaleSet == ScaleSetChoice.Fitted) recipe = FitScales(weights, recipe, cal!);
        recipe = FitBoxTables(weights, recipe, cal);
        var r = recipe;
        return Assemble(weights, recipe, calibration: false, (layer, name, codec, rotation, width) =>
        {
            float[] rows = RotatedRows(weights, layer, name, rotation, width, out int outDim);
            if (spec.Weights.Method == QuantMethod.E8Box) return PackedE8Matrix.Quantize(rows, outDim, width);
            if (codec is null) return new Float32Matrix(rows, outDim, width);
            var codes = new byte[outDim * codec.CodeBytes];
            Ldlq? ldlq = null;
            if (spec.Ldlq)
            {
                var acc = cal!.Hessians[layer][Group(name)];
                double[] h = acc.H;
                if (spec.QaLdlq && r.Spec.Activations.IsQuantized)
                    h = Ldlq.QaTarget(h, width, ActivationNoise(r, acc, width), rows, outDim);
                ldlq = new Ldlq(h, width, spec.Damping);
            }
            Parallel.For(0, outDim, o =>
            {
                var row = rows.AsSpan(o * width, width);
                var code = codes.AsSpan(o * codec.CodeBytes, codec.CodeBytes);
                if (ldlq is null) codec.Encode(row, code); else ldlq.QuantizeRow(codec, row, code);
            });
            // The e8 box code runs on the kernels: repack the canonical codes (the stored size stays the codec's).
            if (codec is E8BoxCodec bc) return PackedE8Matrix.FromCodes(bc.ToCodes(codes, outDim), bc.Bits * outDim);
            return new CodedMatrix(codec, codes, outDim);
        });
    }

    /// <summary>Relative squared error of the activation codec on the calibration inputs: J ≈ this × mean(diag H)·I.</summary>
    private static double ActivationNoise(QuantRecipe recipe, HessianAccumulator acc, int width)
    {
        var spec = recipe.Spec;
        var codec = Codec(spec.Activations, width, recipe.ActivationBetas, spec.Scales, spec.ActivationGroup, table: recipe.ActivationTable)!;
        double num = 0, den = 0;
        var y = new float[width];
        foreach (var x in acc.Samples)
        {
            codec.Roundtrip(x, y);
            for (int i = 0; i < width; i++) { double d = x[i] - y[i]; num += d * d; den += (double)x[i] * x[i]; }
        }
        return den > 0 ? num / den : 0;
    }

    internal static float[] Matrix(LlamaWeights w, int layer, string name) => name switch
    {
        "wq" => w.Wq[layer], "wk" => w.Wk[layer], "wv" => w.Wv[layer], "wo" => w.Wo[layer],
        "w1" => w.W1[layer], "w2" => w.W2[layer], _ => w.W3[layer],
    };

    internal static (int Out, int In) Shape(LlamaConfig c, string name) => name switch
    {
        "wq" or "wo" => (c.Dim, c.Dim), "wk" or "wv" => (c.KvDim, c.Dim),
        "w1" or "w3" => (c.HiddenDim, c.Dim), _ => (c.Dim, c.HiddenDim),
    };

    /// <summary>Rows padded to <paramref name="width"/> and rotated: row' = R·pad(row), so W·x = W'·(R·pad(x)).</summary>
    private static float[] RotatedRows(LlamaWeights w, int layer, string name, IRotation? rotation, int width, out int outDim)
    {
        var (o, i) = Shape(w.Config, name);
        outDim = o;
        float[] src = Matrix(w, layer, name);
        var rows = new float[o * width];
        var tmp = new float[width];
        for (int r = 0; r < o; r++)
        {
            Array.Clear(tmp);
            Array.Copy(src, r * i, tmp, 0, i);
            if (rotation is null) tmp.CopyTo(rows, r * width);
            else rotation.Apply(tmp, rows.AsSpan(r * width, width));
        }
        return rows;
    }

    /// <summary>Builds the model structure for a recipe; <paramref name="weightsFor"/> supplies each linear layer's weights.</summary>
    internal static LlamaModel Assemble(LlamaWeights w, QuantRecipe recipe, bool calibration,
        Func<int, string, VectorCodec?, IRotation?, int, PackedMatrix> weightsFor)
    {
        var m = Assemble(w.Config, w.TokenEmbedding, w.Classifier, w.RmsFinal, w.RmsAtt, w.RmsFfn, recipe, calibration, weightsFor);
        m.SetBiases(w); // q/k/v biases (Qwen2) stay float, added after the products
        return m;
    }

    internal static LlamaModel Assemble(LlamaConfig c, float[] embedding, float[] classifier, float[] rmsFinal, float[][] rmsAtt, float[][] rmsFfn,
        QuantRecipe recipe, bool calibration, Func<int, string, VectorCodec?, IRotation?, int, PackedMatrix> weightsFor)
    {
        var spec = recipe.Spec;
        bool rotate = spec.Weights.Rotates || spec.Activations.Rotates;
        bool e8 = spec.Weights.Method is QuantMethod.E8 or QuantMethod.E8Kernel || spec.Activations.Method is QuantMethod.E8 or QuantMethod.E8Kernel;
        var layers = new LayerBlock[c.Layers];
        var kv = new KvLayerFormat[c.Layers];
        for (int l = 0; l < c.Layers; l++)
        {
            var rotations = new IRotation?[4];
            var linears = new Dictionary<string, Linear>();
            foreach (string name in Names)
            {
                var (_, inDim) = Shape(c, name);
                int width = e8 ? (inDim + 7) / 8 * 8 : inDim;
                int g = Group(name);
                if (rotate) rotations[g] ??= Rotation.Create(width, spec.Seed + (ulong)(l * 8 + g));
                var rot = rotations[g];
                VectorCodec? wc = calibration ? null : Codec(spec.Weights, width, recipe.WeightBetas, spec.Scales, spec.WeightGroup, table: recipe.WeightTable, weights: true);
                VectorCodec? ac = calibration ? null : Codec(spec.Activations, width, recipe.ActivationBetas, spec.Scales, spec.ActivationGroup, table: recipe.ActivationTable);
                var wm = weightsFor(l, name, wc, rot, width);
                // Float activations meet kernel weights the way the kernels run fastest: int8 per 256-group on grid
                // scales (PackedE8Matrix.Int8Mode; per 8-block for older off-grid tables), as llama.cpp does with
                // q8_K activations, counted in the activation bits.
                var boxActs = calibration ? ActivationMode.Float32
                    : spec.Activations.Method == QuantMethod.E8Box ? ActivationMode.E8Box4
                    : !spec.Activations.IsQuantized && spec.Weights.Method == QuantMethod.E8Kernel && wm is PackedE8Matrix bw && !spec.FloatKernelActivations
                        ? bw.Int8Mode
                    : ActivationMode.Float32;
                linears[name] = new Linear(inDim, wm, rot, ac, boxActs);
            }
            layers[l] = new LayerBlock
            {
                RmsAtt = rmsAtt[l], RmsFfn = rmsFfn[l],
                Wq = linears["wq"], Wk = linears["wk"], Wv = linears["wv"], Wo = linears["wo"],
                W1 = linears["w1"], W2 = linears["w2"], W3 = linears["w3"],
            }.Stacked(); // q/k/v and gate/up in one product each where the weights allow
            var headRot = spec.Keys.Rotates || spec.Values.Rotates ? Rotation.Create(c.HeadSize, spec.Seed + 1000 + (ulong)l) : null;
            var aff = calibration ? null : recipe.KvAffine?[l];
            kv[l] = new KvLayerFormat(
                calibration ? null : Codec(spec.Keys, c.KvDim, recipe.KeyBetas, spec.Scales, spec.KvGroup, spec.KvFixedScale, recipe.KeyTable),
                calibration ? null : Codec(spec.Values, c.KvDim, recipe.ValueBetas, spec.Scales, spec.KvGroup, spec.KvFixedScale, recipe.ValueTable),
                headRot)
            {
                KeyShift = aff?[0], KeyScale = aff?[1], ValueShift = aff?[2], ValueScale = aff?[3],
            };
        }
        return new LlamaModel(c, embedding, classifier, rmsFinal, layers, kv, calibration ? "calibration" : spec.ToString()) { Recipe = recipe };
    }

    private static VectorCodec? Codec(TensorQuant t, int length, float[] betas, int scales, int group, bool fixedScale = false, Gosset.Codes.E8BoxTable? table = null, bool weights = false) => t.Method switch
    {
        QuantMethod.E8Kernel => new E8BoxCodec(length, table ?? throw new InvalidOperationException("E8 box table missing"), fixedScale) { SearchRowScale = weights },
        QuantMethod.Fp or QuantMethod.E8Box => null, // e8-box: PackedE8Matrix weights, activations quantized in the kernel
        QuantMethod.E8 => fixedScale ? new E8VoronoiCodec(length, t.E8Q, betas, E8Norm.Fixed, 1f) : new E8VoronoiCodec(length, t.E8Q, betas),
        _ => new IntCodec(length, t.Bits, group <= 0 ? length : group),
    };

    /// <summary>Inputs seen during calibration, in the rotated coordinates of the quantized model.</summary>
    internal sealed class Calibration
    {
        public required HessianAccumulator[][] Hessians { get; init; } // [layer][group]
        public required List<float[]>[] Keys { get; init; }   // [layer]
        public required List<float[]>[] Values { get; init; } // [layer]
        public required double[][] QueryEnergy { get; init; } // [layer][kv channel]: mean q² of the query heads reading it
    }

    /// <summary>Runs the float model with the recipe's rotations over calibration windows, collecting Hessians and samples.</summary>
    internal static Calibration Calibrate(LlamaWeights w, QuantRecipe recipe, int[] tokens, int ctx, int windows)
    {
        var c = w.Config;
        var model = Assemble(w, recipe, calibration: true, (layer, name, _, rotation, width) =>
            new Float32Matrix(RotatedRows(w, layer, name, rotation, width, out int o), o, width));
        var hs = new HessianAccumulator[c.Layers][];
        for (int l = 0; l < c.Layers; l++)
        {
            var b = model.Layers[l];
            hs[l] = [new(b.Wq.Width), new(b.Wo.Width), new(b.W1.Width), new(b.W2.Width)];
            b.Wq.Calibration = hs[l][0]; b.Wo.Calibration = hs[l][1]; b.W1.Calibration = hs[l][2]; b.W2.Calibration = hs[l][3];
        }
        var keys = Enumerable.Range(0, c.Layers).Select(_ => new List<float[]>()).ToArray();
        var values = Enumerable.Range(0, c.Layers).Select(_ => new List<float[]>()).ToArray();
        int kvDim = c.KvDim, dim = c.Dim, hsz = c.HeadSize, groupSize = c.Heads / c.KvHeads;
        var qe = Enumerable.Range(0, c.Layers).Select(_ => new double[kvDim]).ToArray();
        model.KvTap = (layer, q, k, v, T) =>
        {
            for (int t = 0; t < T; t++)
                for (int i = 0; i < dim; i++)
                {
                    int head = i / hsz;
                    qe[layer][(head / groupSize) * hsz + i % hsz] += (double)q[t * dim + i] * q[t * dim + i];
                }
            for (int t = 0; t < T; t += 3)
            {
                keys[layer].Add(k.AsSpan(t * kvDim, kvDim).ToArray());
                values[layer].Add(v.AsSpan(t * kvDim, kvDim).ToArray());
            }
        };
        int n = Math.Min(windows, Evaluation.Evaluator.WindowCount(tokens.Length, ctx));
        for (int i = 0; i < n; i++)
        {
            int len = Math.Min(ctx, tokens.Length - 1 - i * ctx);
            model.ForwardWindow(tokens.AsSpan(i * ctx, len));
        }
        return new Calibration { Hessians = hs, Keys = keys, Values = values, QueryEnergy = qe };
    }

    /// <summary>K or V samples of all layers after the recipe's calibrated shift and scale (what the codec sees).</summary>
    private static List<float[]> Transformed(List<float[]>[] perLayer, QuantRecipe recipe, int which)
    {
        var r = new List<float[]>();
        for (int l = 0; l < perLayer.Length; l++)
        {
            var aff = recipe.KvAffine?[l];
            foreach (var x in perLayer[l])
            {
                var y = new float[x.Length];
                KvLayerFormat.Forward(x, aff?[which], aff?[which + 1], y);
                r.Add(y);
            }
        }
        return r;
    }

    /// <summary>Per-layer channel means and standard deviations of K and V on calibration text.</summary>
    private static float[][][] KvStatistics(Calibration cal, QuantSpec spec, int kvDim)
    {
        float[][] Stats(List<float[]> xs, double[]? queryEnergy)
        {
            var mean = new double[kvDim];
            var sq = new double[kvDim];
            foreach (var x in xs) for (int i = 0; i < kvDim; i++) mean[i] += x[i];
            for (int i = 0; i < kvDim; i++) mean[i] /= Math.Max(1, xs.Count);
            foreach (var x in xs) for (int i = 0; i < kvDim; i++) { double d = x[i] - (spec.KvCenter ? mean[i] : 0); sq[i] += d * d; }
            var shift = mean.Select(m => spec.KvCenter ? (float)m : 0f).ToArray();
            var scale = sq.Select(s => spec.KvChannelScale ? (float)Math.Max(Math.Sqrt(s / Math.Max(1, xs.Count)), 1e-6) : 1f).ToArray();
            if (queryEnergy is not null)
                for (int i = 0; i < kvDim; i++)
                {
                    // Stored k' = (k − μ)/s with s = (Var k / E q²)^(1/4): the score error Σ q_c e_c is then balanced over channels.
                    double var = Math.Max(sq[i] / Math.Max(1, xs.Count), 1e-12), qq = Math.Max(queryEnergy[i], 1e-12);
                    scale[i] = (float)Math.Pow(var / qq, 0.25);
                }
            return [shift, scale];
        }
        // With a fixed scale the transformed vectors are normalised to unit RMS over the calibration set.
        void Normalize(List<float[]> xs, float[][] st)
        {
            if (!spec.KvFixedScale) return;
            double ss = 0; long n = 0;
            var y = new float[kvDim];
            foreach (var x in xs) { KvLayerFormat.Forward(x, st[0], st[1], y); foreach (float t in y) ss += (double)t * t; n += kvDim; }
            float rms = (float)Math.Sqrt(ss / Math.Max(1, n));
            if (rms > 0) for (int i = 0; i < kvDim; i++) st[1][i] *= rms;
        }
        var r = new float[cal.Keys.Length][][];
        for (int l = 0; l < r.Length; l++)
        {
            var k = Stats(cal.Keys[l], spec.KeyQueryWeighting ? cal.QueryEnergy[l] : null);
            var v = Stats(cal.Values[l], null);
            Normalize(cal.Keys[l], k);
            Normalize(cal.Values[l], v);
            r[l] = [k[0], k[1], v[0], v[1]];
        }
        return r;
    }

    /// <summary>
    /// Fits the E8 box tables of the tensor kinds that use the box code: weights on this model's rotated rows;
    /// activations, keys and values on calibration samples (after the KV shift/scale), or, without
    /// calibration, on iid Gaussian vectors (what the rotation makes of typical activations).
    /// </summary>
    private static QuantRecipe FitBoxTables(LlamaWeights w, QuantRecipe recipe, Calibration? cal)
    {
        var spec = recipe.Spec;
        if (!new[] { spec.Weights, spec.Activations, spec.Keys, spec.Values }.Any(t => t.Method == QuantMethod.E8Kernel)) return recipe;
        List<float[]>? rows = null;
        if (spec.Weights.Method == QuantMethod.E8Kernel)
        {
            var all = new List<float[]>();
            Assemble(w, recipe, calibration: true, (layer, name, _, rotation, width) =>
            {
                float[] r = RotatedRows(w, layer, name, rotation, width, out int o);
                for (int i = 0; i < o; i++) all.Add(r.AsSpan(i * width, width).ToArray());
                return new Float32Matrix(r, o, width);
            });
            rows = all;
        }
        return FitBoxTables(recipe, rows, w.Config.KvDim, cal);
    }

    /// <summary>
    /// Fits the E8 box tables from rotated weight rows (all of them, or a sample when a checkpoint is streamed) and,
    /// for activations, keys and values, from calibration samples or iid Gaussian vectors.
    /// </summary>
    internal static QuantRecipe FitBoxTables(QuantRecipe recipe, List<float[]>? weightRows, int kvDim, Calibration? cal)
    {
        var spec = recipe.Spec;
        if (!new[] { spec.Weights, spec.Activations, spec.Keys, spec.Values }.Any(t => t.Method == QuantMethod.E8Kernel)) return recipe;
        Gosset.Codes.E8BoxTable Fit(List<float[]> rows, int bits, int k) => Gosset.Codes.E8BoxTable.Fit(rows, bits, k, spec.BoxIndexBits > 0 ? spec.BoxIndexBits : double.NaN);
        List<float[]> Gaussian(int len)
        {
            var rng = new Gosset.Util.SplitMix64(0xB0C5UL);
            return Enumerable.Range(0, 2048).Select(_ => Enumerable.Range(0, len).Select(_ => (float)rng.NextGaussian()).ToArray()).ToList();
        }
        Gosset.Codes.E8BoxTable? wt = null, at = null, kt = null, vt = null;
        if (spec.Weights.Method == QuantMethod.E8Kernel)
            wt = Fit(weightRows ?? throw new ArgumentNullException(nameof(weightRows)), spec.Weights.Bits, spec.BoxScales);
        int kAct = spec.BoxScales, kKv = spec.KvScales > 0 ? spec.KvScales : spec.BoxScales;
        if (spec.Activations.Method == QuantMethod.E8Kernel)
            at = Fit(cal is null ? Gaussian(64) : cal.Hessians.SelectMany(h => h).SelectMany(h => h.Samples).ToList(), spec.Activations.Bits, kAct);
        if (spec.Keys.Method == QuantMethod.E8Kernel)
            kt = Fit(cal is null ? Gaussian(kvDim) : Transformed(cal.Keys, recipe, 0), spec.Keys.Bits, kKv);
        if (spec.Values.Method == QuantMethod.E8Kernel)
            vt = Fit(cal is null ? Gaussian(kvDim) : Transformed(cal.Values, recipe, 2), spec.Values.Bits, kKv);
        return recipe with { WeightTable = wt, ActivationTable = at, KeyTable = kt, ValueTable = vt };
    }

    private static QuantRecipe FitScales(LlamaWeights w, QuantRecipe recipe, Calibration cal)
    {
        var spec = recipe.Spec;
        const int maxBlocks = 16384;
        float[] wb = recipe.WeightBetas, ab = recipe.ActivationBetas, kb = recipe.KeyBetas, vb = recipe.ValueBetas;
        if (spec.Weights.Method == QuantMethod.E8)
        {
            var rows = new List<float[]>();
            var probe = Assemble(w, recipe, calibration: true, (layer, name, _, rotation, width) =>
            {
                float[] r = RotatedRows(w, layer, name, rotation, width, out int o);
                for (int i = 0; i < o; i++) rows.Add(r.AsSpan(i * width, width).ToArray());
                return new Float32Matrix(r, o, width);
            });
            wb = ScaleSets.Fit(ScaleSets.NormalizedBlocks(rows, maxBlocks), spec.Weights.E8Q, spec.Scales);
        }
        if (spec.Activations.Method == QuantMethod.E8)
            ab = ScaleSets.Fit(ScaleSets.NormalizedBlocks(cal.Hessians.SelectMany(h => h).SelectMany(h => h.Samples).ToList(), maxBlocks), spec.Activations.E8Q, spec.Scales);
        Func<IReadOnlyList<float[]>, int, float[]> blocks = spec.KvFixedScale ? ScaleSets.RawBlocks : ScaleSets.NormalizedBlocks;
        if (spec.Keys.Method == QuantMethod.E8) kb = ScaleSets.Fit(blocks(Transformed(cal.Keys, recipe, 0), maxBlocks), spec.Keys.E8Q, spec.ScalesFor(true));
        if (spec.Values.Method == QuantMethod.E8) vb = ScaleSets.Fit(blocks(Transformed(cal.Values, recipe, 2), maxBlocks), spec.Values.E8Q, spec.ScalesFor(true));
        return recipe with { WeightBetas = wb, ActivationBetas = ab, KeyBetas = kb, ValueBetas = vb };
    }
}

/// <summary>
/// The classifier of a quantized model. <c>int8</c> (the default with <c>--quant w…</c>): the one INT quantizer at 8 bits
/// per weight with an fp16 step per 256 (<see cref="PackedInt8Matrix"/>, 8.06 bits), on the int8 kernels; <c>e8</c>: rows
/// rotated along the model dimension and coded with the linear layers' 4-bit e8 box code (same fitted table), on the
/// packed kernels with int8 activations. With tied embeddings the token lookup keeps the source table and the
/// classifier gets this separate copy; both count.
/// </summary>
public static class ClassifierQuantizer
{
    /// <summary>The classifier formats: the checkpoint's precision, the 8-bit INT copy, the 4-bit e8 copy.</summary>
    public static readonly string[] Formats = ["source", "int8", "e8"];

    /// <summary>The format a quantized model gets when --classifier is not given: 8 bits (llama.cpp's Q4_K_M stores it in 6.56).</summary>
    public const string DefaultFormat = "int8";

    /// <summary>The 8-bit classifier from a row source, filled in parallel.</summary>
    internal static Linear Int8Layer(int vocab, int dim, Action<int, Span<float>> row)
    {
        var m = PackedInt8Matrix.Create(vocab, dim);
        Parallel.For(0, vocab, () => new float[dim], (r, _, buf) =>
        {
            Array.Clear(buf);
            row(r, buf);
            m.EncodeRow(r, buf);
            return buf;
        }, _ => { });
        return new Linear(dim, m);
    }
    /// <summary>Offset added to the recipe seed for the classifier's input rotation (layers use seed + 8·layer + group, KV heads seed + 1000 + layer).</summary>
    internal const ulong SeedOffset = 0xC1A55_0000;
    private const int ChunkRows = 4096;

    /// <summary>The codec and input rotation of a quantized classifier for a recipe; throws unless the weights use e8.</summary>
    internal static (E8BoxCodec Codec, IRotation Rotation) Coding(QuantRecipe recipe, int dim)
    {
        if (recipe.Spec.Weights.Method != QuantMethod.E8Kernel || recipe.WeightTable is null)
            throw new GossetException("--classifier e8 needs e8-quantized weights (--method e8, the default, with --quant w…)");
        int width = (dim + 7) / 8 * 8;
        return (new E8BoxCodec(width, recipe.WeightTable), Rotation.Create(width, recipe.Spec.Seed + SeedOffset));
    }

    /// <summary>Codes of rows [r0, r1): each row (read by <paramref name="row"/> into a zeroed span of dim floats) padded, rotated and encoded.</summary>
    internal static void EncodeRows(E8BoxCodec codec, IRotation rotation, int dim, int r0, int r1, Action<int, Span<float>> row, byte[] codes)
    {
        int width = codec.Length, cb = codec.CodeBytes;
        Parallel.For(r0, r1, () => (new float[width], new float[width]), (r, _, buf) =>
        {
            Array.Clear(buf.Item1);
            row(r, buf.Item1.AsSpan(0, dim));
            rotation.Apply(buf.Item1, buf.Item2);
            codec.Encode(buf.Item2, codes.AsSpan((r - r0) * cb, cb));
            return buf;
        }, _ => { });
    }

    /// <summary>Copies the rows of <paramref name="chunk"/> into <paramref name="all"/> from row <paramref name="r0"/>.</summary>
    internal static void CopyRows(E8BoxCodes chunk, E8BoxCodes all, int r0)
    {
        int n = chunk.Rows, cols = all.Cols, blocks = all.Blocks;
        chunk.U.AsSpan(0, n * cols).CopyTo(all.U.AsSpan(r0 * cols));
        chunk.ScaleIndex.AsSpan(0, n * blocks).CopyTo(all.ScaleIndex.AsSpan(r0 * blocks));
        chunk.RowScale.AsSpan(0, n).CopyTo(all.RowScale.AsSpan(r0));
    }

    /// <summary>The classifier layer on the kernels for codes of every row.</summary>
    internal static Linear Layer(E8BoxCodes codes, E8BoxCodec codec, IRotation rotation, int dim)
    {
        var packed = PackedE8Matrix.FromCodes(codes, codec.Bits * codes.Rows);
        return new(dim, packed, rotation, null, packed.Int8Mode);
    }

    /// <summary>
    /// Replaces the classifier of a quantized model (weights in e8) by its e8 box-coded copy, encoded in chunks of rows
    /// from the classifier as loaded (float32 or 16-bit). The token embedding is left as it is.
    /// </summary>
    /// <exception cref="GossetException">The model is not quantized (with e8 weights for <c>e8</c>), or its classifier is already quantized.</exception>
    public static void Quantize(LlamaModel model, string format = "e8")
    {
        ArgumentNullException.ThrowIfNull(model);
        var recipe = model.Recipe ?? throw new GossetException($"--classifier {format} needs a quantized model (--quant w…)");
        if (model.ClassifierFormat != "source") throw new GossetException("the classifier is already quantized");
        var c = model.Config;
        if (format == "int8")
        {
            var w = model.Classifier.Weights;
            model.SetClassifier(Int8Layer(c.VocabSize, c.Dim, (r, dst) => w.Row(r, dst).CopyTo(dst)), "int8");
            return;
        }
        if (format != "e8") throw new GossetException($"--classifier \"{format}\" is not one of {string.Join(", ", Formats)}");
        var (codec, rotation) = Coding(recipe, c.Dim);
        var src = model.Classifier.Weights;
        var all = new E8BoxCodes(c.VocabSize, codec.Length, codec.Table.Bits, codec.Table.BlockScales);
        var buf = new byte[(long)Math.Min(ChunkRows, c.VocabSize) * codec.CodeBytes];
        for (int r0 = 0; r0 < c.VocabSize; r0 += ChunkRows)
        {
            int r1 = Math.Min(c.VocabSize, r0 + ChunkRows);
            EncodeRows(codec, rotation, c.Dim, r0, r1, (r, dst) => src.Row(r, dst).CopyTo(dst), buf);
            CopyRows(codec.ToCodes(buf, r1 - r0), all, r0);
        }
        model.SetClassifier(Layer(all, codec, rotation, c.Dim), "e8");
    }
}
