#pragma once
// Normalized gradient descent: steepest descent under l2 with the unit direction.
//   normalized_gd:            p <- p - lr g / ||g||   (one l2 norm over every block of the rule)
//   normalized_gd_per_block:  p <- p - lr g_b / ||g_b|| for each block b separately
// Two passes: the norms first (read-only), then the update. A zero gradient gives a zero step.
//
//   steep::optimizer opt(steep::rules::normalized_gd(0.1), store);

#include "steep/rules/common.hpp"

namespace steep::rules {

inline constexpr auto normalized_gd = []<operand Lr>(Lr lr) {
  return -hp::lr(lr) * l2_normalize<all_blocks>(grad);
};

inline constexpr auto normalized_gd_per_block = []<operand Lr>(Lr lr) {
  return -hp::lr(lr) * dual<steep::norms::l2>(grad);
};

} // namespace steep::rules
