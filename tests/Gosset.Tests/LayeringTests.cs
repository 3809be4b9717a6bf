using System.Reflection;

namespace Gosset.Tests;

/// <summary>Data flows one way through the layers: core ← Llm ← Peer / Harness ← Cli; experiment code stays out of the libraries.</summary>
public class LayeringTests
{
    private static string[] References(Assembly a) => a.GetReferencedAssemblies().Select(r => r.Name!).Where(n => n.StartsWith("Gosset", StringComparison.Ordinal)).Order().ToArray();

    [Fact]
    public void Libraries_reference_only_the_layers_below_them()
    {
        Assembly core = typeof(GossetException).Assembly, llm = typeof(Gosset.Llm.Inference.LlamaModel).Assembly;
        Assembly harness = typeof(Gosset.Harness.RdHarness).Assembly, peer = typeof(Gosset.Peer.LlamaCppGemv).Assembly;
        Assert.Empty(References(core));
        Assert.Equal(["Gosset"], References(llm));
        Assert.Equal(["Gosset"], References(harness));
        Assert.Equal(["Gosset", "Gosset.Llm"], References(peer));
        // The core library holds no experiment harness and depends on nothing heavier than System.Numerics.Tensors.
        Assert.DoesNotContain(core.GetTypes(), t => t.Namespace?.StartsWith("Gosset.Harness", StringComparison.Ordinal) == true);
        Assert.All(core.GetReferencedAssemblies(), r => Assert.True(r.Name!.StartsWith("System", StringComparison.Ordinal) || r.Name == "netstandard", r.Name));
    }
}
