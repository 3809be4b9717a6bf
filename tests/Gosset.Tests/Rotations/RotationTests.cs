using Gosset.Rotations;
using Gosset.Util;

namespace Gosset.Tests.Rotations;

public class RotationTests
{
    [Theory]
    [InlineData(8)]
    [InlineData(64)]
    [InlineData(24)]
    [InlineData(176)]   // 11·16 (LLM hidden size 172 padded)
    [InlineData(200)]   // 25·8
    [InlineData(1)]
    [InlineData(7)]
    public void Rotation_is_orthogonal_and_inverse_undoes_it(int n)
    {
        var r = Rotation.Create(n, 42);
        Assert.Equal(n, r.Length);
        // R·e_i are the columns: check RᵀR = I through Gram of images of the basis
        var cols = new float[n][];
        for (int i = 0; i < n; i++)
        {
            var e = new float[n]; e[i] = 1;
            cols[i] = new float[n];
            r.Apply(e, cols[i]);
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double dot = 0;
                for (int t = 0; t < n; t++) dot += (double)cols[i][t] * cols[j][t];
                Assert.True(Math.Abs(dot - (i == j ? 1 : 0)) < 1e-5, $"Gram[{i},{j}] = {dot}");
            }
        var rng = new SplitMix64(3);
        var x = Enumerable.Range(0, n).Select(_ => (float)rng.NextGaussian()).ToArray();
        var y = new float[n];
        var back = new float[n];
        r.Apply(x, y);
        r.ApplyInverse(y, back);
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(back[i] - x[i]) < 1e-4);
    }

    [Fact]
    public void Same_seed_same_rotation_different_seed_different_rotation()
    {
        var x = Enumerable.Range(0, 64).Select(i => (float)Math.Sin(i)).ToArray();
        var a = new float[64]; var b = new float[64]; var c = new float[64];
        Rotation.Create(64, 1).Apply(x, a);
        Rotation.Create(64, 1).Apply(x, b);
        Rotation.Create(64, 2).Apply(x, c);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Rotation_spreads_a_spike()
    {
        var x = new float[1024]; x[5] = 32;
        var y = new float[1024];
        Rotation.Create(1024, 9).Apply(x, y);
        Assert.All(y, v => Assert.Equal(1.0, Math.Abs(v), 4)); // 32/√1024
    }

    [Fact]
    public void Hadamard_transform_matches_definition()
    {
        int n = 16;
        var v = Enumerable.Range(0, n).Select(i => (float)(i * i % 7 - 3)).ToArray();
        var h = (float[])v.Clone();
        RandomizedHadamard.Transform(h);
        for (int i = 0; i < n; i++)
        {
            double s = 0;
            for (int j = 0; j < n; j++) s += (System.Numerics.BitOperations.PopCount((uint)(i & j)) % 2 == 0 ? 1 : -1) * v[j];
            Assert.Equal(s, h[i], 4);
        }
    }

    [Fact]
    public void Vector_hadamard_transform_is_bit_identical_to_the_reference()
    {
        var rng = new Random(5);
        for (int n = 1; n <= 1 << 14; n *= 2)
        {
            var v = new float[n];
            for (int i = 0; i < n; i++) v[i] = (float)(rng.NextDouble() * 2 - 1) * (1 << rng.Next(8));
            var fast = (float[])v.Clone();
            RandomizedHadamard.Transform(fast);
            RandomizedHadamard.TransformReference(v);
            for (int i = 0; i < n; i++) Assert.Equal(BitConverter.SingleToInt32Bits(v[i]), BitConverter.SingleToInt32Bits(fast[i]));
        }
    }
}
