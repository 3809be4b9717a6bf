using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gosset.Kernels.Simd;

/// <summary>
/// float-lane width trait of the Voronoi SIMD code (<see cref="VoronoiSimd{TF, TI}"/>): operators and the
/// handful of <c>Vector128/256/512</c> functions it uses, with comparisons returning int masks
/// (<typeparamref name="TI"/>). Cross-platform API only, so every width runs everywhere.
/// </summary>
internal unsafe interface IFloatVec<TF, TI> where TF : unmanaged, IFloatVec<TF, TI> where TI : unmanaged, IIntVec<TF, TI>
{
    static abstract TF Zero { get; }
    static abstract TF Create(float v);
    static abstract TF Load(float* p);
    static abstract void Store(TF v, float* p);
    static abstract TF operator +(TF a, TF b);
    static abstract TF operator -(TF a, TF b);
    static abstract TF operator -(TF a);
    static abstract TF operator *(TF a, TF b);
    static abstract TF operator /(TF a, TF b);
    static abstract TF Min(TF a, TF b);
    static abstract TF Max(TF a, TF b);
    static abstract TF Floor(TF a);
    static abstract TF Abs(TF a);
    /// <summary>Truncating float → int32 conversion, lane-wise.</summary>
    static abstract TI ToInt(TF a);
    static abstract TI GreaterThan(TF a, TF b);
    static abstract TI LessThan(TF a, TF b);
    static abstract TI Equal(TF a, TF b);
    /// <summary>mask ? a : b, lane-wise (mask lanes all-ones or zero).</summary>
    static abstract TF Select(TI mask, TF a, TF b);
}

/// <summary>int-lane width trait of the Voronoi SIMD code; see <see cref="IFloatVec{TF, TI}"/>.</summary>
internal unsafe interface IIntVec<TF, TI> where TF : unmanaged, IFloatVec<TF, TI> where TI : unmanaged, IIntVec<TF, TI>
{
    static abstract int Lanes { get; }
    static abstract TI Zero { get; }
    static abstract TI Create(int v);
    static abstract TI Load(int* p);
    static abstract void Store(TI v, int* p);
    static abstract TI operator +(TI a, TI b);
    static abstract TI operator -(TI a, TI b);
    static abstract TI operator *(TI a, TI b);
    static abstract TI operator &(TI a, TI b);
    static abstract TI operator |(TI a, TI b);
    static abstract TI operator ~(TI a);
    static abstract TI operator <<(TI a, int n);
    /// <summary>Arithmetic right shift.</summary>
    static abstract TI operator >>(TI a, int n);
    static abstract TI Abs(TI a);
    static abstract TF ToFloat(TI a);
    static abstract TI GreaterThan(TI a, TI b);
    static abstract TI LessThan(TI a, TI b);
    static abstract TI Equal(TI a, TI b);
    static abstract TI Select(TI mask, TI a, TI b);
    static abstract bool AnyNonZero(TI a);
    /// <summary>Bit l set when lane l's sign bit is set.</summary>
    static abstract int SignBits(TI a);
}

/// <summary>128-bit float lanes.</summary>
internal readonly unsafe struct F128(Vector128<float> v) : IFloatVec<F128, I128>
{
    public readonly Vector128<float> V = v;
    public static F128 Zero => new(Vector128<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F128 Create(float v) => new(Vector128.Create(v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F128 Load(float* p) => new(Vector128.Load(p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(F128 v, float* p) => Vector128.Store(v.V, p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F128 operator +(F128 a, F128 b) => new(a.V + b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F128 operator -(F128 a, F128 b) => new(a.V - b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F128 operator -(F128 a) => new(-a.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F128 operator *(F128 a, F128 b) => new(a.V * b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F128 operator /(F128 a, F128 b) => new(a.V / b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F128 Min(F128 a, F128 b) => new(Vector128.Min(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F128 Max(F128 a, F128 b) => new(Vector128.Max(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F128 Floor(F128 a) => new(Vector128.Floor(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F128 Abs(F128 a) => new(Vector128.Abs(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 ToInt(F128 a) => new(Vector128.ConvertToInt32(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 GreaterThan(F128 a, F128 b) => new(Vector128.GreaterThan(a.V, b.V).AsInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 LessThan(F128 a, F128 b) => new(Vector128.LessThan(a.V, b.V).AsInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 Equal(F128 a, F128 b) => new(Vector128.Equals(a.V, b.V).AsInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F128 Select(I128 mask, F128 a, F128 b) => new(Vector128.ConditionalSelect(mask.V.AsSingle(), a.V, b.V));
}

/// <summary>128-bit int32 lanes.</summary>
internal readonly unsafe struct I128(Vector128<int> v) : IIntVec<F128, I128>
{
    public readonly Vector128<int> V = v;
    public static int Lanes => 4;
    public static I128 Zero => new(Vector128<int>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 Create(int v) => new(Vector128.Create(v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 Load(int* p) => new(Vector128.Load(p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(I128 v, int* p) => Vector128.Store(v.V, p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 operator +(I128 a, I128 b) => new(a.V + b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 operator -(I128 a, I128 b) => new(a.V - b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 operator *(I128 a, I128 b) => new(a.V * b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 operator &(I128 a, I128 b) => new(a.V & b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 operator |(I128 a, I128 b) => new(a.V | b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 operator ~(I128 a) => new(~a.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 operator <<(I128 a, int n) => new(a.V << n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 operator >>(I128 a, int n) => new(a.V >> n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 Abs(I128 a) => new(Vector128.Abs(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F128 ToFloat(I128 a) => new(Vector128.ConvertToSingle(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 GreaterThan(I128 a, I128 b) => new(Vector128.GreaterThan(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 LessThan(I128 a, I128 b) => new(Vector128.LessThan(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 Equal(I128 a, I128 b) => new(Vector128.Equals(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I128 Select(I128 mask, I128 a, I128 b) => new(Vector128.ConditionalSelect(mask.V, a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool AnyNonZero(I128 a) => a.V != Vector128<int>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static int SignBits(I128 a) => (int)Vector128.ExtractMostSignificantBits(a.V);
}

/// <summary>256-bit float lanes.</summary>
internal readonly unsafe struct F256(Vector256<float> v) : IFloatVec<F256, I256>
{
    public readonly Vector256<float> V = v;
    public static F256 Zero => new(Vector256<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F256 Create(float v) => new(Vector256.Create(v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F256 Load(float* p) => new(Vector256.Load(p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(F256 v, float* p) => Vector256.Store(v.V, p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F256 operator +(F256 a, F256 b) => new(a.V + b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F256 operator -(F256 a, F256 b) => new(a.V - b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F256 operator -(F256 a) => new(-a.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F256 operator *(F256 a, F256 b) => new(a.V * b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F256 operator /(F256 a, F256 b) => new(a.V / b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F256 Min(F256 a, F256 b) => new(Vector256.Min(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F256 Max(F256 a, F256 b) => new(Vector256.Max(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F256 Floor(F256 a) => new(Vector256.Floor(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F256 Abs(F256 a) => new(Vector256.Abs(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 ToInt(F256 a) => new(Vector256.ConvertToInt32(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 GreaterThan(F256 a, F256 b) => new(Vector256.GreaterThan(a.V, b.V).AsInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 LessThan(F256 a, F256 b) => new(Vector256.LessThan(a.V, b.V).AsInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 Equal(F256 a, F256 b) => new(Vector256.Equals(a.V, b.V).AsInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F256 Select(I256 mask, F256 a, F256 b) => new(Vector256.ConditionalSelect(mask.V.AsSingle(), a.V, b.V));
}

/// <summary>256-bit int32 lanes.</summary>
internal readonly unsafe struct I256(Vector256<int> v) : IIntVec<F256, I256>
{
    public readonly Vector256<int> V = v;
    public static int Lanes => 8;
    public static I256 Zero => new(Vector256<int>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 Create(int v) => new(Vector256.Create(v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 Load(int* p) => new(Vector256.Load(p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(I256 v, int* p) => Vector256.Store(v.V, p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 operator +(I256 a, I256 b) => new(a.V + b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 operator -(I256 a, I256 b) => new(a.V - b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 operator *(I256 a, I256 b) => new(a.V * b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 operator &(I256 a, I256 b) => new(a.V & b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 operator |(I256 a, I256 b) => new(a.V | b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 operator ~(I256 a) => new(~a.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 operator <<(I256 a, int n) => new(a.V << n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 operator >>(I256 a, int n) => new(a.V >> n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 Abs(I256 a) => new(Vector256.Abs(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F256 ToFloat(I256 a) => new(Vector256.ConvertToSingle(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 GreaterThan(I256 a, I256 b) => new(Vector256.GreaterThan(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 LessThan(I256 a, I256 b) => new(Vector256.LessThan(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 Equal(I256 a, I256 b) => new(Vector256.Equals(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I256 Select(I256 mask, I256 a, I256 b) => new(Vector256.ConditionalSelect(mask.V, a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool AnyNonZero(I256 a) => a.V != Vector256<int>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static int SignBits(I256 a) => (int)Vector256.ExtractMostSignificantBits(a.V);
}

/// <summary>512-bit float lanes.</summary>
internal readonly unsafe struct F512(Vector512<float> v) : IFloatVec<F512, I512>
{
    public readonly Vector512<float> V = v;
    public static F512 Zero => new(Vector512<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F512 Create(float v) => new(Vector512.Create(v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F512 Load(float* p) => new(Vector512.Load(p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(F512 v, float* p) => Vector512.Store(v.V, p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F512 operator +(F512 a, F512 b) => new(a.V + b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F512 operator -(F512 a, F512 b) => new(a.V - b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F512 operator -(F512 a) => new(-a.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F512 operator *(F512 a, F512 b) => new(a.V * b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F512 operator /(F512 a, F512 b) => new(a.V / b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F512 Min(F512 a, F512 b) => new(Vector512.Min(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F512 Max(F512 a, F512 b) => new(Vector512.Max(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F512 Floor(F512 a) => new(Vector512.Floor(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F512 Abs(F512 a) => new(Vector512.Abs(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 ToInt(F512 a) => new(Vector512.ConvertToInt32(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 GreaterThan(F512 a, F512 b) => new(Vector512.GreaterThan(a.V, b.V).AsInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 LessThan(F512 a, F512 b) => new(Vector512.LessThan(a.V, b.V).AsInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 Equal(F512 a, F512 b) => new(Vector512.Equals(a.V, b.V).AsInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F512 Select(I512 mask, F512 a, F512 b) => new(Vector512.ConditionalSelect(mask.V.AsSingle(), a.V, b.V));
}

/// <summary>512-bit int32 lanes.</summary>
internal readonly unsafe struct I512(Vector512<int> v) : IIntVec<F512, I512>
{
    public readonly Vector512<int> V = v;
    public static int Lanes => 16;
    public static I512 Zero => new(Vector512<int>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 Create(int v) => new(Vector512.Create(v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 Load(int* p) => new(Vector512.Load(p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(I512 v, int* p) => Vector512.Store(v.V, p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 operator +(I512 a, I512 b) => new(a.V + b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 operator -(I512 a, I512 b) => new(a.V - b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 operator *(I512 a, I512 b) => new(a.V * b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 operator &(I512 a, I512 b) => new(a.V & b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 operator |(I512 a, I512 b) => new(a.V | b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 operator ~(I512 a) => new(~a.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 operator <<(I512 a, int n) => new(a.V << n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 operator >>(I512 a, int n) => new(a.V >> n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 Abs(I512 a) => new(Vector512.Abs(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static F512 ToFloat(I512 a) => new(Vector512.ConvertToSingle(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 GreaterThan(I512 a, I512 b) => new(Vector512.GreaterThan(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 LessThan(I512 a, I512 b) => new(Vector512.LessThan(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 Equal(I512 a, I512 b) => new(Vector512.Equals(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static I512 Select(I512 mask, I512 a, I512 b) => new(Vector512.ConditionalSelect(mask.V, a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool AnyNonZero(I512 a) => a.V != Vector512<int>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static int SignBits(I512 a) => (int)Vector512.ExtractMostSignificantBits(a.V);
}
