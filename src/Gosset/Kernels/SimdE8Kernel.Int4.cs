using System.Runtime.CompilerServices;
using Gosset.Kernels.Simd;

namespace Gosset.Kernels;

/// <summary>The INT4 product (<see cref="PackedInt4Matrix"/>) on the E8 kernels' steps: blocks of parity 0 whose half block scale is d/2.</summary>
internal sealed unsafe partial class SimdE8Kernel<TV, TOps>
{
    internal override void RunInt4(PackedInt4Matrix m, E8ActivationLayout a, int r0, int r1, float* y)
    {
        fixed (float* x20 = a.X2, af0 = a.Af, cf0 = a.Cf, xs0 = a.Xs)
        fixed (sbyte* q0 = a.Q)
        fixed (int* A0 = a.A, C0 = a.C)
        fixed (byte* nib = m.Nibbles)
        fixed (ushort* st = m.Steps)
        {
            var s = a.IsFloat ? new StepArgs { X = x20, T0 = af0, T1 = cf0, Cp = a.PaddedCols, Nb = a.Blocks }
                              : new StepArgs { X = q0, T0 = A0, T1 = C0, Xs = xs0, Cp = a.PaddedCols, Nb = a.Blocks };
            var rows = new Int4Tiles(m, nib, st);
            if (a.Batch == 1)
            {
                if (a.IsFloat) Int4Rows1<FloatBlocks>(m, r0, r1, y, s);
                else Int4Rows1<IntBlocks>(m, r0, r1, y, s);
                return;
            }
            // The E8 GEMMs on decoded INT4 rows: whole tiles of four vectors, then the rest (all of them at 4 lanes).
            int done = TV.Lanes < 8 ? 0 : a.IsFloat ? Gemm4<Int4Tiles, FloatQuad>(rows, s, a.Batch, r0, r1, y) : Gemm4<Int4Tiles, IntQuad>(rows, s, a.Batch, r0, r1, y);
            if (done == a.Batch) return;
            if (a.IsFloat) RowsByVectors<Int4Tiles, FloatBlocks>(rows, a.Batch, r0, r1, y, done, s);
            else RowsByVectors<Int4Tiles, IntBlocks>(rows, a.Batch, r0, r1, y, done, s);
        }
    }

    /// <summary>The rows of a <see cref="PackedInt4Matrix"/> for the GEMMs (pinned by the caller; row scale 1).</summary>
    private readonly struct Int4Tiles : IRowTiles
    {
        private readonly PackedInt4Matrix _m;
        private readonly byte* _nib;
        private readonly ushort* _st;
        public Int4Tiles(PackedInt4Matrix m, byte* nib, ushort* st) { _m = m; _nib = nib; _st = st; }
        public int Groups => _m.Groups;
        public int Rows => _m.Rows;
        public void DecodeRows(int rb, int re, TV* tile) => Int4DecodeRows(_m, _nib, _st, rb, re, tile);
        public float RowScale(int r) => 1f;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Int4DecodeRows(PackedInt4Matrix m, byte* nib, ushort* st, int rb, int re, TV* tile)
    {
        int groups = m.Groups, chunks = 32 / TV.Lanes;
        fixed (int* ql = QuarterOfLane)
        {
            var quarter = TV.Load(ql);
            for (long i = (long)rb * groups; i < (long)re * groups; i++) // (row, group) in order
                Int4Group(nib + i * 128, st + i * 8, quarter, tile + (i - (long)rb * groups) * chunks * 4);
        }
    }

    /// <summary>Lane l of a chunk reads dword l / 4 of the step pairs it loads (<see cref="HalfSteps"/>).</summary>
    private static ReadOnlySpan<int> QuarterOfLane => [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3];

    /// <summary>Batch 1: each chunk decoded straight into its accumulator register (chunk c into lane sum c mod 16/Lanes); y = Reduce16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Int4Rows1<TStep>(PackedInt4Matrix m, int r0, int r1, float* y, in StepArgs s) where TStep : struct, IBlockStep
    {
        int n = TV.Lanes, groups = m.Groups;
        fixed (byte* nib0 = m.Nibbles)
        fixed (ushort* st0 = m.Steps)
        fixed (int* ql = QuarterOfLane)
        {
            var quarter = TV.Load(ql);
            for (int r = r0; r < r1; r++)
            {
                byte* rec = nib0 + (long)r * groups * 128;
                ushort* st = st0 + (long)r * groups * 8;
                TV f0 = TV.Float(0), f1 = f0, f2 = f0, f3 = f0;
                for (int g = 0; g < groups; g++, rec += 128, st += 8)
                {
                    f0 = Chunk1<TStep>(rec, st, 0, quarter, s, g, f0);
                    if (n == 16) { f0 = Chunk1<TStep>(rec, st, 1, quarter, s, g, f0); continue; }
                    f1 = Chunk1<TStep>(rec, st, 1, quarter, s, g, f1);
                    if (n == 8) { f0 = Chunk1<TStep>(rec, st, 2, quarter, s, g, f0); f1 = Chunk1<TStep>(rec, st, 3, quarter, s, g, f1); continue; }
                    f2 = Chunk1<TStep>(rec, st, 2, quarter, s, g, f2);
                    f3 = Chunk1<TStep>(rec, st, 3, quarter, s, g, f3);
                    f0 = Chunk1<TStep>(rec, st, 4, quarter, s, g, f0);
                    f1 = Chunk1<TStep>(rec, st, 5, quarter, s, g, f1);
                    f2 = Chunk1<TStep>(rec, st, 6, quarter, s, g, f2);
                    f3 = Chunk1<TStep>(rec, st, 7, quarter, s, g, f3);
                }
                y[r] = TV.Reduce16(f0, f1, f2, f3);
            }
        }
    }

    /// <summary>Batch 1: chunk c (constant) of group g of vector 0 added to acc.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Chunk1<TStep>(byte* rec, ushort* st, int c, TV quarter, in StepArgs s, int g, TV acc) where TStep : struct, IBlockStep
    {
        int b0 = c * TV.Lanes;
        Digits4.Load(rec, b0, out TV lo, out TV hi);
        return TStep.Step(lo, hi, TV.Int(0), HalfSteps(st, b0, quarter), s, 0, g, b0, acc);
    }

    /// <summary>All 32/Lanes chunks of a record, unrolled with constant chunk numbers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Int4Group(byte* rec, ushort* st, TV quarter, TV* dec)
    {
        Int4Chunk(rec, st, 0, quarter, dec);
        Int4Chunk(rec, st, 1, quarter, dec);
        if (typeof(TV) != typeof(V512))
        {
            Int4Chunk(rec, st, 2, quarter, dec);
            Int4Chunk(rec, st, 3, quarter, dec);
        }
        if (typeof(TV) == typeof(V128))
        {
            Int4Chunk(rec, st, 4, quarter, dec);
            Int4Chunk(rec, st, 5, quarter, dec);
            Int4Chunk(rec, st, 6, quarter, dec);
            Int4Chunk(rec, st, 7, quarter, dec);
        }
    }

    /// <summary>Chunk c: the digits (the E8 4-bit layout), parity mask 0 and d/2 per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Int4Chunk(byte* rec, ushort* st, int c, TV quarter, TV* dec)
    {
        int b0 = c * TV.Lanes;
        Digits4.Load(rec, b0, out dec[4 * c], out dec[4 * c + 1]);
        dec[4 * c + 2] = TV.Int(0);
        dec[4 * c + 3] = HalfSteps(st, b0, quarter);
    }

    private const float TwoTo111 = (float)(1L << 62) * (1L << 49); // exact

    /// <summary>
    /// d/2 per lane for the chunk from block b0: block b0 + l lies in group of 32 s = (b0 + l)/4, whose fp16 step is half
    /// s/4 = b0/16 (the same for every lane) of dword s mod 4 of the record's steps.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV HalfSteps(ushort* st, int b0, TV quarter)
    {
        var x = TV.ShuffleF(TV.Load(st + 2 * ((b0 & 15) >> 2)), quarter);
        // The fp16 bits h at bits 13–28 of a float are h's value times 2⁻¹¹², exactly (subnormal steps become subnormal
        // floats); the multiply by 2¹¹¹ gives d/2, a normal float, exactly.
        var h13 = TV.And(b0 >= 16 ? TV.ShiftRight(x, 3) : TV.ShiftLeft(x, 13), TV.Int(0xFFFF << 13));
        return TV.MulF(h13, TV.Float(TwoTo111));
    }
}
