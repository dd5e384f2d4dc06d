// SOAP as a composition (precond/soap.hpp, rules/soap.hpp): a matrix stage that keeps Shampoo's
// factors, their eigenbases and Adam's moments as state, against float64 references of the
// authors' code (scripts/reference-variants.py), and that state in describe(), state(), slots()
// and checkpoints.

#include "matrix_state.hpp"
#include "variants.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <steep/steep.hpp>
#include <string>
#include <vector>

using namespace steep::expr;
namespace rules = steep::rules;
namespace precond = steep::precond;
using steep_test::variant_error;

namespace {
const std::vector<steep::block_role> two = { steep::block_role::hidden_matrix,
                                             steep::block_role::hidden_matrix };
double square_error(const auto& rule, const std::string& name_of_case, int threads = 1) {
  return variant_error(rule, name_of_case, threads, two, "S"); // S1 6 x 6, S2 5 x 5
}
void report(const std::string& name_of_case, double error) {
  std::printf("soap reference %-12s max relative error %.3g\n", name_of_case.c_str(), error);
}
} // namespace

TEST_CASE("SOAP with the authors' defaults, both factors, against their code in float64") {
  for (int threads : { 1, 2 }) {
    const double e = square_error(rules::soap(0.1), "soap", threads);
    report("soap", e);
    CHECK(e < 1e-12);
  }
  // The comparison can fail: Adam (the identity basis), Shampoo, or a refresh every 2 steps is far off.
  CHECK(square_error(rules::adam(0.1, 0.95, 0.95), "soap") > 1e-3);
  CHECK(square_error(rules::shampoo(0.1), "soap") > 1e-3);
  CHECK(square_error(rules::soap(0.1, { .precondition_frequency = 2 }), "soap") > 1e-6);
}

TEST_CASE("SOAP refreshing its bases every 2 steps: re-sorted moments, one power iteration and a QR") {
  const precond::soap_settings s{
    .beta1 = 0.9, .beta2 = 0.99, .shampoo_beta = 0.9, .precondition_frequency = 2
  };
  for (int threads : { 1, 2 }) {
    const double e = square_error(rules::soap(0.1, s), "soap_every2", threads);
    report("soap_every2", e);
    CHECK(e < 1e-12);
  }
  // exp_avg rotated out of the bases and back every step, as the code does: the same to roundoff
  // (between refreshes the round trip is exp_avg itself up to Q^T Q = I), not the same bits.
  auto code_order = s;
  code_order.round_trip_every_step = true;
  CHECK(square_error(rules::soap(0.1, code_order), "soap_every2") < 1e-12);
  CHECK(square_error(rules::soap(0.1, { .round_trip_every_step = true }), "soap") < 1e-12);
  {
    steep::param_store<double> a({ { "S", { 6, 6 } } }), b({ { "S", { 6, 6 } } });
    steep::optimizer skip(rules::soap(0.1, s), a), trip(rules::soap(0.1, code_order), b);
    bool all_same = true;
    for (int t = 0; t < 5; ++t) {
      for (std::size_t i = 0; i < 36; ++i)
        a.block_at(0).grad[i] = b.block_at(0).grad[i] = std::sin(0.3 * static_cast<double>(i * (t + 2)));
      skip.step(), trip.step();
      for (std::size_t i = 0; i < 36; ++i) {
        CHECK(a.block_at(0).param[i] == Approx(b.block_at(0).param[i]).epsilon(1e-12).margin(1e-14));
        all_same = all_same && a.block_at(0).param[i] == b.block_at(0).param[i];
      }
    }
    CHECK_FALSE(all_same); // the round trip was skipped at step 4 (k = 3), between refreshes
  }
  // Without the refreshes (the bases of step 1 throughout) it is another trajectory.
  auto stale = s;
  stale.precondition_frequency = 10;
  CHECK(square_error(rules::soap(0.1, stale), "soap_every2") > 1e-6);
  // The same rule written as the composition it is.
  const auto own = -0.1 * precondition(precond::soap<"L", "R">{ s }, grad);
  CHECK(square_error(own, "soap_every2") < 1e-12);
}

TEST_CASE("SOAP capped: a side longer than max_precond_dim keeps no factor and is not rotated") {
  const precond::soap_settings s{ .precondition_frequency = 2, .max_precond_dim = 6 };
  for (int threads : { 1, 2 }) {
    const double e = variant_error(rules::soap(0.1, s), "soap_capped", threads);
    report("soap_capped", e);
    CHECK(e < 1e-12);
  }
  CHECK(variant_error(rules::soap(0.1, { .precondition_frequency = 2 }), "soap_capped") > 1e-6);
  steep::param_store<double> store({ { "wide", { 6, 10 } }, { "tall", { 12, 5 } } });
  steep::optimizer opt(rules::soap(0.1, s), store);
  CHECK(opt.state("wide", "L").shape() == std::vector<std::size_t>{ 6, 6 });
  CHECK(opt.state("wide", "Q_R").size() == 0);
  CHECK(opt.state("tall", "Q_R").shape() == std::vector<std::size_t>{ 5, 5 });
  CHECK(opt.state("tall", "L").size() == 0);
  CHECK(opt.state("tall", "exp_avg_sq").shape() == std::vector<std::size_t>{ 12, 5 });
}

TEST_CASE("SOAP's state is slots: describe(), slots(), state(), and what step 1 leaves in them") {
  steep::param_store<double> store({ { "W", { 3, 4 } } });
  steep::optimizer opt(rules::soap(0.1), store);
  const std::string d = opt.describe();
  CHECK_THAT(d, Catch::Contains("Q_L:float64 (a matrix per block") && Catch::Contains("exp_avg_sq:float64") &&
                  Catch::Contains("matrix-stage state: 74 values, 592 bytes")); // 9 + 16, twice, + 12 + 12
  const auto slots = opt.slots();
  REQUIRE(slots.size() == 6);
  const std::vector<std::string> names = { "L", "R", "Q_L", "Q_R", "exp_avg", "exp_avg_sq" };
  for (std::size_t j = 0; j < 6; ++j) {
    CHECK(slots[j].name == names[j]);
    CHECK(slots[j].granularity == "matrix");
  }
  std::vector<double> g = { 1, 2, 0, -1, 0.5, 0, 3, 1, -2, 1, 1, 0 };
  std::copy(g.begin(), g.end(), store.block_at(0).grad);
  const std::vector<double> p0(store.block_at(0).param, store.block_at(0).param + 12);
  opt.step();
  // The first step only sets the preconditioner up: the parameters do not move.
  CHECK(std::vector<double>(store.block_at(0).param, store.block_at(0).param + 12) == p0);
  const auto l = opt.state<double>("W", "L");
  const auto q = opt.state<double>("W", "Q_L");
  REQUIRE(l.shape() == std::vector<std::size_t>{ 3, 3 });
  REQUIRE(q.shape() == std::vector<std::size_t>{ 3, 3 });
  const auto gg = steep_test::gram(g, 3, 4);
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      CHECK(l(i, j) == Approx(0.05 * gg[i * 3 + j]).margin(1e-14)); // L_1 = (1 - shampoo_beta) G G^T
  // Q_L diagonalizes L with the eigenvalues descending.
  double last = INFINITY;
  for (std::size_t a = 0; a < 3; ++a)
    for (std::size_t b = 0; b < 3; ++b) {
      double qlq = 0;
      for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 3; ++j)
          qlq += q(i, a) * l(i, j) * q(j, b);
      if (a != b)
        CHECK(qlq == Approx(0).margin(1e-13));
      else {
        CHECK(qlq <= last);
        last = qlq;
      }
    }
  CHECK(opt.state<double>("W", "Q_R").shape() == std::vector<std::size_t>{ 4, 4 });
  CHECK(opt.state<double>("W", "exp_avg").shape() == std::vector<std::size_t>{ 3, 4 });
}

TEST_CASE("SOAP's settings are refused when built") {
  steep::param_store<double> store({ { "W", { 3, 4 } } });
  CHECK_THROWS_WITH(steep::optimizer(rules::soap(0.1, { .precondition_frequency = 0 }), store),
                    Catch::Contains("precondition_frequency must be >= 1"));
  CHECK_THROWS_WITH(steep::optimizer(rules::soap(0.1, { .beta1 = 1 }), store),
                    Catch::Contains("betas must be in [0, 1)"));
  CHECK_THROWS_WITH(steep::optimizer(rules::soap(0.1, { .shampoo_beta = 1 }), store),
                    Catch::Contains("shampoo_beta must be < 1"));
  steep::param_store<double> vec({ { "b", { 4 } } });
  CHECK_THROWS_WITH(steep::optimizer(rules::soap(0.1), vec), Catch::Contains("not a matrix"));
}

TEST_CASE("SOAP's checkpoint between refreshes resumes bitwise") {
  // Steps 1..5: bases from step 1, refreshed at 4; the resumed steps 6..9 cross the refresh at 7.
  const auto rule = rules::soap(0.05, { .beta1 = 0.9, .beta2 = 0.99, .precondition_frequency = 3 });
  CHECK(steep_test::checkpoint_resumes_bitwise(rule, 5, 4, "soap-resume.ckpt"));
}

TEST_CASE("SOAP under bad input: a refused step, a refresh's included, leaves every slot as it was") {
  steep::param_store<double> store({ { "W", { 3, 4 } } });
  // Every step from 2 on refreshes the bases: a factor that overflows must reach no LAPACK call.
  steep::optimizer opt(rules::soap(0.1, { .precondition_frequency = 1 }), store);
  for (std::size_t i = 0; i < 12; ++i)
    store.block_at(0).grad[i] = 0.1 * static_cast<double>(i) - 0.5;
  opt.step();
  const auto before = steep_test::slot_values(opt);
  const std::vector<double> p_before(store.block_at(0).param, store.block_at(0).param + 12);
  store.block_at(0).grad[5] = 1e200; // G G^T is +Inf
  CHECK_THROWS_WITH(opt.step(), Catch::Contains("W") && Catch::Contains("not finite"));
  CHECK(steep_test::slot_values(opt) == before);
  CHECK(std::vector<double>(store.block_at(0).param, store.block_at(0).param + 12) == p_before);
  CHECK(opt.steps() == 1);
  store.block_at(0).grad[5] = 0.1;
  opt.step(); // and the next step goes on from the state step 1 left
  CHECK(opt.steps() == 2);
}
