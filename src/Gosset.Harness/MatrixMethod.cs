using Gosset.Baselines;
using Gosset.Codes;
using Gosset.Matrix;
using Gosset.Rotations;

namespace Gosset.Harness;

/// <summary>One quantization method of the rate–distortion harness: turns a target rate into a configuration and encodes a matrix.</summary>
public abstract class MatrixMethod
{
    /// <summary>Name used on the command line and in JSON ("e8", "int-rot", …).</summary>
    public abstract string Name { get; }

    /// <summary>Whether the method has a configuration for <paramref name="rate"/>.</summary>
    public virtual bool Supports(double rate) => rate >= 0.05 && rate <= 9;

    /// <summary>Encodes a matrix at (approximately) <paramref name="rate"/> bits/entry with the shared rotation seed.</summary>
    public abstract QuantizedMatrix Encode(DenseMatrix m, double rate, ulong seed);

    /// <summary>Configuration fields for reports (q, k, group, rotation …) of an encoded matrix.</summary>
    public abstract MethodConfig Describe(QuantizedMatrix m);

    /// <summary>Whether the GEMV kernels run this format directly (the E8 box code); false for formats decoded to float first.</summary>
    public virtual bool Kernels => false;

    /// <summary>The methods known to the harness, by name.</summary>
    public static IReadOnlyList<string> KnownNames => Registry.Keys.Append("e8-k<K>[-i<index bits per block>|-fixed]").ToList();

    /// <summary>Looks a method up by name; unknown names raise a <see cref="GossetException"/> listing the known ones.</summary>
    /// <param name="name">Method name.</param>
    /// <param name="group">Group size of the INT baselines (entries per fp16 scale).</param>
    public static MatrixMethod Get(string name, int group = IntMethod.DefaultGroup)
    {
        string key = name.Trim().ToLowerInvariant();
        if (!Registry.TryGetValue(key, out var f) && E8BoxMethod.TryParse(key, out var box)) f = () => box;
        if (f is null)
            throw new GossetException($"Unknown method '{name}'. Known methods: {string.Join(", ", Registry.Keys)}.");
        var m = f();
        if (m is IntMethod im)
        {
            if (group < 1) throw new GossetException($"Group size must be positive, got {group}.");
            im.Group = group;
        }
        return m;
    }

    private static readonly Dictionary<string, Func<MatrixMethod>> Registry = new()
    {
        ["e8"] = () => new E8BoxMethod("e8", E8BoxMethod.DefaultScales, E8BoxMethod.DefaultIndexBits),
        ["e8-fixed-index"] = () => new E8BoxMethod("e8-fixed-index", 4, double.NaN),
        ["e8-voronoi"] = () => new E8Method("e8-voronoi", IndexCoding.Entropy, k: 4, ScaleSource.Fit),
        ["e8-voronoi-mmse"] = () => new E8Method("e8-voronoi-mmse", IndexCoding.Entropy, k: 4, ScaleSource.Fit, gain: GainMode.LeastSquares),
        ["e8-voronoi-dither"] = () => new E8Method("e8-voronoi-dither", IndexCoding.Entropy, k: 4, ScaleSource.Fit, dither: true),
        ["e8-voronoi-fixed"] = () => new E8Method("e8-voronoi-fixed", IndexCoding.Fixed, k: 4, ScaleSource.Fit),
        ["e8-voronoi-k1"] = () => new E8Method("e8-voronoi-k1", IndexCoding.Entropy, k: 1, ScaleSource.Fit),
        ["e8-voronoi-nestquant"] = () => new E8Method("e8-voronoi-nestquant", IndexCoding.Fixed, k: 4, ScaleSource.NestQuant),
        ["e8-voronoi-norot"] = () => new E8Method("e8-voronoi-norot", IndexCoding.Entropy, k: 4, ScaleSource.Fit, RotationKind.None),
        ["e8-box-fixed"] = () => new BoxMethod(),
        ["int"] = () => new IntMethod("int", IntClipping.AbsMax, RotationKind.None),
        ["int-rot"] = () => new IntMethod("int-rot", IntClipping.AbsMax, RotationKind.Hadamard),
        ["int-clip"] = () => new IntMethod("int-clip", IntClipping.MseOptimal, RotationKind.None),
        ["int-clip-rot"] = () => new IntMethod("int-clip-rot", IntClipping.MseOptimal, RotationKind.Hadamard),
    };

    /// <summary>Registers an additional method (used by baselines and kernels).</summary>
    public static void Register(string name, Func<MatrixMethod> factory) => Registry[name] = factory;
}

/// <summary>Report fields describing a method's configuration.</summary>
public sealed record MethodConfig(string Method, int? Q, int? K, int? Group, string Rotation, string Detail);

/// <summary>
/// E8 Voronoi code at a target rate: q ≈ 2^(R − 0.2) with k fitted scales (the 0.2 bit/entry
/// covers the entropy-coded scale index); below the rate of q = 3 it time-shares: only a fraction
/// of the rotated coordinates is coded at q = 3 (the E8 point of best distortion per bit).
/// </summary>
public sealed class E8Method(string name, IndexCoding coding, int k, ScaleSource scales, RotationKind rotation = RotationKind.Hadamard,
    GainMode gain = GainMode.Unbiased, bool dither = false) : MatrixMethod
{
    /// <inheritdoc/>
    public override string Name => name;

    /// <summary>Rate below which time sharing is used.</summary>
    public const double TimeSharingBaseRate = 1.82;

    /// <summary>The options used for a target rate.</summary>
    public E8MatrixOptions OptionsFor(double rate, ulong seed)
    {
        if (!(rate >= 0.05 && rate <= 9)) throw new GossetException($"Rate {rate} bits/entry is out of range (0.05 to 9).");
        double overhead = coding == IndexCoding.Fixed ? Math.Ceiling(Math.Log2(k)) / 8 : (k == 1 ? 0 : 0.2);
        var o = new E8MatrixOptions { K = k, IndexCoding = coding, Scales = scales, Seed = seed, Rotation = rotation, Gain = gain, Dither = dither, DitherSeed = seed ^ 0xD17E5UL };
        if (rate < TimeSharingBaseRate && k > 1)
            return o with { Q = 3, CodedFraction = Math.Min(1, rate / TimeSharingBaseRate) };
        int q = (int)Math.Clamp(Math.Round(Math.Pow(2, rate - overhead)), 2, 256);
        return o with { Q = q };
    }

    /// <inheritdoc/>
    public override QuantizedMatrix Encode(DenseMatrix m, double rate, ulong seed) => E8MatrixQuantizer.Quantize(m, OptionsFor(rate, seed));

    /// <inheritdoc/>
    public override MethodConfig Describe(QuantizedMatrix m)
    {
        var e = (E8QuantizedMatrix)m;
        return new MethodConfig(Name, e.Q, e.Scales.Count, null, e.RotationKind == RotationKind.None ? "none" : "hadamard", e.Describe());
    }
}

/// <summary>INT-b baseline at a target rate: b = round(R) bits per entry plus one fp16 step per group.</summary>
public sealed class IntMethod(string name, IntClipping clipping, RotationKind rotation) : MatrixMethod
{
    /// <summary>Default group size.</summary>
    public const int DefaultGroup = 128;

    /// <inheritdoc/>
    public override string Name => name;

    /// <summary>Entries per fp16 step.</summary>
    public int Group { get; set; } = DefaultGroup;

    /// <inheritdoc/>
    public override bool Supports(double rate) => Math.Round(rate) is >= 2 and <= 8;

    /// <inheritdoc/>
    public override QuantizedMatrix Encode(DenseMatrix m, double rate, ulong seed)
    {
        int bits = (int)Math.Round(rate);
        if (bits < 2 || bits > 8) throw new GossetException($"INT baselines support 2 to 8 bits per entry; rate {rate} asks for {bits}.");
        return IntQuantizedMatrix.Quantize(m, new IntQuantizer(bits, Group, clipping), rotation, seed);
    }

    /// <inheritdoc/>
    public override MethodConfig Describe(QuantizedMatrix m)
    {
        var q = ((IntQuantizedMatrix)m).Quantizer;
        return new MethodConfig(Name, null, null, q.GroupSize, rotation == RotationKind.None ? "none" : "hadamard", m.Describe());
    }
}

/// <summary>The kernels' fixed-rate 4-bit E8 box code (about 4.25 bits/entry + 32 bits per column), with the shared rotation.</summary>
public sealed class BoxMethod : MatrixMethod
{
    /// <inheritdoc/>
    public override string Name => "e8-box-fixed";

    /// <inheritdoc/>
    public override bool Kernels => true;

    /// <inheritdoc/>
    public override bool Supports(double rate) => Math.Round(rate) == 4;

    /// <inheritdoc/>
    public override QuantizedMatrix Encode(DenseMatrix m, double rate, ulong seed)
    {
        if (!Supports(rate)) throw new GossetException($"e8-box-fixed has one rate (about 4.25 bits/entry); rate {rate} was asked.");
        return BoxQuantizedMatrix.Quantize(m, RotationKind.Hadamard, seed);
    }

    /// <inheritdoc/>
    public override MethodConfig Describe(QuantizedMatrix m) => new(Name, null, Gosset.Kernels.E8BoxCode.ScaleCount, null, "hadamard", m.Describe());
}

/// <summary>
/// The kernel-native E8 box code (<see cref="E8BoxQuantizedMatrix"/>) at b = round(R) ∈ {2, 3, 4} bits per entry:
/// k block scales and a pair code for the indices fitted to the matrix, a fixed index budget per group of
/// 256 entries. Names: <c>e8</c> (the default configuration), <c>e8-k&lt;K&gt;-i&lt;bits&gt;</c> (K scales,
/// that many index bits per 8-block), <c>e8-k&lt;K&gt;-fixed</c> (plain ⌈log2 K⌉-bit indices).
/// </summary>
public sealed class E8BoxMethod(string name, int k, double indexBitsPerBlock) : MatrixMethod
{
    /// <summary>Marker for "the default k of each b".</summary>
    public const int DefaultScales = -1;

    /// <summary>
    /// Block scales of <c>e8</c> by b = 2, 3, 4 (index 0 is b = 2): the best measured on N(0,1), n = 4096, a = b = 256
    /// (<c>gosset rd --rates 2,3,4 --methods e8-k2-i0.95,e8-k3-i0.95,e8-k4-i0.95,e8-k8-i2.25,e8-k16-i2.25,e8-k4-fixed</c>) at or below
    /// the rate of int-clip-rot (2.125, 3.125) and of 4.30 bits.
    /// </summary>
    public static readonly int[] DefaultScalesByB = [3, 2, 16];

    /// <summary>Index bits per 8-block of <c>e8</c>, by b = 2, 3, 4.</summary>
    public static readonly double[] DefaultIndexBitsByB = [0.95, 0.95, 2.25];

    /// <summary>Marker for "the default budget of each b".</summary>
    public const double DefaultIndexBits = -1;

    /// <inheritdoc/>
    public override string Name => name;

    /// <inheritdoc/>
    public override bool Kernels => true;

    /// <inheritdoc/>
    public override bool Supports(double rate) => Name == "e8" ? rate >= 0.05 && rate <= 9 : Math.Round(rate) is >= 2 and <= 4;

    /// <summary>Parses e8-k&lt;K&gt;-i&lt;bits&gt; or e8-k&lt;K&gt;-fixed.</summary>
    public static bool TryParse(string name, out E8BoxMethod method)
    {
        method = null!;
        var m = System.Text.RegularExpressions.Regex.Match(name, @"^e8-k(\d+)(?:-i([0-9.]+)|-(fixed))?$");
        if (!m.Success || !int.TryParse(m.Groups[1].Value, out int k) || k is < 1 or > E8BoxCodes.MaxScales) return false;
        double i = m.Groups[3].Success ? double.NaN
            : m.Groups[2].Success ? double.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) : DefaultIndexBits;
        if (m.Groups[2].Success && !(i > 0 && i <= 16)) return false;
        method = new E8BoxMethod(name, k, i);
        return true;
    }

    /// <inheritdoc/>
    public override QuantizedMatrix Encode(DenseMatrix m, double rate, ulong seed)
    {
        int bits = (int)Math.Round(rate);
        // Outside 2..4 bits the box code does not exist; `quantize`/`matmul` with the default method then store the Voronoi code (rd skips these rates).
        if (bits is < 2 or > 4 && Name == "e8") return Get("e8-voronoi").Encode(m, rate, seed);
        if (bits is < 2 or > 4) throw new GossetException($"The E8 box code has 2, 3 or 4 bits per entry; rate {rate} was asked.");
        double ib = indexBitsPerBlock == DefaultIndexBits ? DefaultIndexBitsByB[bits - 2] : indexBitsPerBlock;
        int kk = k == DefaultScales ? DefaultScalesByB[bits - 2] : k;
        return E8BoxQuantizedMatrix.Quantize(m, bits, kk, ib, RotationKind.Hadamard, seed, Name);
    }

    /// <inheritdoc/>
    public override MethodConfig Describe(QuantizedMatrix m)
    {
        if (m is not E8BoxQuantizedMatrix e) return Get("e8-voronoi").Describe(m);
        return new MethodConfig(Name, e.Codes.Q, e.Table.K, 8 * e.Table.GroupBlocks, "hadamard", e.Describe());
    }
}
