#pragma once
// Dion: a low-rank orthonormalized update with error feedback, as a matrix stage that keeps its
// momentum and its basis Q (precond/dion.hpp).
//
//   dion:  M += G;  P = orth(M Q);  R = M^T P;  M -= (1 - mu) P R^T;  Q = R / ||R's columns||
//          p <- p (1 - lr wd) - lr sqrt(rows / cols) P Q^T
//          (Ahn et al. 2025, "Dion: Distributed Orthonormalized Updates", arXiv:2504.05295; the
//          authors' single-device update, the repository microsoft/dion; M^T for a wide block)
//
// Every setting of the authors' Dion update is a field of precond::dion_settings: the rank (a
// fraction of min(rows, cols), a multiple, or a number), mu, eps, power iterations, the shape
// scale; and the deterministic first Q (q_init, seed) that replaces their torch.randn.
//   steep::optimizer opt(steep::rules::dion(0.01, { .rank_fraction = 0.25 }), store);
//   steep::rules::dion(0.01, {}, 0.01)     // the authors' decoupled weight decay 0.01
//   steep::rules::dion_bf16(0.01)          // momentum and Q stored as bfloat16
// Matrices only: route vectors to an elementwise rule (steep::route), as the authors route them
// to AdamW or Lion.

#include "steep/precond/dion.hpp"
#include "steep/rules/common.hpp"
#include "steep/rules/weight_decay.hpp"

namespace steep::rules {

inline constexpr auto dion = []<operand Lr>(Lr lr, precond::dion_settings s = {}, double weight_decay = 0.0) {
  return decoupled_decay(lr, weight_decay) -
         hp::lr(lr) * precondition(precond::dion<"momentum", "Q">{ s }, grad);
};

// Dion with its momentum and Q stored as bfloat16, as the authors' DionMixedPrecisionConfig
// (momentum_dtype, Q_dtype) allows: 2 bytes per value of state instead of 4 (float32). The update
// is computed in the parameters' type from the stored state; each slot is rounded once per step
// (expr/bfloat16_state.hpp).
inline constexpr auto dion_bf16 = []<operand Lr>(Lr lr, precond::dion_settings s = {},
                                                 double weight_decay = 0.0) {
  return decoupled_decay(lr, weight_decay) -
         hp::lr(lr) * precondition(bfloat16_state(precond::dion<"momentum", "Q">{ s }), grad);
};

} // namespace steep::rules
