#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/muon.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/muon.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/muon.hpp"

// muon(lr, wd, momentum, polar_express()) has muon(lr)'s type (the schedule is a value).
STEEP_COMPILED_RULE(steep::rules::muon(0.02))
STEEP_COMPILED_RULE(steep::rules::muon_stacked(0.02, 2, 4))
STEEP_COMPILED_RULE(steep::rules::muon_exact(0.02))
STEEP_COMPILED_RULE(steep::rules::muon_plain_rms(0.02))
STEEP_COMPILED_RULE(steep::rules::muon_optax(0.02))
STEEP_COMPILED_RULE(steep::rules::muon_rule<false>(0.02, 0.1, 0.95, steep::rules::lr_adjust::original,
                                                   steep::rules::exact_polar{}))
