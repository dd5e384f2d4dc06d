#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/optax.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/optax.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/optax.hpp"

STEEP_COMPILED_RULE(steep::rules::adam_optax(1e-3))
STEEP_COMPILED_RULE(steep::rules::nadamw_optax(1e-3))
