#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/scion.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/scion.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/scion.hpp"

STEEP_COMPILED_RULE(steep::rules::scion(1e-3))
STEEP_COMPILED_RULE(steep::rules::scion_colnorm(1e-3))
STEEP_COMPILED_RULE(steep::rules::scion_rownorm(1e-3))
STEEP_COMPILED_RULE(steep::rules::scion_spectral(1e-3))
STEEP_COMPILED_RULE(steep::rules::scion_sign(1e-3))
