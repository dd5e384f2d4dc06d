#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/adagrad.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/adagrad.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/adagrad.hpp"

STEEP_COMPILED_RULE(steep::rules::adagrad(1e-2))
