#pragma once
// The SIMD vocabulary of the kernels: one value type V per lane width, and the handful of
// operations a rule needs, written once for xsimd batches and for the scalar tail.
//
//   using V = steep::kernel::batch<float>;          // xsimd::batch<float, default_arch>
//   V x = steep::kernel::load<V>(ptr);              // unaligned load (any S, converted to float)
//   steep::kernel::store(out, steep::kernel::sqrt(x));
//   float y = steep::kernel::sign(-2.f);            // -1; the same call on a batch works lane-wise
//
// Why unaligned loads everywhere: external buffers (torch tensors) carry no alignment promise,
// and on every x86 core since Nehalem an unaligned load of aligned data costs the same.
// sign(0) = 0 and sign(NaN) = NaN, as torch.sign (manifest: "sign(0) = 0").

#include "steep/core/xsimd_fence.hpp"
// (after the fence)
#include "steep/core/bfloat16.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace steep::kernel {

template <class T>
using batch = xsimd::batch<T>;

template <class V>
struct is_batch : std::false_type {};
template <class T, class A>
struct is_batch<xsimd::batch<T, A>> : std::true_type {};
template <class V>
inline constexpr bool is_batch_v = is_batch<V>::value;

template <class V>
struct scalar_of_impl {
  using type = V;
};
template <class T, class A>
struct scalar_of_impl<xsimd::batch<T, A>> {
  using type = T;
};
template <class V>
using scalar_of = typename scalar_of_impl<V>::type;

// Lanes of V: V::size for a batch, 1 for a scalar.
template <class V>
inline constexpr std::size_t lanes_of = [] {
  if constexpr (is_batch_v<V>)
    return std::size_t{ V::size };
  else
    return std::size_t{ 1 };
}();

// bfloat16 <-> float batches in SIMD (the element-wise conversion loop does not vectorize):
// a bfloat16 is the top half of a float; rounding is to nearest even, and a NaN stays a quiet
// NaN, as steep::bfloat16 does one value at a time. Widening and narrowing the 16-bit halves
// use AVX-512 or AVX2 instructions where the target has them.
inline batch<std::uint32_t> bf16_round_bits(const batch<float>& v) { // the rounded float's bits
  using VU = batch<std::uint32_t>;
  const VU u = xsimd::bitwise_cast<VU>(v);
  const VU rounded = (u + VU(0x7fffu) + ((u >> 16) & VU(1u))) & VU(0xffff0000u);
  const VU quiet_nan = (u | VU(0x00400000u)) & VU(0xffff0000u);
  // The select is on float lanes: xsimd's AVX-512BW select on 32-bit integers does not compile
  // with GCC 12 without optimization (-O0, -fsyntax-only), where the intrinsics it names for
  // 8- and 16-bit lanes are macros that reject its casts.
  using VF = batch<float>;
  return xsimd::bitwise_cast<VU>(
    xsimd::select(xsimd::isnan(v), xsimd::bitwise_cast<VF>(quiet_nan), xsimd::bitwise_cast<VF>(rounded)));
}
inline batch<float> round_bf16(const batch<float>& v) {
  return xsimd::bitwise_cast<batch<float>>(bf16_round_bits(v));
}
inline batch<float> load_bf16(const bfloat16* p) {
  using VU = batch<std::uint32_t>;
#if defined(__AVX512F__)
  static_assert(VU::size == 16);
  return xsimd::bitwise_cast<batch<float>>(VU(
    _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16)));
#elif defined(__AVX2__)
  static_assert(VU::size == 8);
  return xsimd::bitwise_cast<batch<float>>(
    VU(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16)));
#else
  alignas(64) std::uint32_t u[VU::size];
  for (std::size_t k = 0; k < VU::size; ++k)
    u[k] = static_cast<std::uint32_t>(p[k].bits) << 16;
  return xsimd::bitwise_cast<batch<float>>(VU::load_aligned(u));
#endif
}
// Exact: v must already be a bfloat16 value (round_bf16), as a slot's new value is.
inline void store_bf16_exact(bfloat16* p, const batch<float>& v) {
  using VU = batch<std::uint32_t>;
  const VU hi = xsimd::bitwise_cast<VU>(v) >> 16;
#if defined(__AVX512F__)
  static_assert(VU::size == 16);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(hi));
#elif defined(__AVX2__)
  static_assert(VU::size == 8);
  const __m256i packed = _mm256_packus_epi32(hi, hi); // within each 128-bit half
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08)));
#else
  alignas(64) std::uint32_t o[VU::size];
  hi.store_aligned(o);
  for (std::size_t k = 0; k < VU::size; ++k)
    p[k].bits = static_cast<std::uint16_t>(o[k]);
#endif
}
inline void store_bf16(bfloat16* p, const batch<float>& v) { store_bf16_exact(p, round_bf16(v)); }

// Loads V from memory of element type S (S == scalar_of<V> on the fast path; otherwise converted).
template <class V, class S>
inline V load(const S* p) {
  using T = scalar_of<V>;
  if constexpr (!is_batch_v<V>) {
    return static_cast<T>(*p);
  } else if constexpr (std::is_same_v<S, T>) {
    return V::load_unaligned(p);
  } else if constexpr (std::is_same_v<S, bfloat16> && std::is_same_v<T, float>) {
    return load_bf16(p);
  } else {
    alignas(64) T tmp[V::size];
    for (std::size_t k = 0; k < V::size; ++k)
      tmp[k] = static_cast<T>(p[k]);
    return V::load_aligned(tmp);
  }
}

template <class S, class V>
inline void store(S* p, const V& v) {
  using T = scalar_of<V>;
  if constexpr (!is_batch_v<V>) {
    *p = static_cast<S>(v);
  } else if constexpr (std::is_same_v<S, T>) {
    v.store_unaligned(p);
  } else if constexpr (std::is_same_v<S, bfloat16> && std::is_same_v<T, float>) {
    store_bf16(p, v);
  } else {
    alignas(64) T tmp[V::size];
    v.store_aligned(tmp);
    for (std::size_t k = 0; k < V::size; ++k)
      p[k] = static_cast<S>(tmp[k]);
  }
}

// v as it reads back after a store to memory of type S: a slot stored in a narrower dtype than
// the arithmetic (bfloat16 moments of float parameters) is used at the precision it is kept at,
// as PyTorch does with bf16 optimizer state.
template <class S, class V>
inline V round_to(const V& v) {
  using T = scalar_of<V>;
  if constexpr (std::is_same_v<S, T>) {
    return v;
  } else if constexpr (std::is_same_v<S, bfloat16> && std::is_same_v<T, float> && is_batch_v<V>) {
    return round_bf16(v);
  } else if constexpr (!is_batch_v<V>) {
    return static_cast<T>(static_cast<S>(v));
  } else {
    alignas(64) S tmp[V::size];
    kernel::store(tmp, v);
    return load<V>(tmp);
  }
}

// Stores v, which is already a value of S (round_to<S>), without rounding it again.
template <class S, class V>
inline void store_exact(S* p, const V& v) {
  if constexpr (std::is_same_v<S, bfloat16> && std::is_same_v<scalar_of<V>, float> && is_batch_v<V>)
    store_bf16_exact(p, v);
  else
    kernel::store(p, v); // qualified: ADL would pick xsimd::store, an aligned store
}

// A chunk's last n < V::size elements as one batch (a masked SIMD tail): load_first reads the
// first n lanes from p and zeroes the rest, store_first writes the first n lanes back. With AVX-512 and S the
// arithmetic type, each load and store is one masked instruction; otherwise the lanes go through a stack
// buffer. Only the first n elements of p are ever read or written; lanes_past(n) is true on the others.
// AddressSanitizer does not check masked instructions, so its build defines STEEP_UNMASKED_TAILS
// (scripts/check.sh): the same values through the stack buffer, each element an instrumented access.
template <class V, class S>
inline V load_first(const S* p, std::size_t n) {
#if defined(__AVX512F__) && !defined(STEEP_UNMASKED_TAILS)
  using T = scalar_of<V>;
  if constexpr (std::is_same_v<S, T> && sizeof(typename V::register_type) == 64) {
    if constexpr (std::is_same_v<T, float>)
      return V(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p));
    else if constexpr (std::is_same_v<T, double>)
      return V(_mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << n) - 1u), p));
  }
#endif
  alignas(64) S tmp[V::size] = {};
  for (std::size_t k = 0; k < n; ++k)
    tmp[k] = p[k];
  return load<V>(+tmp);
}
template <class S, class V>
inline void store_first(S* p, const V& v, std::size_t n) {
#if defined(__AVX512F__) && !defined(STEEP_UNMASKED_TAILS)
  using T = scalar_of<V>;
  if constexpr (std::is_same_v<S, T> && sizeof(typename V::register_type) == 64) {
    if constexpr (std::is_same_v<T, float>)
      return _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
    else if constexpr (std::is_same_v<T, double>)
      return _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1u), v);
  }
#endif
  alignas(64) S tmp[V::size];
  kernel::store(+tmp, v);
  for (std::size_t k = 0; k < n; ++k)
    p[k] = tmp[k];
}
// Stores v's lanes where `where` holds, among the first n (a masked tail, as store_first; all
// of them by default), and leaves p's other elements as they are (`old` is what p holds there).
// V may be a scalar, `where` then a bool. With AVX-512 and S the arithmetic type, one masked
// store; otherwise a select against old and a store. The update pass's hold-back: one spelling of
// "keep the old value where the new one is not finite" for full batches, tails and scalars.
template <class S, class V, class M>
inline void store_where(S* p, const M& where, const V& v, const V& old, std::size_t n = lanes_of<V>) {
  if constexpr (!is_batch_v<V>) {
    store_exact(p, where ? v : old);
  } else {
#if defined(__AVX512F__) && !defined(STEEP_UNMASKED_TAILS)
    if constexpr (std::is_same_v<S, scalar_of<V>> && sizeof(typename V::register_type) == 64) {
      const auto first = n < V::size ? (1u << n) - 1u : ~0u;
      if constexpr (std::is_same_v<S, float>)
        return _mm512_mask_storeu_ps(p, static_cast<__mmask16>(where.data & first), v);
      else if constexpr (std::is_same_v<S, double>)
        return _mm512_mask_storeu_pd(p, static_cast<__mmask8>(where.data & first), v);
    }
#endif
    if (n < V::size)
      store_first(p, xsimd::select(where, v, old), n);
    else
      store_exact(p, xsimd::select(where, v, old));
  }
}

template <class V>
inline auto lanes_past(std::size_t n) {
  using T = scalar_of<V>;
  alignas(64) T index[V::size];
  for (std::size_t k = 0; k < V::size; ++k)
    index[k] = static_cast<T>(k);
  return V::load_aligned(index) >= V(static_cast<T>(n));
}

// v, pinned in a register: the compiler may no longer fold its load into each instruction that
// uses it. A rule that reads an input twice (Lion's m feeds both the sign and the new m) would
// otherwise load it twice from memory, 6 vector loads per batch where 4 do.
template <class V>
inline V in_register(V v) {
#if defined(__GNUC__)
  if constexpr (is_batch_v<V>) {
    auto r = static_cast<typename V::register_type>(v);
    asm("" : "+v"(r));
    return V(r);
  }
#endif
  return v;
}

template <class V>
inline V broadcast(double x) {
  return V(static_cast<scalar_of<V>>(x));
}

// ---- elementwise functions (batch and scalar alike) --------------------------------------

template <class V>
inline V sqrt(const V& x) {
  if constexpr (is_batch_v<V>)
    return xsimd::sqrt(x);
  else
    return std::sqrt(x);
}
template <class V>
inline V abs(const V& x) {
  if constexpr (is_batch_v<V>)
    return xsimd::abs(x);
  else
    return std::fabs(x);
}
template <class V>
inline V max(const V& a, const V& b) {
  if constexpr (is_batch_v<V>)
    return xsimd::max(a, b);
  else
    return a < b ? b : a;
}
template <class V>
inline V min(const V& a, const V& b) {
  if constexpr (is_batch_v<V>)
    return xsimd::min(a, b);
  else
    return b < a ? b : a;
}
// x / d for a divisor d that is the same in every lane and on every batch of a loop (a per-step
// or per-block scalar), bit for bit the division's correctly rounded quotient, with the divider
// used once per loop instead of once per batch: r = 1 / d (loop-invariant, so hoisted), q = x r,
// then two of Markstein's corrections q <- q + (x - q d) r, each residual exact by an FMA. The
// first makes q faithful (within an ulp of x / d); from a faithful q and r = RN(1 / d) the second
// gives RN(x / d) (Markstein 1990, IBM J. Res. Dev. 34(1); Cornea-Hasegan, Golliver & Markstein,
// ARITH 1999, Theorem 1), where nothing underflows or overflows: a batch with some |x| outside
// [2^-100, 2^100] (float; [2^-900, 2^900] for double: zeros, subnormals, Inf and NaN among them)
// or |d| outside [2^-20, 2^20] divides. Why: torch's Adam divides by sqrt(1 - beta2^t) before
// it divides by the denominator, and a small model's step waits on the divider
// (python/README.md: the 50K step).
template <class V>
inline V div_uniform(const V& x, const V& d) {
  if constexpr (!is_batch_v<V>) {
    return x / d;
  } else {
    using T = scalar_of<V>;
    constexpr T lo = std::is_same_v<T, float> ? T(0x1p-100f) : T(0x1p-900);
    constexpr T hi = std::is_same_v<T, float> ? T(0x1p100f) : T(0x1p900);
    const V r = V(T(1)) / d;
    const V ad = xsimd::abs(d), ax = xsimd::abs(x);
    if (xsimd::all((ax >= V(lo)) & (ax <= V(hi)) & (ad >= V(T(0x1p-20))) & (ad <= V(T(0x1p20))))) {
      V q = x * r;
      q = xsimd::fma(xsimd::fnma(q, d, x), r, q);
      return xsimd::fma(xsimd::fnma(q, d, x), r, q);
    }
    return x / d;
  }
}

template <class V>
inline V sign(const V& x) {
  using T = scalar_of<V>;
  // Both compares are false for 0 and NaN, which get x - x: +0 for either zero, NaN for NaN.
  // Five instructions, as many as a sign that ignores NaN (two compares, two blends, a sub).
  if constexpr (is_batch_v<V>) {
    const V zero(T(0));
    return xsimd::select(x > zero, V(T(1)), xsimd::select(x < zero, V(T(-1)), x - x));
  } else {
    return x > T(0) ? T(1) : x < T(0) ? T(-1) : x - x;
  }
}
template <class V>
inline V exp(const V& x) {
  if constexpr (is_batch_v<V>)
    return xsimd::exp(x);
  else
    return std::exp(x);
}
template <class V>
inline V log(const V& x) {
  if constexpr (is_batch_v<V>)
    return xsimd::log(x);
  else
    return std::log(x);
}

// A batch widened to double lanes: itself for double; for float, its low and high halves.
// Reductions of float data accumulate in double, so a sum of squares of 1e20s does not
// overflow and one of 1e-25s does not vanish (float's exponent range ends at 1e+-38).
template <class T>
inline auto widen(const batch<T>& x) {
  if constexpr (std::is_same_v<T, double>) {
    return std::array<batch<double>, 1>{ x };
  } else {
    static_assert(std::is_same_v<T, float> && batch<float>::size == 2 * batch<double>::size);
    alignas(64) float f[batch<float>::size];
    alignas(64) double d[batch<float>::size];
    x.store_aligned(f);
    for (std::size_t k = 0; k < batch<float>::size; ++k)
      d[k] = f[k];
    return std::array<batch<double>, 2>{ batch<double>::load_aligned(d),
                                         batch<double>::load_aligned(d + batch<double>::size) };
  }
}

// Horizontal sum of a batch in a fixed lane order (so reductions are reproducible).
template <class V>
inline scalar_of<V> hsum(const V& x) {
  if constexpr (is_batch_v<V>)
    return xsimd::hadd(x);
  else
    return x;
}
template <class V>
inline scalar_of<V> hmax(const V& x) {
  if constexpr (is_batch_v<V>) {
    alignas(64) scalar_of<V> tmp[V::size];
    x.store_aligned(tmp);
    scalar_of<V> m = tmp[0];
    for (std::size_t k = 1; k < V::size; ++k)
      m = m < tmp[k] ? tmp[k] : m;
    return m;
  } else {
    return x;
  }
}

// Whether every entry of g[begin, end) is finite. The range is read as four streams, one per
// quarter, in lockstep, each with its own sum of g - g: one core reads four streams faster
// than one (a 64K-entry chunk at a time, 256 MB of float32 in 18 ms instead of 22 ms on the
// machine of docs/benchmarks.md; the non-finite guard's scan, engine/guard.hpp), and four sums keep the
// additions off one dependency chain.
template <class T>
bool all_finite(const T* g, std::size_t begin, std::size_t end) {
  using V = batch<T>;
  constexpr std::size_t w = V::size;
  const std::size_t quarter = (end - begin) / (4 * w) * w;
  const T* const q0 = g + begin;
  const T* const q1 = q0 + quarter;
  const T* const q2 = q1 + quarter;
  const T* const q3 = q2 + quarter;
  V a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
  for (std::size_t i = 0; i < quarter; i += w) {
    const V x0 = V::load_unaligned(q0 + i), x1 = V::load_unaligned(q1 + i);
    const V x2 = V::load_unaligned(q2 + i), x3 = V::load_unaligned(q3 + i);
    a0 = a0 + (x0 - x0), a1 = a1 + (x1 - x1), a2 = a2 + (x2 - x2), a3 = a3 + (x3 - x3);
  }
  std::size_t i = begin + 4 * quarter;
  for (; i + w <= end; i += w) {
    const V x = V::load_unaligned(g + i);
    a0 = a0 + (x - x);
  }
  T tail = 0;
  for (; i < end; ++i)
    tail = tail + (g[i] - g[i]);
  return std::isfinite(static_cast<double>(hsum((a0 + a1) + (a2 + a3)) + tail));
}

} // namespace steep::kernel
