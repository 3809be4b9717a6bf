using System.Text.Json;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;
using Gosset.Llm.Tokenization;
using Gosset.Tests.Support;

namespace Gosset.Tests.Llm;

/// <summary>Shared, lazily loaded stories260K fixtures (the reference values come from golden.json, never from our code).</summary>
internal static class Stories
{
    public static string ModelPath => TestData.File("stories260K/stories260K.bin");
    public static string V1Path => TestData.File("stories260K/stories260K_v1.bin");
    public static string TokenizerPath => TestData.File("stories260K/tok512.bin");
    public static string ValText => TestData.File("tinystories-val/tinystories_val.txt");

    private static readonly Lazy<LlamaWeights> _weights = new(() => Llama2cLoader.Load(ModelPath));
    private static readonly Lazy<LlamaModel> _model = new(() => LlamaModel.FromWeights(_weights.Value));
    private static readonly Lazy<Llama2cTokenizer> _tok = new(() => Llama2cTokenizer.Load(TokenizerPath, 512));
    private static readonly Lazy<JsonElement> _golden = new(() =>
        JsonDocument.Parse(File.ReadAllText(TestData.File("stories260K/golden.json"))).RootElement);
    private static readonly Lazy<int[]> _valTokens = new(() => _tok.Value.Encode(File.ReadAllBytes(ValText), bos: true, eos: false));

    public static LlamaWeights Weights => _weights.Value;
    public static LlamaModel Model => _model.Value;
    public static Llama2cTokenizer Tokenizer => _tok.Value;
    public static JsonElement Golden => _golden.Value;
    public static int[] ValTokens => _valTokens.Value;

    public static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
}
