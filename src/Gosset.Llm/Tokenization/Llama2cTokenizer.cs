using System.Buffers.Binary;
using System.Text;

namespace Gosset.Llm.Tokenization;

/// <summary>
/// The llama2.c tokenizer (<c>tokenizer.bin</c> / <c>tok512.bin</c>): pieces with scores, encoded exactly as
/// llama2.c <c>encode</c>: BOS, a dummy space prefix for non-empty text, one piece per UTF-8 character
/// (byte fallback id = byte + 3 for characters without a piece), then repeated merging of the adjacent
/// pair whose concatenation is the piece with the highest score, the leftmost pair on ties.
/// </summary>
/// <remarks>
/// Merging uses a priority queue keyed by (score, position) instead of llama2.c's quadratic rescans;
/// each step still merges the globally best pair, leftmost on ties, so the result is identical.
/// </remarks>
public sealed class Llama2cTokenizer : ITextTokenizer
{
    private readonly byte[][] _pieces;
    private readonly float[] _scores;
    private readonly Dictionary<string, int> _lookup = new(StringComparer.Ordinal);
    private static readonly Encoding Latin1 = Encoding.Latin1;
    private const long MaxFileLength = 1L << 30;

    /// <summary>Creates a tokenizer from pieces and scores (ids are indices).</summary>
    public Llama2cTokenizer(byte[][] pieces, float[] scores)
    {
        ArgumentNullException.ThrowIfNull(pieces);
        ArgumentNullException.ThrowIfNull(scores);
        if (pieces.Length != scores.Length) throw new ArgumentException("pieces and scores differ in length");
        if (Array.IndexOf(pieces, null) >= 0) throw new ArgumentException("a piece is null", nameof(pieces));
        _pieces = pieces;
        _scores = scores;
        for (int i = 0; i < pieces.Length; i++) _lookup.TryAdd(Latin1.GetString(pieces[i]), i);
    }

    /// <summary>Reads a llama2.c tokenizer file (int32 max length, then per token: float score, int32 length, bytes).</summary>
    /// <exception cref="InvalidFileException">The file is not a llama2.c tokenizer with <paramref name="vocabSize"/> pieces.</exception>
    public static Llama2cTokenizer Load(string path, int vocabSize)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"File not found: {path}", path);
        long length = new FileInfo(path).Length;
        if (length > MaxFileLength) throw new InvalidFileException(path, $"{length} bytes is too large for a llama2.c tokenizer");
        byte[] b = File.ReadAllBytes(path);
        if (b.Length != length) throw new InvalidFileException(path, "the file changed while it was read");
        return FromBytes(b, path, vocabSize);
    }

    /// <summary>Parses the bytes of a llama2.c tokenizer file (e.g. stored in a .gqm); <paramref name="path"/> names it in errors.</summary>
    /// <exception cref="InvalidFileException">The bytes are not a llama2.c tokenizer with <paramref name="vocabSize"/> pieces.</exception>
    public static Llama2cTokenizer FromBytes(byte[] b, string path, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(b);
        long length = b.Length;
        if (length > MaxFileLength) throw new InvalidFileException(path, $"{length} bytes is too large for a llama2.c tokenizer");
        if (length < 4) throw new InvalidFileException(path, "too short for a llama2.c tokenizer");
        // every piece takes at least 8 bytes (score and length): check the count before allocating it
        if (vocabSize < 3 || vocabSize > (length - 4) / 8)
            throw new InvalidFileException(path, $"cannot hold a vocabulary of {vocabSize} pieces in {length} bytes (tokenizer and model do not match, or the file is truncated)");
        int maxLen = BinaryPrimitives.ReadInt32LittleEndian(b);
        if (maxLen <= 0 || maxLen > 1 << 16) throw new InvalidFileException(path, $"max token length {maxLen} is implausible; not a llama2.c tokenizer?");
        var pieces = new byte[vocabSize][];
        var scores = new float[vocabSize];
        int p = 4;
        for (int i = 0; i < vocabSize; i++)
        {
            if (p + 8 > b.Length) throw new InvalidFileException(path, $"holds only {i} tokens but the model has a vocabulary of {vocabSize} (tokenizer and model do not match, or the file is truncated)");
            scores[i] = BinaryPrimitives.ReadSingleLittleEndian(b.AsSpan(p));
            int len = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(p + 4));
            p += 8;
            if (len < 0 || len > maxLen || (long)p + len > b.Length) throw new InvalidFileException(path, $"token {i} has an invalid length {len} (corrupt or truncated)");
            pieces[i] = b.AsSpan(p, len).ToArray();
            p += len;
        }
        if (p != b.Length)
            throw new InvalidFileException(path, $"holds more than {vocabSize} tokens: tokenizer and model vocabulary sizes do not match");
        return new Llama2cTokenizer(pieces, scores);
    }

    /// <inheritdoc/>
    public int VocabSize => _pieces.Length;
    /// <inheritdoc/>
    public int BosId => 1;
    /// <inheritdoc/>
    public int EosId => 2;

    /// <summary>The raw bytes of a piece.</summary>
    public ReadOnlySpan<byte> Piece(int id) => _pieces[id];

    /// <summary>The merge score of a piece.</summary>
    public float Score(int id) => _scores[id];

    /// <inheritdoc/>
    public int[] Encode(string text, bool bos, bool eos)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Encode(Encoding.UTF8.GetBytes(text), bos, eos);
    }

    /// <inheritdoc/>
    public int[] Encode(ReadOnlySpan<byte> text, bool bos, bool eos)
    {
        var ids = new List<int>(text.Length + 3);
        if (bos) ids.Add(BosId);
        int start = ids.Count;
        if (text.Length > 0)
        {
            if (!_lookup.TryGetValue(" ", out int space)) throw new GossetException("tokenizer has no \" \" piece for the dummy prefix");
            ids.Add(space);
        }
        for (int i = 0; i < text.Length;)
        {
            int len = 1;
            while (len < 4 && i + len < text.Length && (text[i + len] & 0xC0) == 0x80) len++;
            if (_lookup.TryGetValue(Latin1.GetString(text.Slice(i, len)), out int id)) ids.Add(id);
            else
            {
                for (int j = 0; j < len; j++)
                {
                    int fallback = text[i + j] + 3;
                    if (fallback >= _pieces.Length) throw new GossetException($"tokenizer of {_pieces.Length} pieces has no byte-fallback piece for byte 0x{text[i + j]:X2}");
                    ids.Add(fallback);
                }
            }
            i += len;
        }
        var merged = Merge(ids, 0); // llama2.c also considers pairs that start at BOS
        if (eos) merged.Add(EosId);
        return merged.ToArray();
    }

    private List<int> Merge(List<int> ids, int start)
    {
        int n = ids.Count;
        var tok = ids.ToArray();
        var next = new int[n];
        var prev = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; alive[i] = i >= start; }
        if (start < n) prev[start] = -1;
        // Heap entries: (left index, left token, right index, right token, merged id); priority (−score, left index).
        var heap = new PriorityQueue<(int L, int Lt, int R, int Rt, int Id), (float, int)>();
        void Push(int l)
        {
            int r = next[l];
            if (l < start || r < 0) return;
            string key = Latin1.GetString(_pieces[tok[l]]) + Latin1.GetString(_pieces[tok[r]]);
            if (_lookup.TryGetValue(key, out int id)) heap.Enqueue((l, tok[l], r, tok[r], id), (-_scores[id], l));
        }
        for (int i = start; i < n; i++) Push(i);
        while (heap.TryDequeue(out var e, out _))
        {
            if (!alive[e.L] || !alive[e.R] || next[e.L] != e.R || tok[e.L] != e.Lt || tok[e.R] != e.Rt) continue;
            tok[e.L] = e.Id;
            alive[e.R] = false;
            next[e.L] = next[e.R];
            if (next[e.R] >= 0) prev[next[e.R]] = e.L;
            if (prev[e.L] >= 0) Push(prev[e.L]);
            Push(e.L);
        }
        var result = new List<int>(n);
        for (int i = 0; i < start; i++) result.Add(tok[i]);
        for (int i = start < n ? start : -1; i >= 0; i = next[i]) result.Add(tok[i]);
        return result;
    }

    /// <inheritdoc/>
    public byte[] DecodePiece(int previous, int token)
    {
        if ((uint)token >= (uint)_pieces.Length) throw new ArgumentOutOfRangeException(nameof(token));
        byte[] piece = _pieces[token];
        if (previous == BosId && piece.Length > 0 && piece[0] == (byte)' ') return piece[1..];
        if (piece.Length == 6 && piece[0] == '<' && piece[1] == '0' && piece[2] == 'x' && piece[5] == '>'
            && IsHex(piece[3]) && IsHex(piece[4]))
            return [(byte)(Hex(piece[3]) * 16 + Hex(piece[4]))];
        return piece;
    }

    private static bool IsHex(byte c) => c is >= (byte)'0' and <= (byte)'9' or >= (byte)'A' and <= (byte)'F' or >= (byte)'a' and <= (byte)'f';
    private static int Hex(byte c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>();
        int prev = BosId;
        foreach (int id in ids)
        {
            bytes.AddRange(DecodePiece(prev, id));
            prev = id;
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }
}
