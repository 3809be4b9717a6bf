namespace Gosset.Codes;

/// <summary>How a block picks one of the k scales of a <see cref="ScaleSet"/>.</summary>
public enum ScaleSelection
{
    /// <summary>The scale with the least reconstruction error (decoded, overload included).</summary>
    LeastError = 0,
    /// <summary>The smallest scale that does not overload; the largest if all overload.</summary>
    SmallestWithoutOverload = 1,
}

/// <summary>The tensor kinds of NestQuant's published scale sets.</summary>
public enum NestQuantTensor
{
    /// <summary>Linear-layer weights.</summary>
    Weights,
    /// <summary>Linear-layer input activations.</summary>
    Activations,
    /// <summary>Attention keys.</summary>
    Keys,
    /// <summary>Attention values.</summary>
    Values,
}
