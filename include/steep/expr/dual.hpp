#pragma once
// dual<N>(x): a norm's dual map as a stage of a rule, applied to each block.
//
//   using namespace steep::expr;  namespace nm = steep::norms;
//   -lr * dual<nm::linf>(ema<"m">(grad, 0.9))        // Signum: sign(m), fused into the loop
//   -lr * dual<nm::l2>(grad)                          // normalized GD per block: g / ||g||
//   -lr * dual<nm::spectral>(ema<"m">(grad, 0.95))    // spectral steepest descent, exact U V^T
//   -lr * dual<nm::spectral>(m, nm::newton_schulz{})  // the same, approximated as Muon does
//   -lr * dual<nm::l2_to_linf>(grad)                  // Scion's row normalization
//   -lr * dual<nm::l1>(grad)                          // coordinate descent: one-hot at argmax |g|
//
// The math: d = argmax_{||d||_N <= 1} <x_b, d> for each block b, so normalized steepest descent
// under N is p <- p - lr d (docs/design.md; Gronich & Vardi 2026: MomentumGD = l2, Signum/Adam =
// l_inf, Muon = spectral). Zero in gives zero out.
//
// How each compiles — the cheapest exact form the norm allows, as the norm declares it
// (norms/norm.hpp, fused_form; lowered by lower_dual below, which a new form specializes):
//   l_inf            sign(x): elementwise, no extra pass;
//   l2, Frobenius    x / max(||x_b||_2, 1e-30): one per-block reduction (a read-only pass);
//   spectral         the exact polar factor by LAPACK (norms::exact_polar), a matrix stage;
//                    Muon's Newton-Schulz approximation is orthogonalize(newton_schulz{}, x);
//   any other norm   a matrix stage running the norm's own dual map (steep/norms) on the block.
// Matrix-only norms (spectral, nuclear, the operator norms) refuse vector blocks when the
// optimizer is built, naming the block.

#include "steep/expr/matrix.hpp"
#include "steep/expr/reduce.hpp"
// The norms' declarations only: the maps' BLAS and LAPACK bodies (norms/maps.hpp) belong to
// the engine.
#include "steep/norms/block_ref.hpp"
#include "steep/norms/composite.hpp"
#include "steep/norms/entrywise.hpp"
#include "steep/norms/newton_schulz.hpp"
#include "steep/norms/norm.hpp"
#include "steep/norms/operator_norms.hpp"
#include "steep/norms/polar.hpp"
#include "steep/norms/spectral.hpp"

#include <cstddef>
#include <type_traits>
#include <utility>

namespace steep::expr {

// A norm's dual map, in place on a block, as a matrix map.
template <class N>
struct norm_map {
  static_assert(norms::norm<N>, "norm_map<N>: N is not a steep norm (see steep/norms/norm.hpp)");
  static constexpr bool needs_matrix = N::matrix_only;
  bool operator==(const norm_map&) const = default;

  template <class T>
  void apply(T* x, std::size_t rows, std::size_t cols) const {
    if constexpr (N::matrix_only)
      N::dual_map(norms::matrix_ref<const T>{ x, rows, cols }, norms::matrix_ref<T>{ x, rows, cols });
    else
      N::dual_map(norms::vector_ref<const T>{ x, rows * cols }, norms::vector_ref<T>{ x, rows * cols });
  }
};

// How a norm's fused form (norms/norm.hpp, fused_form) becomes grammar: an open point. A norm that
// brings a form of its own specializes lower_dual<its form, N> next to itself (Hana's `_impl`
// idiom); a norm that declares none runs its own dual map as a matrix stage (the primary).
template <class Form, class N>
struct lower_dual {
  template <class X>
  static constexpr auto apply(X&& x) {
    return orthogonalize(norm_map<N>{}, std::forward<X>(x));
  }
};
template <class N>
struct lower_dual<norms::fused::sign, N> {
  template <class X>
  static constexpr auto apply(X&& x) {
    return sign(std::forward<X>(x));
  }
};
template <class N>
struct lower_dual<norms::fused::l2_scale, N> {
  template <class X>
  static constexpr auto apply(X&& x) {
    return l2_normalize<per_block>(std::forward<X>(x));
  }
};
template <class Map, class N>
struct lower_dual<norms::fused::matrix_map<Map>, N> {
  template <class X>
  static constexpr auto apply(X&& x) {
    return orthogonalize(Map{}, std::forward<X>(x));
  }
};

template <class N, operand X>
constexpr auto dual(X&& x) {
  static_assert(norms::norm<N>, "dual<N>(x): N must be a steep norm, e.g. steep::norms::linf, l2, spectral");
  return lower_dual<norms::fused_form_t<N>, N>::apply(std::forward<X>(x));
}

// dual<spectral>(x, map): the spectral dual map computed by an approximation of the polar
// factor, such as Muon's Newton-Schulz (norms::newton_schulz) — the same stage as
// orthogonalize(map, x), named by the geometry it approximates.
template <class N, operand X, matrix_map Map>
constexpr auto dual(X&& x, Map map) {
  static_assert(std::is_same_v<N, norms::spectral>,
                "dual<N>(x, map): an approximate map is only meaningful for the spectral norm (its dual map "
                "is the polar factor, which Newton-Schulz approximates); use dual<N>(x) for other norms");
  return orthogonalize(std::move(map), std::forward<X>(x));
}

} // namespace steep::expr
