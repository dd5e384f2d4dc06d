#pragma once
// What every rule file includes: the DSL's vocabulary in namespace steep::rules.
// A rule is a function of its hyperparameters that returns an expression for the change of
// the parameter (p <- p + rule). Learning rates may be numbers, named hyperparameters
// (hyper<"lr">(1e-3)), compile-time constants (ct<0.1>) or schedules (inv_power(0.1, 0.5)).

#include "steep/core/bfloat16.hpp"
#include "steep/expr.hpp"

#include <type_traits>

namespace steep::rules {
using namespace steep::expr;

// A catalogue rule's hyperparameter given as a plain number becomes a named one, so that
// opt.set("lr", 1e-4) / opt.get("lr") work on every rule; an expression (a schedule, a
// compile-time constant, a hyper<"...">) is kept as it is.
// Range: the values it may take (expr/node.hpp, namespace range), checked when the optimizer
// is built and at every set().
template <fixed_string Name, class Range = range::finite, operand X>
constexpr auto named(X x) {
  if constexpr (std::is_arithmetic_v<X>)
    return hyper<Name, Range>(static_cast<double>(x));
  else
    return x;
}
} // namespace steep::rules
