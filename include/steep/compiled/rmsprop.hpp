#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/rmsprop.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/rmsprop.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/rmsprop.hpp"

STEEP_COMPILED_RULE(steep::rules::rmsprop(1e-3))
