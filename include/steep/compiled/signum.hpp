#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/signum.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/signum.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/signum.hpp"

STEEP_COMPILED_RULE(steep::rules::signum(1e-3))
// With the paper's schedule (inv_power), as examples/implicit_bias.cpp trains it.
STEEP_COMPILED_RULE(steep::rules::signum(steep::expr::inv_power(0.1, 0.5)))
