#pragma once
// Adam (Kingma & Ba 2015), as torch.optim.Adam; eps = 0 is the seed paper's Adam, steepest
// descent under l_inf in the limit, whose margin is l_inf's (Gronich & Vardi 2026, §3.4).
//
//   m_t = b1 m_{t-1} + (1-b1) g_t;  v_t = b2 v_{t-1} + (1-b2) g_t^2
//   p <- p - lr (m_t / (1-b1^t)) / (sqrt(v_t / (1-b2^t)) + hp::eps(eps))
//
//   steep::optimizer opt(steep::rules::adam(1e-3), store);
//   steep::optimizer paper(steep::rules::adam_eps0(1e-3), store);   // needs nonzero gradients
//   steep::optimizer ams(steep::rules::amsgrad(1e-3), store);       // Reddi et al. 2018
//   steep::optimizer small(steep::rules::adam_bf16(1e-3), store);   // bf16 moments: 20 B/param

#include "steep/rules/common.hpp"

namespace steep::rules {

inline constexpr auto adam = []<operand Lr, operand B1 = double, operand B2 = double, operand Eps = double>(
  Lr lr, B1 b1 = 0.9, B2 b2 = 0.999, Eps eps = 1e-8) {
  return -hp::lr(lr) * debias(ema<"exp_avg">(grad, hp::beta1(b1))) /
         (sqrt(debias(ema<"exp_avg_sq">(square(grad), hp::beta2(b2)))) + hp::eps(eps));
};

// Adam with bfloat16 moments: 20 bytes per float32 parameter instead of 28. Arithmetic runs in
// the parameters' dtype; m and v are rounded to nearest-even bfloat16 when stored, and the step
// uses the values as stored, as torch.optim.Adam does with bf16 exp_avg and exp_avg_sq.
inline constexpr auto adam_bf16 =
  []<operand Lr, operand B1 = double, operand B2 = double, operand Eps = double>(
    Lr lr, B1 b1 = 0.9, B2 b2 = 0.999, Eps eps = 1e-8) {
  return -hp::lr(lr) * debias(ema<"exp_avg", bfloat16>(grad, hp::beta1(b1))) /
         (sqrt(debias(ema<"exp_avg_sq", bfloat16>(square(grad), hp::beta2(b2)))) + hp::eps(eps));
};

// No eps: m_hat / sqrt(v_hat), with the paper's convention for a zero second moment (a
// coordinate whose gradients were all 0, or in float32 all below ~1e-22, where g^2 underflows):
// 0 / 0 := 0, no step (div_or_zero), where plain division would give NaN or Inf.
inline constexpr auto adam_eps0 =
  []<operand Lr, operand B1 = double, operand B2 = double>(Lr lr, B1 b1 = 0.9, B2 b2 = 0.999) {
  return -hp::lr(lr) * div_or_zero(debias(ema<"exp_avg">(grad, hp::beta1(b1))),
                                   sqrt(debias(ema<"exp_avg_sq">(square(grad), hp::beta2(b2)))));
};

// AMSGrad as torch: the running max of v_t, bias-corrected like v_t.
inline constexpr auto amsgrad =
  []<operand Lr, operand B1 = double, operand B2 = double, operand Eps = double>(
    Lr lr, B1 b1 = 0.9, B2 b2 = 0.999, Eps eps = 1e-8) {
  auto v = ema<"exp_avg_sq">(square(grad), hp::beta2(b2));
  auto vmax = running_max<"max_exp_avg_sq">(v);
  return -hp::lr(lr) * debias(ema<"exp_avg">(grad, hp::beta1(b1))) /
         (sqrt(vmax / (1.0 - pow(hp::beta2(b2), step))) + hp::eps(eps));
};

} // namespace steep::rules
