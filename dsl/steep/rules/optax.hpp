#pragma once
// optax's Adam family, for exact comparisons with JAX code (optax 0.2.8):
//   adam_optax:   p <- p - lr (m_hat / (sqrt(v_hat + eps_root) + eps) + wd p)
//   nadamw_optax: the same with optax's bias-corrected Nesterov momentum
//                 m_hat = b1 m_t / (1 - b1^(t+1)) + (1 - b1) g_t / (1 - b1^t)
// optax couples its "decoupled" decay to the learning rate: -lr wd p, as torch AdamW does.
//
//   steep::optimizer opt(steep::rules::nadamw_optax(1e-2, 0.9, 0.999, 1e-8, 0.0, 0.1), store);

#include "steep/rules/common.hpp"

namespace steep::rules {

inline constexpr auto adam_optax = []<operand Lr, operand B1 = double, operand B2 = double,
                                      operand Eps = double, operand EpsRoot = double, operand Wd = double>(
  Lr lr, B1 b1 = 0.9, B2 b2 = 0.999, Eps eps = 1e-8, EpsRoot eps_root = 0.0, Wd wd = 0.0) {
  auto m = ema<"mu">(grad, hp::beta1(b1));
  auto v = ema<"nu">(square(grad), hp::beta2(b2));
  return -hp::lr(lr) *
         (debias(m) / (sqrt(debias(v) + named<"eps_root", range::nonnegative>(eps_root)) + hp::eps(eps)) +
          hp::weight_decay(wd) * param);
};

inline constexpr auto nadamw_optax = []<operand Lr, operand B1 = double, operand B2 = double,
                                        operand Eps = double, operand EpsRoot = double, operand Wd = double>(
  Lr lr, B1 b1 = 0.9, B2 b2 = 0.999, Eps eps = 1e-8, EpsRoot eps_root = 0.0, Wd wd = 0.0) {
  auto m = ema<"mu">(grad, hp::beta1(b1));
  auto v = ema<"nu">(square(grad), hp::beta2(b2));
  return -hp::lr(lr) * (nesterov_debias(m, grad) /
                          (sqrt(debias(v) + named<"eps_root", range::nonnegative>(eps_root)) + hp::eps(eps)) +
                        hp::weight_decay(wd) * param);
};

} // namespace steep::rules
