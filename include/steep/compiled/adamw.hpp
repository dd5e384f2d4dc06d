#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/adamw.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/adamw.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/adamw.hpp"

STEEP_COMPILED_RULE(steep::rules::adamw(1e-3))
