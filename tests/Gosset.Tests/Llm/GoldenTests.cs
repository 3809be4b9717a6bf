using Gosset.Llm.Evaluation;
using Gosset.Llm.Inference;
using Gosset.Llm.Loading;
using Gosset.Tests.Support;

namespace Gosset.Tests.Llm;

public class GoldenTests
{
    [DataFact]
    public void HeaderMatchesGolden()
    {
        var m = Stories.Golden.GetProperty("model");
        var c = Stories.Weights.Config;
        Assert.Equal(m.GetProperty("dim").GetInt32(), c.Dim);
        Assert.Equal(m.GetProperty("hidden_dim").GetInt32(), c.HiddenDim);
        Assert.Equal(m.GetProperty("n_layers").GetInt32(), c.Layers);
        Assert.Equal(m.GetProperty("n_heads").GetInt32(), c.Heads);
        Assert.Equal(m.GetProperty("n_kv_heads").GetInt32(), c.KvHeads);
        Assert.Equal(m.GetProperty("vocab_size").GetInt32(), c.VocabSize);
        Assert.Equal(m.GetProperty("seq_len").GetInt32(), c.SeqLen);
        Assert.Equal(m.GetProperty("head_size").GetInt32(), c.HeadSize);
        Assert.Equal(m.GetProperty("kv_dim").GetInt32(), c.KvDim);
        Assert.Equal(m.GetProperty("shared_classifier").GetBoolean(), c.SharedClassifier);
        Assert.Equal(m.GetProperty("n_params").GetInt64(), c.ParameterCount);
    }

    [DataFact]
    public void EncodingsAndDecodingsMatchGolden()
    {
        foreach (var e in Stories.Golden.GetProperty("encode").EnumerateArray())
        {
            string text = e.GetProperty("text").GetString()!;
            int[] expected = Stories.Ints(e.GetProperty("ids"));
            int[] ids = Stories.Tokenizer.Encode(text, bos: true, eos: false);
            Assert.Equal(expected, ids);
            Assert.Equal(text, Stories.Tokenizer.Decode(ids.AsSpan(1)));
        }
    }

    [DataFact]
    public void LogitsMatchGolden_BatchedAndTokenByToken()
    {
        var g = Stories.Golden.GetProperty("logits");
        int[] input = Stories.Ints(g.GetProperty("input_ids"));
        int pos = g.GetProperty("position").GetInt32();
        float[] expected = g.GetProperty("logits_at_position").EnumerateArray().Select(x => x.GetSingle()).ToArray();
        int vocab = Stories.Model.Config.VocabSize;

        float[] batched = Stories.Model.ForwardWindow(input);
        var cache = Stories.Model.CreateCache();
        float[] last = [];
        var perPos = new List<float[]>();
        foreach (int id in input) { last = Stories.Model.Forward(cache, [id]); perPos.Add(last); }

        for (int i = 0; i < vocab; i++)
        {
            Assert.True(Math.Abs(batched[pos * vocab + i] - expected[i]) <= 1e-4, $"batched logit {i}: {batched[pos * vocab + i]} vs {expected[i]}");
            Assert.True(Math.Abs(last[i] - expected[i]) <= 1e-4, $"token-by-token logit {i}: {last[i]} vs {expected[i]}");
        }
        var top5 = g.GetProperty("top5_per_position").EnumerateArray().ToArray();
        for (int p = 0; p < top5.Length; p++)
        {
            var row = batched.AsSpan(p * vocab, vocab).ToArray();
            var order = Enumerable.Range(0, vocab).OrderByDescending(i => row[i]).ThenBy(i => i).Take(5).ToArray();
            var exp = top5[p].EnumerateArray().ToArray();
            for (int j = 0; j < 5; j++)
            {
                Assert.Equal(exp[j][0].GetInt32(), order[j]);
                Assert.True(Math.Abs(exp[j][1].GetSingle() - row[order[j]]) <= 1e-4);
                Assert.True(Math.Abs(perPos[p][order[j]] - row[order[j]]) <= 1e-5);
            }
        }
    }

    [DataFact]
    public void GreedyGenerationMatchesGolden()
    {
        var g = Stories.Golden.GetProperty("greedy");
        int[] prompt = Stories.Ints(g.GetProperty("prompt_ids"));
        int steps = g.GetProperty("steps").GetInt32();
        var ids = Generator.Generate(Stories.Model, prompt, steps, 0f, 0);
        Assert.Equal(Stories.Ints(g.GetProperty("ids")), ids.ToArray());
        Assert.Equal(g.GetProperty("text").GetString(), Stories.Tokenizer.Decode(ids.ToArray()));
    }

    [DataFact]
    public void PerplexityOfFirstEightWindowsMatchesGolden()
    {
        var g = Stories.Golden.GetProperty("perplexity");
        int[] tokens = Stories.ValTokens;
        Assert.Equal(g.GetProperty("file_token_count").GetInt32(), tokens.Length);
        Assert.Equal(Stories.Ints(g.GetProperty("first_tokens")), tokens.Take(32).ToArray());
        int window = g.GetProperty("window").GetInt32();
        int windows = g.GetProperty("windows").GetInt32();
        var r = Evaluator.Evaluate(Stories.Model, tokens, window, windows);
        Assert.Equal(g.GetProperty("tokens_scored").GetInt64(), r.Tokens);
        Assert.True(Math.Abs(r.Nll - g.GetProperty("mean_nll").GetDouble()) <= 1e-5, $"mean NLL {r.Nll}");
        var per = g.GetProperty("mean_nll_per_window").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        for (int w = 0; w < per.Length; w++) Assert.True(Math.Abs(r.NllPerWindow[w] - per[w]) <= 1e-5, $"window {w}: {r.NllPerWindow[w]} vs {per[w]}");
    }

    [DataFact]
    public void V1CheckpointHoldsTheSameWeights()
    {
        var v1 = Llama2cLoader.Load(Stories.V1Path);
        var v0 = Stories.Weights;
        Assert.Equal(v0.Config, v1.Config);
        Assert.Equal(v0.TokenEmbedding, v1.TokenEmbedding);
        for (int l = 0; l < v0.Config.Layers; l++)
        {
            Assert.Equal(v0.Wq[l], v1.Wq[l]); Assert.Equal(v0.Wk[l], v1.Wk[l]); Assert.Equal(v0.W2[l], v1.W2[l]);
            Assert.Equal(v0.RmsAtt[l], v1.RmsAtt[l]); Assert.Equal(v0.RmsFfn[l], v1.RmsFfn[l]);
        }
        Assert.Equal(v0.RmsFinal, v1.RmsFinal);
        int[] ids = [1, 403, 407, 261, 378];
        Assert.Equal(Stories.Model.ForwardWindow(ids), LlamaModel.FromWeights(v1).ForwardWindow(ids));
    }
}
