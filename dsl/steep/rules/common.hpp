#pragma once
// What every rule file includes: the DSL's vocabulary in namespace steep::rules.
// A rule is a function of its hyperparameters that returns an expression for the change of
// the parameter (p <- p + rule). Learning rates may be numbers, named hyperparameters
// (hyper<"lr">(1e-3)), compile-time constants (ct<0.1>) or schedules (inv_power(0.1, 0.5)).

#include "steep/core/bfloat16.hpp"
#include "steep/expr.hpp"

namespace steep::rules {
using namespace steep::expr;
} // namespace steep::rules
