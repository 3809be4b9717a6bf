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

    /// <summary>The methods known to the harness, by name.</summary>
    public static IReadOnlyList<string> KnownNames => Registry.Keys.ToList();

    /// <summary>Looks a method up by name; unknown names raise a <see cref="GossetException"/> listing the known ones.</summary>
    /// <param name="name">Method name.</param>
    /// <param name="group">Group size of the INT baselines (entries per fp16 scale).</param>
    public static MatrixMethod Get(string name, int group = IntMethod.DefaultGroup)
    {
        if (!Registry.TryGetValue(name.Trim().ToLowerInvariant(), out var f))
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
        ["e8"] = () => new E8Method("e8", IndexCoding.Entropy, k: 4, ScaleSource.Fit),
        ["e8-mmse"] = () => new E8Method("e8-mmse", IndexCoding.Entropy, k: 4, ScaleSource.Fit, gain: GainMode.LeastSquares),
        ["e8-dither"] = () => new E8Method("e8-dither", IndexCoding.Entropy, k: 4, ScaleSource.Fit, dither: true),
        ["e8-fixed"] = () => new E8Method("e8-fixed", IndexCoding.Fixed, k: 4, ScaleSource.Fit),
        ["e8-k1"] = () => new E8Method("e8-k1", IndexCoding.Entropy, k: 1, ScaleSource.Fit),
        ["e8-nestquant"] = () => new E8Method("e8-nestquant", IndexCoding.Fixed, k: 4, ScaleSource.NestQuant),
        ["e8-norot"] = () => new E8Method("e8-norot", IndexCoding.Entropy, k: 4, ScaleSource.Fit, RotationKind.None),
        ["e8-box"] = () => new BoxMethod(),
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
    public override string Name => "e8-box";

    /// <inheritdoc/>
    public override bool Supports(double rate) => Math.Round(rate) == 4;

    /// <inheritdoc/>
    public override QuantizedMatrix Encode(DenseMatrix m, double rate, ulong seed)
    {
        if (!Supports(rate)) throw new GossetException($"e8-box has one rate (about 4.25 bits/entry); rate {rate} was asked.");
        return BoxQuantizedMatrix.Quantize(m, RotationKind.Hadamard, seed);
    }

    /// <inheritdoc/>
    public override MethodConfig Describe(QuantizedMatrix m) => new(Name, null, Kernels.E8BoxCode.ScaleCount, null, "hadamard", m.Describe());
}
