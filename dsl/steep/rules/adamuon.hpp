#pragma once
// AdaMuon (Si, Zhang & Shen 2025, "AdaMuon: Adaptive Muon Optimizer", arXiv:2507.11005; the
// authors' reference code is torch): Muon's polar factor, then Adam's element-wise second
// moment of it, then RMS matching.
//   B_t = mu B + (1 - mu) g;  U = g + mu (B_t - g)                 (Nesterov momentum)
//   O = NS5(U)                                                       (X / (||X||_F + 1e-7) first)
//   V_t = b2 V + (1 - b2) O^2;  O' = O / (sqrt(V_t / (1 - b2^t)) + eps)
//   p <- p (1 - lr wd) - lr 0.2 sqrt(max(r, c)) sqrt(min(r, c)) O' / (||O'||_F + eps)
//
//   steep::optimizer opt(steep::rules::adamuon(0.02), store);        // hidden matrices
//   steep::route(steep::on<block_role::hidden_matrix> >> rules::adamuon(0.02),
//                steep::otherwise >> rules::adamw(3e-4));
//
// ||O'||_F reads the matrix phase's result through a state slot: a reduction after the matrix
// phase, so the step runs reduction-free pre-pass, Newton-Schulz, a read-only pass for the norm,
// then the update (describe() shows it). The second moment V is an ordinary slot ("v_buffer"),
// visible to state() and checkpoints. For blocks of rank > 2, r and c are the block's matrix
// view (shape[0] x the rest).

#include "steep/norms/newton_schulz.hpp"
#include "steep/rules/common.hpp"
#include "steep/rules/weight_decay.hpp"

#include <algorithm>
#include <cmath>

namespace steep::rules {

// 0.2 sqrt(max(r, c)) sqrt(min(r, c)): the authors' step scale times their RMS target.
struct adamuon_scale {
  double operator()(block_dims d) const {
    return 0.2 * std::sqrt(std::max(d.rows, d.cols)) * std::sqrt(std::min(d.rows, d.cols));
  }
  bool operator==(const adamuon_scale&) const = default;
};

inline constexpr auto adamuon = []<operand Lr, matrix_map Map = norms::newton_schulz>(
  Lr lr, double weight_decay = 0.01, double momentum = 0.95, double beta2 = 0.999, double eps = 1e-8,
  Map map = { .eps = 1e-7, .guard = norms::frobenius_guard::additive }) {
  const auto mu = hp::momentum(momentum);
  const auto e = hp::eps(eps);
  auto buf = ema<"momentum_buffer">(grad, mu);
  auto o = dual<norms::spectral>(lerp(grad, buf, mu), std::move(map));
  auto v = ema<"v_buffer">(square(o), hp::beta2(beta2));
  auto o_hat = o / (sqrt(debias(v)) + e);
  return decoupled_decay(lr, weight_decay) -
         (hp::lr(lr) * shape_scalar(adamuon_scale{})) * o_hat / (block_norm2(o_hat) + e);
};

} // namespace steep::rules
