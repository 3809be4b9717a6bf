using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;
using Gosset.Llm.Quantization;

namespace Gosset.Cli.Commands;

/// <summary>
/// <c>gosset quantize-model</c>: writes a self-contained .gqm (weights as codes, tokenizer included). A Hugging Face
/// checkpoint is streamed one tensor at a time when the recipe needs no calibration; otherwise the float model is loaded.
/// </summary>
internal static class QuantizeModelCommand
{
    public static Command Create()
    {
        var lo = new LlmOptions();
        var output = new Option<string>("--out") { Description = "output .gqm path (written atomically)", Required = true };
        var json = new Option<string?>("--json") { Description = "write the result JSON here" };
        var tables = new Option<string>("--tables") { Description = "precision of the embedding table and classifier: source (as stored in the checkpoint), f32, f16 or bf16", DefaultValueFactory = _ => "source" };
        var cmd = new Command("quantize-model", "Quantize a model into a self-contained .gqm file (weights as codes; activation and KV formats and the tokenizer recorded).");
        lo.AddTo(cmd);
        cmd.Options.Add(output); cmd.Options.Add(json); cmd.Options.Add(tables);
        lo.Quant.DefaultValueFactory = _ => "w4";
        cmd.SetAction(pr =>
        {
            var sw = Stopwatch.StartNew();
            string outPath = pr.GetValue(output)!;
            if (!outPath.EndsWith(".gqm", StringComparison.OrdinalIgnoreCase)) throw new GossetException("--out must end with .gqm");
            string src = pr.GetValue(lo.Model)!;
            if (src.EndsWith(".gqm", StringComparison.OrdinalIgnoreCase)) throw new GossetException("--model is already a .gqm");
            TableType? tt = (pr.GetValue(tables) ?? "source").ToLowerInvariant() switch
            {
                "source" => null, "f32" => TableType.F32, "f16" => TableType.F16, "bf16" => TableType.BF16,
                var x => throw new GossetException($"--tables \"{x}\" is not source, f32, f16 or bf16"),
            };
            var spec = lo.Spec(pr);
            lo.ExplicitClassifier(pr);
            if (!spec.IsQuantized) throw new GossetException("--quant fp: nothing to quantize");
            // Without --calib the best recipe is the plain one (as in eval/generate), which a Hugging Face folder can stream.
            var streamSpec = pr.GetValue(lo.Calib) is null && LlmOptions.NeedsCalibration(spec) && lo.SpecWithoutCalibration(pr) is { } plain ? plain : spec;
            var tokBlob = QuantizedModelFile.TokenizerBlob.FromFile(ModelLoader.ResolveTokenizerPath(src, pr.GetValue(lo.Tokenizer)));
            GqmWriteResult result;
            bool streamed = HuggingFaceLoader.IsHuggingFace(src) && QuantizedModelFile.CanStream(streamSpec);
            if (streamed && !ReferenceEquals(streamSpec, spec))
            {
                Console.Error.WriteLine("note: no --calib text; the e8 recipe runs without LDLQ and KV calibration (the weights' tables are still fitted to the model)");
                spec = streamSpec;
            }
            bool random = HuggingFaceLoader.IsHuggingFace(src) && HuggingFaceLoader.IsRandomWeights(src);
            if (streamed)
            {
                using var ck = HfCheckpoint.Open(src);
                // The tokenizer must fit the model before anything is written.
                tokBlob.Open(src, ck.Config.VocabSize);
                var stops = HuggingFaceLoader.StopIds(src);
                result = QuantizedModelFile.QuantizeStreaming(ck, spec, outPath, tokBlob, tt, stops, random,
                    (l, n) => Console.Error.Write($"\rquantizing layer {l}/{n}"), lo.ClassifierFormat(pr, true));
                Console.Error.WriteLine();
            }
            else
            {
                var (model, _, tok) = lo.Load(pr);
                result = QuantizedModelFile.Save(model, outPath, tokBlob, Path.GetFullPath(src), tt, lo.StopIds, random);
            }
            double secs = sw.Elapsed.TotalSeconds;
            long srcSize = File.Exists(src) ? new FileInfo(src).Length : Directory.GetFiles(src).Sum(f => new FileInfo(f).Length);
            long? peak = ProcessMemory.PeakRssBytes();
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"wrote        {outPath}");
            Console.WriteLine($"quant        {result.Quant}");
            Console.WriteLine(string.Format(inv, "size         {0:N0} bytes (source {1:N0} bytes; embedding table and classifier {2:N0} bytes)", result.Bytes, srcSize, result.TableBits / 8));
            Console.WriteLine(string.Format(inv, "bits         {0:F3} per weight of the linear layers", result.BitsPerWeight));
            Console.WriteLine(string.Format(inv, "time         {0:F1} s ({1})", secs, streamed ? "streamed tensor by tensor" : "float model loaded in memory"));
            if (peak is long p) Console.WriteLine(string.Format(inv, "peak RSS     {0:F0} MB", p / 1e6));
            string? jp = pr.GetValue(json);
            if (jp is not null)
            {
                var o = new JsonObject
                {
                    ["path"] = outPath, ["bytes"] = result.Bytes, ["source_bytes"] = srcSize, ["quant"] = result.Quant,
                    ["bits_per_weight"] = result.BitsPerWeight, ["table_bytes"] = result.TableBits / 8, ["streamed"] = streamed,
                    ["seconds"] = secs, ["peak_rss_bytes"] = peak,
                };
                Gosset.IO.AtomicFile.WriteAllText(jp, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
            return 0;
        });
        return cmd;
    }
}
