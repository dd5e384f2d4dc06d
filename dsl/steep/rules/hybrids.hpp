#pragma once
// Hybrids: Muon on hidden matrices, an elementwise rule on every other block.
//
//   steep::optimizer opt(steep::rules::muon_adam(0.02, 0.01), store);    // Muon-Adam
//   steep::optimizer opt(steep::rules::muon_signum(0.02, 0.01), store);  // Muon-Signum
//   steep::optimizer opt(steep::rules::muon_optax_full(0.02), store);     // optax.contrib.muon
//
// Each is steepest descent under one hybrid norm: the max over blocks of the spectral norm on
// hidden matrices and l_inf elsewhere, whose dual map is the per-block dual maps side by side
// (Gronich & Vardi 2026, Muon-Signum / Muon-Adam). The blocks' roles pick the arm (route.hpp);
// embeddings and heads follow `otherwise`, as Jordan et al. (2024) recommend.

#include "steep/rules/adam.hpp"
#include "steep/rules/muon.hpp"
#include "steep/rules/optax.hpp"
#include "steep/rules/signum.hpp"

namespace steep::rules {

using steep::on;
using steep::otherwise;
using steep::route;

// torch.optim.Muon on hidden matrices + torch.optim.Adam elsewhere (manifest `muon_adam`).
inline constexpr auto muon_adam = [](double muon_lr = 0.02, double adam_lr = 3e-4, double weight_decay = 0.1,
                                     double momentum = 0.95, double b1 = 0.9, double b2 = 0.999,
                                     double eps = 1e-8) {
  return route(on<block_role::hidden_matrix> >>
                 muon(named<"muon_lr", range::nonnegative>(muon_lr), weight_decay, momentum),
               otherwise >> adam(named<"adam_lr", range::nonnegative>(adam_lr), b1, b2, eps));
};

// torch.optim.Muon on hidden matrices + Signum elsewhere (manifest `muon_signum`).
inline constexpr auto muon_signum = [](double muon_lr = 0.02, double signum_lr = 3e-4,
                                       double weight_decay = 0.1, double momentum = 0.95, double beta = 0.9) {
  return route(on<block_role::hidden_matrix> >>
                 muon(named<"muon_lr", range::nonnegative>(muon_lr), weight_decay, momentum),
               otherwise >> signum(named<"signum_lr", range::nonnegative>(signum_lr), beta));
};

// optax.contrib.muon as a whole (manifest `muon_optax`): its matrix rule on hidden matrices,
// NAdamW with the same learning rate elsewhere.
inline constexpr auto muon_optax_full = [](double lr, double beta = 0.95, double weight_decay = 0.0,
                                           double adam_b1 = 0.9, double adam_b2 = 0.999,
                                           double adam_eps = 1e-8, double adam_weight_decay = 0.0) {
  return route(on<block_role::hidden_matrix> >> muon_optax(hp::lr(lr), beta, weight_decay),
               otherwise >> nadamw_optax(hp::lr(lr), adam_b1, adam_b2, adam_eps, 0.0,
                                         named<"adam_weight_decay", range::nonnegative>(adam_weight_decay)));
};

} // namespace steep::rules
