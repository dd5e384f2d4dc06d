#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/lion.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/lion.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/lion.hpp"

STEEP_COMPILED_RULE(steep::rules::lion(1e-4))
