using Gosset.IO;
using Gosset.Matrix;

namespace Gosset.Cli;

/// <summary>Reads matrices from .npy or .safetensors[:NAME] (shape (rows, cols): columns are the coded vectors).</summary>
internal static class MatrixFiles
{
    public static DenseMatrix Read(string spec, bool transpose = false)
    {
        DenseMatrix m;
        if (spec.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
        {
            m = Npy.Read(spec);
        }
        else
        {
            int colon = spec.LastIndexOf(':');
            string path = spec, name = "";
            if (colon > 0 && spec[..colon].EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) { path = spec[..colon]; name = spec[(colon + 1)..]; }
            if (!path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                throw new GossetException($"Unsupported input '{spec}': expected X.npy or X.safetensors[:NAME].");
            using var f = SafeTensorsFile.Open(path);
            if (name.Length == 0)
            {
                if (f.Tensors.Count != 1)
                    throw new GossetException($"{path} holds {f.Tensors.Count} tensors; name one as {path}:NAME ({string.Join(", ", f.Tensors.Take(8).Select(t => t.Name))}{(f.Tensors.Count > 8 ? ", …" : "")}).");
                name = f.Tensors[0].Name;
            }
            m = f.ReadMatrix(name);
        }
        return transpose ? Transpose(m) : m;
    }

    public static DenseMatrix Transpose(DenseMatrix m)
    {
        var t = new DenseMatrix(m.Cols, m.Rows);
        for (int j = 0; j < m.Cols; j++)
            for (int i = 0; i < m.Rows; i++) t[j, i] = m[i, j];
        return t;
    }
}
