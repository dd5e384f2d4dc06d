#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/adam.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/adam.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/adam.hpp"

STEEP_COMPILED_RULE(steep::rules::adam(1e-3))
STEEP_COMPILED_RULE(steep::rules::adam_bf16(1e-3))
STEEP_COMPILED_RULE(steep::rules::adam_eps0(1e-3))
STEEP_COMPILED_RULE(steep::rules::amsgrad(1e-3))
// With the paper's schedule (inv_power): the eps > 0 ablation of examples/implicit_bias.cpp.
STEEP_COMPILED_RULE(steep::rules::adam(steep::expr::inv_power(0.1, 0.5)))
