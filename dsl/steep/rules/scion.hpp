#pragma once
// Scion (Pethick et al. 2025, "Training Deep Learning Models with Norm-Constrained LMOs",
// arXiv:2502.07529; the authors' reference code is torch): each layer steps along the linear
// minimization oracle of its own operator norm, scaled by a radius, with momentum
// B_t = (1 - a) B + a g (their `momentum` a is one minus the usual beta).
//   ColNorm  (input layer, l1 -> l2):  B_j / (||B_j||_2 / sqrt(rows) + 1e-8), each column j
//   RowNorm  (l2 -> linf):             B_i / (||B_i||_2 sqrt(cols) + 1e-8),   each row i
//   Spectral (hidden matrices):        NS5(B) sqrt(rows / cols)
//   Sign     (output layer):           sign(B) / cols
//   p <- p (1 - lr) - lr radius lmo(B)    (constrained; unconstrained: p - lr radius lmo(B))
//
//   auto rule = steep::rules::scion(2e-3, 0.1, 50.0, 3000.0);   // lr, a, radius, output radius
//   steep::optimizer opt(rule, store);   // block 0: ColNorm, hidden matrices: Spectral, head: Sign
//
// ColNorm and RowNorm are per-column and per-row reductions (lines, expr/reduce.hpp): no matrix
// stage, so they may run on an input layer or an embedding without opting in. scion() routes
// the first block of the store (`on_index({0})`) to ColNorm; route by name for another layout:
//   steep::route(steep::on_name("embed*") >> rules::scion_colnorm(lr), ...).

#include "steep/norms/newton_schulz.hpp"
#include "steep/rules/common.hpp"

#include <cmath>

namespace steep::rules {

namespace detail {
// Scion's update with its LMO `lmo` of the momentum: constrained (p (1 - lr) ...) or not.
template <operand Lr, operand Radius, class Lmo>
constexpr auto scion_step(Lr lr, Radius radius, bool unconstrained, Lmo lmo) {
  const double keep = unconstrained ? 0.0 : 1.0;
  return -(hp::lr(lr) * keep) * param - (hp::lr(lr) * named<"radius", range::nonnegative>(radius)) * lmo;
}
// The momentum buffer B_t = (1 - a) B + a g: a = 0 would never move B.
template <operand A>
constexpr auto scion_momentum(A a) {
  return ema<"momentum_buffer">(grad, 1.0 - named<"momentum", range::positive_fraction>(a));
}
struct sqrt_rows_over_cols {
  double operator()(block_dims d) const { return std::sqrt(d.rows / d.cols); }
  bool operator==(const sqrt_rows_over_cols&) const = default;
};
struct inv_sqrt_rows {
  double operator()(block_dims d) const { return 1.0 / std::sqrt(d.rows); }
  bool operator==(const inv_sqrt_rows&) const = default;
};
struct sqrt_cols {
  double operator()(block_dims d) const { return std::sqrt(d.cols); }
  bool operator==(const sqrt_cols&) const = default;
};
struct inv_cols {
  double operator()(block_dims d) const { return 1.0 / d.cols; }
  bool operator==(const inv_cols&) const = default;
};
} // namespace detail

inline constexpr auto scion_colnorm = []<operand Lr, operand A = double, operand Radius = double>(
  Lr lr, A momentum = 0.1, Radius radius = 1.0, bool unconstrained = false) {
  auto b = detail::scion_momentum(momentum);
  return detail::scion_step(hp::lr(lr), radius, unconstrained,
                            b / (col_norm2(b) * shape_scalar(detail::inv_sqrt_rows{}) + 1e-8));
};

inline constexpr auto scion_rownorm = []<operand Lr, operand A = double, operand Radius = double>(
  Lr lr, A momentum = 0.1, Radius radius = 1.0, bool unconstrained = false) {
  auto b = detail::scion_momentum(momentum);
  return detail::scion_step(hp::lr(lr), radius, unconstrained,
                            b / (row_norm2(b) * shape_scalar(detail::sqrt_cols{}) + 1e-8));
};

inline constexpr auto scion_spectral =
  []<operand Lr, operand A = double, operand Radius = double, matrix_map Map = norms::newton_schulz>(
    Lr lr, A momentum = 0.1, Radius radius = 1.0, bool unconstrained = false,
    Map map = { .eps = 1e-7, .guard = norms::frobenius_guard::additive }) {
  auto b = detail::scion_momentum(momentum);
  return detail::scion_step(hp::lr(lr), radius, unconstrained,
                            shape_scalar(detail::sqrt_rows_over_cols{}) *
                              dual<norms::spectral>(b, std::move(map)));
};

inline constexpr auto scion_sign = []<operand Lr, operand A = double, operand Radius = double>(
  Lr lr, A momentum = 0.1, Radius radius = 1.0, bool unconstrained = false) {
  auto b = detail::scion_momentum(momentum);
  return detail::scion_step(hp::lr(lr), radius, unconstrained,
                            shape_scalar(detail::inv_cols{}) * dual<norms::linf>(b));
};

// The whole model: ColNorm on the first block, Spectral on hidden matrices, Sign on the head
// (radius_out, as the authors' larger output radius), RowNorm on anything else.
inline constexpr auto scion = [](double lr, double momentum = 0.1, double radius = 50.0,
                                 double radius_out = 3000.0, bool unconstrained = false) {
  return route(on_index({ 0 }) >> scion_colnorm(hp::lr(lr), momentum, radius, unconstrained),
               on<block_role::hidden_matrix> >> scion_spectral(hp::lr(lr), momentum, radius, unconstrained),
               on<block_role::head> >> scion_sign(hp::lr(lr), momentum,
                                                  named<"radius_out", range::nonnegative>(radius_out),
                                                  unconstrained),
               otherwise >> scion_rownorm(hp::lr(lr), momentum, radius, unconstrained));
};

} // namespace steep::rules
