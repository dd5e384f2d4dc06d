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

namespace steep::rules {

inline constexpr auto adam_mini = []<operand Lr>(Lr lr, double b1 = 0.9, double b2 = 0.999, double eps = 1e-8,
                                                 double weight_decay = 0.0) {
  auto m = ema<"m">(grad, named<"beta1", range::unit_interval>(b1));
  auto v = ema<"v">(block_mean(square(grad)), named<"beta2", range::unit_interval>(b2));
  return -(named<"lr", range::nonnegative>(lr) * named<"weight_decay", range::nonnegative>(weight_decay)) *
           param -
         named<"lr", range::nonnegative>(lr) * debias(m) /
           (sqrt(debias(v)) + named<"eps", range::nonnegative>(eps));
};

} // namespace steep::rules
