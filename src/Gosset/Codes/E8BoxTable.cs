using System.Runtime.CompilerServices;

namespace Gosset.Codes;

/// <summary>
/// Everything a matrix (or tensor kind) coded with the E8 box code shares besides its rows: b, the k
/// fitted block scales, the base of the 8-bit row scale, a canonical prefix code for pairs of block-scale
/// indices and a fixed index budget per group of blocks. <see cref="EncodeRow"/> codes a row within that
/// budget; <see cref="E8BoxFormat"/> stores the rows at a fixed number of bits each.
/// </summary>
/// <remarks>
/// <para>Row scale: code c ∈ [0, 255], RowScale = 0 for c = 0, else s₀·2^((c − 128)/16) (steps of 4.4 %, a
/// range of 2^±8 around s₀); the block scales absorb the rounding, so 8 bits suffice.</para>
/// <para>Scale indices: consecutive blocks of a group are paired (an odd last block is paired with index 0)
/// and each pair (j₁, j₂) is written with a canonical prefix code of lengths <see cref="PairLengths"/>
/// (1 to 16 bits; all 0 when k = 1), fitted from the index frequencies. Pairs let the index cost fall below
/// 1 bit per block. Every group then gets exactly <see cref="GroupIndexBits"/> bits, so a group has a fixed
/// size (random access); the encoder re-chooses indices where the least-error ones would not fit, giving up
/// the least distortion per bit saved.</para>
/// </remarks>
public sealed class E8BoxTable
{
    /// <summary>Longest pair code.</summary>
    public const int MaxCodeLength = 16;

    /// <summary>Most blocks per group (256 entries).</summary>
    public const int MaxGroupBlocks = 32;

    private readonly uint[] _codes;
    private readonly int _minLength, _minLastLength;

    /// <summary>Creates a table and checks every field.</summary>
    /// <exception cref="ArgumentException">A field is out of range, or the pair lengths are not a complete prefix code.</exception>
    public E8BoxTable(int bits, ReadOnlySpan<float> blockScales, float rowScaleBase, ReadOnlySpan<byte> pairLengths, int groupBlocks, int groupIndexBits)
    {
        if (bits is < 2 or > 4) throw new ArgumentException($"b = {bits}: the E8 box code has b = 2, 3, 4.", nameof(bits));
        int k = blockScales.Length;
        if (k is < 1 or > E8BoxCodes.MaxScales) throw new ArgumentException($"1 to {E8BoxCodes.MaxScales} block scales; got {k}.", nameof(blockScales));
        foreach (float s in blockScales) if (!float.IsFinite(s) || s <= 0) throw new ArgumentException("Block scales must be finite and positive.", nameof(blockScales));
        if (!float.IsFinite(rowScaleBase) || rowScaleBase <= 0) throw new ArgumentException("The row-scale base must be finite and positive.", nameof(rowScaleBase));
        if (pairLengths.Length != k * k) throw new ArgumentException($"{k * k} pair code lengths expected; got {pairLengths.Length}.", nameof(pairLengths));
        if (groupBlocks is < 1 or > MaxGroupBlocks) throw new ArgumentException($"1 to {MaxGroupBlocks} blocks per group; got {groupBlocks}.", nameof(groupBlocks));
        Bits = bits; BlockScales = blockScales.ToArray(); RowScaleBase = rowScaleBase;
        PairLengths = pairLengths.ToArray(); GroupBlocks = groupBlocks;
        _codes = CanonicalCodes(PairLengths, k);
        _minLength = k == 1 ? 0 : PairLengths.Min();
        _minLastLength = k == 1 ? 0 : Enumerable.Range(0, k).Min(j => PairLengths[j * k]);
        _fixedLength = PairLengths.All(l => l == PairLengths[0]) ? PairLengths[0] : -1;
        if (groupIndexBits < MinimumIndexBits(groupBlocks) || groupIndexBits > MaxCodeLength * ((groupBlocks + 1) / 2))
            throw new ArgumentException($"Group index budget {groupIndexBits} bits is outside [{MinimumIndexBits(groupBlocks)}, {MaxCodeLength * ((groupBlocks + 1) / 2)}].", nameof(groupIndexBits));
        GroupIndexBits = groupIndexBits;
    }

    /// <summary>Bits per entry of the lattice code, b.</summary>
    public int Bits { get; }
    /// <summary>Number of block scales k.</summary>
    public int K => BlockScales.Length;
    /// <summary>Block scales relative to the row scale (lattice steps for unit-RMS rows).</summary>
    public float[] BlockScales { get; }
    /// <summary>s₀ of the 8-bit row scale.</summary>
    public float RowScaleBase { get; }
    /// <summary>[k·k] code lengths of the index pairs (j₁·k + j₂).</summary>
    public byte[] PairLengths { get; }
    private readonly int _fixedLength; // the common pair-code length, or −1 when lengths differ
    /// <summary>Blocks per full group.</summary>
    public int GroupBlocks { get; }
    /// <summary>Index bits of a full group.</summary>
    public int GroupIndexBits { get; }

    /// <summary>Index bits of a group of <paramref name="blocks"/> blocks (the last group of a row may be shorter).</summary>
    public int IndexBitsFor(int blocks) => blocks == GroupBlocks ? GroupIndexBits
        : Math.Max(MinimumIndexBits(blocks), (int)((long)GroupIndexBits * blocks / GroupBlocks));

    /// <summary>The fewest index bits any choice of indices needs for <paramref name="blocks"/> blocks (an odd last block pairs with index 0).</summary>
    public int MinimumIndexBits(int blocks) => _minLength * (blocks / 2) + (blocks % 2 == 1 ? _minLastLength : 0);

    /// <summary>Stored bits of one row of <paramref name="cols"/> entries: 8 (row scale) + per group 8·b bits per block + its index bits.</summary>
    public long RowBits(int cols)
    {
        int blocks = (cols + 7) / 8;
        long bits = 8;
        for (int t = 0; t < blocks; t += GroupBlocks)
        {
            int nb = Math.Min(GroupBlocks, blocks - t);
            bits += 8L * Bits * nb + IndexBitsFor(nb);
        }
        return bits;
    }

    /// <summary>The row scale of code c.</summary>
    public float RowScaleValue(int c) => c == 0 ? 0f : RowScaleBase * MathF.Pow(2f, (c - 128) / 16f);

    /// <summary>The code of the row scale nearest (in log) to <paramref name="rms"/>; 0 only for a zero row.</summary>
    public int RowScaleCode(float rms)
    {
        if (!(rms > 0)) return 0;
        double c = Math.Round(16 * Math.Log2(rms / (double)RowScaleBase)) + 128;
        return (int)Math.Clamp(double.IsFinite(c) ? c : 255, 1, 255);
    }

    /// <summary>Code and length of pair (j₁, j₂).</summary>
    public (uint Code, int Length) PairCode(int j1, int j2) => (_codes[j1 * K + j2], PairLengths[j1 * K + j2]);

    /// <summary>Stream bits <see cref="DecodePair"/> looks at: the longest pair code.</summary>
    public int PairPeekBits => K == 1 ? 0 : PairLengths.Max();

    /// <summary>
    /// The pair whose code starts the stream: <paramref name="peek"/> holds the next <see cref="PairPeekBits"/> stream bits
    /// (the first in bit 0; codes are written most significant bit first). Returns the symbol j₁·K + j₂ and the code's
    /// length, or length 0 when no code starts with these bits.
    /// </summary>
    public (int Symbol, int Length) DecodePair(ulong peek)
    {
        var t = _pairDecode ??= BuildPairDecode();
        int e = t[(int)peek & (t.Length - 1)];
        return (e >> 5, e & 31);
    }

    private ushort[] BuildPairDecode()
    {
        int peekBits = PairPeekBits;
        var t = new ushort[1 << peekBits];
        for (int sym = 0; sym < K * K; sym++)
        {
            int len = PairLengths[sym];
            uint c = _codes[sym], rev = 0;
            for (int i = 0; i < len; i++) rev |= ((c >> (len - 1 - i)) & 1) << i;
            for (int ext = 0; ext < 1 << (peekBits - len); ext++) t[rev | (uint)ext << len] = (ushort)(sym << 5 | len);
        }
        return t;
    }

    private ushort[]? _pairDecode;

    /// <summary>Index bits the pair code spends on the indices of one group (an odd last block paired with 0).</summary>
    public int IndexBitsUsed(ReadOnlySpan<byte> index)
    {
        int bits = 0;
        for (int t = 0; t < index.Length; t += 2) bits += PairLengths[index[t] * K + (t + 1 < index.Length ? index[t + 1] : 0)];
        return bits;
    }

    /// <summary>
    /// Codes a row x (length a multiple of 8; pad with zeros) within the budget: returns the row-scale
    /// code and writes the digits u (x.Length) and block-scale indices (x.Length / 8). With
    /// <paramref name="searchRowScale"/> the codes next to the RMS code are tried too and the least-error one
    /// kept (3 encodes; 0.04 dB better at 4 bits on Gaussian data: used for weights, not for per-token vectors).
    /// </summary>
    [SkipLocalsInit]
    public int EncodeRow(ReadOnlySpan<float> x, Span<byte> u, Span<byte> index, bool searchRowScale = false)
    {
        if (x.Length % 8 != 0) throw new ArgumentException("Rows must be whole 8-blocks (pad with zeros).", nameof(x));
        int blocks = x.Length / 8;
        int c = RmsScaleCode(x);
        double best = EncodeRowAt(x, RowScaleValue(c), u, index);
        if (c == 0 || !searchRowScale) return c;
        // The RMS code, then its neighbours (±4.4 %): the least-error one is kept (the block scales then sit
        // where this row's blocks need them).
        Span<byte> u2 = x.Length <= 8192 ? stackalloc byte[x.Length] : new byte[x.Length];
        Span<byte> i2 = stackalloc byte[Math.Min(blocks, 1024)];
        if (blocks > 1024) i2 = new byte[blocks];
        int bestCode = c;
        foreach (int cc in new[] { c - 1, c + 1 })
        {
            if (cc < 1 || cc > 255) continue;
            double e = EncodeRowAt(x, RowScaleValue(cc), u2, i2);
            if (e < best) { best = e; bestCode = cc; u2.CopyTo(u); i2.CopyTo(index); }
        }
        return bestCode;
    }

    /// <summary>The row-scale code of a row's RMS (the code <see cref="EncodeRow"/> starts from).</summary>
    public int RmsScaleCode(ReadOnlySpan<float> x)
    {
        double ss = 0;
        foreach (float f in x) ss += (double)f * f;
        return RowScaleCode((float)Math.Sqrt(ss / Math.Max(1, x.Length)));
    }

    /// <summary>Codes a row at a given row scale (e.g. a fixed calibrated one) within the budget; returns the squared error.</summary>
    public double EncodeRowAt(ReadOnlySpan<float> x, float s, Span<byte> u, Span<byte> index)
    {
        if (x.Length % 8 != 0) throw new ArgumentException("Rows must be whole 8-blocks (pad with zeros).", nameof(x));
        int blocks = x.Length / 8;
        int k = K;
        // At most 32 blocks × 16 scales: 2 KB of errors and 4 KB of digits, on the stack (no garbage per activation row).
        Span<float> err = stackalloc float[GroupBlocks * k];
        Span<byte> digits = stackalloc byte[GroupBlocks * k * 8];
        Span<byte> choice = stackalloc byte[GroupBlocks];
        double total = 0;
        for (int t0 = 0; t0 < blocks; t0 += GroupBlocks)
        {
            int nb = Math.Min(GroupBlocks, blocks - t0);
            E8BoxEncoder.EncodeCandidates(x.Slice(8 * t0, 8 * nb), nb, s, BlockScales, Bits, err, digits);
            ChooseIndices(err, nb, IndexBitsFor(nb), choice);
            for (int t = 0; t < nb; t++)
            {
                index[t0 + t] = choice[t];
                total += err[t * k + choice[t]];
                digits.Slice((t * k + choice[t]) * 8, 8).CopyTo(u.Slice(8 * (t0 + t), 8));
            }
        }
        return total;
    }

    /// <summary>
    /// Picks one index per block of a group, err[t·k + j] being block t's error at scale j: the least total error
    /// whose pair codes fit <paramref name="budget"/> bits, exactly (a knapsack over the pairs: per pair only the
    /// best symbol of each code length matters, then a DP over bits used).
    /// </summary>
    public void ChooseIndices(ReadOnlySpan<float> err, int nb, int budget, Span<byte> choice)
    {
        int k = K, pairs = (nb + 1) / 2;
        if (_fixedLength >= 0 && nb % 2 == 0 && budget >= pairs * _fixedLength)
        {
            // Every pair code has the same length and all fit: the least total error is each block's least error
            // (the first index among equals), with no knapsack to solve.
            for (int t = 0; t < nb; t++)
            {
                int bj = 0;
                for (int j = 1; j < k; j++) if (err[t * k + j] < err[t * k + bj]) bj = j;
                choice[t] = (byte)bj;
            }
            return;
        }
        // Best symbol per (pair, length); lengths 0..16.
        const int L = MaxCodeLength + 1;
        Span<int> bestSym = stackalloc int[MaxGroupBlocks / 2 * L];
        Span<double> bestErr = stackalloc double[MaxGroupBlocks / 2 * L];
        bestErr.Fill(double.PositiveInfinity);
        int maxTotal = 0;
        for (int p = 0; p < pairs; p++)
        {
            int maxLen = 0;
            for (int s = 0; s < k * k; s++)
            {
                int len = PairLengths[s];
                double e = PairError(err, nb, p, s);
                if (e < bestErr[p * L + len]) { bestErr[p * L + len] = e; bestSym[p * L + len] = s; }
                if (!double.IsPositiveInfinity(e)) maxLen = Math.Max(maxLen, len);
            }
            maxTotal += maxLen;
        }
        int cap = Math.Min(budget, maxTotal);
        if (cap < 0) throw new InvalidOperationException("Negative index budget.");
        // dp[b] = least error of the pairs so far using exactly b bits; from[p][b] = length chosen for pair p.
        var dp = new double[cap + 1];
        var next = new double[cap + 1];
        var from = new byte[pairs * (cap + 1)];
        Array.Fill(dp, double.PositiveInfinity);
        dp[0] = 0;
        for (int p = 0; p < pairs; p++)
        {
            Array.Fill(next, double.PositiveInfinity);
            for (int b = 0; b <= cap; b++)
            {
                if (double.IsPositiveInfinity(dp[b])) continue;
                for (int len = 0; len < L && b + len <= cap; len++)
                {
                    double e = bestErr[p * L + len];
                    if (double.IsPositiveInfinity(e)) continue;
                    double v = dp[b] + e;
                    if (v < next[b + len]) { next[b + len] = v; from[p * (cap + 1) + b + len] = (byte)len; }
                }
            }
            (dp, next) = (next, dp);
        }
        int end = -1; double bestV = double.PositiveInfinity;
        for (int b = 0; b <= cap; b++) if (dp[b] < bestV) { bestV = dp[b]; end = b; }
        if (end < 0) throw new InvalidOperationException("Index budget below the shortest codes (table invariant broken).");
        for (int p = pairs - 1; p >= 0; p--)
        {
            int len = from[p * (cap + 1) + end];
            int sym = bestSym[p * L + len];
            choice[2 * p] = (byte)(sym / k);
            if (2 * p + 1 < nb) choice[2 * p + 1] = (byte)(sym % k);
            end -= len;
        }
    }

    // Error of pair symbol s = j1·k + j2 at pair p; a missing second block only admits j2 = 0.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private double PairError(ReadOnlySpan<float> err, int nb, int p, int s)
    {
        int k = K, j1 = s / k, j2 = s % k, t = 2 * p;
        if (t + 1 >= nb) return j2 == 0 ? err[t * k + j1] : double.PositiveInfinity;
        return (double)err[t * k + j1] + err[(t + 1) * k + j2];
    }

    /// <summary>Canonical prefix codes (MSB first) for the lengths: symbols sorted by (length, symbol).</summary>
    /// <exception cref="ArgumentException">Lengths outside 1..16 (0 only when k = 1) or not a complete prefix code.</exception>
    private static uint[] CanonicalCodes(byte[] lengths, int k)
    {
        var codes = new uint[lengths.Length];
        if (k == 1)
        {
            if (lengths[0] != 0) throw new ArgumentException("With one scale the index needs no bits (length 0).");
            return codes;
        }
        double kraft = 0;
        foreach (byte l in lengths)
        {
            if (l is < 1 or > MaxCodeLength) throw new ArgumentException($"Pair code length {l} is outside 1..{MaxCodeLength}.");
            kraft += Math.Pow(2, -l);
        }
        if (Math.Abs(kraft - 1) > 1e-12) throw new ArgumentException("Pair code lengths do not form a complete prefix code.");
        uint code = 0; int prev = 0;
        foreach (int s in Enumerable.Range(0, lengths.Length).OrderBy(i => lengths[i]).ThenBy(i => i))
        {
            code <<= lengths[s] - prev; prev = lengths[s];
            codes[s] = code++;
        }
        return codes;
    }

    /// <summary>
    /// Length-limited Huffman code lengths (1..16) for pair frequencies (each counted at least once, so every pair
    /// stays codable); all 0 when there is a single symbol.
    /// </summary>
    public static byte[] HuffmanLengths(ReadOnlySpan<double> frequencies)
    {
        int n = frequencies.Length;
        var len = new byte[n];
        if (n == 1) return len;
        var f = new double[n];
        for (int i = 0; i < n; i++) f[i] = Math.Max(1, double.IsFinite(frequencies[i]) ? frequencies[i] : 1);
        while (true)
        {
            var pq = new PriorityQueue<int, (double, int)>();
            var parent = new int[2 * n - 1];
            var w = new double[2 * n - 1];
            for (int i = 0; i < n; i++) { w[i] = f[i]; pq.Enqueue(i, (f[i], i)); }
            int next = n;
            while (pq.Count > 1)
            {
                int a = pq.Dequeue(), b = pq.Dequeue();
                w[next] = w[a] + w[b];
                parent[a] = next; parent[b] = next;
                pq.Enqueue(next, (w[next], next));
                next++;
            }
            int root = next - 1, max = 0;
            for (int i = 0; i < n; i++)
            {
                int d = 0;
                for (int x = i; x != root; x = parent[x]) d++;
                len[i] = (byte)Math.Min(255, d);
                max = Math.Max(max, d);
            }
            if (max <= MaxCodeLength) return len;
            for (int i = 0; i < n; i++) f[i] = f[i] / 2 + 1; // flatten and retry
        }
    }

    /// <summary>
    /// Fits a table to sample rows (each a multiple of 8 long, already rotated): row-scale base (geometric
    /// mean of the row RMS), k block scales (<see cref="ScaleSet.FitBox"/> on RMS-normalised blocks, rounded to the kernel grid
    /// <see cref="E8BoxCodes.RoundToGrid"/>), then the pair code from the index frequencies of the budgeted encoder (two rounds).
    /// </summary>
    /// <param name="rows">Sample rows.</param>
    /// <param name="bits">b ∈ {2, 3, 4}.</param>
    /// <param name="k">Block scales (1 to 16).</param>
    /// <param name="indexBitsPerBlock">Index budget per block (e.g. 1.25); NaN or ≤ 0 for plain fixed-width ⌈log2 k⌉-bit indices.</param>
    /// <param name="groupBlocks">Blocks per group (≤ 32).</param>
    /// <param name="maxSampleBlocks">Most blocks the scale fit sees (evenly strided).</param>
    /// <param name="rateWeight">Weight of the index rate in the scale fit (<see cref="ScaleSet.FitBox"/>); used only with a variable-length index code.</param>
    /// <param name="rounds">Rounds of (pair code from the budgeted encoder's frequencies) → (re-encode); the first uses unbudgeted least-error choices.</param>
    public static E8BoxTable Fit(IReadOnlyList<float[]> rows, int bits, int k, double indexBitsPerBlock, int groupBlocks = MaxGroupBlocks, int maxSampleBlocks = 16384,
        double rateWeight = 1.39, int rounds = 10)
    {
        ArgumentNullException.ThrowIfNull(rows);
        double logSum = 0; int live = 0;
        var normalized = new List<float>();
        foreach (var r in rows)
        {
            if (r.Length % 8 != 0) throw new ArgumentException("Sample rows must be whole 8-blocks.", nameof(rows));
            double ss = 0;
            foreach (float f in r) ss += (double)f * f;
            double rms = Math.Sqrt(ss / Math.Max(1, r.Length));
            if (!(rms > 0) || !double.IsFinite(rms) || rms < 1e-30) continue;
            logSum += Math.Log2(rms); live++;
        }
        float s0 = live == 0 ? 1f : (float)Math.Pow(2, logSum / live);
        if (!(s0 > 0) || !float.IsFinite(s0)) s0 = 1f;
        // Normalised blocks with the 8-bit row scale the encoder will use, evenly strided.
        long totalBlocks = rows.Sum(r => (long)r.Length / 8);
        long stride = Math.Max(1, (totalBlocks + maxSampleBlocks - 1) / maxSampleBlocks);
        var probe = new E8BoxTable(bits, [1f], s0, [0], groupBlocks, 0);
        long bi = 0;
        foreach (var r in rows)
        {
            double ss = 0;
            foreach (float f in r) ss += (double)f * f;
            float s = probe.RowScaleValue(probe.RowScaleCode((float)Math.Sqrt(ss / Math.Max(1, r.Length))));
            for (int t = 0; t < r.Length / 8; t++, bi++)
            {
                if (bi % stride != 0 || s == 0) continue;
                for (int i = 0; i < 8; i++) normalized.Add(r[8 * t + i] / s);
            }
        }
        if (normalized.Count == 0) normalized.AddRange(new float[8]);
        bool fixedWidth = !(indexBitsPerBlock > 0) || k == 1;
        int fixedBits = k == 1 ? 0 : (int)Math.Ceiling(Math.Log2(k) - 1e-9);
        int Budget(byte[] l) => fixedWidth ? (k == 1 ? 0 : l.Max() * ((groupBlocks + 1) / 2))
            : Math.Max((k == 1 ? 0 : l.Min()) * (groupBlocks / 2) + (groupBlocks % 2 == 1 ? Enumerable.Range(0, k).Min(j => l[j * k]) : 0), (int)Math.Floor(indexBitsPerBlock * groupBlocks + 1e-9));
        var sample = normalized.ToArray();
        if (fixedWidth)
        {
            float[] scales = ScaleSet.FitBox(sample, bits, k, 0).Betas.ToArray();
            E8BoxCodes.RoundToGrid(scales);
            var lengths = new byte[k * k];
            if (k > 1 && (k & (k - 1)) == 0) Array.Fill(lengths, (byte)(2 * fixedBits));
            else if (k > 1) lengths = HuffmanLengths(Enumerable.Repeat(1.0, k * k).ToArray());
            return new E8BoxTable(bits, scales, s0, lengths, groupBlocks, Budget(lengths));
        }
        // Variable-length indices: a few rate weights around the given one, each followed by rounds of
        // (pair code from the budgeted encoder's frequencies); keep the table of least budgeted error on the sample.
        E8BoxTable? best = null; double bestErr = double.PositiveInfinity;
        foreach (double rw in new[] { rateWeight * 0.72, rateWeight, rateWeight * 1.3 })
        {
            float[] scales = ScaleSet.FitBox(sample, bits, k, rw).Betas.ToArray();
            E8BoxCodes.RoundToGrid(scales);
            var table = new E8BoxTable(bits, scales, s0, HuffmanLengths(Enumerable.Repeat(1.0, k * k).ToArray()), groupBlocks, 0 + Budget(HuffmanLengths(Enumerable.Repeat(1.0, k * k).ToArray())));
            for (int round = 0; round < rounds; round++)
            {
                var (freq, _) = table.Run(sample, budgeted: round > 0);
                var lengths = HuffmanLengths(freq);
                table = new E8BoxTable(bits, scales, s0, lengths, groupBlocks, Budget(lengths));
                if (round == 0) continue;
                var (_, err) = table.Run(sample, budgeted: true);
                if (err < bestErr && table.GroupIndexBits <= Budget(lengths)) { bestErr = err; best = table; }
            }
            if (rounds <= 1) { var (_, e1) = table.Run(sample, budgeted: true); if (e1 < bestErr) { bestErr = e1; best = table; } }
        }
        return best!;
    }

    // Pair frequencies of the budgeted encoder on unit-scale sample blocks cut into groups.
    private (double[] Freq, double Error) Run(float[] sample, bool budgeted)
    {
        double total = 0;
        int k = K, n = sample.Length / 8;
        var freq = new double[k * k];
        var err = new float[GroupBlocks * k];
        var digits = new byte[GroupBlocks * k * 8];
        var choice = new byte[GroupBlocks];
        for (int t0 = 0; t0 < n; t0 += GroupBlocks)
        {
            int nb = Math.Min(GroupBlocks, n - t0);
            E8BoxEncoder.EncodeCandidates(sample.AsSpan(8 * t0, 8 * nb), nb, 1f, BlockScales, Bits, err, digits);
            ChooseIndices(err, nb, budgeted ? IndexBitsFor(nb) : MaxCodeLength * ((nb + 1) / 2), choice);
            for (int t = 0; t < nb; t += 2) freq[choice[t] * k + (t + 1 < nb ? choice[t + 1] : 0)]++;
            for (int t = 0; t < nb; t++) total += err[t * k + choice[t]];
        }
        return (freq, total);
    }
}
