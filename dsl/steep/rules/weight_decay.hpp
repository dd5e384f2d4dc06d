#pragma once
// Decoupled weight decay (Loshchilov & Hutter 2019): the term -lr wd p added to any rule's
// change, i.e. p <- p (1 - lr wd) + rule. lr wd is one per-step scalar.
//
//   auto signum_wd = signum(1e-3) + decoupled_decay(1e-3, 0.1);

#include "steep/rules/common.hpp"

namespace steep::rules {

inline constexpr auto decoupled_decay = []<operand Lr, operand Wd>(Lr lr, Wd wd) {
  return -(hp::lr(lr) * hp::weight_decay(wd)) * param;
};

} // namespace steep::rules
