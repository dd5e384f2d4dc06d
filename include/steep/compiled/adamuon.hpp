#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/adamuon.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/adamuon.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/adamuon.hpp"

STEEP_COMPILED_RULE(steep::rules::adamuon(0.02))
