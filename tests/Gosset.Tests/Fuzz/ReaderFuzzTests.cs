using CsCheck;
using Gosset.Cli.Fuzzing;
using Gosset.Util;

namespace Gosset.Tests.Fuzz;

/// <summary>Fuzz cases measure process-wide allocation: nothing else may run beside them.</summary>
[CollectionDefinition("Fuzz", DisableParallelization = true)]
public sealed class FuzzCollection;

/// <summary>
/// Seeded fuzzing of every file reader: structured hostile headers (checksums recomputed, so the
/// reader must judge the fields themselves) and random byte mutations of valid files. Each case
/// must give a correct result or the format's typed error, within 2 s and 400 MB allocated.
/// </summary>
[Collection("Fuzz")]
public sealed class ReaderFuzzTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gosset-fuzz-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> ReaderNames() => new(FuzzRunner.Readers.Select(r => r.Name));

    private static FuzzReader Reader(string name) => FuzzRunner.Readers.Single(r => r.Name == name);

    private void AssertNoFinding(FuzzReader reader, FuzzCase c, string seedText)
    {
        var r = FuzzRunner.Run(reader, c, _dir);
        Assert.False(r.IsFinding,
            $"{reader.Name} {c.Kind} ({seedText}, arg {c.Arg}): {r.Outcome} in {r.Seconds:F2} s, {r.AllocatedBytes >> 20} MB allocated: {r.Message}");
    }

    [Theory]
    [MemberData(nameof(ReaderNames))]
    public void Valid_files_from_the_generator_are_read(string name)
    {
        // guards the fuzzer itself: if its "valid" files were rejected, the hostile cases would test nothing
        var reader = Reader(name);
        for (ulong s = 0; s < 12; s++)
        {
            var rng = new SplitMix64(s);
            byte[] b = reader.Valid(ref rng);
            var r = FuzzRunner.Run(reader, new FuzzCase(name, "valid", b, reader.DefaultArg(b)), _dir);
            Assert.True(r.Outcome == FuzzOutcome.Accepted, $"seed {s}: {r.Message}");
        }
    }

    [Theory]
    [MemberData(nameof(ReaderNames))]
    public void Every_hostile_field_gives_a_typed_error_or_a_correct_result(string name)
    {
        var reader = Reader(name);
        int typed = 0;
        foreach (string field in reader.Fields)
            for (ulong s = 0; s < 8; s++)
            {
                var rng = new SplitMix64(s * 7919 + (ulong)field.Length);
                var c = reader.Hostile(ref rng, field);
                var r = FuzzRunner.Run(reader, c, _dir);
                Assert.False(r.IsFinding, $"{name} {c.Kind} seed {s} arg {c.Arg}: {r.Outcome} in {r.Seconds:F2} s, {r.AllocatedBytes >> 20} MB: {r.Message}");
                if (r.Outcome == FuzzOutcome.TypedError) typed++;
            }
        // the structured cases must mostly be refused: otherwise the generator lost its teeth
        Assert.True(typed >= reader.Fields.Count * 8 / 2, $"only {typed} of {reader.Fields.Count * 8} hostile cases were refused");
    }

    [Theory]
    [MemberData(nameof(ReaderNames))]
    public void Byte_mutations_of_valid_files_give_a_typed_error_or_a_correct_result(string name)
    {
        var reader = Reader(name);
        for (ulong s = 0; s < 60; s++)
        {
            var rng = new SplitMix64(0xF00D + s);
            AssertNoFinding(reader, reader.Mutation(ref rng), $"seed {s}");
        }
    }

    [Theory]
    [MemberData(nameof(ReaderNames))]
    public void Random_seeds_from_CsCheck(string name)
    {
        // fresh seeds on every run; CsCheck reports the seed of a failing case so it can be replayed
        var reader = Reader(name);
        Gen.ULong.Sample(seed =>
        {
            var rng = new SplitMix64(seed);
            var c = (seed & 1) == 0 ? reader.Hostile(ref rng) : reader.Mutation(ref rng);
            var r = FuzzRunner.Run(reader, c, _dir);
            Assert.False(r.IsFinding, $"{name} {c.Kind} (SplitMix64 seed {seed}, arg {c.Arg}): {r.Outcome} in {r.Seconds:F2} s, {r.AllocatedBytes >> 20} MB: {r.Message}");
        }, iter: 40, threads: 1);
    }
}
