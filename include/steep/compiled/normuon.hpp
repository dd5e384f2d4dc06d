#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/normuon.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/normuon.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/normuon.hpp"

STEEP_COMPILED_RULE(steep::rules::normuon(0.02))
STEEP_COMPILED_RULE(steep::rules::normuon_stacked(0.02, 2, 4))
