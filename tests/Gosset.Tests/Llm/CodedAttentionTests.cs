using Gosset.Llm.Evaluation;
using Gosset.Llm.Inference;
using Gosset.Llm.Quantization;
using Gosset.Tests.Support;

namespace Gosset.Tests.Llm;

/// <summary>Attention that reads the KV cache's codes (block-int8 form) instead of a decoded float copy.</summary>
public class CodedAttentionTests
{
    [Theory, Trait("Category", "Simd")]
    [InlineData(8)]
    [InlineData(64)]
    [InlineData(72)]
    [InlineData(128)]
    public void Unpacking_equals_its_scalar_reference_and_the_decoded_rows(int hs)
    {
        const int rows = 11;
        int stride = hs + 16, sstride = stride / 8;
        var rng = new Random(hs);
        var v = Enumerable.Range(0, rows * stride).Select(_ => (sbyte)rng.Next(-127, 128)).ToArray();
        var s = Enumerable.Range(0, rows * sstride).Select(_ => (float)(rng.NextDouble() * 0.1 + 1e-3)).ToArray();
        float[] fast = new float[rows * hs], slow = new float[rows * hs];
        CodedHeadOps.Unpack(v, stride, s, sstride, fast, rows);
        CodedHeadOps.UnpackReference(v, stride, s, sstride, slow, rows);
        Assert.Equal(slow.Select(BitConverter.SingleToInt32Bits), fast.Select(BitConverter.SingleToInt32Bits));
        for (int p = 0; p < rows; p++)
            for (int i = 0; i < hs; i++) Assert.Equal((double)s[p * sstride + i / 8] * v[p * stride + i], slow[p * hs + i], 1e-7 * Math.Abs(slow[p * hs + i]));
        Assert.Throws<ArgumentException>(() => CodedHeadOps.Unpack(v, stride, s, sstride, new float[rows * (hs + 4)], rows));
        Assert.Throws<ArgumentException>(() => CodedHeadOps.Unpack(v.AsSpan(0, 5 * stride), stride, s, sstride, fast, rows));
    }

    [Fact]
    public void Weighted_sums_over_consecutive_chunks_equal_one_sum()
    {
        var rng = new Random(9);
        foreach (int hs in new[] { 8, 64, 72, 128 })
        {
            const int n = 45;
            var rows = Enumerable.Range(0, n * hs).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var w = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
            float[] one = new float[hs], chunked = new float[hs];
            HeadOps.WeightedSum(w, rows, hs, one);
            for (int c0 = 0; c0 < n; c0 += 16)
            {
                int m = Math.Min(16, n - c0);
                HeadOps.WeightedSum(w.AsSpan(c0, m), rows.AsSpan(c0 * hs), hs, chunked, accumulate: c0 > 0);
            }
            Assert.Equal(one.Select(BitConverter.SingleToInt32Bits), chunked.Select(BitConverter.SingleToInt32Bits));
        }
    }

    [DataTheory]
    [InlineData("w4a4kv4", "e8", false)]
    [InlineData("w4a4kv4", "e8", true)]
    [InlineData("w4a4kv4", "int", false)]
    public void Attention_on_codes_gives_the_logits_of_attention_on_decoded_rows(string quant, string method, bool affine)
    {
        var spec = QuantSpec.Parse(quant, method);
        // With a calibrated per-channel shift and scale, attention undoes them on the query and on the output instead.
        var model = affine
            ? ModelQuantizer.Quantize(Stories.Weights, spec with { KvCenter = true, KvChannelScale = true }, Stories.ValTokens[2000..2600], 256, 2)
            : ModelQuantizer.Quantize(Stories.Weights, spec);
        int[] tokens = Stories.ValTokens[..40];
        var coded = model.CreateCache(tokens.Length);
        var decoded = model.CreateCache(tokens.Length, readCodes: false);
        Assert.True(coded.MemoryBytes < 0.4 * decoded.MemoryBytes, $"{coded.MemoryBytes} vs {decoded.MemoryBytes} bytes");
        // A prompt in one batch, then tokens one at a time (both attention paths: prefill and decode).
        float[] a = model.Forward(coded, tokens[..24]), b = model.Forward(decoded, tokens[..24]);
        float[] a2 = model.Forward(coded, tokens[24..]), b2 = model.Forward(decoded, tokens[24..]);
        // Without a per-channel affine bit for bit (the unpacked rows are the decoded rows, the float head operations run
        // in the same order); with one, the affine moves to the query and the output, so only rounding differs.
        if (!affine) Assert.Equal(b.Concat(b2).Select(BitConverter.SingleToInt32Bits), a.Concat(a2).Select(BitConverter.SingleToInt32Bits));
        float max = 0, diff = 0;
        foreach (var (x, y) in a.Concat(a2).Zip(b.Concat(b2))) { max = Math.Max(max, Math.Abs(y)); diff = Math.Max(diff, Math.Abs(x - y)); }
        Assert.True(diff <= 2e-5f * max, $"max |Δ logit| {diff} of max |logit| {max}");
    }
}
