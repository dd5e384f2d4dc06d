#pragma once
// The catalogue as one list: every rule of steep/rules, by name, with an example of its settings
// and the blocks it takes. Suites iterate it, so a rule added here is covered by each: the
// non-finite guard on every rule (tests/unit/test_guard.cpp) and steep::compiled's coverage of
// the catalogue (tests/compile_ok/compiled_instances.cpp).
//
//   steep::rules::for_each_catalogue_rule([](std::string_view name, const auto& rule, steep::rules::takes t)
//   {
//     if (t == steep::rules::takes::any) ...;   // vectors and matrices
//   });
//
// The examples use each rule's defaults where it has them; a rule over stacked slices is given
// slices that divide the tests' blocks (6 x 4 and 5 x 6: 2 x 3 slices).

#include "steep/rules.hpp"

#include <string_view>

namespace steep::rules {

// The blocks a rule takes: any block, or matrices only (a matrix stage on every block).
enum class takes { any, matrices };

template <class F>
void for_each_catalogue_rule(F&& f) {
  // Elementwise rules (every coordinate on its own gradient entry).
  f(std::string_view("sgd"), sgd(0.1), takes::any);
  f(std::string_view("momentum"), momentum(0.1, 0.9), takes::any);
  f(std::string_view("nesterov"), nesterov(0.1, 0.9), takes::any);
  f(std::string_view("momentum_torch"), momentum_torch(0.1, 0.9), takes::any);
  f(std::string_view("nesterov_torch"), nesterov_torch(0.1, 0.9), takes::any);
  f(std::string_view("adam"), adam(1e-2), takes::any);
  f(std::string_view("adam_eps0"), adam_eps0(1e-2), takes::any);
  f(std::string_view("amsgrad"), amsgrad(1e-2), takes::any);
  f(std::string_view("adam_bf16"), adam_bf16(1e-2), takes::any);
  f(std::string_view("adamw"), adamw(1e-2), takes::any);
  f(std::string_view("adam_torch"), adam_torch(1e-2), takes::any);
  f(std::string_view("adamw_torch"), adamw_torch(1e-2), takes::any);
  f(std::string_view("adagrad"), adagrad(1e-2), takes::any);
  f(std::string_view("rmsprop"), rmsprop(1e-2), takes::any);
  f(std::string_view("lion"), lion(1e-2), takes::any);
  f(std::string_view("signum"), signum(1e-2), takes::any);
  f(std::string_view("adam_optax"), adam_optax(1e-2), takes::any);
  f(std::string_view("nadamw_optax"), nadamw_optax(1e-2), takes::any);
  f(std::string_view("adam_paper"), adam_paper(1e-2), takes::any);
  // Reductions, per-block and per-line slots.
  f(std::string_view("normalized_gd"), normalized_gd(1e-2), takes::any);
  f(std::string_view("normalized_gd_per_block"), normalized_gd_per_block(1e-2), takes::any);
  f(std::string_view("momentum_gd"), momentum_gd(1e-2), takes::any);
  f(std::string_view("adam_mini"), adam_mini(1e-2), takes::any);
  f(std::string_view("adam_mini_sliced"), adam_mini_sliced(1e-2, 2, 3), takes::matrices);
  // Matrix stages.
  f(std::string_view("muon"), muon(0.02), takes::matrices);
  f(std::string_view("muon_exact"), muon_exact(0.02), takes::matrices);
  f(std::string_view("muon_plain_rms"), muon_plain_rms(0.02), takes::matrices);
  f(std::string_view("muon_optax"), muon_optax(0.02), takes::matrices);
  f(std::string_view("muon_stacked"), muon_stacked(0.02, 2, 3), takes::matrices);
  f(std::string_view("spectral_msd"), spectral_msd(0.02), takes::matrices);
  f(std::string_view("muon_paper"), muon_paper(0.02), takes::matrices);
  f(std::string_view("adamuon"), adamuon(0.02), takes::matrices);
  f(std::string_view("normuon"), normuon(0.02), takes::matrices);
  f(std::string_view("normuon_stacked"), normuon_stacked(0.02, 2, 3), takes::matrices);
  f(std::string_view("scion_colnorm"), scion_colnorm(0.02), takes::any);
  f(std::string_view("scion_rownorm"), scion_rownorm(0.02), takes::matrices);
  f(std::string_view("scion_spectral"), scion_spectral(0.02), takes::matrices);
  f(std::string_view("scion_sign"), scion_sign(0.02), takes::any);
  // Matrix stages that keep state.
  f(std::string_view("shampoo"), shampoo(0.02), takes::matrices);
  f(std::string_view("shampoo_every3"), shampoo(0.02, { .beta2 = 0.99, .eps = 1e-8, .every = 3 }),
    takes::matrices);
  f(std::string_view("shampoo_one_sided"), shampoo_one_sided(0.02), takes::matrices);
  f(std::string_view("shampoo_unaccumulated"), shampoo_unaccumulated(0.02), takes::matrices);
  f(std::string_view("dion"), dion(0.02), takes::matrices);
  f(std::string_view("dion_low_rank"), dion(0.02, { .rank_fraction = 0.5 }, 0.01), takes::matrices);
  f(std::string_view("dion_bf16"), dion_bf16(0.02), takes::matrices);
  f(std::string_view("soap"), soap(0.02), takes::matrices);
  f(std::string_view("soap_every2"),
    soap(0.02, { .beta1 = 0.9, .beta2 = 0.99, .shampoo_beta = 0.9, .precondition_frequency = 2 }),
    takes::matrices);
  // Routes.
  f(std::string_view("scion"), scion(0.02), takes::any);
  f(std::string_view("muon_adam"), muon_adam(), takes::any);
  f(std::string_view("muon_signum"), muon_signum(), takes::any);
  f(std::string_view("muon_optax_full"), muon_optax_full(0.02), takes::any);
  f(std::string_view("muon_signum_paper"), muon_signum_paper(0.02, 0.01), takes::any);
  f(std::string_view("muon_adam_paper"), muon_adam_paper(0.02, 0.01), takes::any);
}

} // namespace steep::rules
