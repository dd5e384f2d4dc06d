#pragma once
// Lion (Chen et al. 2023), as optax.lion: the sign of an interpolation between the old
// momentum and the gradient; the momentum itself is updated afterwards with b2.
//   c_t = b1 m_{t-1} + (1-b1) g_t;  p <- p - lr (sign(c_t) + wd p);  m_t = b2 m_{t-1} + (1-b2) g_t
//
//   steep::optimizer opt(steep::rules::lion(1e-4), store);

#include "steep/rules/common.hpp"

namespace steep::rules {

inline constexpr auto lion = []<operand Lr, operand B1 = double, operand B2 = double, operand Wd = double>(
  Lr lr, B1 b1 = 0.9, B2 b2 = 0.99, Wd wd = 0.0) {
  const auto beta1 = hp::beta1(b1);
  auto m = ema<"exp_avg">(grad, hp::beta2(b2));
  return -hp::lr(lr) * (sign(beta1 * prev(m) + (1.0 - beta1) * grad) + hp::weight_decay(wd) * param);
};

} // namespace steep::rules
