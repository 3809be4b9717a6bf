using System.Diagnostics;

namespace Gosset.Llm.Inference;

/// <summary>Parts of a forward pass that <see cref="InferenceProfile"/> times separately.</summary>
public enum ProfilePart
{
    /// <summary>Token embedding lookup (16-bit rows widened).</summary>
    Embedding,
    /// <summary>RMSNorms (attention, feed-forward, final).</summary>
    Norms,
    /// <summary>Padding, rotation and quantization of the linear layers' inputs (int8 per 8-block for weight-only e8).</summary>
    ActivationPrep,
    /// <summary>The q, k, v and o projections.</summary>
    AttentionLinears,
    /// <summary>The gate, up and down projections.</summary>
    FfnLinears,
    /// <summary>Biases, RoPE, head rotations and the KV cache write (codes included).</summary>
    RopeKv,
    /// <summary>Scores, softmax and the weighted sum of values over the cache.</summary>
    Attention,
    /// <summary>SwiGLU gate and residual adds.</summary>
    Elementwise,
    /// <summary>The output classifier (logits over the vocabulary).</summary>
    Classifier,
}

/// <summary>
/// Wall time per part of the forward pass, summed over the calls made while it is attached to a
/// <see cref="KvCache"/> (<see cref="KvCache.Profile"/>). Timing adds two timestamp reads per part; products are not changed.
/// </summary>
public sealed class InferenceProfile
{
    private readonly long[] _ticks = new long[Enum.GetValues<ProfilePart>().Length];

    /// <summary>Forward calls timed.</summary>
    public int Calls { get; internal set; }

    /// <summary>Tokens fed in the timed calls.</summary>
    public long Tokens { get; internal set; }

    /// <summary>Seconds spent in a part over all timed calls.</summary>
    public double Seconds(ProfilePart part) => _ticks[(int)part] / (double)Stopwatch.Frequency;

    /// <summary>Seconds over all parts.</summary>
    public double TotalSeconds => _ticks.Sum() / (double)Stopwatch.Frequency;

    /// <summary>Adds the time since <paramref name="mark"/> to <paramref name="part"/> and moves the mark to now.</summary>
    internal void Lap(ProfilePart part, ref long mark)
    {
        long now = Stopwatch.GetTimestamp();
        _ticks[(int)part] += now - mark;
        mark = now;
    }

    /// <summary>One line per part: milliseconds per token and share of the total.</summary>
    public IEnumerable<(ProfilePart Part, double MsPerToken, double Share)> Breakdown()
    {
        double total = Math.Max(TotalSeconds, 1e-12);
        long n = Math.Max(1, Tokens);
        foreach (var p in Enum.GetValues<ProfilePart>())
            yield return (p, 1e3 * Seconds(p) / n, Seconds(p) / total);
    }
}
