#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/adam_mini.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/adam_mini.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/adam_mini.hpp"

STEEP_COMPILED_RULE(steep::rules::adam_mini(1e-3))
STEEP_COMPILED_RULE(steep::rules::adam_mini_sliced(1e-3, 1, 4))
