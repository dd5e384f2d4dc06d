#pragma once
// Shampoo and one-sided Shampoo: a matrix stage that keeps its factors (precond/shampoo.hpp).
//
//   shampoo:            L += G G^T, R += G^T G;  p <- p - lr L^(-1/4) G R^(-1/4)
//                       (Gupta, Koren & Singer 2018, arXiv:1802.09568, Algorithm 1 for a matrix)
//   shampoo_one_sided:  only the smaller side's factor:  p <- p - lr L^(-1/2) G for a wide block,
//                       p - lr G R^(-1/2) for a tall one
//
// Every setting of distributed Shampoo's preconditioner (Shi et al. 2023, arXiv:2309.06497) is a
// field of precond::shampoo_settings: beta2 (EMA factors), eps, the exponents, the refresh
// interval (`every`: the roots are recomputed every k steps and the stale ones used between).
//   steep::optimizer opt(steep::rules::shampoo(1e-2, { .beta2 = 0.999, .eps = 1e-12, .every = 10 }), store);
// A momentum, grafting or decay is a composition around the stage, e.g.
//   -lr * precondition(precond::shampoo<"L", "R">{ s }, ema<"m">(grad, 0.9))
// Matrices only: route vectors to an elementwise rule (steep::route).

#include "steep/precond/shampoo.hpp"
#include "steep/rules/common.hpp"

namespace steep::rules {

inline constexpr auto shampoo = []<operand Lr>(Lr lr, precond::shampoo_settings s = {}) {
  return -hp::lr(lr) * precondition(precond::shampoo<"L", "R">{ s }, grad);
};

inline constexpr auto shampoo_one_sided =
  []<operand Lr>(Lr lr, precond::shampoo_settings s = { .one_sided = -0.5 }) {
    if (s.one_sided == 0)
      s.one_sided = -0.5;
    return -hp::lr(lr) * precondition(precond::shampoo<"L", "R">{ s }, grad);
  };

} // namespace steep::rules
