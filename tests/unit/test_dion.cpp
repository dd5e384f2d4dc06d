// Dion as a composition (precond/dion.hpp, rules/dion.hpp): a matrix stage that keeps its momentum
// and its basis Q as state, against float64 references of the authors' update
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

TEST_CASE("Dion at full rank against the authors' update in float64") {
  for (int threads : { 1, 2, 8 })
    CHECK(variant_error(rules::dion(0.1), "dion", threads) < 1e-12);
  // The comparison can fail: a lower rank, another first Q, another mu, or Muon is far off.
  CHECK(variant_error(rules::dion(0.1, { .rank_fraction = 0.5 }), "dion") > 1e-3);
  CHECK(variant_error(rules::dion(0.1, { .q_init = precond::dion_q_init::identity }), "dion") > 1e-6);
  CHECK(variant_error(rules::dion(0.1, { .mu = 0.9 }), "dion") > 1e-3);
  CHECK(variant_error(rules::muon(0.1), "dion") > 1e-3);
}

TEST_CASE("Dion at half rank with weight decay, as a rule and as a composition by hand") {
  for (int threads : { 1, 2 })
    CHECK(variant_error(rules::dion(0.1, { .rank_fraction = 0.5 }, 0.1), "dion_low_rank", threads) < 1e-12);
  const auto own = -0.1 * 0.1 * param - 0.1 * precondition(precond::dion<>{ { .rank = 3 } }, grad);
  CHECK(variant_error(own, "dion_low_rank") < 1e-12); // r = 3 for both blocks
  CHECK(variant_error(rules::dion(0.1, { .rank_fraction = 0.5, .seed = 1 }, 0.1), "dion_low_rank") > 1e-6);
  CHECK(variant_error(rules::dion(0.1, { .rank_fraction = 0.5, .power_iters = 2 }, 0.1), "dion_low_rank") >
        1e-6);
}

TEST_CASE("Dion's momentum and Q are slots: describe(), slots(), state(), and the values they hold") {
  steep::param_store<double> store({ { "W", { 3, 4 } } });
  steep::optimizer opt(rules::dion(0.1), store);
  const std::string d = opt.describe();
  CHECK_THAT(d, Catch::Contains("momentum:float64 (a matrix per block") && Catch::Contains("Q:float64") &&
                  Catch::Contains("matrix-stage state: 21 values, 168 bytes")); // 3 x 4 + 3 x 3
  const auto slots = opt.slots();
  REQUIRE(slots.size() == 2);
  CHECK(slots[0].name == "momentum");
  CHECK(slots[0].granularity == "matrix");
  CHECK(slots[1].name == "Q");
  std::vector<double> g = { 1, 2, 0, -1, 0.5, 0, 3, 1, -2, 1, 1, 0 };
  std::copy(g.begin(), g.end(), store.block_at(0).grad);
  opt.step();
  // At full rank P P^T B = B, so the error feedback leaves M_1 = G - (1 - mu) G = mu G.
  const auto m = opt.state<double>("W", "momentum");
  REQUIRE(m.shape() == std::vector<std::size_t>{ 3, 4 });
  for (std::size_t i = 0; i < 12; ++i)
    CHECK(m(i / 4, i % 4) == Approx(0.95 * g[i]).margin(1e-14));
  // Q (min(rows, cols) x r) has columns of norm 1 (less eps).
  const auto q = opt.state<double>("W", "Q");
  REQUIRE(q.shape() == std::vector<std::size_t>{ 3, 3 });
  for (std::size_t j = 0; j < 3; ++j)
    CHECK(q(0, j) * q(0, j) + q(1, j) * q(1, j) + q(2, j) * q(2, j) == Approx(1).margin(1e-7));

  steep::param_store<double> two({ { "wide", { 6, 10 } }, { "tall", { 12, 5 } } });
  steep::optimizer low(rules::dion(0.1, { .rank_fraction = 0.5 }), two);
  CHECK(low.state("wide", "momentum").shape() == std::vector<std::size_t>{ 6, 10 });
  CHECK(low.state("wide", "Q").shape() == std::vector<std::size_t>{ 6, 3 });
  CHECK(low.state("tall", "Q").shape() == std::vector<std::size_t>{ 5, 3 });
  steep::optimizer multiple(rules::dion(0.1, { .rank_fraction = 0.25, .rank_multiple_of = 4 }), two);
  CHECK(multiple.state("wide", "Q").shape() == std::vector<std::size_t>{ 6, 4 }); // ceil(1.5 / 4) 4
  CHECK(multiple.state("tall", "Q").shape() == std::vector<std::size_t>{ 5, 4 });
}

TEST_CASE("Dion under bad input: settings refused, a zero first gradient keeps Q, a refused step keeps all") {
  steep::param_store<double> store({ { "W", { 3, 4 } } });
  CHECK_THROWS_WITH(steep::optimizer(rules::dion(0.1, { .rank_fraction = 0 }), store),
                    Catch::Contains("rank_fraction must be in (0, 1]"));
  CHECK_THROWS_WITH(steep::optimizer(rules::dion(0.1, { .power_iters = 0 }), store),
                    Catch::Contains("power_iters must be >= 1"));
  CHECK_THROWS_WITH(steep::optimizer(rules::dion(0.1, { .mu = -1 }), store), Catch::Contains("mu must be"));
  steep::param_store<double> vec({ { "b", { 4 } } });
  CHECK_THROWS_WITH(steep::optimizer(rules::dion(0.1), vec), Catch::Contains("not a matrix"));

  // A zero gradient on the first step: M = 0, P = 0 (no update), and Q is Q_0 normalized, not 0
  // (QR of 0 would make R = B^T P = 0: the authors' fix_all_zero_or_nan).
  steep::optimizer opt(rules::dion(0.1, { .rank_fraction = 0.5 }), store);
  const std::vector<double> p0(store.block_at(0).param, store.block_at(0).param + 12);
  opt.step();
  CHECK(std::vector<double>(store.block_at(0).param, store.block_at(0).param + 12) == p0);
  const auto q = opt.state<double>("W", "Q");
  REQUIRE(q.shape() == std::vector<std::size_t>{ 3, 2 });
  for (std::size_t j = 0; j < 2; ++j)
    CHECK(q(0, j) * q(0, j) + q(1, j) * q(1, j) + q(2, j) * q(2, j) == Approx(1).margin(1e-7));

  for (std::size_t i = 0; i < 12; ++i)
    store.block_at(0).grad[i] = 0.1 * static_cast<double>(i) - 0.5;
  opt.step();
  CHECK(store.block_at(0).param[0] != p0[0]);
  store.block_at(0).grad[5] = std::nan("");
  CHECK_THROWS(opt.step()); // the default policy refuses a non-finite gradient
  CHECK(opt.steps() == 2);
  // A momentum that overflows (1e308, then 1.7e308 more) refuses the step by block, leaving the
  // parameters and every slot bitwise as they were.
  store.block_at(0).grad[5] = 1e308;
  opt.step();
  const auto before = steep_test::slot_values(opt);
  const std::vector<double> p_before(store.block_at(0).param, store.block_at(0).param + 12);
  store.block_at(0).grad[5] = 1.7e308;
  CHECK_THROWS_WITH(opt.step(), Catch::Contains("block 'W'") && Catch::Contains("non-finite"));
  CHECK(steep_test::slot_values(opt) == before);
  CHECK(std::vector<double>(store.block_at(0).param, store.block_at(0).param + 12) == p_before);
  CHECK(opt.steps() == 3);
}

TEST_CASE("Dion's checkpoint resumes bitwise") {
  // Q_0 is built at step 1 only: a run resumed after step 1 or 4 reads Q from the file.
  const auto rule = rules::dion(0.05, { .rank_fraction = 0.5, .mu = 0.9 }, 0.01);
  CHECK(steep_test::checkpoint_resumes_bitwise(rule, 1, 4, "dion-resume.ckpt"));
  CHECK(steep_test::checkpoint_resumes_bitwise(rule, 4, 4, "dion-resume.ckpt"));
}

TEST_CASE("Dion with bfloat16 momentum and Q against the authors' update with that storage in float64") {
  const auto rule = rules::dion_bf16(0.1, { .rank_fraction = 0.5 }, 0.1);
  for (int threads : { 1, 2, 8 })
    CHECK(variant_error(rule, "dion_bf16", threads) < 1e-12);
  // The storage is visible: the same update with float64 state is off by the rounding.
  CHECK(variant_error(rules::dion(0.1, { .rank_fraction = 0.5 }, 0.1), "dion_bf16") > 1e-5);
  CHECK(variant_error(rule, "dion_low_rank") > 1e-5);
  // One slot narrowed is neither.
  const auto q_only =
    -0.1 * 0.1 * param - 0.1 * precondition(bfloat16_state<"Q">(precond::dion<>{ { .rank = 3 } }), grad);
  CHECK(variant_error(q_only, "dion_bf16") > 1e-6);
  CHECK(variant_error(q_only, "dion_low_rank") > 1e-6);
}

TEST_CASE("bfloat16 matrix-stage state: 2 bytes a value in describe(), slots(), state(), and exact to a "
          "float32 run whose state is rounded after each step") {
  using steep::bfloat16;
  const std::vector<steep::block_spec<float>> specs = { { "wide", { 6, 10 } }, { "tall", { 12, 5 } } };
  steep::param_store<float> store(specs);
  steep::optimizer narrow(rules::dion_bf16(0.05, { .rank_fraction = 0.5 }), store);
  // wide: M 6 x 10, Q 6 x 3; tall: M 12 x 5, Q 5 x 3: 153 values, 2 bytes each (float32: 4)
  CHECK_THAT(narrow.describe(), Catch::Contains("momentum:bfloat16 (a matrix per block") &&
                                  Catch::Contains("Q:bfloat16") &&
                                  Catch::Contains("matrix-stage state: 153 values, 306 bytes"));
  CHECK_THAT(steep::optimizer(rules::dion(0.05, { .rank_fraction = 0.5 }), store).describe(),
             Catch::Contains("matrix-stage state: 153 values, 612 bytes"));
  REQUIRE(narrow.slots().size() == 2);
  CHECK(narrow.slots()[0].dtype == "bfloat16");
  CHECK(narrow.slots()[0].element_size == 2);
  std::size_t bytes = 0;
  narrow.visit_slots([&](const steep::engine::slot_bytes& s) {
    CHECK(s.dtype == "BF16");
    bytes += s.bytes.size();
  });
  CHECK(bytes == 306);
  CHECK(narrow.state<bfloat16>("tall", "Q").shape() == std::vector<std::size_t>{ 5, 3 });
  CHECK_THROWS_WITH(narrow.state<float>("tall", "Q"), Catch::Contains("tall"));

  CHECK(steep_test::narrow_state_is_rounded_state(rules::dion_bf16(0.05, { .rank_fraction = 0.5 }, 0.01),
                                                  rules::dion(0.05, { .rank_fraction = 0.5 }, 0.01),
                                                  { "momentum", "Q" }, specs, 6));
  // Q alone; and the check can fail: rounding only M is not what storing M and Q in bfloat16 does.
  const auto q_only = -0.05 * precondition(bfloat16_state<"Q">(precond::dion<>{}), grad);
  CHECK(steep_test::narrow_state_is_rounded_state(q_only, -0.05 * precondition(precond::dion<>{}, grad),
                                                  { "Q" }, specs, 6));
  CHECK_FALSE(
    steep_test::narrow_state_is_rounded_state(rules::dion_bf16(0.05), rules::dion(0.05), { "Q" }, specs, 3));
}

TEST_CASE("bfloat16 matrix-stage state under bad input and in checkpoints") {
  steep::param_store<double> store({ { "W", { 3, 4 } } });
  CHECK_THROWS_WITH(
    steep::optimizer(-0.1 * precondition(bfloat16_state<"q">(precond::dion<>{}), grad), store),
    Catch::Contains("keeps no slot named 'q' (its slots: momentum, Q)"));
  steep::optimizer opt(rules::dion_bf16(0.1), store);
  for (std::size_t i = 0; i < 12; ++i)
    store.block_at(0).grad[i] = 0.1 * static_cast<double>(i) - 0.5;
  opt.step();
  opt.step();
  const auto before = steep_test::slot_values(opt);
  const std::vector<double> p_before(store.block_at(0).param, store.block_at(0).param + 12);
  // A momentum finite in float64 but past bfloat16's largest value (3.39e38) would be stored as
  // Inf: the step is refused by block, every slot and parameter bitwise as it was.
  store.block_at(0).grad[5] = 1e39;
  CHECK_THROWS_WITH(opt.step(), Catch::Contains("block 'W'") && Catch::Contains("momentum") &&
                                  Catch::Contains("not finite as stored, in bfloat16"));
  CHECK(steep_test::slot_values(opt) == before);
  CHECK(std::vector<double>(store.block_at(0).param, store.block_at(0).param + 12) == p_before);
  CHECK(opt.steps() == 2);

  const auto rule = rules::dion_bf16(0.05, { .rank_fraction = 0.5, .mu = 0.9 }, 0.01);
  CHECK(steep_test::checkpoint_resumes_bitwise(rule, 1, 4, "dion-bf16-resume.ckpt"));
  CHECK(steep_test::checkpoint_resumes_bitwise(rule, 4, 4, "dion-bf16-resume.ckpt"));
  // A float64 Dion's checkpoint does not load into the bfloat16 one (another rule: its slots are F64).
  steep::param_store<double> a({ { "W", { 3, 4 } } }), b({ { "W", { 3, 4 } } });
  steep::optimizer f64(rules::dion(0.1), a);
  f64.step();
  steep::save_checkpoint(f64, a, "dion-f64.ckpt");
  steep::optimizer bf(rules::dion_bf16(0.1), b);
  CHECK_THROWS(steep::load_checkpoint(bf, b, "dion-f64.ckpt"));
  std::remove("dion-f64.ckpt");
}
