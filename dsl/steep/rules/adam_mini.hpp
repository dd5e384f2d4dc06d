#pragma once
// Adam-mini (Zhang et al. 2024, "Adam-mini: Use Fewer Learning Rates To Gain More",
// arXiv:2406.16793): Adam whose second moment is one value per block, the EMA of the block's
// mean squared gradient, so v costs one number per tensor instead of one per parameter.
//   m_t = b1 m + (1 - b1) g                       (per element)
//   v_t = b2 v + (1 - b2) mean_block(g^2)         (one per block)
//   p <- p (1 - lr wd) - lr (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps)
//
//   steep::optimizer opt(steep::rules::adam_mini(1e-3), store);   // 20 B/param in float32 (Adam: 28)
//
// The authors partition a transformer finer than by tensor (per head for queries and keys, per
// output neuron elsewhere, embeddings by plain Adam); this rule takes one block as one
// partition, so a model's blocks are its partitions. The v slot ("v") is stored per block:
// describe() and state() show it, and checkpoints carry it like any other slot.

#include "steep/rules/common.hpp"
#include "steep/rules/weight_decay.hpp"

#include <cstddef>

namespace steep::rules {

// The shared body; mean(x) is the second moment's partition mean (block_mean, slice_mean).
template <operand Lr, class Mean>
constexpr auto adam_mini_rule(Lr lr, double b1, double b2, double eps, double weight_decay, Mean mean) {
  auto m = ema<"m">(grad, hp::beta1(b1));
  auto v = ema<"v">(mean(square(grad)), hp::beta2(b2));
  return decoupled_decay(lr, weight_decay) - hp::lr(lr) * debias(m) / (sqrt(debias(v)) + hp::eps(eps));
}

inline constexpr auto adam_mini = []<operand Lr>(Lr lr, double b1 = 0.9, double b2 = 0.999, double eps = 1e-8,
                                                 double weight_decay = 0.0) {
  return adam_mini_rule(lr, b1, b2, eps, weight_decay, [](auto x) { return block_mean(x); });
};

// Adam-mini with one v per slice of slice_rows x slice_cols consecutive entries: the authors'
// partition of queries and keys by head (a (n_heads d_head, d) projection with slices of
// d_head x d), or one v per expert of an (E, out, in) block (slices of out x in). v is stored
// per slice, one value each ("v": one per slice in describe(), shape (slices) in state()).
//   steep::route(steep::on_name("*.wq") >> steep::rules::adam_mini_sliced(1e-3, 64, 512),
//                steep::otherwise >> steep::rules::adam_mini(1e-3));
inline constexpr auto adam_mini_sliced = []<operand Lr>(Lr lr, std::size_t slice_rows, std::size_t slice_cols,
                                                        double b1 = 0.9, double b2 = 0.999, double eps = 1e-8,
                                                        double weight_decay = 0.0) {
  return adam_mini_rule(lr, b1, b2, eps, weight_decay,
                        [=](auto x) { return slice_mean(x, slice_rows, slice_cols); });
};

} // namespace steep::rules
