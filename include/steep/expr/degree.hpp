#pragma once
// gradient_degree<E>: how an expression scales with the gradient. E is homogeneous of degree d in
// the gradient if multiplying every gradient (of every step) by c > 0 multiplies E by c^d:
// momentum (ema(grad)) has degree 1, Adam's v (ema(grad^2)) 2, sign(m), m / sqrt(v) and a dual
// map of the momentum 0 (scale invariant), plain GD's -lr * grad 1. An eps that is not a
// compile-time zero (sqrt(v) + eps), a user map or a stage of unknown kind make E not homogeneous.
//
//   static_assert(steep::expr::gradient_degree<decltype(rules::adam_eps0(1e-3))>.value == 0);
//   steep::expr::gradient_degree<decltype(ema<"m">(grad, 0.9))>.value;   // 1
//
// Why: training in the margin regime rescales the gradient by e^S to keep it representable
// (train/rescale.hpp, docs/implicit-bias.md §6), and that is exact only for a scale-invariant
// update whose state slots are rescaled by e^(dS) with their own degree d. The engine reports
// both (slot_info::degree, the optimizer's gradient_degree()), so the trainer needs no rule type.
// Compile-time floors that only guard exact zeros (ct<V>, 0 <= V <= 1e-20; the dual maps'
// floors) count as zero, as in the implied-norm analysis (train/implied_norm.hpp).

#include "steep/expr/dual.hpp"
#include "steep/expr/matrix.hpp"
#include "steep/expr/node.hpp"
#include "steep/expr/ops.hpp"
#include "steep/expr/reduce.hpp"
#include "steep/expr/schedules.hpp"
#include "steep/expr/state.hpp"

#include <initializer_list>
#include <limits>
#include <type_traits>

namespace steep::expr {

// A degree as the analysis carries it: a number, a zero that takes any degree (a compile-time
// floor), a slot's own previous value (inside its update), or not homogeneous.
struct degree {
  enum kind_t { value_k, zero_k, self_k, none_k } kind = none_k;
  double value = 0;

  static constexpr degree of(double d) { return { value_k, d }; }
  static constexpr degree zero() { return { zero_k, 0 }; }
  static constexpr degree self() { return { self_k, 0 }; }
  static constexpr degree none() { return { none_k, 0 }; }
  constexpr bool homogeneous() const { return kind == value_k; }
  // The number, NaN where E is not homogeneous (what slot_info::degree reports).
  constexpr double or_nan() const {
    return kind == value_k ? value : std::numeric_limits<double>::quiet_NaN();
  }
};

namespace detail {
// Terms of a sum (or of max, min): all of one degree. A zero floor or the slot's own value takes
// the other term's degree (ema: beta * self + (1 - beta) * g has g's).
constexpr degree same(degree a, degree b) {
  if (a.kind == degree::none_k || b.kind == degree::none_k)
    return degree::none();
  if (a.kind == degree::zero_k || (a.kind == degree::self_k && b.kind != degree::zero_k))
    return b;
  if (b.kind == degree::zero_k || b.kind == degree::self_k)
    return a;
  return a.value == b.value ? a : degree::none();
}
// A product adds degrees; the slot's own value times a scale-free factor stays itself.
constexpr degree product(degree a, degree b, double sign) {
  if (a.kind == degree::value_k && b.kind == degree::value_k)
    return degree::of(a.value + sign * b.value);
  if (a.kind == degree::self_k && b.kind == degree::value_k && b.value == 0)
    return a;
  if (sign > 0 && b.kind == degree::self_k && a.kind == degree::value_k && a.value == 0)
    return b;
  return degree::none();
}
constexpr degree scaled(degree a, double by) {
  return a.kind == degree::value_k ? degree::of(a.value * by) : degree::none();
}
// Functions that are homogeneous only of scale-free arguments (exp, log, pow, clamp, ...).
constexpr degree scale_free(std::initializer_list<degree> args) {
  for (const degree& a : args)
    if (!(a.kind == degree::value_k && a.value == 0))
      return degree::none();
  return degree::of(0);
}

template <class E>
struct degree_of {
  static constexpr degree value = degree::none(); // a node the analysis does not know
};
template <class E>
inline constexpr degree degree_v = degree_of<std::remove_cvref_t<E>>::value;

// ---- leaves ---------------------------------------------------------------------------------------
template <>
struct degree_of<grad_t> {
  static constexpr degree value = degree::of(1);
};
template <>
struct degree_of<param_t> {
  static constexpr degree value = degree::of(0);
};
template <>
struct degree_of<constant> {
  static constexpr degree value = degree::of(0);
};
template <fixed_string N, class R>
struct degree_of<hyper_node<N, R>> {
  static constexpr degree value = degree::of(0);
};
template <double V>
struct degree_of<ct_node<V>> {
  static constexpr degree value = V >= 0 && V <= 1e-20 ? degree::zero() : degree::of(0);
};
template <>
struct degree_of<step_t> {
  static constexpr degree value = degree::of(0);
};
template <class F>
struct degree_of<schedule_node<F>> {
  static constexpr degree value = degree::of(0);
};
template <class F>
struct degree_of<shape_node<F>> {
  static constexpr degree value = degree::of(0);
};
template <fixed_string N>
struct degree_of<prev_ref<N>> {
  static constexpr degree value = degree::self();
};
template <fixed_string N>
struct degree_of<block_prev_ref<N>> {
  static constexpr degree value = degree::self();
};
template <fixed_string N, int L>
struct degree_of<line_prev_ref<N, L>> {
  static constexpr degree value = degree::self();
};

// ---- state: a slot has its update's degree (a recurrence of g has g's) --------------------------
template <fixed_string Name, class D, class U, class X>
struct degree_of<state_node<Name, D, U, X>> {
  static constexpr degree u = degree_v<U>;
  static constexpr degree value = u.kind == degree::value_k ? u : degree::none();
};
template <class S>
struct degree_of<prev_node<S>> {
  static constexpr degree value = degree_v<S>;
};

// ---- arithmetic -----------------------------------------------------------------------------------
namespace o = ops;
// Op's degree from its arguments' (a function per operation, not per node: cheap to compile).
template <class Op>
constexpr degree apply_degree(degree a, degree b = degree::zero()) {
  if constexpr (std::is_same_v<Op, o::add> || std::is_same_v<Op, o::sub> || std::is_same_v<Op, o::max> ||
                std::is_same_v<Op, o::min> || std::is_same_v<Op, o::neg> || std::is_same_v<Op, o::abs>)
    return same(a, b);
  else if constexpr (std::is_same_v<Op, o::mul>)
    return product(a, b, 1);
  else if constexpr (std::is_same_v<Op, o::div> || std::is_same_v<Op, o::div_or_zero>)
    return product(a, b, -1);
  else if constexpr (std::is_same_v<Op, o::sign>)
    return scaled(a, 0);
  else if constexpr (std::is_same_v<Op, o::square>)
    return scaled(a, 2);
  else if constexpr (std::is_same_v<Op, o::sqrt>)
    return scaled(a, 0.5);
  else if constexpr (std::is_same_v<Op, o::exp> || std::is_same_v<Op, o::log> || std::is_same_v<Op, o::pow>)
    return scale_free({ a, b.kind == degree::zero_k ? degree::of(0) : b });
  else
    return degree::none();
}
template <class Op, class... C>
struct degree_of<apply_node<Op, C...>> {
  static constexpr degree value = apply_degree<Op>(degree_v<C>...);
};
template <class F, class... C>
struct degree_of<apply_node<o::user<F>, C...>> {
  static constexpr degree value = degree::none(); // a user map: its scaling is unknown
};
template <class... C>
struct degree_of<apply_node<o::clamp, C...>> {
  static constexpr degree value = scale_free({ degree_v<C>... });
};

// ---- reductions: sums and maxima of |x| keep x's degree, sums of squares double it ---------------
template <class Op, class Scope, class C>
struct degree_of<reduce_node<Op, Scope, C>> {
  static constexpr degree value =
    std::is_same_v<Op, red::sum_sq> ? scaled(degree_v<C>, 2) : scaled(degree_v<C>, 1);
};

// ---- matrix stages: a map that declares the dual map it approximates is scale invariant ----------
template <class Map>
inline constexpr bool declares_dual = requires {
  typename Map::approximates;
};
template <class Map>
inline constexpr bool declares_dual<sliced<Map>> = declares_dual<Map>;
template <class N>
inline constexpr bool declares_dual<norm_map<N>> = true;
// Several operands of one stage: homogeneous where they all have one degree.
template <class C0, class... C>
struct degree_of<inputs_node<C0, C...>> {
  static constexpr degree value = [] {
    degree d = degree_v<C0>;
    ((d = same(d, degree_v<C>)), ...);
    return d;
  }();
};
template <class Map, class C>
struct degree_of<matrix_node<Map, C>> {
  static constexpr degree value = declares_dual<Map> ? scaled(degree_v<C>, 0) : degree::none();
};
} // namespace detail

// E's degree in the gradient (degree::none() where E is not homogeneous).
template <class E>
inline constexpr degree gradient_degree = detail::degree_v<E>;

} // namespace steep::expr
