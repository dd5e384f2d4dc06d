#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/torch_order.hpp with
// numbers as hyperparameters (and the schedule listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/torch_order.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/torch_order.hpp"

STEEP_COMPILED_RULE(steep::rules::adam_torch(1e-3))
STEEP_COMPILED_RULE(steep::rules::adamw_torch(1e-3))
STEEP_COMPILED_RULE(steep::rules::momentum_torch(0.1, 0.9))
STEEP_COMPILED_RULE(steep::rules::nesterov_torch(0.1, 0.9))
// With the golden set's schedule (sgd_momentum_schedule: steep-golden-compiled --order torch).
STEEP_COMPILED_RULE(steep::rules::momentum_torch(steep::expr::inv_power(0.1, 0.5), 0.9))
STEEP_COMPILED_RULE(steep::rules::nesterov_torch(steep::expr::inv_power(0.1, 0.5), 0.9))
