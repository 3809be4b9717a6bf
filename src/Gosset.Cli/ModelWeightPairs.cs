using Gosset.Llm.Loading;
using Gosset.Matrix;

namespace Gosset.Cli;

/// <summary>Pairs of real weight matrices from a Llama checkpoint, as AᵀB problems over the model dimension.</summary>
internal static class ModelWeightPairs
{
    /// <summary>
    /// (W1ᵀ, W3ᵀ) and (Wqᵀ, Wkᵀ) stacked over layers: n = dim, the products are W1·W3ᵀ (gate × up)
    /// and Wq·Wkᵀ (the bilinear form behind attention logits). Columns are weight rows, coded along
    /// the input dimension as in the LLM engine.
    /// </summary>
    public static IEnumerable<(string, DenseMatrix, DenseMatrix)> Load(string path)
    {
        var w = ModelLoader.LoadWeights(path);
        var c = w.Config;
        string name = Path.GetFileNameWithoutExtension(path.TrimEnd('/'));
        yield return ($"{name} W1·W3ᵀ", Stack(w.W1, c.HiddenDim, c.Dim), Stack(w.W3, c.HiddenDim, c.Dim));
        yield return ($"{name} Wq·Wkᵀ", Stack(w.Wq, c.Dim, c.Dim), Stack(w.Wk, c.KvDim, c.Dim));
    }

    // Each layer's [rows][dim] row-major matrix contributes `rows` columns of length dim.
    private static DenseMatrix Stack(float[][] layers, int rows, int dim)
    {
        var m = new DenseMatrix(dim, rows * layers.Length);
        for (int l = 0; l < layers.Length; l++)
            for (int r = 0; r < rows; r++)
                layers[l].AsSpan(r * dim, dim).CopyTo(m.Column(l * rows + r));
        return m;
    }
}
