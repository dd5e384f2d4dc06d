#pragma once
// The optimizers of Gronich & Vardi (2026) as the theory states them: momentum BEFORE the dual map,
// a shared per-step learning rate (eta0 t^-a), no weight decay, no shape scale, exact dual maps.
//
//   using steep::expr::inv_power;
//   steep::rules::momentum_gd(inv_power(0.1, 0.8))          // l2:        m / ||m||_2 (all blocks)
//   steep::rules::signum(inv_power(0.01, 0.8))               // l_inf:     sign(m)      (signum.hpp)
//   steep::rules::adam_paper(inv_power(0.01, 0.8))           // l_inf:     m_hat / sqrt(v_hat), eps = 0
//   steep::rules::muon_paper(inv_power(0.1, 0.8))            // spectral:  polar(m) on every matrix, head too
//   steep::rules::muon_signum_paper(lr_m, lr_s)              // max(c ||W||_sp, ||a||_inf), c = lr_s / lr_m
//   steep::rules::muon_adam_paper(lr_m, lr_a)                // the same hybrid norm, Adam on the head
//   using gd_t = decltype(steep::rules::momentum_gd(0.1));
//   static_assert(std::is_same_v<steep::implied_norm_t<gd_t>, steep::norms::l2>);
//
// Every rule here has a known implied norm (steep/train/implied_norm.hpp); the main-job example
// (examples/implicit_bias.cpp, README) trains one initialization with each and shows each wins the
// margin of its own norm. The output layer is the model's `head` block: Muon treats it as a 1 x m
// matrix (polar factor a / ||a||_2), the hybrids as the vector block that gets Signum or Adam.
// Zeros: m / max(||m||, 1e-300) and div_or_zero(m_hat, sqrt(v_hat)) only guard exact zeros (a
// dead unit's 0 / 0 := 0, as the paper's numerical advice says); they are not an eps.

#include "steep/expr/route.hpp"
#include "steep/rules/common.hpp"
#include "steep/rules/signum.hpp"

namespace steep::rules {

using steep::on;
using steep::otherwise;
using steep::route;

// Normalized gradient descent with EMA momentum, normalized over all blocks at once: l2.
inline constexpr auto momentum_gd = []<operand Lr>(Lr lr, double beta = 0.9) {
  auto m = ema<"momentum_buffer">(grad, hp::beta(beta));
  return -hp::lr(lr) * l2_normalize<all_blocks, 1e-300>(m);
};

// Adam with eps = 0 (the theory's Adam): l_inf. beta1 <= beta2 is the theory's condition.
inline constexpr auto adam_paper = []<operand Lr>(Lr lr, double b1 = 0.9, double b2 = 0.999) {
  auto m = ema<"exp_avg">(grad, hp::beta1(b1));
  auto v = ema<"exp_avg_sq">(square(grad), hp::beta2(b2));
  return -hp::lr(lr) * div_or_zero(debias(m), sqrt(debias(v)));
};

// Momentum, then the exact spectral dual map (polar factor U V^T by SVD), per matrix.
inline constexpr auto spectral_msd = []<operand Lr>(Lr lr, double beta = 0.9) {
  return -hp::lr(lr) * dual<norms::spectral>(ema<"momentum_buffer">(grad, hp::beta(beta)));
};

// Muon as in the theory: spectral_msd on every matrix, the output layer included (explicit opt-in).
inline constexpr auto muon_paper = []<operand Lr>(Lr lr, double beta = 0.9) {
  return route(on<block_role::hidden_matrix, block_role::head>.explicitly() >>
               spectral_msd(hp::lr(lr), beta));
};

// Muon on hidden matrices, Signum on every other block: max(c ||W||_sp, ||a||_inf), c = lr_s / lr_m.
inline constexpr auto muon_signum_paper = []<operand LrM, operand LrS>(LrM lr_muon, LrS lr_signum,
                                                                       double beta = 0.9) {
  return route(on<block_role::hidden_matrix> >>
                 spectral_msd(named<"muon_lr", range::nonnegative>(lr_muon), beta),
               otherwise >> signum(named<"signum_lr", range::nonnegative>(lr_signum), beta));
};

// Muon on hidden matrices, Adam (eps = 0) elsewhere: max(c ||W||_sp, ||a||_inf), c = lr_a / lr_m.
inline constexpr auto muon_adam_paper = []<operand LrM, operand LrA>(LrM lr_muon, LrA lr_adam,
                                                                     double beta = 0.9, double b1 = 0.9,
                                                                     double b2 = 0.999) {
  return route(on<block_role::hidden_matrix> >>
                 spectral_msd(named<"muon_lr", range::nonnegative>(lr_muon), beta),
               otherwise >> adam_paper(named<"adam_lr", range::nonnegative>(lr_adam), b1, b2));
};

} // namespace steep::rules
