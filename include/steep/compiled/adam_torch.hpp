#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/adam_torch.hpp with
// numbers as hyperparameters: STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/adam_torch.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/adam_torch.hpp"

STEEP_COMPILED_RULE(steep::rules::adam_torch(1e-3))
STEEP_COMPILED_RULE(steep::rules::adamw_torch(1e-3))
