#pragma once
// RMSprop (Tieleman & Hinton 2012), as torch.optim.RMSprop (not centered, no momentum):
//   s_t = alpha s_{t-1} + (1-alpha) g_t^2;  p <- p - lr g_t / (sqrt(s_t) + eps)
//
//   steep::optimizer opt(steep::rules::rmsprop(1e-2), store);

#include "steep/rules/common.hpp"

namespace steep::rules {

inline constexpr auto rmsprop =
  []<operand Lr, operand Alpha = double, operand Eps = double>(Lr lr, Alpha alpha = 0.99, Eps eps = 1e-8) {
  return -hp::lr(lr) * grad /
         (sqrt(ema<"square_avg">(square(grad), named<"alpha", range::unit_interval>(alpha))) + hp::eps(eps));
};

} // namespace steep::rules
