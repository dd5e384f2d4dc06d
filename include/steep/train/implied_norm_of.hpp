#pragma once
// implied_norm_of(rule): the model norm (train/model_norm.hpp) whose margin the theory says a rule
// maximizes, at run time: the type's implied norm (implied_norm.hpp) as a model norm, and for a
// route the hybrid's weight from its arms' learning rates.
//
//   steep::train::implied_norm_of(rules::muon_adam_paper(inv_power(0.02, 0.8), inv_power(0.002, 0.8)));
//   // max(c ||W||_sp, ||a||_inf), c = 0.1: the paper's hybrid norm
//
// The learning rates are read from the rule object (lr_factor), late in training (t >= 1e6),
// where bias corrections are 1: the asymptotic step size the theory's condition is about.

#include "steep/core/error.hpp"
#include "steep/expr.hpp"
#include "steep/expr/route.hpp"
#include "steep/norms.hpp"
#include "steep/train/implied_norm.hpp"
#include "steep/train/model_norm.hpp"

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

namespace steep::train {

namespace op = expr::ops;

// ---- run time: the implied norm of a rule object, as a model norm ---------------------------------

namespace implied {
// The per-step factor s(t) multiplying a rule's unit direction (its learning rate, sign dropped).
template <class E>
double lr_factor(const E& e, const expr::host_ctx& h);
template <class A, class B>
double lr_factor(const expr::apply_node<op::mul, A, B>& e, const expr::host_ctx& h);
template <class Op, class A, class B>
requires(std::is_same_v<Op, op::div> ||
         std::is_same_v<Op, op::div_or_zero>) double lr_factor(const expr::apply_node<Op, A, B>& e,
                                                               const expr::host_ctx& h);
template <class A>
double lr_factor(const expr::apply_node<op::neg, A>& e, const expr::host_ctx& h);

template <class E>
double lr_factor(const E& e, const expr::host_ctx& h) {
  if constexpr (E::level == 0)
    return std::abs(e.hoist_value(h));
  else
    return 1.0; // the direction
}
// Evaluated late (t >= 1e6), where bias corrections 1/(1 - b^t) are 1: the asymptotic step size,
// which is what the theory's learning-rate condition is about.
template <class A, class B>
double lr_factor(const expr::apply_node<op::mul, A, B>& e, const expr::host_ctx& h) {
  return lr_factor(expr::get<0>(e.kids), h) * lr_factor(expr::get<1>(e.kids), h);
}
template <class Op, class A, class B>
requires(std::is_same_v<Op, op::div> ||
         std::is_same_v<Op, op::div_or_zero>) double lr_factor(const expr::apply_node<Op, A, B>& e,
                                                               const expr::host_ctx& h) {
  if constexpr (B::level == 0)
    return lr_factor(expr::get<0>(e.kids), h) / std::abs(expr::get<1>(e.kids).hoist_value(h));
  else
    return lr_factor(expr::get<0>(e.kids), h); // a normalized direction: m / ||m|| or m / sqrt(v)
}
template <class A>
double lr_factor(const expr::apply_node<op::neg, A>& e, const expr::host_ctx& h) {
  return lr_factor(expr::get<0>(e.kids), h);
}

// The model norm of an implied norm type: any block norm (model_norm::of), or one per block
// folded by max (per_block<N>: l2 per block is not global l2).
template <class N>
struct per_block_of : std::false_type {};
template <class N>
struct per_block_of<per_block<N>> : std::true_type {
  using type = N;
};
template <class N>
model_norm as_model_norm() {
  if constexpr (per_block_of<N>::value) {
    const auto& b = norms::block_norm_of<typename per_block_of<N>::type>;
    return { "per_block_" + std::string(b.name), train::combine::max, { b, 1 }, { b, 1 } };
  } else if constexpr (norms::norm<N>) {
    return model_norm::of<N>();
  } else {
    throw usage_error("implied_norm_of: no model norm for '" + std::string(N::name) + "'");
  }
}
template <class N>
model_norm::part as_part() {
  const model_norm m = as_model_norm<N>();
  if (m.how != train::combine::max)
    throw usage_error("implied_norm_of: an arm whose norm is '" + m.name +
                      "' (not a max over blocks) inside a route has no max-composite form");
  return m.hidden;
}
} // namespace implied

// The model norm the theory says `rule` maximizes the margin of, with a route's weights from its
// arms' learning rates: arm k stepping s_k h(t) D_k gives max_k N_k / s_k, normalized so the last
// arm (`otherwise`) has weight 1 -- Muon-Adam with lrs (eta_M, eta_A) gives
// max(c ||W||_sp, ||a||_inf) with c = eta_A / eta_M, the paper's hybrid norm. Throws a
// usage_error that says why when the type cannot tell or the arms' schedules differ in shape.
template <class Rule>
model_norm implied_norm_of(const Rule&) {
  using I = implied_norm<Rule>;
  if constexpr (!I::known)
    throw usage_error("implied_norm_of: " + std::string(I::reason));
  else
    return implied::as_model_norm<typename I::type>();
}

// A one-arm route (e.g. Muon on hidden matrices and the head) implies its arm's norm.
template <class A0>
model_norm implied_norm_of(const routed<A0>& rule) {
  return implied_norm_of(std::get<0>(rule.arms).rule);
}

template <class A0, class A1>
model_norm implied_norm_of(const routed<A0, A1>& rule) {
  using I = implied_norm<routed<A0, A1>>;
  if constexpr (!I::known)
    throw usage_error("implied_norm_of: " + std::string(I::reason));
  else {
    static_assert(routed<A0, A1>::masks[0] == expr::detail::role_bit(block_role::hidden_matrix),
                  "implied_norm_of(route): the first arm must claim exactly on<block_role::hidden_matrix>");
    const auto& r0 = std::get<0>(rule.arms).rule;
    const auto& r1 = std::get<1>(rule.arms).rule;
    double ratio = 0;
    for (std::int64_t t : { 1000000, 10000000, 100000000, 1000000000 }) {
      const expr::host_ctx h{ t };
      const double q = std::abs(implied::lr_factor(r1, h) / implied::lr_factor(r0, h));
      if (t > 1000000 && std::abs(q - ratio) > 1e-12 * ratio)
        throw usage_error("implied_norm_of: the arms' learning rates do not keep a fixed ratio over steps, "
                          "so no single hybrid norm is implied");
      ratio = q;
    }
    model_norm m;
    m.name = "hybrid";
    m.how = train::combine::max;
    m.hidden = implied::as_part<typename implied_norm<typename A0::rule_type>::type>();
    m.other = implied::as_part<typename implied_norm<typename A1::rule_type>::type>();
    m.hidden.weight = ratio; // max(||W|| / s_0, ||a|| / s_1) * s_1
    return m;
  }
}

} // namespace steep::train

namespace steep {
using train::implied_norm_of;
} // namespace steep
