// Shampoo as a composition (precond/shampoo.hpp, rules/shampoo.hpp): a matrix stage that keeps its
// factors as state, against float64 references of the published algorithm
// (scripts/reference-variants.py), and that state in describe(), state(), slots(), checkpoints and
// the guard.

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

TEST_CASE("Shampoo: L^(-1/4) G R^(-1/4) with summed factors, against Gupta et al.'s algorithm in float64") {
  for (int threads : { 1, 2, 8 })
    CHECK(variant_error(rules::shampoo(0.1), "shampoo", threads) < 1e-12);
  // The comparison can fail: another exponent, or another eps, is far off.
  CHECK(variant_error(rules::shampoo(0.1, { .left = -0.5 }), "shampoo") > 1e-3);
  CHECK(variant_error(rules::shampoo(0.1, { .eps = 1e-3 }), "shampoo") > 1e-6);
}

TEST_CASE("Shampoo with EMA factors, a momentum, and roots recomputed every 2 steps (stale between)") {
  const auto rule =
    -0.1 * precondition(precond::shampoo<"L", "R">{ { .beta2 = 0.99, .eps = 1e-3, .every = 2 } },
                        ema<"m">(grad, 0.9));
  for (int threads : { 1, 2 })
    CHECK(variant_error(rule, "shampoo_ema_every2", threads) < 1e-12);
  // Refreshing every step is another trajectory: the stale roots are used.
  const auto every1 =
    -0.1 * precondition(precond::shampoo<"L", "R">{ { .beta2 = 0.99, .eps = 1e-3 } }, ema<"m">(grad, 0.9));
  CHECK(variant_error(every1, "shampoo_ema_every2") > 1e-6);
}

TEST_CASE("One-sided Shampoo: the smaller side's factor only, exponent -1/2") {
  CHECK(variant_error(rules::shampoo_one_sided(0.1), "shampoo_one_sided") < 1e-12);
  steep::param_store<double> store({ { "wide", { 6, 10 } }, { "tall", { 12, 5 } } });
  steep::optimizer opt(rules::shampoo_one_sided(0.1), store);
  CHECK(opt.state("wide", "L").shape() == std::vector<std::size_t>{ 6, 6 });
  CHECK(opt.state("wide", "R").size() == 0);
  CHECK(opt.state("tall", "R").shape() == std::vector<std::size_t>{ 5, 5 });
  CHECK(opt.state("tall", "L").size() == 0);
}

TEST_CASE("A user's own variant in a few lines: L^(-1/2) G, no right factor") {
  auto own =
    -0.1 * precondition(precond::shampoo<"L", "R">{ { .eps = 1e-3, .left = -0.5, .right = 0 } }, grad);
  CHECK(variant_error(own, "shampoo_left_half") < 1e-12);
}

TEST_CASE("Grafting is a composition: Shampoo's direction at the norm of an RMSProp direction, per block") {
  // A reduction of a stateful stage's result (after the matrix phase) and an elementwise slot of its own.
  auto u = precondition(precond::shampoo<"L", "R">{ { .beta2 = 0.99, .eps = 1e-3 } }, grad);
  auto a = grad / (sqrt(ema<"v">(square(grad), 0.99)) + 1e-8);
  auto grafted = -0.1 * (u * (block_norm2(a) / block_norm2(u)));
  for (int threads : { 1, 2 })
    CHECK(variant_error(grafted, "shampoo_grafted", threads) < 1e-12);
  CHECK(variant_error(-0.1 * u, "shampoo_grafted") > 1e-3); // without the grafting, far off
}

TEST_CASE("Shampoo's factors are slots: describe(), slots(), state(), and the values they hold") {
  steep::param_store<double> store({ { "W", { 3, 4 } } });
  steep::optimizer opt(rules::shampoo(0.1, { .every = 3 }), store);
  const std::string d = opt.describe();
  CHECK_THAT(d, Catch::Contains("L:float64 (a matrix per block") && Catch::Contains("R_root:float64") &&
                  Catch::Contains("matrix-stage state: 50 values, 400 bytes")); // 9 + 16, twice
  const auto slots = opt.slots();
  REQUIRE(slots.size() == 4);
  CHECK(slots[0].name == "L");
  CHECK(slots[0].granularity == "matrix");
  CHECK(slots[3].name == "R_root");
  const auto gg = steep_test::step_with_sample_gradient(opt, store);
  const auto l = opt.state<double>("W", "L");
  REQUIRE(l.shape() == std::vector<std::size_t>{ 3, 3 });
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      CHECK(l(i, j) == Approx(gg[i * 3 + j]).margin(1e-14)); // L_1 = G G^T
  CHECK(opt.state<double>("W", "R").shape() == std::vector<std::size_t>{ 4, 4 });
}

TEST_CASE(
  "Shampoo under bad input: settings refused when built, a refused step leaves every factor as it was") {
  steep::param_store<double> store({ { "W", { 3, 4 } } });
  CHECK_THROWS_WITH(steep::optimizer(rules::shampoo(0.1, { .every = 0 }), store),
                    Catch::Contains("every must be >= 1"));
  CHECK_THROWS_WITH(steep::optimizer(rules::shampoo(0.1, { .beta2 = 1.5 }), store),
                    Catch::Contains("beta2 must be in (0, 1]"));
  steep::param_store<double> vec({ { "b", { 4 } } });
  CHECK_THROWS_WITH(steep::optimizer(rules::shampoo(0.1), vec), Catch::Contains("not a matrix"));

  steep::optimizer opt(rules::shampoo(0.1, { .every = 2 }), store);
  for (std::size_t i = 0; i < 12; ++i)
    store.block_at(0).grad[i] = 0.1 * static_cast<double>(i) - 0.5;
  opt.step();
  const auto before = steep_test::slot_values(opt);
  const std::vector<double> p_before(store.block_at(0).param, store.block_at(0).param + 12);
  store.block_at(0).grad[5] = std::nan("");
  CHECK_THROWS(opt.step()); // the default policy refuses a non-finite gradient
  // A factor that overflows (a gradient of 1e200: G G^T is +Inf) refuses the step by block.
  store.block_at(0).grad[5] = 1e200;
  CHECK_THROWS_WITH(opt.step(), Catch::Contains("W") && Catch::Contains("not finite"));
  CHECK(steep_test::slot_values(opt) == before);
  CHECK(std::vector<double>(store.block_at(0).param, store.block_at(0).param + 12) == p_before);
  CHECK(opt.steps() == 1);
}

TEST_CASE("Shampoo's checkpoint between refreshes resumes bitwise") {
  // Steps 1..4 refresh the roots at 1 and 4; the checkpoint's next step reads stale roots.
  const auto rule = rules::shampoo(0.05, { .beta2 = 0.9, .eps = 1e-8, .every = 3 });
  CHECK(steep_test::checkpoint_resumes_bitwise(rule, 4, 4, "shampoo-resume.ckpt"));
}

// ---- Shampoo written in the matrix grammar (precond/compose.hpp) ---------------------------------

namespace pc = steep::precond;

namespace {
// Steps two optimizers over stores a and b with the same made-up gradients, `steps` times.
template <class A, class B>
void step_both(A& oa, B& ob, steep::param_store<double>& a, steep::param_store<double>& b, int steps) {
  for (int t = 0; t < steps; ++t) {
    for (auto* s : { &a, &b })
      for (auto& blk : s->blocks())
        for (std::size_t i = 0; i < blk.size; ++i)
          blk.grad[i] = std::sin(0.7 * static_cast<double>(i) + t) + 0.1 * static_cast<double>(i % 3);
    oa.step(), ob.step();
  }
}
} // namespace

TEST_CASE("Shampoo from the matrix grammar: the references, and the same bits as precond::shampoo") {
  const auto L = pc::accumulate<"L">(pc::gram_rows(pc::x));
  const auto R = pc::accumulate<"R">(pc::gram_cols(pc::x));
  const auto value = pc::inverse_root(L, 4, 1e-12) * pc::x * pc::inverse_root(R, 4, 1e-12);
  const auto rule = -0.1 * pc::precondition(value, grad);
  for (int threads : { 1, 2, 8 })
    CHECK(variant_error(rule, "shampoo", threads) < 1e-12);
  // The packaged map and the composition take the same BLAS and LAPACK calls in the same order:
  // written with the same learning-rate term as rules::shampoo, the same bits, from a nonzero start.
  const auto same_form = -rules::hp::lr(0.1) * pc::precondition(value, grad);
  steep::param_store<double> a({ { "W1", { 6, 10 } }, { "W2", { 12, 5 } } }),
    b({ { "W1", { 6, 10 } }, { "W2", { 12, 5 } } });
  steep::optimizer composed(same_form, a);
  steep::optimizer packaged(rules::shampoo(0.1), b);
  for (auto* s : { &a, &b })
    for (auto& blk : s->blocks())
      for (std::size_t i = 0; i < blk.size; ++i)
        blk.param[i] = 0.05 * std::cos(static_cast<double>(i));
  step_both(composed, packaged, a, b, 5);
  for (std::size_t k = 0; k < 2; ++k)
    CHECK(std::equal(a.block_at(k).param, a.block_at(k).param + a.block_at(k).size, b.block_at(k).param));
  CHECK(variant_error(same_form, "shampoo") == variant_error(rules::shampoo(0.1), "shampoo"));
}

TEST_CASE("Shampoo without accumulation is the polar factor: the reference, and dual<spectral>'s steps") {
  // (M M^T)^(+1/4) M (M^T M)^(+1/4) with M an EMA momentum: against NumPy (W1's R is 10 x 10 of
  // rank 6, so the pseudo-inverse's null space is in play), and against Muon's exact map on the
  // same momentum: the same step, by another road (eigh of the Gram matrices against gesdd).
  for (int threads : { 1, 2, 8 })
    CHECK(variant_error(rules::shampoo_unaccumulated(0.1), "shampoo_unaccumulated", threads) < 1e-12);
  const auto muon = -rules::hp::lr(0.1) * dual<steep::norms::spectral>(ema<"momentum_buffer">(grad, 0.9));
  steep::param_store<double> a({ { "W1", { 6, 10 } }, { "W2", { 12, 5 } } }),
    b({ { "W1", { 6, 10 } }, { "W2", { 12, 5 } } });
  steep::optimizer shampoo(rules::shampoo_unaccumulated(0.1), a);
  steep::optimizer polar(muon, b);
  step_both(shampoo, polar, a, b, 6);
  for (std::size_t k = 0; k < 2; ++k) {
    double d = 0, n = 0;
    for (std::size_t i = 0; i < a.block_at(k).size; ++i)
      d += std::pow(a.block_at(k).param[i] - b.block_at(k).param[i], 2),
        n += std::pow(b.block_at(k).param[i], 2);
    CHECK(std::sqrt(d / n) < 1e-12);
  }
  // Its only state is the momentum: the Gram matrices are the step's own.
  CHECK(shampoo.describe().find("momentum_buffer") != std::string::npos);
  CHECK(shampoo.slots().size() == 1);
  // With eps, the step is another (the comparison can fail).
  const auto with_eps =
    -rules::hp::lr(0.1) * pc::precondition(pc::inverse_root(pc::gram_rows(pc::x), 4, 1e-3) * pc::x *
                                             pc::inverse_root(pc::gram_cols(pc::x), 4, 1e-3),
                                           ema<"momentum_buffer">(grad, 0.9));
  CHECK(variant_error(with_eps, "shampoo_unaccumulated") > 1e-6);
}

TEST_CASE("The matrix grammar: EMA factors of a momentum, roots every 2 steps (stale between)") {
  const auto L = pc::ema<"L">(pc::gram_rows(pc::x), 0.99);
  const auto R = pc::ema<"R">(pc::gram_cols(pc::x), 0.99);
  const auto rule = -0.1 * pc::precondition(pc::every<"L_root">(pc::inverse_root(L, 4, 1e-3), 2) * pc::x *
                                              pc::every<"R_root">(pc::inverse_root(R, 4, 1e-3), 2),
                                            ema<"m">(grad, 0.9));
  for (int threads : { 1, 2 })
    CHECK(variant_error(rule, "shampoo_ema_every2", threads) < 1e-12);
  CHECK(steep_test::checkpoint_resumes_bitwise(rule, 3, 3, "compose-resume.ckpt")); // between refreshes
}

TEST_CASE("Shampoo with eps relative to each factor's largest eigenvalue (Anil et al. 2020)") {
  // Summed factors of a momentum, roots at steps 1, 3, 5, eps 1e-3 times the factor's top
  // eigenvalue: the packaged map's setting and the grammar's relative_eps, against NumPy.
  const auto packaged =
    -0.1 * precondition(precond::shampoo<"L", "R">{ { .eps = 1e-3, .relative_eps = true, .every = 2 } },
                        ema<"m">(grad, 0.9));
  const auto L = pc::accumulate<"L">(pc::gram_rows(pc::x));
  const auto R = pc::accumulate<"R">(pc::gram_cols(pc::x));
  const auto grammar =
    -0.1 * pc::precondition(pc::every<"L_root">(pc::inverse_root(L, 4, pc::relative_eps(1e-3)), 2) * pc::x *
                              pc::every<"R_root">(pc::inverse_root(R, 4, pc::relative_eps(1e-3)), 2),
                            ema<"m">(grad, 0.9));
  for (int threads : { 1, 2, 8 }) {
    CHECK(variant_error(packaged, "shampoo_relative_eps", threads) < 1e-12);
    CHECK(variant_error(grammar, "shampoo_relative_eps", threads) < 1e-12);
  }
  // An absolute eps of the same value is another trajectory (the comparison can fail).
  const auto absolute =
    -0.1 * precondition(precond::shampoo<"L", "R">{ { .eps = 1e-3, .every = 2 } }, ema<"m">(grad, 0.9));
  CHECK(variant_error(absolute, "shampoo_relative_eps") > 1e-6);
  CHECK(steep_test::checkpoint_resumes_bitwise(grammar, 3, 3, "relative-eps-resume.ckpt"));
}

TEST_CASE("The matrix grammar over two operands: factors of the gradient, applied to a momentum") {
  // Distributed Shampoo (Shi et al. 2023) keeps its factors from the gradient and preconditions
  // the momentum: pc::arg<1> is precondition's second operand, the gradient here.
  const auto L = pc::ema<"L">(pc::gram_rows(pc::arg<1>), 0.99);
  const auto R = pc::ema<"R">(pc::gram_cols(pc::arg<1>), 0.99);
  const auto value = pc::every<"L_root">(pc::inverse_root(L, 4, 1e-3), 2) * pc::x *
                     pc::every<"R_root">(pc::inverse_root(R, 4, 1e-3), 2);
  const auto rule = -0.1 * pc::precondition(value, ema<"m">(grad, 0.9), grad);
  for (int threads : { 1, 2, 8 })
    CHECK(variant_error(rule, "shampoo_stats_from_grad", threads) < 1e-12);
  // Factors of the momentum (the one-operand form) are another trajectory.
  CHECK(variant_error(rule, "shampoo_ema_every2") > 1e-6);
  CHECK(steep_test::checkpoint_resumes_bitwise(rule, 3, 3, "compose-two-resume.ckpt"));
  // Each operand has a scratch arena of its own: 2 x 8 bytes per parameter in float64.
  steep::param_store<double> store({ { "W", { 3, 4 } } });
  steep::optimizer opt(rule, store);
  CHECK_THAT(opt.describe(), Catch::Contains("scratch: 16") && Catch::Contains("m:float64") &&
                               Catch::Contains("R_root:float64 (a matrix per block"));
  const auto gg = steep_test::step_with_sample_gradient(opt, store);
  const auto l = opt.state<double>("W", "L");
  for (std::size_t i = 0; i < 9; ++i)
    CHECK(l[i] == Approx(0.01 * gg[i]).margin(1e-14)); // L_1 = (1 - 0.99) G G^T, of the gradient
}

TEST_CASE("Factors per slice: a stacked block's matrices each keep their own, as separate blocks would") {
  // Two 3 x 4 matrices stacked in one (2, 3, 4) block (experts, heads), against the same two as
  // blocks of their own: the same bits, for the grammar's composition and for precond::shampoo.
  // Each slice is a task of the matrix phase of its own: at 1, 2 and 8 threads, the same bits.
  const auto L = pc::ema<"L">(pc::gram_rows(pc::x), 0.9);
  const auto R = pc::ema<"R">(pc::gram_cols(pc::x), 0.9);
  const auto value = pc::inverse_root(L, 4, 1e-6) * pc::x * pc::inverse_root(R, 4, 1e-6);
  const precond::shampoo<"L", "R"> packaged{ { .beta2 = 0.9, .eps = 1e-6, .every = 2 } };
  int threads = 2;
  auto same_bits = [&threads](const auto& per_slice, const auto& per_block) {
    steep::param_store<double> stacked({ { "E", { 2, 3, 4 } } }),
      apart({ { "A", { 3, 4 } }, { "B", { 3, 4 } } });
    steep::optimizer one(per_slice, stacked, { .threads = threads });
    steep::optimizer two(per_block, apart, { .threads = 1 });
    for (int t = 0; t < 5; ++t) {
      for (std::size_t i = 0; i < 24; ++i)
        stacked.block_at(0).grad[i] = apart.block_at(i / 12).grad[i % 12] =
          std::sin(0.7 * static_cast<double>(i) + t) + 0.1 * static_cast<double>(i % 3);
      one.step(), two.step();
    }
    bool same = true;
    for (std::size_t i = 0; i < 24; ++i)
      same = same && stacked.block_at(0).param[i] == apart.block_at(i / 12).param[i % 12];
    const auto l = one.template state<double>("E", "L");
    same = same && l.shape() == std::vector<std::size_t>{ 2, 3, 3 };
    for (std::size_t i = 0; i < 18; ++i)
      same = same && l[i] == two.template state<double>(i < 9 ? "A" : "B", "L")[i % 9];
    return same;
  };
  for (int n : { 1, 2, 8 }) {
    threads = n;
    CAPTURE(threads);
    CHECK(same_bits(-0.1 * pc::precondition(pc::slices(value, 3, 4), grad),
                    -0.1 * pc::precondition(value, grad)));
    CHECK(same_bits(-0.1 * precondition(slices(packaged, 3, 4), grad), -0.1 * precondition(packaged, grad)));
  }
  // One factor for the whole (2, 12) block instead is another update.
  CHECK_FALSE(same_bits(-0.1 * pc::precondition(value, grad), -0.1 * pc::precondition(value, grad)));
  CHECK(steep_test::checkpoint_resumes_bitwise(-0.1 * precondition(slices(packaged, 3, 2), grad), 3, 3,
                                               "shampoo-slices-resume.ckpt"));
  steep::param_store<double> odd({ { "W", { 5, 4 } } });
  CHECK_THROWS_WITH(steep::optimizer(-0.1 * pc::precondition(pc::slices(value, 3, 4), grad), odd),
                    Catch::Contains("'W'") && Catch::Contains("do not split into 3 x 4 slices"));
  // One slice's factor overflowing refuses the whole block's step, the other slice's state included.
  steep::param_store<double> experts({ { "E", { 4, 3, 4 } } });
  steep::optimizer opt(-0.1 * precondition(slices(packaged, 3, 4), grad), experts, { .threads = 2 });
  for (std::size_t i = 0; i < 48; ++i)
    experts.block_at(0).grad[i] = std::sin(0.3 * static_cast<double>(i));
  opt.step();
  const auto before = steep_test::slot_values(opt);
  const std::vector<double> p_before(experts.block_at(0).param, experts.block_at(0).param + 48);
  experts.block_at(0).grad[40] = 1e200; // slice 3's G G^T is +Inf
  CHECK_THROWS_WITH(opt.step(), Catch::Contains("E") && Catch::Contains("not finite"));
  CHECK(steep_test::slot_values(opt) == before);
  CHECK(std::vector<double>(experts.block_at(0).param, experts.block_at(0).param + 48) == p_before);
}

TEST_CASE("A user's own variant from the matrix grammar in one line: L^(-1/2) G") {
  auto own = -0.1 * pc::precondition(
                      pc::matrix_power(pc::accumulate<"L">(pc::gram_rows(pc::x)), -0.5, 1e-3) * pc::x, grad);
  CHECK(variant_error(own, "shampoo_left_half") < 1e-12);
  CHECK(variant_error(own, "shampoo") > 1e-3); // another exponent, another trajectory
}

TEST_CASE("The matrix grammar's state: slots, describe(), state(), the guard, and refusals by block") {
  const auto L = pc::ema<"L">(pc::gram_rows(pc::x), 0.9);
  const auto rule =
    -0.1 * pc::precondition(pc::every<"L_root">(pc::inverse_root(L, 2, 1e-6), 3) * pc::x, grad);
  steep::param_store<double> store({ { "W", { 3, 4 } } });
  steep::optimizer opt(rule, store);
  const std::string d = opt.describe();
  CHECK_THAT(d, Catch::Contains("L:float64 (a matrix per block") && Catch::Contains("L_root:float64") &&
                  Catch::Contains("matrix-stage state: 18 values, 144 bytes")); // 9 + 9
  REQUIRE(opt.slots().size() == 2);
  CHECK(opt.slots()[0].granularity == "matrix");
  const auto gg = steep_test::step_with_sample_gradient(opt, store);
  const auto l = opt.state<double>("W", "L");
  REQUIRE(l.shape() == std::vector<std::size_t>{ 3, 3 });
  for (std::size_t i = 0; i < 9; ++i)
    CHECK(l[i] == Approx(0.1 * gg[i]).margin(1e-14)); // L_1 = (1 - 0.9) G G^T
  const auto before = steep_test::slot_values(opt);
  store.block_at(0).grad[5] = 1e200; // G G^T overflows: refused by block, nothing written
  CHECK_THROWS_WITH(opt.step(), Catch::Contains("W") && Catch::Contains("not finite"));
  CHECK(steep_test::slot_values(opt) == before);
  CHECK(opt.steps() == 1);

  CHECK_THROWS_WITH(steep::optimizer(-0.1 * pc::precondition(pc::gram_rows(pc::x), grad), store),
                    Catch::Contains("'W'") &&
                      Catch::Contains("the composition's value is 3 x 3, not the block's 3 x 4"));
  CHECK_THROWS_WITH(steep::optimizer(-0.1 * pc::precondition(pc::x * pc::x, grad), store),
                    Catch::Contains("a product of a 3 x 4 and a 3 x 4 matrix"));
  CHECK_THROWS_WITH(
    steep::optimizer(-0.1 * pc::precondition(pc::matrix_power(pc::x, -0.5, 0.0), grad), store),
    Catch::Contains("not square"));
  CHECK_THROWS_WITH(
    steep::optimizer(-0.1 * pc::precondition(pc::ema<"L">(pc::gram_rows(pc::x), 1.5) * pc::x, grad), store),
    Catch::Contains("beta must be in [0, 1)"));
}

TEST_CASE("Shampoo's factors stored as bfloat16, per block and per slice: storage only") {
  // L and R in bfloat16, their roots in float32: bit for bit a float32 run whose factors are
  // rounded after each step (roots recomputed every 2 steps, so a stale root is read between).
  const precond::shampoo<"L", "R"> packaged{ { .beta2 = 0.99, .eps = 1e-3, .every = 2 } };
  const std::vector<steep::block_spec<float>> specs = { { "wide", { 6, 10 } }, { "tall", { 12, 5 } } };
  CHECK(
    steep_test::narrow_state_is_rounded_state(-0.05 * precondition(bfloat16_state<"L", "R">(packaged), grad),
                                              -0.05 * precondition(packaged, grad), { "L", "R" }, specs, 5));
  // A (3, 4, 5) block of three slices, each a task of its own writing its part of the slot.
  const std::vector<steep::block_spec<float>> stacked = { { "E", { 3, 4, 5 } } };
  const auto wide = -0.05 * precondition(slices(packaged, 4, 5), grad);
  CHECK(steep_test::narrow_state_is_rounded_state(
    -0.05 * precondition(slices(bfloat16_state(packaged), 4, 5), grad), wide,
    { "L", "R", "L_root", "R_root" }, stacked, 5));
  CHECK(steep_test::narrow_state_is_rounded_state(
    -0.05 * precondition(bfloat16_state<"L", "R">(slices(packaged, 4, 5)), grad), wide, { "L", "R" }, stacked,
    5));
  steep::param_store<float> store(stacked);
  CHECK_THAT(steep::optimizer(-0.05 * precondition(bfloat16_state<"L">(packaged), grad), store).describe(),
             Catch::Contains("L:bfloat16") && Catch::Contains("R:float32") &&
               Catch::Contains("L_root:float32"));
}
