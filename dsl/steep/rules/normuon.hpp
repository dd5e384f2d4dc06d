#pragma once
// NorMuon (Li et al. 2025, "NorMuon: Making Muon more efficient and scalable",
// arXiv:2510.05491; the authors' reference code is torch): Muon's polar factor, normalized per
// neuron (row) by an EMA of its mean square, then rescaled to the polar factor's norm.
//   B_t = mu B + (1 - mu) g;  U = g + mu (B_t - g);  O = NS5(U)   (X / (||X||_F + 1e-7) first)
//   V_t = b2 V + (1 - b2) mean_j O_ij^2                           (one value per row)
//   O' = O / (sqrt(V_t) + eps);  O'' = O' ||O||_F / (||O'||_F + eps)      (eps = 1e-10)
//   p <- p (1 - lr wd) - lr s O''               (s = sqrt(max(1, rows / cols)): lr_adjust::original)
//
//   steep::optimizer opt(steep::rules::normuon(0.02), store);    // hidden matrices
//   steep::rules::normuon(0.02, 0, 0.95, 0.95, 1e-8, steep::expr::lr_adjust::none)  // eps 1e-8, no s
//
// eps is a named setting ("eps", both places, as the authors' code uses one), and the shape
// factor s a choice (lr_adjust: none, original, match_rms_adamw): published NorMuon settings
// differ in both, and a user reproducing one sets them without writing the rule again.
//
// What the compiler makes of it (describe()): the mean square per row is a line reduction of
// the matrix phase's result (depth 1), ||O||_F a block reduction of depth 1, and ||O'||_F reads
// the per-row slot updated from the first, so it runs one pass later (depth 2). The second
// moment is a per-row slot ("second_momentum_buffer"): state() shows it with shape (rows), and
// checkpoints carry it like any slot.

#include "steep/norms/newton_schulz.hpp"
#include "steep/rules/common.hpp"
#include "steep/rules/weight_decay.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace steep::rules {

// The shared body, over a partition: orth(u) is the polar factor, row_mean(x) the mean along
// each row, norm(x) the Frobenius norm of each matrix, scale Muon's lr factor.
template <operand Lr, class Orth, class RowMean, class Norm, class Scale>
constexpr auto normuon_rule(Lr lr, double weight_decay, double momentum, double beta2, double eps, Orth orth,
                            RowMean row_mean, Norm norm, Scale scale) {
  const auto mu = hp::momentum(momentum);
  auto buf = ema<"momentum_buffer">(grad, mu);
  auto o = orth(lerp(grad, buf, mu));
  auto v = ema<"second_momentum_buffer">(row_mean(square(o)), hp::beta2(beta2));
  auto o_hat = o / (sqrt(v) + hp::eps(eps));
  return decoupled_decay(lr, weight_decay) -
         (hp::lr(lr) * scale) * o_hat * (norm(o) / (norm(o_hat) + hp::eps(eps)));
}

inline constexpr auto normuon = []<operand Lr, matrix_map Map = norms::newton_schulz>(
  Lr lr, double weight_decay = 0.0, double momentum = 0.95, double beta2 = 0.95, double eps = 1e-10,
  lr_adjust adjust = lr_adjust::original,
  Map map = { .eps = 1e-7, .guard = norms::frobenius_guard::additive }) {
  return normuon_rule(
    lr, weight_decay, momentum, beta2, eps, [&](auto u) { return dual<norms::spectral>(u, std::move(map)); },
    [](auto x) { return row_mean(x); }, [](auto x) { return block_norm2(x); }, shape_scale(adjust));
};

// NorMuon on stacked matrices (MoE experts (E, out, in) with slices(out, in), a fused QKV per
// head): each slice_rows x slice_cols slice is a matrix of its own, with its polar factor, one
// second moment per row of the slice (a slice of 1 x slice_cols), its own rescaling, and lr
// factor sqrt(max(1, slice_rows / slice_cols)) (lr_adjust's, of the slice). describe() shows the
// second moment as one per slice: per row of each slice.
inline constexpr auto normuon_stacked = []<operand Lr, matrix_map Map = norms::newton_schulz>(
  Lr lr, std::size_t slice_rows, std::size_t slice_cols, double weight_decay = 0.0, double momentum = 0.95,
  double beta2 = 0.95, double eps = 1e-10, lr_adjust adjust = lr_adjust::original,
  Map map = { .eps = 1e-7, .guard = norms::frobenius_guard::additive }) {
  const expr::block_dims slice{ .rows = static_cast<double>(slice_rows),
                                .cols = static_cast<double>(slice_cols),
                                .fan_in = static_cast<double>(slice_cols),
                                .fan_out = static_cast<double>(slice_rows) };
  return normuon_rule(
    lr, weight_decay, momentum, beta2, eps,
    [&](auto u) { return orthogonalize(slices(std::move(map), slice_rows, slice_cols), u); },
    [=](auto x) { return slice_mean(x, 1, slice_cols); },
    [=](auto x) { return slice_norm2(x, slice_rows, slice_cols); }, lr_scale(adjust, slice));
};

} // namespace steep::rules
