#pragma once
// NorMuon (Li et al. 2025, "NorMuon: Making Muon more efficient and scalable",
// arXiv:2510.05491; the authors' reference code is torch): Muon's polar factor, normalized per
// neuron (row) by an EMA of its mean square, then rescaled to the polar factor's norm.
//   B_t = mu B + (1 - mu) g;  U = g + mu (B_t - g);  O = NS5(U)   (X / (||X||_F + 1e-7) first)
//   V_t = b2 V + (1 - b2) mean_j O_ij^2                           (one value per row)
//   O' = O / (sqrt(V_t) + 1e-10);  O'' = O' ||O||_F / (||O'||_F + 1e-10)
//   p <- p (1 - lr wd) - lr sqrt(max(1, rows / cols)) O''
//
//   steep::optimizer opt(steep::rules::normuon(0.02), store);    // hidden matrices
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
constexpr auto normuon_rule(Lr lr, double weight_decay, double momentum, double beta2, Orth orth,
                            RowMean row_mean, Norm norm, Scale scale) {
  const auto mu = hp::momentum(momentum);
  auto buf = ema<"momentum_buffer">(grad, mu);
  auto o = orth(lerp(grad, buf, mu));
  auto v = ema<"second_momentum_buffer">(row_mean(square(o)), hp::beta2(beta2));
  auto o_hat = o / (sqrt(v) + 1e-10);
  return decoupled_decay(lr, weight_decay) - (hp::lr(lr) * scale) * o_hat * (norm(o) / (norm(o_hat) + 1e-10));
}

inline constexpr auto normuon = []<operand Lr, matrix_map Map = norms::newton_schulz>(
  Lr lr, double weight_decay = 0.0, double momentum = 0.95, double beta2 = 0.95,
  Map map = { .eps = 1e-7, .guard = norms::frobenius_guard::additive }) {
  return normuon_rule(
    lr, weight_decay, momentum, beta2, [&](auto u) { return dual<norms::spectral>(u, std::move(map)); },
    [](auto x) { return row_mean(x); }, [](auto x) { return block_norm2(x); },
    shape_scale(lr_adjust::original));
};

// NorMuon on stacked matrices (MoE experts (E, out, in) with slices(out, in), a fused QKV per
// head): each slice_rows x slice_cols slice is a matrix of its own, with its polar factor, one
// second moment per row of the slice (a slice of 1 x slice_cols), its own rescaling, and lr
// factor sqrt(max(1, slice_rows / slice_cols)). describe() shows the second moment as one per
// slice: per row of each slice.
inline constexpr auto normuon_stacked = []<operand Lr, matrix_map Map = norms::newton_schulz>(
  Lr lr, std::size_t slice_rows, std::size_t slice_cols, double weight_decay = 0.0, double momentum = 0.95,
  double beta2 = 0.95, Map map = { .eps = 1e-7, .guard = norms::frobenius_guard::additive }) {
  return normuon_rule(
    lr, weight_decay, momentum, beta2,
    [&](auto u) { return orthogonalize(slices(std::move(map), slice_rows, slice_cols), u); },
    [=](auto x) { return slice_mean(x, 1, slice_cols); },
    [=](auto x) { return slice_norm2(x, slice_rows, slice_cols); },
    std::sqrt(std::max(1.0, static_cast<double>(slice_rows) / static_cast<double>(slice_cols))));
};

} // namespace steep::rules
