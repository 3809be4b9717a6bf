using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gosset.Llm.Quantization;

namespace Gosset.Cli.Commands;

/// <summary><c>gosset quantize-model</c>: writes a .gqm file whose weights stay as codes; generate and eval load it directly.</summary>
internal static class QuantizeModelCommand
{
    public static Command Create()
    {
        var lo = new LlmOptions();
        var output = new Option<string>("--out") { Description = "output .gqm path (written atomically)", Required = true };
        var json = new Option<string?>("--json") { Description = "write the result JSON here" };
        var cmd = new Command("quantize-model", "Quantize a model (weights as codes; activation and KV formats recorded) into a .gqm file.");
        lo.AddTo(cmd);
        cmd.Options.Add(output); cmd.Options.Add(json);
        lo.Quant.DefaultValueFactory = _ => "w4";
        cmd.SetAction(pr =>
        {
            string outPath = pr.GetValue(output)!;
            if (!outPath.EndsWith(".gqm", StringComparison.OrdinalIgnoreCase)) throw new GossetException("--out must end with .gqm");
            string src = pr.GetValue(lo.Model)!;
            if (src.EndsWith(".gqm", StringComparison.OrdinalIgnoreCase)) throw new GossetException("--model is already a .gqm");
            var (model, _, _) = lo.Load(pr);
            if (!model.IsQuantized) throw new GossetException("--quant fp: nothing to quantize");
            long size = QuantizedModelFile.Save(model, outPath, Path.GetFullPath(src));
            long srcSize = File.Exists(src) ? new FileInfo(src).Length : Directory.GetFiles(src).Sum(f => new FileInfo(f).Length);
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"wrote        {outPath}");
            Console.WriteLine($"quant        {model.Quant}");
            Console.WriteLine(string.Format(inv, "size         {0:N0} bytes (source {1:N0} bytes; embeddings, classifier and norms stay float32)", size, srcSize));
            Console.WriteLine(string.Format(inv, "bits         {0:F3} per weight of the linear layers, {1:F3} per activation, KV {2:F1} bytes/token",
                model.BitsPerWeight, model.BitsPerActivation, model.KvBytesPerToken));
            string? jp = pr.GetValue(json);
            if (jp is not null)
            {
                var o = new JsonObject
                {
                    ["path"] = outPath, ["bytes"] = size, ["source_bytes"] = srcSize, ["quant"] = model.Quant,
                    ["bits_per_weight"] = model.BitsPerWeight, ["bits_per_activation"] = model.BitsPerActivation,
                    ["kv_bytes_per_token"] = model.KvBytesPerToken,
                };
                Gosset.IO.AtomicFile.WriteAllText(jp, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
            return 0;
        });
        return cmd;
    }
}
