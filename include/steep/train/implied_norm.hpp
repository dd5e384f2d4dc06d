#pragma once
// implied_norm_t<Rule>: the norm whose margin the theory says a rule maximizes, read off the rule's
// type at compile time.
//
//   using namespace steep::expr;  namespace nm = steep::norms;
//   auto m = ema<"m">(grad, 0.9);
//   using signum_t = decltype(-0.1 * sign(m));
//   using gd_t = decltype(-0.1 * m / norm2(m));                  // MomentumGD
//   using muon_t = decltype(-0.1 * dual<nm::spectral>(m));       // Muon with the exact polar factor
//   static_assert(std::is_same_v<steep::implied_norm_t<signum_t>, nm::linf>);
//   static_assert(std::is_same_v<steep::implied_norm_t<gd_t>, nm::l2>);
//   static_assert(std::is_same_v<steep::implied_norm_t<muon_t>, nm::spectral>);
//   steep::implied_norm<R>::known;     // false where the type cannot tell; ::reason says why
//   (the run-time model norm of a rule object, a route's weights included: implied_norm_of.hpp)
//
// The theory (Gronich & Vardi 2026, Thm 3.3 and corollaries; docs: README, "The main job"):
// normalized or unnormalized momentum steepest descent under N -- a linear filter of past
// gradients (EMA, heavy ball, Nesterov; momentum BEFORE the map), then N's dual map, times a
// positive per-step scalar -- converges in direction to a KKT point of the N-margin problem.
// The analysis walks the rule's expression tree:
//   grad, ema / trace / Nesterov of grad, sums and scalar multiples   -> momentum m
//   -lr * m                     unnormalized (GD with momentum)       -> l2
//   -lr * m / norm2(m)          global l2 normalization (MomentumGD)  -> l2
//   -lr * m / block_norm2(m)    per-block l2, dual<l2>(m)             -> per_block<l2>
//   -lr * sign(m), dual<linf>   Signum                                -> linf
//   -lr * m_hat / sqrt(v_hat)   Adam with eps = 0 (v: EMA of g^2)     -> linf
//   -lr * dual<spectral>(m)     exact polar factor (the theory's Muon) -> spectral (max over matrices)
//   -lr * dual<N>(m)            any norm                              -> N (per block)
//   route(arms...)              max_composite<N_k...> of the arms' norms, weighted at run time by
//                               the arms' learning rates: arm k stepping s_k h(t) D_k gives
//                               N = max_k N_k / s_k (docs/implicit-bias.md §3)
// and says "unknown" (not_implied), with the reason, for what lies outside the theory: Adam with a
// run-time eps (l_inf while |g| >> eps, drifting to l2 after), Newton-Schulz (an approximate dual
// map), shape-dependent per-block scales, weight decay, momentum after the map, user maps.
// Assumed, as types cannot see it: a sum of filters (lerp, Nesterov) keeps a positive weight on the
// gradient; in x / ||y|| the normed y is x; learning rates are positive (implied_norm_of checks
// that the arms' learning-rate ratio is constant).

#include "steep/expr.hpp"
#include "steep/expr/route.hpp"
#include "steep/norms.hpp"
#include "steep/norms/newton_schulz.hpp"
#include "steep/norms/polar.hpp"
#include "steep/train/implied_norm_reasons.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>

namespace steep::train {

// max_b N(theta_b) over the blocks of a rule when N is applied to each block separately and is
// not itself "one norm of all entries" (l2 per block is not global l2).
template <class N>
struct per_block {
  static constexpr std::string_view name = N::name;
};

// The type cannot tell: `reason` says why.
struct not_implied {
  static constexpr std::string_view name = "unknown";
};

namespace implied {

// What a subtree is, as far as the theory is concerned.
struct scalar {};   // a per-step value (learning rate, bias correction); its sign is a run-time value
struct zero {};     // ct<0.0>: a compile-time zero (Adam's eps = 0)
struct tiny {};     // ct<V>, 0 < V <= 1e-20: a compile-time floor that guards exact zeros (0 / 0 -> 0)
struct momentum {}; // a linear filter of past gradients
struct self {};     // a slot's own previous value, inside its update
struct second {};   // a linear filter of g^2 (Adam's v)
struct rms {};      // sqrt of a second moment
template <class N>
struct norm_of {}; // ||m|| under N (a reduction of the momentum)
template <class N, bool Exact>
struct direction {}; // a unit direction of N's dual map, times a per-step scalar
template <int Why>
struct unknown {};

// Why a rule implies no norm: the reasons, one per `why` (implied_norm_reasons.hpp).

template <class T>
struct is_unknown : std::false_type {};
template <int W>
struct is_unknown<unknown<W>> : std::true_type {};
template <class T>
inline constexpr bool is_unknown_v = is_unknown<T>::value;
template <class T>
struct is_direction : std::false_type {};
template <class N, bool E>
struct is_direction<direction<N, E>> : std::true_type {};

template <class E>
struct classify {
  using type = unknown<w_structure>;
};
template <class E>
using classify_t = typename classify<std::remove_cvref_t<E>>::type;

// The first unknown among Ks, or void.
template <class... Ks>
struct first_unknown {
  using type = void;
};
template <class K, class... Ks>
struct first_unknown<K, Ks...> {
  using type = std::conditional_t<is_unknown_v<K>, K, typename first_unknown<Ks...>::type>;
};

// ---- leaves -------------------------------------------------------------------------------------
template <>
struct classify<expr::grad_t> {
  using type = momentum;
};
template <>
struct classify<expr::param_t> {
  using type = unknown<w_param>;
};
template <>
struct classify<expr::constant> {
  using type = scalar;
};
template <fixed_string N, class R>
struct classify<expr::hyper_node<N, R>> {
  using type = scalar;
};
template <double V>
struct classify<expr::ct_node<V>> {
  using type = std::conditional_t<V == 0.0, zero, std::conditional_t<(V > 0 && V <= 1e-20), tiny, scalar>>;
};
template <>
struct classify<expr::step_t> {
  using type = scalar;
};
template <class F>
struct classify<expr::schedule_node<F>> {
  using type = scalar;
};
template <class F>
struct classify<expr::shape_node<F>> {
  using type = unknown<w_shape_scale>;
};
template <fixed_string N>
struct classify<expr::prev_ref<N>> {
  using type = self;
};

// A state slot: a linear recurrence of momentum stays momentum, of g^2 stays a second moment.
template <class K>
struct as_filter {
  using type = std::conditional_t<
    is_unknown_v<K>, K,
    std::conditional_t<is_direction<K>::value, unknown<w_map_after>, unknown<w_structure>>>;
};
template <>
struct as_filter<momentum> {
  using type = momentum;
};
template <>
struct as_filter<second> {
  using type = second;
};
template <fixed_string Name, class D, class U, class X>
struct classify<expr::state_node<Name, D, U, X>> {
  using type = typename as_filter<classify_t<U>>::type;
};
template <class S>
struct classify<expr::prev_node<S>> {
  using type = classify_t<S>;
};

// ---- arithmetic ----------------------------------------------------------------------------------
namespace op = expr::ops;
template <class Op, class... K>
struct combine {
  using type = unknown<w_structure>;
};
// Linear combinations of filters are filters (lerp, Nesterov: a positive combination is assumed).
template <class Op>
requires std::is_same_v<Op, op::add> || std::is_same_v<Op, op::sub>
struct combine<Op, momentum, momentum> {
  using type = momentum;
};
template <>
struct combine<op::add, self, momentum> {
  using type = momentum;
};
template <>
struct combine<op::add, momentum, self> {
  using type = momentum;
};
template <>
struct combine<op::add, self, second> {
  using type = second;
};
template <>
struct combine<op::add, second, self> {
  using type = second;
};
template <>
struct combine<op::add, second, second> {
  using type = second;
};
template <class K>
inline constexpr bool is_scalar_kind =
  std::is_same_v<K, scalar> || std::is_same_v<K, zero> || std::is_same_v<K, tiny>;
template <class Op, class A, class B>
requires is_scalar_kind<A> && is_scalar_kind<B>
struct combine<Op, A, B> {
  using type = scalar; // any arithmetic of per-step scalars is a per-step scalar
};
template <class Op, class A>
requires is_scalar_kind<A>
struct combine<Op, A> {
  using type = scalar;
};
// max(sqrt(v), ct<1e-300>): only exact zeros are floored (the paper's 0 / 0 := 0), not an eps.
template <>
struct combine<op::max, rms, tiny> {
  using type = rms;
};
template <class N>
struct combine<op::max, norm_of<N>, tiny> {
  using type = norm_of<N>;
};
// sqrt(v) + eps: only a compile-time eps = 0 keeps Adam's l_inf geometry.
template <>
struct combine<op::add, rms, scalar> {
  using type = unknown<w_eps>;
};
template <>
struct combine<op::add, rms, zero> {
  using type = rms;
};
// Scaling by per-step scalars keeps what a term is.
template <class K>
struct scalable : std::false_type {};
template <>
struct scalable<momentum> : std::true_type {};
template <>
struct scalable<self> : std::true_type {};
template <>
struct scalable<second> : std::true_type {};
template <class N, bool E>
struct scalable<direction<N, E>> : std::true_type {};
template <class K>
requires scalable<K>::value struct combine<op::mul, scalar, K> {
  using type = K;
};
template <class K>
requires scalable<K>::value struct combine<op::mul, K, scalar> {
  using type = K;
};
template <class K>
requires scalable<K>::value struct combine<op::div, K, scalar> {
  using type = K;
};
template <class K>
requires scalable<K>::value struct combine<op::neg, K> {
  using type = K;
};
// m / ||m||: the unit direction of l2 (global or per block); max(||m||, tiny) guards zero.
template <class N>
struct combine<op::div, momentum, norm_of<N>> {
  using type = direction<N, true>;
};
// A run-time floor on ||m|| is an eps: once ||m|| falls below it the step is unnormalized.
template <class N>
struct combine<op::max, norm_of<N>, scalar> {
  using type = unknown<w_eps>;
};
// div_or_zero(x, y) is x / y with the paper's 0 / 0 := 0: the same direction as x / y.
template <class A, class B>
requires(!(is_scalar_kind<A> && is_scalar_kind<B>)) struct combine<op::div_or_zero, A, B>
  : combine<op::div, A, B> {
};
// Adam: m_hat / sqrt(v_hat) -> sign(m) asymptotically (Gronich & Vardi 2026, Adam's sign lemma).
template <>
struct combine<op::div, momentum, rms> {
  using type = direction<norms::linf, true>;
};
template <>
struct combine<op::square, momentum> {
  using type = second;
};
template <>
struct combine<op::sqrt, second> {
  using type = rms;
};
template <>
struct combine<op::sign, momentum> {
  using type = direction<norms::linf, true>;
};
template <class F, class... K>
struct combine<op::user<F>, K...> {
  using type = unknown<w_user_map>;
};

template <class Op, class... C>
struct classify<expr::apply_node<Op, C...>> {
  using bad = typename first_unknown<classify_t<C>...>::type;
  using type = std::conditional_t<!std::is_void_v<bad>, bad, typename combine<Op, classify_t<C>...>::type>;
};

// ---- reductions: norms of the momentum ------------------------------------------------------------
template <class Scope>
struct l2_of {
  using type = norm_of<norms::l2>; // all_blocks: one l2 norm of every entry
};
template <>
struct l2_of<expr::per_block> {
  using type = norm_of<per_block<norms::l2>>;
};
template <class Scope, class C>
struct classify<expr::apply_node<op::sqrt, expr::reduce_node<expr::red::sum_sq, Scope, C>>> {
  using type = std::conditional_t<std::is_same_v<classify_t<C>, momentum>, typename l2_of<Scope>::type,
                                  unknown<w_structure>>;
};

// ---- matrix stages: dual maps ---------------------------------------------------------------------
// What a map is the dual map of, as the map declares it (norms/: `using approximates = N;
// static constexpr bool exact`), so a new map needs no entry here; void for a map that declares none.
template <class Map>
struct map_norm {
  using type = void;
  static constexpr bool exact = false;
};
template <class Map>
requires requires { typename Map::approximates; }
struct map_norm<Map> {
  using type = typename Map::approximates;
  static constexpr bool exact = Map::exact;
};
template <class N>
struct map_norm<expr::norm_map<N>> {
  using type = std::conditional_t<N::matrix_only, N, per_block<N>>;
  static constexpr bool exact = true;
};
template <class Map, class C>
struct classify<expr::matrix_node<Map, C>> {
  using K = classify_t<C>;
  using mn = map_norm<Map>;
  // A map that declares its norm is that norm's dual map, state or not (a composition of the
  // matrix grammar with no state can be one: precond/compose.hpp, polar_form); one that keeps
  // state and declares none is a preconditioner.
  using type = std::conditional_t<
    is_unknown_v<K>, K,
    std::conditional_t<
      std::is_void_v<typename mn::type> && expr::stateful_matrix_map<Map>, unknown<w_preconditioner>,
      std::conditional_t<
        std::is_void_v<typename mn::type> || !std::is_same_v<K, momentum>, unknown<w_structure>,
        direction<std::conditional_t<std::is_void_v<typename mn::type>, norms::l2, typename mn::type>,
                  mn::exact>>>>;
};

// ---- the whole rule -------------------------------------------------------------------------------
template <class K>
struct verdict {
  using type = not_implied;
  static constexpr bool known = false, exact = false, scale_invariant = false;
  static constexpr std::string_view reason = reasons[w_structure];
};
template <int W>
struct verdict<unknown<W>> {
  using type = not_implied;
  static constexpr bool known = false, exact = false, scale_invariant = false;
  static constexpr std::string_view reason = reasons[W];
};
// lr * m: unnormalized steepest descent under l2 (gradient descent with momentum).
template <>
struct verdict<momentum> {
  using type = norms::l2;
  static constexpr bool known = true, exact = true, scale_invariant = false;
  static constexpr std::string_view reason =
    "unnormalized l2 steepest descent (gradient descent with momentum)";
};
// A per-block map of an entrywise norm that is the same per block and globally (l_inf) is the global norm.
template <class N>
struct global_form {
  using type = N;
};
template <>
struct global_form<per_block<norms::linf>> {
  using type = norms::linf;
};
template <class N, bool E>
struct verdict<direction<N, E>> {
  using type = std::conditional_t<E, typename global_form<N>::type, not_implied>;
  using approximates = typename global_form<N>::type;
  static constexpr bool known = E, exact = E, scale_invariant = true;
  static constexpr std::string_view reason =
    E ? std::string_view("normalized steepest descent on momentum (momentum before the dual map)")
      : reasons[w_newton_schulz];
};

} // namespace implied

template <class Rule>
struct implied_norm {
  using verdict = implied::verdict<implied::classify_t<Rule>>;
  // The norm, or not_implied (then `reason` says why; Newton-Schulz rules are not_implied too).
  using type = typename verdict::type;
  static constexpr bool known = verdict::known;
  static constexpr bool exact = verdict::exact;
  // The update does not change when every gradient is multiplied by one positive constant.
  static constexpr bool scale_invariant = verdict::scale_invariant;
  static constexpr std::string_view reason = verdict::reason;
};

// A route: the max-composite of its arms' norms when every arm's is known.
template <class... Arms>
struct implied_norm<routed<Arms...>> {
  // Each arm must be a normalized dual map: "every block takes its own unit step" is what makes a
  // route steepest descent under the max-composite (an unnormalized arm couples to its gradient's size).
  static constexpr bool known = ((implied_norm<typename Arms::rule_type>::known &&
                                  implied_norm<typename Arms::rule_type>::scale_invariant) &&
                                 ...);
  static constexpr bool exact = known && (implied_norm<typename Arms::rule_type>::exact && ...);
  static constexpr bool scale_invariant = (implied_norm<typename Arms::rule_type>::scale_invariant && ...);
  using type = std::conditional_t<
    !known, not_implied,
    std::conditional_t<
      sizeof...(Arms) == 1,
      std::tuple_element_t<0, std::tuple<typename implied_norm<typename Arms::rule_type>::type...>>,
      norms::max_composite<typename implied_norm<typename Arms::rule_type>::type...>>>;
  static constexpr std::string_view reason =
    known
      ? std::string_view("a route: max over arms of each arm's norm, weighted by 1 / the arm's learning rate")
      : std::string_view("an arm of the route has no implied norm (see implied_norm<arm rule>::reason)");
};

template <class Rule>
using implied_norm_t = typename implied_norm<std::remove_cvref_t<Rule>>::type;

} // namespace steep::train

namespace steep {
using train::implied_norm;
using train::implied_norm_t;
} // namespace steep
