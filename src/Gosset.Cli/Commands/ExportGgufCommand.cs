using System.CommandLine;
using Gosset.Llm.Loading;

namespace Gosset.Cli.Commands;

/// <summary><c>gosset export-gguf</c>: writes any model Gosset loads as a GGUF file llama.cpp runs.</summary>
internal static class ExportGgufCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "llama2.c .bin, Hugging Face folder or GGUF", Required = true };
        var output = new Option<string>("--out") { Description = "output .gguf path (written atomically)", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "f32 | f16 | bf16 for the matrices and the embedding (norms stay f32)", DefaultValueFactory = _ => "f16" };
        var cmd = new Command("export-gguf", "Write a model as GGUF (llama / qwen2 architecture, with its tokenizer) so llama.cpp can run the same weights.");
        cmd.Options.Add(model); cmd.Options.Add(output); cmd.Options.Add(dtype);
        cmd.SetAction(pr =>
        {
            string src = pr.GetValue(model)!, dst = pr.GetValue(output)!;
            var type = (pr.GetValue(dtype) ?? "f16").ToLowerInvariant() switch
            {
                "f32" => GgufWriteType.F32,
                "f16" => GgufWriteType.F16,
                "bf16" => GgufWriteType.BF16,
                var x => throw new GossetException($"--dtype {x} is not f32, f16 or bf16"),
            };
            var w = ModelLoader.LoadWeights(src);
            var vocab = GgufModel.VocabularyFor(src, w.Config.VocabSize);
            GgufModel.Save(w, dst, vocab, type);
            Console.WriteLine($"wrote        {dst} ({new FileInfo(dst).Length:N0} bytes, {type}, tokenizer \"{vocab.Model}\")");
            return 0;
        });
        return cmd;
    }
}
