#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/sgd.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/sgd.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/sgd.hpp"

// With the 1/sqrt(t) learning-rate schedule too (inv_power: the golden trajectories' `inv_sqrt`).
STEEP_COMPILED_RULE(steep::rules::sgd(0.1))
STEEP_COMPILED_RULE(steep::rules::momentum(0.1, 0.9))
STEEP_COMPILED_RULE(steep::rules::nesterov(0.1, 0.9))
STEEP_COMPILED_RULE(steep::rules::sgd(steep::expr::inv_power(0.1, 0.5)))
STEEP_COMPILED_RULE(steep::rules::momentum(steep::expr::inv_power(0.1, 0.5), 0.9))
STEEP_COMPILED_RULE(steep::rules::nesterov(steep::expr::inv_power(0.1, 0.5), 0.9))
