#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/hybrids.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/hybrids.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/hybrids.hpp"

STEEP_COMPILED_RULE(steep::rules::muon_adam())
STEEP_COMPILED_RULE(steep::rules::muon_signum())
STEEP_COMPILED_RULE(steep::rules::muon_optax_full(0.02))
