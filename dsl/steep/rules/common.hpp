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
// The settings every rule repeats, each spelled, named and range-checked once:
//   -hp::lr(lr) * debias(ema<"exp_avg">(grad, hp::beta1(b1))) / (sqrt(...) + hp::eps(eps))
// (qualified, so a rule's own parameter named lr does not hide them). Each is named<Name, Range>.
template <fixed_string Name, class Range>
struct setting {
  template <operand X>
  constexpr auto operator()(X x) const {
    return named<Name, Range>(x);
  }
};
namespace hp {
inline constexpr setting<"lr", range::nonnegative> lr{};
inline constexpr setting<"beta1", range::unit_interval> beta1{};
inline constexpr setting<"beta2", range::unit_interval> beta2{};
inline constexpr setting<"beta", range::unit_interval> beta{}; // one EMA's (Lion's, the paper's rules')
inline constexpr setting<"eps", range::nonnegative> eps{};
inline constexpr setting<"weight_decay", range::nonnegative> weight_decay{};
// An EMA momentum in [0, 1) (Muon's); SGD's heavy-ball momentum takes any value >= 0.
inline constexpr setting<"momentum", range::unit_interval> momentum{};
} // namespace hp

} // namespace steep::rules
