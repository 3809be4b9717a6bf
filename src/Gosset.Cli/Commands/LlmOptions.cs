using System.CommandLine;
using System.Globalization;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;
using Gosset.Llm.Quantization;
using Gosset.Llm.Tokenization;

namespace Gosset.Cli.Commands;

/// <summary>Options shared by the LLM commands (model, tokenizer, quantization recipe) and the code that applies them.</summary>
internal sealed class LlmOptions
{
    public Option<string> Model { get; } = new("--model") { Description = "llama2.c checkpoint (.bin, v0 or v1), Hugging Face folder (config.json + safetensors) or quantized .gqm", Required = true };
    public Option<string?> Tokenizer { get; } = new("--tokenizer") { Description = "tokenizer (llama2.c .bin, SentencePiece .model or HF tokenizer.json); default: the one stored in a .gqm, else tok512.bin / tokenizer.bin / tokenizer.json / tokenizer.model next to the model" };
    public Option<string> Quant { get; } = new("--quant") { Description = "fp | w4 | w4a4 | w4a4kv4 | w3a3kv3 | w4k4v8 … (bits per weight / activation / KV entry)", DefaultValueFactory = _ => "fp" };
    public Option<string> Method { get; } = new("--method") { Description = "e8 (default: the kernel-native E8 box code, b = 2..4) | e8-voronoi (E8/qE8 Voronoi code, NestQuant) | int | int-rot | e8-box-fixed (the old fixed-scale 4-bit box code): method for every tensor --quant quantizes", DefaultValueFactory = _ => "e8" };
    public Option<string> Recipe { get; } = new("--recipe") { Description = "best (default: with --method e8, the best measured recipe: LDLQ / QA-LDLQ, KV centering and key q-weighting, calibrated on --calib or, for eval, on the text after the scored windows) | plain (only what the flags ask)", DefaultValueFactory = _ => "best" };
    public Option<int> BoxK { get; } = new("--box-k") { Description = "E8 box code: block scales per tensor kind (1..16)", DefaultValueFactory = _ => 4 };
    public Option<double> IndexBits { get; } = new("--index-bits") { Description = "E8 box code: scale-index bits per 8-block inside each group's fixed budget (0 = plain ceil(log2 k)-bit indices)", DefaultValueFactory = _ => 0 };
    public Option<string?> WeightsQ { get; } = new("--weights") { Description = "override for weights: fp or METHOD:BITS[:Q] (e.g. e8:4, int-rot:4, e8:4:16 for q = 16, e8-box:4)" };
    public Option<string?> ActivationsQ { get; } = new("--activations") { Description = "override for activations: fp or METHOD:BITS" };
    public Option<string?> KeysQ { get; } = new("--keys") { Description = "override for the K cache: fp or METHOD:BITS" };
    public Option<string?> ValuesQ { get; } = new("--values") { Description = "override for the V cache: fp or METHOD:BITS" };
    public Option<string> Scales { get; } = new("--scales") { Description = "E8 scale sets: nestquant (published), gaussian (core default tuned on Gaussian blocks) or fitted (on this model's weights and calibration data)", DefaultValueFactory = _ => "nestquant" };
    public Option<int> K { get; } = new("--k") { Description = "E8 scales per block", DefaultValueFactory = _ => 4 };
    public Option<int> KvK { get; } = new("--kv-k") { Description = "E8 scales per block for K and V (0 = --k)", DefaultValueFactory = _ => 0 };
    public Option<int> WeightGroup { get; } = new("--wgroup") { Description = "INT weight group size (entries per fp16 scale)", DefaultValueFactory = _ => 64 };
    public Option<int> ActGroup { get; } = new("--agroup") { Description = "INT activation group size (0 = one scale per token)", DefaultValueFactory = _ => 0 };
    public Option<int> KvGroup { get; } = new("--kvgroup") { Description = "INT K/V group size (0 = one scale per token for all heads)", DefaultValueFactory = _ => 0 };
    public Option<bool> Ldlq { get; } = new("--ldlq") { Description = "LDLQ (GPTQ-style, block 8) error feedback for weights; needs --calib" };
    public Option<bool> QaLdlq { get; } = new("--qa-ldlq") { Description = "with --ldlq: QA-LDLQ, accounting for the activation quantization noise" };
    public Option<double> Damping { get; } = new("--damping") { Description = "LDLQ Hessian damping (fraction of mean diagonal)", DefaultValueFactory = _ => 0.01 };
    public Option<bool> KvCenter { get; } = new("--kv-center") { Description = "subtract calibrated per-channel means from K and V before quantizing; needs --calib" };
    public Option<bool> KvScale { get; } = new("--kv-scale") { Description = "divide K and V by calibrated per-channel standard deviations before quantizing; needs --calib" };
    public Option<bool> KvQWeight { get; } = new("--kv-qweight") { Description = "scale key channels by (E[q²]/Var k)^(1/4) before quantizing (balances the error in q·k); needs --calib" };
    public Option<bool> Fp32Activations { get; } = new("--fp32-activations") { Description = "Weight-only e8 layers: exact fp32 activations in the kernels instead of the default int8 (per 256-group on the kernel grid; slower; an ablation)" };
    public Option<bool> KvFixed { get; } = new("--kv-fixed-scale") { Description = "E8 K/V: one calibrated scale per layer instead of an fp16 scale per token (saves 16 bits per token and K/V); needs --calib" };
    public Option<string?> Calib { get; } = new("--calib") { Description = "calibration text for LDLQ / fitted scales" };
    public Option<int> CalibWindows { get; } = new("--calib-windows") { Description = "calibration windows of 512 tokens", DefaultValueFactory = _ => 4 };
    public Option<ulong> Seed { get; } = new("--rotation-seed") { Description = "seed of the random rotations", DefaultValueFactory = _ => 0x9E3779B97F4A7C15 };

    public Option<string?> Classifier { get; } = new("--classifier") { Description = "int8 (default with --quant w…: an 8-bit copy, one fp16 step per 256 weights, 8.06 bits, on the int8 kernels) | source (the checkpoint's precision) | e8 (a 4-bit e8 box-coded copy); a copy is counted in the bits, the token lookup keeps the source table" };

    /// <summary>The --classifier value when given, checked; null when not given.</summary>
    public string? ExplicitClassifier(ParseResult pr)
    {
        string? v = pr.GetValue(Classifier)?.Trim().ToLowerInvariant();
        if (v is null) return null;
        return ClassifierQuantizer.Formats.Contains(v) ? v : throw new GossetException($"--classifier \"{v}\" is not one of {string.Join(", ", ClassifierQuantizer.Formats)}");
    }

    /// <summary>The classifier format: the --classifier value, else int8 for a quantized model and source for a float one.</summary>
    public string ClassifierFormat(ParseResult pr, bool quantized) => ExplicitClassifier(pr) ?? (quantized ? ClassifierQuantizer.DefaultFormat : "source");

    public Option<string?> Reference { get; } = new("--reference") { Description = "float model to compare a .gqm against (KL, top-1); a .gqm never opens its source otherwise" };

    /// <summary>Token ids that end generation for the loaded model (set by <see cref="Load"/>).</summary>
    public int[] StopIds { get; private set; } = [1];

    /// <summary>llama2.c stops at BOS (id 1); other tokenizers at their end-of-sequence token.</summary>
    private static int[] DefaultStops(ITextTokenizer t) => t is Llama2cTokenizer ? [1] : [t.EosId];

    public void AddTo(Command cmd, bool quantOptions = true)
    {
        cmd.Options.Add(Model);
        cmd.Options.Add(Tokenizer);
        cmd.Options.Add(Reference);
        if (!quantOptions) return;
        foreach (var o in new Option[] { Classifier, Quant, Method, Recipe, BoxK, IndexBits, WeightsQ, ActivationsQ, KeysQ, ValuesQ, Scales, K, KvK, WeightGroup, ActGroup, KvGroup, Ldlq, QaLdlq, Damping, KvCenter, KvScale, KvQWeight, KvFixed, Fp32Activations, Calib, CalibWindows, Seed })
            cmd.Options.Add(o);
    }

    /// <summary>True when a recipe needs calibration text (LDLQ, fitted scale sets, KV statistics).</summary>
    public static bool NeedsCalibration(QuantSpec s) =>
        s.Ldlq || s.ScaleSet == ScaleSetChoice.Fitted || s.KvCenter || s.KvChannelScale || s.KeyQueryWeighting || s.KvFixedScale;

    /// <summary>
    /// The recipe a command runs when no calibration text is available: the best recipe falls back to the plain one
    /// (RTN, tables fitted to the weights, Gaussian-fitted activation/KV tables) when that needs none; null when it cannot.
    /// </summary>
    public QuantSpec? SpecWithoutCalibration(ParseResult pr)
    {
        var spec = Spec(pr);
        if (!NeedsCalibration(spec)) return spec;
        bool best = (pr.GetValue(Recipe) ?? "best").Trim().Equals("best", StringComparison.OrdinalIgnoreCase);
        var plain = SpecPlain(pr);
        return best && !NeedsCalibration(plain) ? plain : null;
    }

    public QuantSpec Spec(ParseResult pr)
    {
        var spec = QuantSpec.Parse(pr.GetValue(Quant) ?? "fp", pr.GetValue(Method) ?? "e8");
        static TensorQuant? Over(string? s)
        {
            if (string.IsNullOrWhiteSpace(s)) return null;
            if (s.Trim().Equals("fp", StringComparison.OrdinalIgnoreCase)) return TensorQuant.Fp;
            var parts = s.Split(':');
            if (parts.Length is < 2 or > 3 || !int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int b) || b is < 2 or > 8)
                throw new GossetException($"\"{s}\" is not fp or METHOD:BITS[:Q] (bits 2..8)");
            int q = 0;
            if (parts.Length == 3 && (!int.TryParse(parts[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out q) || q is < 2 or > 256))
                throw new GossetException($"\"{s}\": the E8 nesting ratio q must be 2..256");
            return new TensorQuant(QuantSpec.ParseMethod(parts[0]), b) { QOverride = q };
        }
        spec = spec with
        {
            Weights = Over(pr.GetValue(WeightsQ)) ?? spec.Weights,
            Activations = Over(pr.GetValue(ActivationsQ)) ?? spec.Activations,
            Keys = Over(pr.GetValue(KeysQ)) ?? spec.Keys,
            Values = Over(pr.GetValue(ValuesQ)) ?? spec.Values,
            ScaleSet = (pr.GetValue(Scales) ?? "nestquant").ToLowerInvariant() switch
            {
                "nestquant" or "published" => ScaleSetChoice.NestQuant,
                "fitted" or "fit" => ScaleSetChoice.Fitted,
                "gaussian" or "default" => ScaleSetChoice.Gaussian,
                var x => throw new GossetException($"--scales \"{x}\" is not nestquant, gaussian or fitted"),
            },
            Scales = Check(pr.GetValue(K), 1, 16, "--k"),
            KvScales = Check(pr.GetValue(KvK), 0, 16, "--kv-k"),
            WeightGroup = Check(pr.GetValue(WeightGroup), 8, 1 << 20, "--wgroup"),
            ActivationGroup = Check(pr.GetValue(ActGroup), 0, 1 << 20, "--agroup"),
            KvGroup = Check(pr.GetValue(KvGroup), 0, 1 << 20, "--kvgroup"),
            Ldlq = pr.GetValue(Ldlq) || pr.GetValue(QaLdlq),
            QaLdlq = pr.GetValue(QaLdlq),
            Damping = pr.GetValue(Damping),
            KvCenter = pr.GetValue(KvCenter),
            KvChannelScale = pr.GetValue(KvScale),
            KeyQueryWeighting = pr.GetValue(KvQWeight),
            KvFixedScale = pr.GetValue(KvFixed),
            FloatKernelActivations = pr.GetValue(Fp32Activations),
            Seed = pr.GetValue(Seed),
            BoxScales = Check(pr.GetValue(BoxK), 1, 16, "--box-k"),
            BoxIndexBits = pr.GetValue(IndexBits) is double ib && ib > 0 ? ib : 0,
        };
        string recipe = (pr.GetValue(Recipe) ?? "best").Trim().ToLowerInvariant();
        if (recipe is not ("best" or "plain")) throw new GossetException($"--recipe \"{recipe}\" is not best or plain");
        if (recipe == "best") spec = BestRecipe(spec);
        return spec;
    }

    /// <summary>
    /// The best measured recipe on the E8 box code (docs/results.md): LDLQ for weights (QA-LDLQ when activations
    /// are quantized), K/V centering and key q-weighting. Applies only when every quantized tensor uses e8.
    /// </summary>
    internal static QuantSpec BestRecipe(QuantSpec spec)
    {
        var ts = new[] { spec.Weights, spec.Activations, spec.Keys, spec.Values }.Where(t => t.IsQuantized).ToArray();
        if (ts.Length == 0 || ts.Any(t => t.Method != QuantMethod.E8Kernel)) return spec;
        bool kv = spec.Keys.IsQuantized || spec.Values.IsQuantized;
        return spec with
        {
            Ldlq = spec.Weights.IsQuantized || spec.Ldlq,
            QaLdlq = spec.QaLdlq || spec.Weights.IsQuantized && spec.Activations.IsQuantized,
            KvCenter = spec.KvCenter || kv,
            KeyQueryWeighting = spec.KeyQueryWeighting || spec.Keys.IsQuantized,
        };
    }

    private QuantSpec SpecPlain(ParseResult pr)
    {
        var s = Spec(pr);
        bool kv = s.Keys.IsQuantized || s.Values.IsQuantized;
        return s with { Ldlq = pr.GetValue(Ldlq) || pr.GetValue(QaLdlq), QaLdlq = pr.GetValue(QaLdlq), KvCenter = pr.GetValue(KvCenter), KeyQueryWeighting = pr.GetValue(KvQWeight) };
    }

    private static int Check(int v, int lo, int hi, string name) =>
        v >= lo && v <= hi ? v : throw new GossetException($"{name} {v} is outside [{lo}, {hi}]");

    /// <summary>Loads the model named by --model, quantized by the options (a .gqm file is already quantized).</summary>
    public (LlamaModel Model, LlamaWeights? Float, ITextTokenizer Tokenizer) Load(ParseResult pr, bool quantOptions = true, Func<string, int[], int[]>? calibFilter = null, string? defaultCalib = null)
    {
        string path = pr.GetValue(Model)!;
        if (path.EndsWith(".gqm", StringComparison.OrdinalIgnoreCase))
        {
            var (qm, contents) = QuantizedModelFile.Load(path);
            string? tp = pr.GetValue(Tokenizer);
            var tok = string.IsNullOrEmpty(tp) ? contents.Tokenizer : ModelLoader.LoadTokenizer(path, tp, qm.Config.VocabSize);
            StopIds = string.IsNullOrEmpty(tp) ? contents.StopIds : DefaultStops(tok);
            if (quantOptions && QuantSpec.Parse(pr.GetValue(Quant) ?? "fp").IsQuantized)
                throw new GossetException("a .gqm model is already quantized; do not pass --quant");
            if (quantOptions && ExplicitClassifier(pr) is { } want && qm.ClassifierFormat != want)
                throw new GossetException($"{path} keeps its classifier as {qm.ClassifierFormat}; quantize-model --classifier {want} writes one that does not");
            // A .gqm never opens its source: the float reference for KL / top-1 is loaded only when named.
            string? rp = pr.GetValue(Reference);
            LlamaWeights? reference = string.IsNullOrEmpty(rp) ? null : ModelLoader.LoadWeights(rp);
            if (reference is not null && reference.Config with { SeqLen = qm.Config.SeqLen } != qm.Config with { SeqLen = qm.Config.SeqLen })
                throw new GossetException($"--reference {rp} does not have the shape of {path}");
            return (qm, reference, tok);
        }
        var w = ModelLoader.LoadWeights(path);
        var tokenizer = ModelLoader.LoadTokenizer(path, pr.GetValue(Tokenizer), w.Config.VocabSize);
        StopIds = DefaultStops(tokenizer);
        if (!quantOptions) return (LlamaModel.FromWeights(w), w, tokenizer);
        var spec = Spec(pr);
        int[]? calib = null;
        if (spec.Ldlq || spec.ScaleSet == ScaleSetChoice.Fitted || spec.KvCenter || spec.KvChannelScale || spec.KeyQueryWeighting || spec.KvFixedScale)
        {
            string? cp = pr.GetValue(Calib) ?? defaultCalib;
            bool best = (pr.GetValue(Recipe) ?? "best").Trim().Equals("best", StringComparison.OrdinalIgnoreCase);
            var plain = SpecPlain(pr);
            if (cp is null && best && !(plain.Ldlq || plain.ScaleSet == ScaleSetChoice.Fitted || plain.KvCenter || plain.KvChannelScale || plain.KeyQueryWeighting || plain.KvFixedScale))
            {
                // No calibration text: the best recipe falls back to what needs none (RTN, Gaussian-fitted activation/KV tables).
                Console.Error.WriteLine("note: no --calib text; the e8 recipe runs without LDLQ and KV calibration (the weights' tables are still fitted to the model)");
                spec = plain;
            }
            else
            {
                if (cp is null) throw new GossetException("--ldlq, --scales fitted, --kv-center and --kv-scale need --calib TEXT");
                calib = tokenizer.Encode(File.ReadAllBytes(cp), bos: true, eos: false);
                if (calibFilter is not null) calib = calibFilter(cp, calib);
            }
        }
        string classifier = ClassifierFormat(pr, spec.IsQuantized);
        if (classifier != "source" && !spec.IsQuantized) throw new GossetException($"--classifier {classifier} needs a quantized model (--quant w…)");
        var model = ModelQuantizer.Quantize(w, spec, calib, 512, pr.GetValue(CalibWindows));
        if (classifier != "source") ClassifierQuantizer.Quantize(model, classifier);
        return (model, w, tokenizer);
    }
}
