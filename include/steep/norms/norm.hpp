#pragma once
// What a norm is, and the free functions every norm gets.
//
//   template <class N> concept norm;                  // an empty tag: dual_type, name, value, dual_map
//   template <class N> using dual_norm_t = typename N::dual_type;
//   template <class N> constexpr T    value(x);        // ||x||_N
//   template <class N> constexpr void dual_map(g, out); // out = argmax_{||d||_N <= 1} <g, d>
//   template <class N> constexpr void steepest(g, out); // out = ||g||_{N*} * dual_map(g)
//   constexpr double inner(x, y);                       // <x, y>, entrywise, in double
//
//   using namespace steep::norms;
//   fixed_vector<double, 3> g{{3, -4, 0}}, d;
//   dual_map<linf>(g, d);                              // d = sign(g) = (1, -1, 0)
//   inner(g, d) == value<l1>(g);                       // 7: <g, dual_map(g)> = ||g||_{linf*} = ||g||_1
//   steepest<l2>(g, d);                                // d = g: gradient descent is steepest under l2
//
// The math (Bernstein & Newhouse 2024, modular duality; Gronich & Vardi 2026): a norm N on a block has
// a dual norm ||g||_{N*} = max_{||d||_N <= 1} <g, d>, and its dual map returns a maximizer d, so
// <g, d> = ||g||_{N*} and ||d||_N = 1. Normalized steepest descent under N steps along -d, the
// unnormalized one along -||g||_{N*} d. The dual of the dual is N again (a reflexive, finite-dimensional
// space), so `dual_norm_t<dual_norm_t<N>>` is `N`: the concept checks it.
//
// Conventions every norm follows:
//   - a zero block maps to a zero block, never NaN; where the maximizer is not unique (ties, rank
//     deficiency) any maximizer is returned, always with norm exactly 1 when g != 0;
//   - sums and maps are computed in double and rounded once to the block's type (float or double);
//   - `out` may alias `g` (in place);
//   - matrix-only norms refuse vector blocks at compile time with a message naming the norm.
// A block is a vector_ref / matrix_ref view or a fixed_vector / fixed_matrix (block_ref.hpp).

#include "steep/core/error.hpp"
#include "steep/norms/block_ref.hpp"
#include "steep/norms/constexpr_math.hpp"

#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace steep::norms {

// An empty tag type with a dual whose dual is itself, a name, and a flag saying whether it only
// applies to matrices. (value and dual_map are function templates, so the concept cannot name them.)
template <class N>
concept norm = std::is_empty_v<N> && requires {
  typename N::dual_type;
  { N::name } -> std::convertible_to<std::string_view>;
  { N::matrix_only } -> std::convertible_to<bool>;
} && std::is_same_v<typename N::dual_type::dual_type, N>;

// How a norm's dual map runs inside a compiled rule (steep::expr::dual<N> reads it). A norm
// declares `using fused_form = ...;`; one that declares nothing runs its own dual_map as a
// matrix stage on each block, so adding a norm never touches the compiler or the engine.
namespace fused {
struct sign {};     // sign(x): elementwise, fused into the loop
struct l2_scale {}; // x / ||x_b||_2: one per-block reduction, then elementwise
template <class Map>
struct matrix_map { // a matrix stage running Map (e.g. the exact polar factor for spectral)
  using map_type = Map;
};
struct own_map {}; // a matrix stage running the norm's own dual_map
} // namespace fused

template <class N>
struct fused_form {
  using type = fused::own_map;
};
template <class N>
requires requires { typename N::fused_form; }
struct fused_form<N> {
  using type = typename N::fused_form;
};
template <class N>
using fused_form_t = typename fused_form<N>::type;

namespace detail {
template <class N>
struct dual_of {
  static_assert(
    requires { typename N::dual_type; },
    "steep::norms::dual_norm_t<N>: N has no dual_type, so it is not a norm");
  using type = typename N::dual_type;
};
} // namespace detail

template <class N>
using dual_norm_t = typename detail::dual_of<N>::type;

namespace detail {

[[noreturn]] inline void throw_shape_mismatch(std::string_view what, std::size_t gr, std::size_t gc,
                                              std::size_t orows, std::size_t ocols) {
  throw steep::usage_error(std::string(what) + ": the blocks have different shapes (" + std::to_string(gr) +
                           " x " + std::to_string(gc) + " and " + std::to_string(orows) + " x " +
                           std::to_string(ocols) + ")");
}

template <class T>
constexpr void check_element_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "steep::norms work on float or double blocks");
}

template <class A, class B>
constexpr void check_same_shape(const A& a, const B& b, std::string_view what) {
  if constexpr (is_matrix_block_v<A>) {
    if (a.rows != b.rows || a.cols != b.cols)
      throw_shape_mismatch(what, a.rows, a.cols, b.rows, b.cols);
  } else if (a.size != b.size) {
    throw_shape_mismatch(what, a.size, 1, b.size, 1);
  }
}

// The read-only view of g and the writable view of out, after the checks every dual map needs.
template <class G, class Out>
constexpr auto dual_map_args(const G& g, Out&& out) {
  static_assert(block<G>, "steep::norms: the gradient is not a block (a vector_ref, matrix_ref, fixed_vector "
                          "or fixed_matrix)");
  static_assert(block<Out>,
                "steep::norms: the output of a dual map is not a block (a vector_ref, matrix_ref, "
                "fixed_vector or fixed_matrix)");
  if constexpr (block<G> && block<Out>) {
    static_assert(
      is_matrix_block_v<G> == is_matrix_block_v<Out>,
      "steep::norms: the output of a dual map must be the same kind of block (vector or matrix) as "
      "the gradient");
    auto gv = as_const_ref(g);
    auto ov = as_ref(out);
    using T = typename decltype(gv)::value_type;
    check_element_type<T>();
    static_assert(!std::is_const_v<typename decltype(ov)::element_type>,
                  "steep::norms: the output of a dual map must be writable, not a view of const");
    static_assert(std::is_same_v<typename decltype(ov)::value_type, T>,
                  "steep::norms: the output of a dual map must have the gradient's element type");
    check_same_shape(gv, ov, "steep::norms::dual_map");
    return std::pair{ gv, ov };
  }
}

template <class X>
constexpr auto value_arg(const X& x) {
  static_assert(block<X>,
                "steep::norms: the argument is not a block (a vector_ref, matrix_ref, fixed_vector or "
                "fixed_matrix)");
  if constexpr (block<X>) {
    auto xv = as_const_ref(x);
    check_element_type<typename decltype(xv)::value_type>();
    return xv;
  }
}

template <class T>
constexpr void fill_zero(vector_ref<T> x) {
  for (std::size_t i = 0; i < x.size; ++i)
    x.data[i] = T(0);
}
template <class T>
constexpr void fill_zero(matrix_ref<T> x) {
  fill_zero(x.flat());
}

template <class View>
constexpr void scale_in_place(View x, double c) {
  auto f = x.flat();
  using T = typename decltype(f)::value_type;
  for (std::size_t i = 0; i < f.size; ++i)
    f.data[i] = static_cast<T>(static_cast<double>(f.data[i]) * c);
}

} // namespace detail

// <x, y> = sum_i x_i y_i over all entries, accumulated in double. Both blocks have one shape.
template <class X, class Y>
constexpr double inner(const X& x, const Y& y) {
  const auto xv = detail::value_arg(x);
  const auto yv = detail::value_arg(y);
  static_assert(is_matrix_block_v<X> == is_matrix_block_v<Y>,
                "steep::norms::inner: both blocks must be vectors or both matrices");
  detail::check_same_shape(xv, yv, "steep::norms::inner");
  const auto xf = xv.flat();
  const auto yf = yv.flat();
  double s = 0;
  for (std::size_t i = 0; i < xf.size; ++i)
    s += static_cast<double>(xf.data[i]) * static_cast<double>(yf.data[i]);
  return s;
}

// ||x||_N.
template <class N, class X>
constexpr auto value(const X& x) {
  static_assert(norm<N>,
                "steep::norms::value<N>(x): N is not a norm (a norm is an empty struct with a "
                "dual_type whose dual_type is N, a name, matrix_only, and static value and dual_map)");
  if constexpr (norm<N>)
    return N::value(x);
  else
    return 0.0;
}

// out = argmax_{||d||_N <= 1} <g, d>: the normalized steepest direction (descent steps along -out).
template <class N, class G, class Out>
constexpr void dual_map(const G& g, Out&& out) {
  static_assert(norm<N>,
                "steep::norms::dual_map<N>(g, out): N is not a norm (a norm is an empty struct with a "
                "dual_type whose dual_type is N, a name, matrix_only, and static value and dual_map)");
  if constexpr (norm<N>)
    N::dual_map(g, std::forward<Out>(out));
}

// out = ||g||_{N*} * dual_map<N>(g): the unnormalized steepest direction, the gradient of
// (1/2) ||g||_{N*}^2 (for l2 it is g itself: gradient descent).
template <class N, class G, class Out>
constexpr void steepest(const G& g, Out&& out) {
  static_assert(norm<N>,
                "steep::norms::steepest<N>(g, out): N is not a norm (a norm is an empty struct with a "
                "dual_type whose dual_type is N, a name, matrix_only, and static value and dual_map)");
  if constexpr (norm<N> && N::matrix_only && is_vector_block_v<G>) {
    N::dual_map(g, std::forward<Out>(out)); // refuses the vector block, naming N (not its dual)
  } else if constexpr (norm<N>) {
    const double scale = static_cast<double>(dual_norm_t<N>::value(g)); // before out overwrites an aliased g
    N::dual_map(g, out);
    detail::scale_in_place(as_ref(out), scale);
  }
}

} // namespace steep::norms
