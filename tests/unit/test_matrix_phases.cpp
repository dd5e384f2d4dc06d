// Several matrix phases in one step (expr/phases.hpp, engine/plan.hpp): a matrix stage whose
// operand needs another stage's result, or a reduction of one, runs in a later phase. Against
// float64 references (scripts/reference-variants.py), at 1, 2 and 8 threads, with what describe()
// says of the plan, and the guard's refusal with nothing written.

#include "variants.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <steep/steep.hpp>
#include <steep/train/implied_norm.hpp>
#include <string>
#include <vector>

using namespace steep::expr;
using steep_test::variant_error;

namespace {

const steep::norms::newton_schulz ns; // torch 2.11's: quintic, 5 steps, X / max(||X||_F, 1e-7)

// The program the engine compiles a rule to.
template <class Rule>
using program_of = typename steep::optimizer<Rule, double>::program_type;

steep::param_store<double> two_blocks() {
  return steep::param_store<double>({ { "W1", { 6, 10 } }, { "W2", { 12, 5 } } });
}

} // namespace

TEST_CASE("two matrix phases: the polar factor of a momentum of polar factors") {
  const auto rule = -0.1 * orthogonalize(ns, ema<"m">(orthogonalize(ns, grad), 0.9));
  using P = program_of<decltype(rule)>;
  static_assert(P::n_matrices == 2 && P::n_matrix_phases == 2 && P::matrix_phases_run == 2);
  static_assert(P::passes == 3, "a pre-pass per phase, then the update");
  // Not momentum steepest descent under one norm (the outer map's operand is a momentum of dual
  // maps, not of gradients), and the implied-norm analysis says so.
  static_assert(!steep::implied_norm<decltype(rule)>::known);
  for (int threads : { 1, 2, 8 })
    CHECK(variant_error(rule, "two_phase_momentum", threads) < 1e-12);
  // The comparison can fail: without the second phase the trajectory is another.
  CHECK(variant_error(-0.1 * ema<"m">(orthogonalize(ns, grad), 0.9), "two_phase_momentum") > 1e-3);

  auto store = two_blocks();
  steep::optimizer opt(rule, store);
  const std::string d = opt.describe();
  CHECK_THAT(d, Catch::Contains("passes: 3 (matrix pre-pass, matrix pre-pass (phase 2), update), and 2 "
                                "matrix phases, each after its pre-pass"));
  CHECK_THAT(d, Catch::Contains("matrix stages: 2 (each block, phase 1; each block, phase 2)"));
}

TEST_CASE("a second phase reads a norm of the first phase's result") {
  const auto o = orthogonalize(ns, grad);
  const auto rule = -0.1 * orthogonalize(steep::norms::exact_polar{}, grad - o / block_norm2(o));
  using P = program_of<decltype(rule)>;
  static_assert(P::n_matrix_phases == 2 && P::max_depth == 1);
  for (int threads : { 1, 2, 8 })
    CHECK(variant_error(rule, "two_phase_norm", threads) < 1e-12);
  auto store = two_blocks();
  steep::optimizer opt(rule, store);
  CHECK_THAT(opt.describe(),
             Catch::Contains("(matrix pre-pass, reduction (depth 1), matrix pre-pass (phase 2), update)"));
}

TEST_CASE("a stage that needs a depth-1 reduction runs in phase 2, and phase 1 has none") {
  // v per row (a line reduction of depth 0); the norm of g / sqrt(v): depth 1.
  const auto v = ema<"v">(row_sum(square(grad)), 0.9);
  const auto rule = -0.1 * orthogonalize(ns, grad + square(grad) / block_norm2(grad / sqrt(v)));
  using P = program_of<decltype(rule)>;
  static_assert(P::n_matrix_phases == 2 && P::matrix_phases_run == 1 && P::matrices_in_phase<1> == 0);
  for (int threads : { 1, 2 })
    CHECK(variant_error(rule, "phase_two_only", threads) < 1e-12);
  auto store = two_blocks();
  steep::optimizer opt(rule, store);
  const std::string d = opt.describe();
  CHECK_THAT(
    d, Catch::Contains("passes: 4 (line reduction, reduction (depth 1), matrix pre-pass (phase 2), update), "
                       "and the matrix phase after the matrix pre-pass"));
  CHECK_THAT(d, Catch::Contains("matrix stages: 1 (each block, phase 2)"));
}

TEST_CASE("a non-finite gradient refuses a two-phase step, and nothing is written") {
  const auto rule = -0.1 * orthogonalize(ns, ema<"m">(orthogonalize(ns, grad), 0.9));
  auto store = two_blocks();
  for (auto& b : store.blocks())
    for (std::size_t i = 0; i < b.size; ++i)
      b.param[i] = 0.01 * static_cast<double>(i % 7), b.grad[i] = std::sin(static_cast<double>(i));
  steep::optimizer opt(rule, store);
  opt.step();
  const auto w2 = store.param("W2");
  const auto m2 = opt.state("W2", "m");
  const std::vector<double> p_before(w2.begin(), w2.end()), m_before(m2.begin(), m2.end());
  store.grad("W2")(3, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(opt.step(), steep::nonfinite_error);
  CHECK(std::equal(w2.begin(), w2.end(), p_before.begin()));
  CHECK(std::equal(m2.begin(), m2.end(), m_before.begin()));
  CHECK(opt.steps() == 1);
}
