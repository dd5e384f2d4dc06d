#pragma once
// AdamW (Loshchilov & Hutter 2019): Adam plus decoupled weight decay, as torch.optim.AdamW —
// the decay uses the plain learning rate and the parameter before this step:
//   p <- p (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps)
//
//   steep::optimizer opt(steep::rules::adamw(1e-3, 0.9, 0.999, 1e-8, 0.01), store);

#include "steep/rules/adam.hpp"
#include "steep/rules/weight_decay.hpp"

namespace steep::rules {

inline constexpr auto adamw =
  []<operand Lr, operand B1 = double, operand B2 = double, operand Eps = double, operand Wd = double>(
    Lr lr, B1 b1 = 0.9, B2 b2 = 0.999, Eps eps = 1e-8, Wd wd = 0.01) {
  return adam(hp::lr(lr), b1, b2, eps) + decoupled_decay(lr, wd);
};

} // namespace steep::rules
