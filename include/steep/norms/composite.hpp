#pragma once
// Composite norms over a model's parameter blocks: one composite, folded by a policy.
//
//   template <class Fold, class... N> struct composite { std::array<double, K> weights; ... };  // K =
//   sizeof...(N) max_composite<N...> = composite<fold::max, N...>, sum_composite<N...> = composite<fold::sum,
//   N...>, l2_composite<N...> = composite<fold::l2, N...>
//     dual_type                       composite<F, N...> <-> composite<F::dual, dual_norm_t<N>...>
//     constexpr dual_type dual() const                  // the dual, weights 1 / w_b
//     constexpr double value(blocks) const              // blocks: std::tuple of one block per norm
//     constexpr void dual_map(g_blocks, out_blocks) const
//   value(c, blocks), dual_map(c, g, out), steepest(c, g, out)   // free functions, as for block norms
//
//   ||theta||_max = max_b c_b ||theta_b||_{N_b}         ||g||_sum = sum_b w_b ||g_b||_{N_b}
//   ||theta||_l2 = sqrt(sum_b (c_b ||theta_b||_{N_b})^2)
//   dual of max with weights c: sum of the dual norms with weights 1 / c_b (and back); of l2: l2.
//   dual_map of max: block b gets dual_map_{N_b}(g_b) / c_b          (every block takes a full step)
//   dual_map of sum: all mass on the first block maximizing ||g_b||_{N_b*} / w_b, scaled by 1 / w_b
//   dual_map of l2:  block b gets dual_map_{N_b}(g_b) s_b / (c_b ||s||_2), s_b = ||g_b||_{N_b*} / c_b
//
//   // Muon on the hidden matrix, Signum on the bias, weighted as Muon-Signum (docs/design.md):
//   max_composite<spectral, linf> hybrid{{1.0, 3.0}};
//   hybrid.dual_map(std::tuple{gW.ref(), gb.ref()}, std::tuple{dW.ref(), db.ref()});
//   hybrid.value(std::tuple{dW.ref(), db.ref()});           // 1: a unit step in the hybrid norm
//   hybrid.dual().value(std::tuple{gW.ref(), gb.ref()});    // ||gW||_nuc + ||gb||_1 / 3 = <g, d>
//
// Why: a model's parameters are blocks, and "Muon on matrices, Signum elsewhere" is normalized steepest
// descent under one max-composite norm, whose dual map is the per-block dual maps side by side
// (Bernstein & Newhouse 2024, modular duality; Gronich & Vardi 2026 for the margin it maximizes).
// Per-layer scalings (Muon's sqrt(max(1, rows / cols)), modula's and Scion's scales, Pethick et al.
// 2025) are weights c_b, not new geometries. Weights are run-time doubles (they are hyperparameters),
// must be positive and finite, and are stored as the multipliers of the block norms in both composites.
// Unnormalized steepest descent couples the blocks through ||g||_{max*} = sum of all dual norms.
// Composites of composites are not supported.

#include "steep/core/error.hpp"
#include "steep/norms/fold.hpp"
#include "steep/norms/norm.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace steep::norms {

template <class Fold, class... Ns>
struct composite;

template <class... Ns>
using max_composite = composite<fold::max, Ns...>;
template <class... Ns>
using sum_composite = composite<fold::sum, Ns...>;
template <class... Ns>
using l2_composite = composite<fold::l2, Ns...>;

template <class C>
struct is_composite : std::false_type {};
template <class Fold, class... Ns>
struct is_composite<composite<Fold, Ns...>> : std::true_type {};

// A composite of block norms (max, sum or l2 fold).
template <class C>
concept composite_norm = is_composite<std::remove_cvref_t<C>>::value;

namespace detail {

[[noreturn]] inline void throw_bad_weight(std::string_view what, std::size_t b, double w) {
  throw steep::usage_error(std::string(what) + ": the weight of block " + std::to_string(b) + " is " +
                           std::to_string(w) + "; block weights must be positive and finite");
}

template <std::size_t K>
constexpr void check_weights(const std::array<double, K>& w, std::string_view what) {
  for (std::size_t b = 0; b < K; ++b)
    if (!(w[b] > 0 && w[b] < 1e308))
      throw_bad_weight(what, b, w[b]);
}

template <std::size_t K>
constexpr std::array<double, K> reciprocal(const std::array<double, K>& w) {
  std::array<double, K> r{};
  for (std::size_t b = 0; b < K; ++b)
    r[b] = 1.0 / w[b];
  return r;
}

template <std::size_t K>
constexpr std::array<double, K> ones() {
  std::array<double, K> r{};
  for (auto& x : r)
    x = 1.0;
  return r;
}

template <class Tuple, std::size_t K>
concept tuple_of = requires {
  std::tuple_size<std::remove_cvref_t<Tuple>>::value;
}
&&(std::tuple_size<std::remove_cvref_t<Tuple>>::value == K);

template <class... Ns>
constexpr void check_block_norms() {
  static_assert(sizeof...(Ns) > 0, "a composite norm needs at least one block norm");
  static_assert((norm<Ns> && ...), "every block of a composite norm must be a block norm such as l2, linf or "
                                   "spectral (composites of composites are not supported)");
}

} // namespace detail

// ||theta|| = Fold_b c_b ||theta_b||_{N_b}, weights c_b > 0 (all 1 by default).
template <class Fold, class... Ns>
struct composite {
  static constexpr std::size_t size = sizeof...(Ns);
  using fold_type = Fold;
  using block_norms = std::tuple<Ns...>;
  using dual_type = composite<typename Fold::dual, dual_norm_t<Ns>...>;

  std::array<double, size> weights = detail::ones<size>();

  constexpr composite() { detail::check_block_norms<Ns...>(); }
  constexpr explicit composite(const std::array<double, size>& w)
    : weights(w) {
    detail::check_block_norms<Ns...>();
    detail::check_weights(w, Fold::name);
  }

  // The dual fold of the dual norms, with weights 1 / c_b.
  constexpr dual_type dual() const { return dual_type(detail::reciprocal(weights)); }

  template <class Blocks>
  constexpr double value(const Blocks& x) const {
    static_assert(detail::tuple_of<Blocks, size>,
                  "composite::value: pass a std::tuple with one block per block norm, in order");
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return Fold::combine(std::array<double, size>{
        (weights[I] * static_cast<double>(std::tuple_element_t<I, block_norms>::value(std::get<I>(x))))... });
    }
    (std::make_index_sequence<size>{});
  }

  // Block b: dual_map_{N_b}(g_b) times its share (Fold::shares of the scores ||g_b||_{N_b*} / c_b)
  // over c_b; a block of share 0 is zero. Then <g, d> = ||g||_{dual} and ||d|| = 1 (0 for g = 0).
  template <class G, class Out>
  constexpr void dual_map(const G& g, Out&& out) const {
    static_assert(detail::tuple_of<G, size> && detail::tuple_of<Out, size>,
                  "composite::dual_map: pass std::tuples with one block per block norm, in order");
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      std::array<double, size> score{};
      if constexpr (Fold::needs_scores)
        score = { (
          static_cast<double>(dual_norm_t<std::tuple_element_t<I, block_norms>>::value(std::get<I>(g))) /
          weights[I])... };
      const std::array<double, size> share = Fold::shares(score);
      (
        [&] {
          if (share[I] != 0) {
            std::tuple_element_t<I, block_norms>::dual_map(std::get<I>(g), std::get<I>(out));
            detail::scale_in_place(as_ref(std::get<I>(out)), share[I] / weights[I]);
          } else {
            detail::fill_zero(as_ref(std::get<I>(out)));
          }
        }(),
        ...);
    }
    (std::make_index_sequence<size>{});
  }
};

template <class C, class Blocks>
requires composite_norm<C>
constexpr double value(const C& c, const Blocks& x) { return c.value(x); }

template <class C, class G, class Out>
requires composite_norm<C>
constexpr void dual_map(const C& c, const G& g, Out&& out) { c.dual_map(g, out); }

// out = ||g||_{C*} * dual_map_C(g): for a max composite every block's step is scaled by the sum of all
// blocks' dual norms (the coupling noted by Bernstein & Newhouse 2024).
template <class C, class G, class Out>
requires composite_norm<C>
constexpr void steepest(const C& c, const G& g, Out&& out) {
  const double scale = c.dual().value(g);
  c.dual_map(g, out);
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (detail::scale_in_place(as_ref(std::get<I>(out)), scale), ...);
  }
  (std::make_index_sequence<std::remove_cvref_t<C>::size>{});
}

} // namespace steep::norms
