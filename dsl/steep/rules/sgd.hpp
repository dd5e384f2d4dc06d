#pragma once
// SGD, heavy-ball momentum and Nesterov momentum (torch.optim.SGD, dampening 0).
//
//   sgd:       p <- p - lr g
//   momentum:  b_t = mu b_{t-1} + g_t;  p <- p - lr b_t                       (Polyak 1964)
//   nesterov:  b_t = mu b_{t-1} + g_t;  p <- p - lr (g_t + mu b_t)            (torch's form)
//
// Steepest descent under l2 with momentum: the paper's MomentumGD, whose margin is l2's.
//   steep::optimizer opt(steep::rules::momentum(inv_power(0.1, 0.5), 0.9), store);

#include "steep/rules/common.hpp"

namespace steep::rules {

inline constexpr auto sgd = []<operand Lr>(Lr lr) { return -hp::lr(lr) * grad; };

inline constexpr auto momentum = []<operand Lr, operand Mu>(Lr lr, Mu mu) {
  return -hp::lr(lr) * trace<"momentum_buffer">(grad, named<"momentum", range::nonnegative>(mu));
};

inline constexpr auto nesterov = []<operand Lr, operand Mu>(Lr lr, Mu mu) {
  return -hp::lr(lr) * (grad + named<"momentum", range::nonnegative>(mu) *
                                 trace<"momentum_buffer">(grad, named<"momentum", range::nonnegative>(mu)));
};

} // namespace steep::rules
