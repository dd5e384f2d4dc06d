#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/dion.hpp:
// STEEP_COMPILED_RULE, steep/compiled/instance.hpp. dion(lr, settings, weight_decay) is dion(lr)'s
// type (the settings and the decay are values), so one instance serves them all.
//
//   #include <steep/compiled/dion.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/dion.hpp"

#include <type_traits>

STEEP_COMPILED_RULE(steep::rules::dion(0.02))
STEEP_COMPILED_RULE(steep::rules::dion_bf16(0.02)) // momentum and Q stored as bfloat16
static_assert(std::is_same_v<decltype(steep::rules::dion(0.02)),
                             decltype(steep::rules::dion(0.02, { .rank_fraction = 0.25 }, 0.01))>,
              "dion with settings is dion's type: the instance above serves it");
