#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/implicit_bias.hpp with
// numbers as hyperparameters (and the schedules listed): STEEP_COMPILED_RULE, steep/compiled/instance.hpp.
//
//   #include <steep/compiled/implicit_bias.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/adam.hpp"
#include "steep/rules/implicit_bias.hpp"

#include <type_traits>

// adam_paper(lr) is adam_eps0(lr), the same expression: its instances are adam.hpp's.
static_assert(
  std::is_same_v<decltype(steep::rules::adam_paper(1e-3)), decltype(steep::rules::adam_eps0(1e-3))>,
  "adam_paper is no longer adam_eps0: list it with STEEP_COMPILED_RULE");
STEEP_COMPILED_RULE_LISTED(steep::rules::adam_paper(1e-3))
STEEP_COMPILED_RULE(steep::rules::momentum_gd(0.1))
STEEP_COMPILED_RULE(steep::rules::spectral_msd(0.02))
STEEP_COMPILED_RULE(steep::rules::muon_paper(0.02))
STEEP_COMPILED_RULE(steep::rules::muon_signum_paper(0.02, 0.01))
STEEP_COMPILED_RULE(steep::rules::muon_adam_paper(0.02, 0.01))
// With the paper's schedule eta_t = eta0 t^-a (inv_power; Gronich & Vardi 2026, §3.5), as
// examples/implicit_bias.cpp trains them.
STEEP_COMPILED_RULE(steep::rules::momentum_gd(steep::expr::inv_power(0.1, 0.5)))
STEEP_COMPILED_RULE(steep::rules::adam_paper(steep::expr::inv_power(0.1, 0.5)))
STEEP_COMPILED_RULE(steep::rules::muon_paper(steep::expr::inv_power(0.1, 0.5)))
STEEP_COMPILED_RULE(steep::rules::muon_signum_paper(steep::expr::inv_power(0.1, 0.5),
                                                    steep::expr::inv_power(0.1, 0.5)))
STEEP_COMPILED_RULE(steep::rules::muon_adam_paper(steep::expr::inv_power(0.1, 0.5),
                                                  steep::expr::inv_power(0.1, 0.5)))
