using System.Buffers.Binary;
using System.Text;
using Gosset.Llm.Tokenization;
using Gosset.Util;

namespace Gosset.Cli.Fuzzing;

/// <summary>Writes protobuf wire format: enough for a SentencePiece <c>ModelProto</c>.</summary>
internal static class Protobuf
{
    public static void RawVarint(Stream s, ulong v)
    {
        while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        s.WriteByte((byte)v);
    }

    public static void Key(Stream s, int field, int wireType) => RawVarint(s, (ulong)(((long)field << 3) | (uint)wireType));

    /// <summary>An int32/enum/bool field: the varint of the sign-extended 64-bit value (a negative one takes 10 bytes).</summary>
    public static void Varint(Stream s, int field, long value) { Key(s, field, 0); RawVarint(s, (ulong)value); }

    public static void Float(Stream s, int field, float value)
    {
        Key(s, field, 5);
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(b, value);
        s.Write(b);
    }

    public static void Bytes(Stream s, int field, ReadOnlySpan<byte> bytes)
    {
        Key(s, field, 2);
        RawVarint(s, (ulong)bytes.Length);
        s.Write(bytes);
    }

    public static void String(Stream s, int field, string value) => Bytes(s, field, Encoding.UTF8.GetBytes(value));

    public static void Message(Stream s, int field, MemoryStream message) => Bytes(s, field, message.ToArray());
}

/// <summary>A SentencePiece <c>ModelProto</c> built field by field (sentencepiece_model.proto numbering).</summary>
internal static class SentencePieceModel
{
    public const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;

    /// <summary>One piece: its bytes (UTF-8, '▁' for a space), score and type.</summary>
    public readonly record struct Piece(byte[] Text, float Score, int Type)
    {
        public Piece(string text, float score, int type) : this(Encoding.UTF8.GetBytes(text), score, type) { }
    }

    /// <summary>The serialized model: pieces, trainer spec (BPE, byte fallback, special ids) and normalizer spec.</summary>
    public static byte[] Write(IEnumerable<Piece> pieces, int vocabSize, bool removeExtraWhitespaces,
        int unk = 0, int bos = 1, int eos = 2, int pad = -1, long modelType = 2)
    {
        var model = new MemoryStream();
        foreach (var piece in pieces)
        {
            var p = new MemoryStream();
            Protobuf.Bytes(p, 1, piece.Text);
            Protobuf.Float(p, 2, piece.Score);
            Protobuf.Varint(p, 3, piece.Type);
            Protobuf.Message(model, 1, p);
        }
        var trainer = new MemoryStream();
        Protobuf.Varint(trainer, 3, modelType);
        Protobuf.Varint(trainer, 4, vocabSize);
        Protobuf.Varint(trainer, 35, 1);           // byte_fallback
        Protobuf.Varint(trainer, 40, unk);
        Protobuf.Varint(trainer, 41, bos);
        Protobuf.Varint(trainer, 42, eos);
        Protobuf.Varint(trainer, 43, pad);
        Protobuf.Message(model, 2, trainer);
        var normalizer = new MemoryStream();
        Protobuf.String(normalizer, 1, "identity");
        Protobuf.Varint(normalizer, 3, 1);         // add_dummy_prefix
        Protobuf.Varint(normalizer, 4, removeExtraWhitespaces ? 1 : 0);
        Protobuf.Varint(normalizer, 5, 1);         // escape_whitespaces
        Protobuf.Message(model, 3, normalizer);
        return model.ToArray();
    }

    /// <summary>The llama layout: &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, 256 byte pieces, then <paramref name="normal"/> with falling scores.</summary>
    public static List<Piece> LlamaLayout(IEnumerable<string> normal)
    {
        var list = new List<Piece> { new("<unk>", 0, Unknown), new("<s>", 0, Control), new("</s>", 0, Control) };
        for (int b = 0; b < 256; b++) list.Add(new($"<0x{b:X2}>", 0, Byte));
        foreach (string s in normal) list.Add(new(s, -list.Count, Normal));
        return list;
    }
}

/// <summary>
/// SentencePiece <c>tokenizer.model</c>: small real-shaped BPE models (llama layout, byte fallback), structured hostile
/// framing (lengths, varints, wire types, field numbers, group nesting) and fields (piece count, piece types, scores,
/// special ids, model type, invalid UTF-8), and the vocabulary size it is loaded with.
/// </summary>
internal sealed class SentencePieceFuzz : FuzzReader
{
    private static readonly string[] Merges =
        ["\u2581", "e", "l", "o", "h", "w", "r", "d", "t", "s", "\u2581h", "\u2581w", "ll", "or", "ld", "he", "\u2581he", "llo", "\u2581hello", "\u2581world", "\u2581the", "st"];

    public override string Name => "sentencepiece";
    public override string Extension => ".model";
    public override IReadOnlyList<string> Fields { get; } =
        ["length", "varint", "wire_type", "field_number", "piece_count", "piece_type", "score", "ids", "model_type", "utf8", "depth", "vocab_arg", "truncate"];

    private static List<SentencePieceModel.Piece> Pieces(ref SplitMix64 rng) => SentencePieceModel.LlamaLayout(Merges.Take(8 + Fuzz.Pick(ref rng, Merges.Length - 7)));

    public override byte[] Valid(ref SplitMix64 rng)
    {
        var pieces = Pieces(ref rng);
        return SentencePieceModel.Write(pieces, pieces.Count, Fuzz.Pick(ref rng, 2) == 0);
    }

    public override int DefaultArg(byte[] valid) => SentencePieceModelCheck.Check(valid, "valid");

    /// <summary>Where each key and each varint value or length prefix of a valid model lies (the schema's messages walked).</summary>
    private static (List<(int At, int Size)> Keys, List<(int At, int Size)> Varints, List<(int At, int Size)> Lengths) Walk(byte[] b)
    {
        var keys = new List<(int, int)>();
        var varints = new List<(int, int)>();
        var lengths = new List<(int, int)>();
        int VarintAt(ref int p) { int start = p; while (b[p] >= 0x80) p++; p++; return p - start; }
        void Message(int p, int end, int depth)
        {
            while (p < end)
            {
                int k = p; int kl = VarintAt(ref p); keys.Add((k, kl));
                int field = b[k] >> 3, wire = b[k] & 7;
                if (wire == 0) { int v = p; varints.Add((v, VarintAt(ref p))); }
                else if (wire == 5) p += 4;
                else
                {
                    int l = p; int ll = VarintAt(ref p); lengths.Add((l, ll));
                    int n = (int)ReadVarint(b, l);
                    if (depth == 0 && field is 1 or 2 or 3) Message(p, p + n, 1);
                    p += n;
                }
            }
        }
        Message(0, b.Length, 0);
        return (keys, varints, lengths);
    }

    private static ulong ReadVarint(byte[] b, int p)
    {
        ulong v = 0;
        for (int shift = 0; ; shift += 7) { byte x = b[p++]; v |= (ulong)(x & 0x7F) << shift; if (x < 0x80) return v; }
    }

    private static byte[] Replace(byte[] b, int at, int size, ReadOnlySpan<byte> with)
    {
        var r = new byte[b.Length - size + with.Length];
        b.AsSpan(0, at).CopyTo(r);
        with.CopyTo(r.AsSpan(at));
        b.AsSpan(at + size).CopyTo(r.AsSpan(at + with.Length));
        return r;
    }

    private static byte[] VarintBytes(ulong v)
    {
        var ms = new MemoryStream();
        Protobuf.RawVarint(ms, v);
        return ms.ToArray();
    }

    private static ulong HostileVarint(ref SplitMix64 rng, ulong current) => Fuzz.Pick(ref rng, 10) switch
    {
        0 => 0, 1 => ulong.MaxValue, 2 => int.MaxValue, 3 => (ulong)int.MaxValue + 1, 4 => 1UL << 63, 5 => current + 1,
        6 => current - 1, 7 => current * 2, 8 => unchecked((ulong)(long)int.MinValue), _ => (ulong)(uint)Fuzz.HostileInt(ref rng, (int)current),
    };

    public override FuzzCase Hostile(ref SplitMix64 rng, string field)
    {
        var pieces = Pieces(ref rng);
        bool rew = Fuzz.Pick(ref rng, 2) == 0;
        byte[] b = SentencePieceModel.Write(pieces, pieces.Count, rew);
        int arg = pieces.Count;
        var (keys, varints, lengths) = Walk(b);
        switch (field)
        {
            case "length":
            {
                var (at, size) = Fuzz.Pick(ref rng, lengths);
                b = Replace(b, at, size, VarintBytes(HostileVarint(ref rng, ReadVarint(b, at))));
                break;
            }
            case "varint":
            {
                var (at, size) = Fuzz.Pick(ref rng, varints);
                // a hostile value, or an overlong encoding (11 bytes, or 10 bytes whose last one overflows 64 bits)
                byte[] v = Fuzz.Pick(ref rng, 3) switch
                {
                    0 => [.. Enumerable.Repeat((byte)0xFF, 10), 0x01],
                    1 => [.. Enumerable.Repeat((byte)0xFF, 9), 0x7F],
                    _ => VarintBytes(HostileVarint(ref rng, ReadVarint(b, at))),
                };
                b = Replace(b, at, size, v);
                break;
            }
            case "wire_type":
            case "field_number":
            {
                var (at, size) = Fuzz.Pick(ref rng, keys);
                ulong k = ReadVarint(b, at);
                ulong nk = field == "wire_type" ? (k & ~7UL) | (uint)Fuzz.Pick(ref rng, 8)
                    : (Fuzz.Pick(ref rng, [0UL, 6UL, 1UL << 28, (1UL << 29) - 1, 1UL << 29, 1UL << 40]) << 3) | (k & 7);
                b = Replace(b, at, size, VarintBytes(nk));
                break;
            }
            case "piece_count":
                switch (Fuzz.Pick(ref rng, 4))
                {
                    case 0: pieces.Clear(); break;
                    case 1: pieces.Add(pieces[^1]); break;                          // a duplicate piece
                    case 2: for (int i = 0; i < 60000; i++) pieces.Add(new("x" + i, -pieces.Count, SentencePieceModel.Normal)); break;
                    default: pieces.RemoveRange(3, 256); break;                     // byte fallback without byte pieces
                }
                b = SentencePieceModel.Write(pieces, pieces.Count, rew);
                break;
            case "piece_type":
            {
                int i = Fuzz.Pick(ref rng, pieces.Count);
                pieces[i] = pieces[i] with { Type = Fuzz.Pick(ref rng, 2) == 0 ? Fuzz.Pick(ref rng, 8) : Fuzz.HostileInt(ref rng, pieces[i].Type) };
                b = SentencePieceModel.Write(pieces, pieces.Count, rew);
                break;
            }
            case "score":
            {
                int i = Fuzz.Pick(ref rng, pieces.Count);
                pieces[i] = pieces[i] with { Score = Fuzz.HostileFloat(ref rng) };
                b = SentencePieceModel.Write(pieces, pieces.Count, rew);
                break;
            }
            case "ids":
            {
                int[] ids = [0, 1, 2, -1];
                int which = Fuzz.Pick(ref rng, 4);
                ids[which] = Fuzz.Pick(ref rng, 2) == 0 ? Fuzz.HostileInt(ref rng, ids[which]) : Fuzz.Pick(ref rng, [pieces.Count, pieces.Count - 1, -2, 3, 1]);
                b = SentencePieceModel.Write(pieces, pieces.Count, rew, ids[0], ids[1], ids[2], ids[3]);
                break;
            }
            case "model_type":
                b = SentencePieceModel.Write(pieces, pieces.Count, rew, modelType: Fuzz.Pick(ref rng, [0L, 1L, 3L, 4L, 5L, -1L, int.MaxValue, 1L << 40]));
                break;
            case "utf8":
            {
                int i = 259 + Fuzz.Pick(ref rng, pieces.Count - 259);
                pieces[i] = pieces[i] with { Text = Fuzz.Pick(ref rng, [new byte[] { 0xFF }, [0xC3], [0xED, 0xA0, 0x80], [], [0xE2, 0x96]]) };
                b = SentencePieceModel.Write(pieces, pieces.Count, rew);
                break;
            }
            case "depth":
            {
                // nesting bombs after a valid model: start-group tags (wire type 3), or length-delimited fields inside each other
                var ms = new MemoryStream();
                ms.Write(b);
                int d = Fuzz.Pick(ref rng, [100, 10000, 100000]);
                if (Fuzz.Pick(ref rng, 2) == 0) for (int i = 0; i < d; i++) Protobuf.Key(ms, Fuzz.Pick(ref rng, [4, 9]), 3);
                else
                {
                    byte[] inner = [];
                    for (int i = 0; i < Math.Min(d, 2000); i++) { var m = new MemoryStream(); Protobuf.Bytes(m, 1, inner); inner = m.ToArray(); }
                    Protobuf.Bytes(ms, 4, inner);
                }
                b = ms.ToArray();
                break;
            }
            case "vocab_arg": arg = Fuzz.HostileInt(ref rng, arg); break;
            default: b = b.AsSpan(0, Fuzz.Pick(ref rng, b.Length)).ToArray(); break;
        }
        return new FuzzCase(Name, "hostile:" + field, b, arg);
    }

    public override void Open(string path, int arg)
    {
        SentencePieceTokenizer t;
        using (var s = File.OpenRead(path)) t = SentencePieceTokenizer.Load(s, path, arg);
        int[] ids = t.Encode("hello world, é ☃ \u0001", bos: true, eos: false);
        int prev = t.BosId;
        foreach (int id in ids) { _ = t.DecodePiece(prev, id); prev = id; }
        _ = t.Decode(ids);
    }
}
