#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/normalized_gd.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/normalized_gd.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/normalized_gd.hpp"

STEEP_COMPILED_RULE(steep::rules::normalized_gd(1e-2))
STEEP_COMPILED_RULE(steep::rules::normalized_gd_per_block(1e-2))
