using Gosset.Llm.Tokenization;

namespace Gosset.Llm.Loading;

/// <summary>Picks the right loader for a model path and the matching tokenizer.</summary>
public static class ModelLoader
{
    /// <summary>Loads float weights from a llama2.c checkpoint (v0 / v1) or a Hugging Face folder.</summary>
    public static LlamaWeights LoadWeights(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path) && !Directory.Exists(path)) throw new FileNotFoundException($"model not found: {path}", path);
        if (HuggingFaceLoader.IsHuggingFace(path)) return HuggingFaceLoader.Load(path);
        if (GgufFile.IsGguf(path)) return GgufModel.Load(path);
        if (Directory.Exists(path)) throw new InvalidFileException(path, "a folder without config.json is not a model");
        return Llama2cLoader.Load(path);
    }

    /// <summary>Tokenizer file names looked for next to a model, in order.</summary>
    public static readonly string[] TokenizerNames = ["tok512.bin", "tokenizer.bin", "tokenizer.json", "tokenizer.model"];

    /// <summary>The tokenizer file to use: <paramref name="tokenizerPath"/> when given, else the first of <see cref="TokenizerNames"/> next to the model.</summary>
    public static string ResolveTokenizerPath(string modelPath, string? tokenizerPath)
    {
        string? path = tokenizerPath;
        if (string.IsNullOrEmpty(path))
        {
            string dir = Directory.Exists(modelPath) ? modelPath : Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? ".";
            path = TokenizerNames.Select(n => Path.Combine(dir, n)).FirstOrDefault(File.Exists)
                ?? throw new GossetException($"no tokenizer found next to {modelPath} (looked for {string.Join(", ", TokenizerNames)}); pass --tokenizer");
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer not found: {path}", path);
        return path;
    }

    /// <summary>
    /// Loads a tokenizer: <paramref name="tokenizerPath"/> when given, otherwise tok512.bin / tokenizer.bin / tokenizer.json /
    /// tokenizer.model next to the model. Checks that its vocabulary fits the model's.
    /// </summary>
    public static ITextTokenizer LoadTokenizer(string modelPath, string? tokenizerPath, int vocabSize)
    {
        if (string.IsNullOrEmpty(tokenizerPath) && GgufFile.IsGguf(modelPath))
        {
            // A GGUF file carries its own tokenizer.
            using var f = GgufFile.Open(modelPath);
            var vocab = GgufVocabulary.Read(f) ?? throw new GossetException($"{modelPath} holds no tokenizer; pass --tokenizer");
            if (vocab.Tokens.Length != vocabSize)
                throw new GossetException($"the GGUF tokenizer has {vocab.Tokens.Length} tokens but the model has a vocabulary of {vocabSize}");
            return vocab.CreateTokenizer();
        }
        string path = ResolveTokenizerPath(modelPath, tokenizerPath);
        if (path.EndsWith(".model", StringComparison.OrdinalIgnoreCase))
        {
            var sp = SentencePieceTokenizer.Load(path);
            if (sp.VocabSize != vocabSize)
                throw new GossetException($"tokenizer {path} has {sp.VocabSize} tokens but the model has a vocabulary of {vocabSize}: they do not match");
            return sp;
        }
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return HfJsonTokenizer.Load(path, vocabSize);
        return Llama2cTokenizer.Load(path, vocabSize);
    }
}
