#pragma once
// Signum (Bernstein et al. 2018): steepest descent under l_inf applied to EMA momentum — the
// paper's Signum, whose margin is l_inf's. sign(0) = 0: an entry with zero momentum stays.
//   m_t = b m_{t-1} + (1-b) g_t;  p <- p - lr sign(m_t)
//
//   steep::optimizer opt(steep::rules::signum(1e-2, 0.9), store);

#include "steep/rules/common.hpp"

namespace steep::rules {

inline constexpr auto signum = []<operand Lr, operand Beta = double>(Lr lr, Beta beta = 0.9) {
  return -hp::lr(lr) * dual<steep::norms::linf>(ema<"momentum_buffer">(grad, hp::beta(beta)));
};

} // namespace steep::rules
