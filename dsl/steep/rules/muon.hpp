#pragma once
// The Muon family: momentum, then the spectral norm's dual map, per hidden matrix.
//
//   steep::optimizer opt(steep::rules::muon(0.02), store);            // torch 2.11 torch.optim.Muon
//   steep::rules::muon(0.02, 0.1, 0.95, newton_schulz{ .steps = 10 }); // lr, wd, momentum, map
//   steep::rules::muon_exact(0.02);      // exact polar factor U V^T (SVD) instead of Newton-Schulz
//   steep::rules::muon_plain_rms(0.02);  // no Nesterov, no decay, lr * 0.2 sqrt(max(r, c))
//   steep::rules::muon_optax(0.02);      // optax.contrib.muon's matrix rule
//
// torch 2.11 (manifest `muon`):  B_t = B + (1 - mu)(g - B);  U = g + mu (B_t - g)  (Nesterov);
//   O = NS(U);  p <- p (1 - lr wd) - lr sqrt(max(1, rows/cols)) O.
// Muon is normalized steepest descent under the spectral norm on each matrix: O is (close to)
// argmax_{||D||_2 <= 1} <U, D> (Gronich & Vardi 2026, Muon: spectral). The learning-rate
// adjustment is a per-block scalar, computed once per block from its shape.
// Routing Muon to hidden matrices and an elementwise rule elsewhere is route(...) (hybrids.hpp).

#include "steep/norms/newton_schulz.hpp"
#include "steep/norms/polar.hpp"
#include "steep/rules/common.hpp"
#include "steep/rules/weight_decay.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace steep::rules {

using norms::exact_polar;
using norms::frobenius_guard;
using norms::newton_schulz;

// The shared body: EMA momentum (torch's buf.lerp_(g, 1 - mu)), optional Nesterov look-ahead
// (g.lerp(buf, mu)), a matrix map, decoupled decay with the unadjusted lr, adjusted step.
template <bool Nesterov, operand Lr, matrix_map Map>
constexpr auto muon_rule(Lr lr, double weight_decay, double momentum, lr_adjust adjust, Map map) {
  const auto mu = hp::momentum(momentum);
  auto buf = ema<"momentum_buffer">(grad, mu);
  auto dir = [&] {
    if constexpr (Nesterov)
      return lerp(grad, buf, mu);
    else
      return buf;
  }();
  return decoupled_decay(lr, weight_decay) -
         (hp::lr(lr) * shape_scale(adjust)) * dual<norms::spectral>(dir, std::move(map));
}

inline constexpr auto muon = []<operand Lr, matrix_map Map = newton_schulz>(
  Lr lr, double weight_decay = 0.1, double momentum = 0.95, Map map = {}) {
  return muon_rule<true>(hp::lr(lr), weight_decay, momentum, lr_adjust::original, std::move(map));
};

// Muon on stacked matrices (torch 2.11's update on each slice): a block of several
// slice_rows x slice_cols matrices — MoE experts (E, out, in) with slices(out, in), a fused QKV
// (3 d, d) per head with slices(d_head, d) — each orthogonalized on its own, with each slice's
// lr adjustment sqrt(max(1, slice_rows / slice_cols)).
inline constexpr auto muon_stacked = []<operand Lr, matrix_map Map = newton_schulz>(
  Lr lr, std::size_t slice_rows, std::size_t slice_cols, double weight_decay = 0.1, double momentum = 0.95,
  Map map = {}) {
  const auto mu = hp::momentum(momentum);
  auto buf = ema<"momentum_buffer">(grad, mu);
  const double adjust =
    std::sqrt(std::max(1.0, static_cast<double>(slice_rows) / static_cast<double>(slice_cols)));
  return decoupled_decay(lr, weight_decay) -
         (hp::lr(lr) * adjust) *
           orthogonalize(slices(std::move(map), slice_rows, slice_cols), lerp(grad, buf, mu));
};

inline constexpr auto muon_exact = []<operand Lr>(Lr lr, double weight_decay = 0.1, double momentum = 0.95) {
  return muon_rule<true>(hp::lr(lr), weight_decay, momentum, lr_adjust::original, exact_polar{});
};

// torch 2.11 Muon(nesterov=False, weight_decay=0, adjust_lr_fn='match_rms_adamw') (manifest
// `muon_plain_rms`): the update's RMS matches AdamW's (Liu et al. 2025, "Muon is scalable").
inline constexpr auto muon_plain_rms = []<operand Lr, matrix_map Map = newton_schulz>(
  Lr lr, double weight_decay = 0.0, double momentum = 0.95, Map map = {}) {
  return muon_rule<false>(hp::lr(lr), weight_decay, momentum, lr_adjust::match_rms_adamw, std::move(map));
};

// optax.contrib.muon's rule for 2-D params (optax 0.2.8, manifest `muon_optax`): bias-corrected
// Nesterov momentum, additive eps 1e-8 in the Frobenius normalization, shape factor
// sqrt(max(1, fan_out/fan_in)), and p <- p - lr (O + wd p). optax writes that factor as
// sqrt(max(1, cols/rows)) because JAX weights are (in, out): give such blocks
// weight_layout::in_out and the factor is optax's exactly.
inline constexpr auto muon_optax =
  []<operand Lr>(Lr lr, double beta = 0.95, double weight_decay = 0.0,
                 newton_schulz map = { .eps = 1e-8, .guard = frobenius_guard::additive }) {
    auto mu = ema<"mu">(grad, hp::beta(beta));
    return -hp::lr(lr) *
           (shape_scale(lr_adjust::original) * orthogonalize(std::move(map), nesterov_debias(mu, grad)) +
            hp::weight_decay(weight_decay) * param);
  };

} // namespace steep::rules
