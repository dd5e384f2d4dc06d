#pragma once
// Shampoo and one-sided Shampoo: a matrix stage that keeps its factors (precond/shampoo.hpp).
//
//   shampoo:            L += G G^T, R += G^T G;  p <- p - lr L^(-1/4) G R^(-1/4)
//                       (Gupta, Koren & Singer 2018, arXiv:1802.09568, Algorithm 1 for a matrix)
//   shampoo_one_sided:  only the smaller side's factor:  p <- p - lr L^(-1/2) G for a wide block,
//                       p - lr G R^(-1/2) for a tall one
//   shampoo_unaccumulated:  no accumulation and no eps, on a momentum M:
//                       p <- p - lr (M M^T)^(+1/4) M (M^T M)^(+1/4) = p - lr U V^T (M = U S V^T)
//                       Shampoo with beta2 = 0 is the polar factor (Bernstein & Newhouse 2024,
//                       arXiv:2409.20325), so its implied norm is spectral, from its type alone:
//     static_assert(std::is_same_v<steep::implied_norm_t<decltype(steep::rules::shampoo_unaccumulated(0.1))>,
//                                  steep::norms::spectral>);
//
// Every setting of distributed Shampoo's preconditioner (Shi et al. 2023, arXiv:2309.06497) is a
// field of precond::shampoo_settings: beta2 (EMA factors), eps, the exponents, the refresh
// interval (`every`: the roots are recomputed every k steps and the stale ones used between).
//   steep::optimizer opt(steep::rules::shampoo(1e-2, { .beta2 = 0.999, .eps = 1e-12, .every = 10 }), store);
// A momentum, grafting or decay is a composition around the stage, e.g.
//   -lr * precondition(precond::shampoo<"L", "R">{ s }, ema<"m">(grad, 0.9))
// Matrices only: route vectors to an elementwise rule (steep::route).

#include "steep/precond/compose.hpp"
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

// The roots are pinv_root<4> (the pseudo-inverse's, precond/compose.hpp): no eps, 0 on the null
// space, so a rank-deficient momentum maps to its partial isometry as dual<spectral> does.
inline constexpr auto shampoo_unaccumulated = []<operand Lr>(Lr lr, double beta = 0.9) {
  namespace pc = precond;
  const auto polar = pc::pinv_root<4>(pc::gram_rows(pc::x)) * pc::x * pc::pinv_root<4>(pc::gram_cols(pc::x));
  return -hp::lr(lr) * pc::precondition(polar, ema<"momentum_buffer">(grad, hp::beta(beta)));
};

} // namespace steep::rules
