#pragma once
// Adagrad (Duchi et al. 2011), as torch.optim.Adagrad:
//   s_t = s_{t-1} + g_t^2 (s_0 = init);  p <- p - lr / (1 + (t-1) lr_decay) g_t / (sqrt(s_t) + eps)
//
//   steep::optimizer opt(steep::rules::adagrad(1e-2), store);

#include "steep/core/error.hpp"
#include "steep/rules/common.hpp"

#include <string>

namespace steep::rules {

inline constexpr auto adagrad = []<operand Lr, operand Eps = double, operand LrDecay = double>(
  Lr lr, Eps eps = 1e-10, double init = 0.0, LrDecay lr_decay = 0.0) {
  // A negative start would take the square root of a negative sum at the first steps.
  if (!range::nonnegative::ok(init))
    throw usage_error("adagrad: initial_accumulator_value = " + std::to_string(init) + " must be " +
                      std::string(range::nonnegative::text));
  return -(hp::lr(lr) / (1.0 + (step - 1.0) * named<"lr_decay", range::nonnegative>(lr_decay))) * grad /
         (sqrt(running_sum<"sum">(square(grad), init)) + hp::eps(eps));
};

} // namespace steep::rules
