// The DSL's semantics: slots and their names/dtypes, shared stages, hyperparameters,
// schedules, user functions, reductions, and the errors a user meets.

#include <algorithm>
#include <array>
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <steep/steep.hpp>
#include <thread>
#include <vector>

using namespace steep::expr;
namespace rules = steep::rules;

namespace {
steep::param_store<double> small_store() {
  steep::param_store<double> s({ { "W", { 4, 3 } }, { "v", { 5 } } });
  s.param("W").fill(0.5);
  s.param("v").fill(-1.0);
  s.grad("W").fill(2.0);
  s.grad("v").fill(-3.0);
  return s;
}
} // namespace

TEST_CASE("a new rule is a few lines and needs no engine change") {
  auto store = small_store();
  // Normalised momentum with an Adam-style denominator: a variant nobody named.
  auto m = ema<"m">(grad, 0.9);
  auto rule = -0.1 * m / (sqrt(ema<"v">(square(grad), 0.99)) + 1e-8) + ct<0.0> * param;
  steep::optimizer opt(rule, store);
  opt.step();
  // m = 0.1 g, v = 0.01 g^2 -> update = -0.1 * 0.1 g / (0.1 |g| + 1e-8) = -0.1 sign(g) (to 1e-7)
  CHECK(store.param("W")(0, 0) == Approx(0.4 + 0.1 * 1e-8 / (0.2 + 1e-8)).epsilon(1e-13));
  CHECK(store.param("v")(0) == Approx(-0.9 - 0.1 * 1e-8 / (0.3 + 1e-8)).epsilon(1e-13));
  CHECK(opt.slots().size() == 2);
  CHECK(opt.slots()[0].name == "m");
  CHECK(opt.slots()[1].name == "v");
}

TEST_CASE("a rule written X - param sets the parameter to X, one rounding (engine/passes/update.hpp)") {
  // A step that moves each parameter to a tenth of itself plus a gradient: p + (X - p) rounds
  // twice, and differs from X in the last bit for some entries; the engine writes X.
  steep::param_store<float> store({ { "w", { 4096 } } });
  auto p = store.param("w"), g = store.grad("w");
  for (std::size_t i = 0; i < 4096; ++i)
    p[i] = 1.0f + 0.37f * std::sin(static_cast<float>(i)),
    g[i] = 0.01f * std::cos(0.3f * static_cast<float>(i));
  std::vector<float> x(4096);
  std::size_t twice_rounded_differs = 0;
  for (std::size_t i = 0; i < 4096; ++i) {
    volatile float tenth = p[i] * 0.1f; // (rounded, as rules::rounded_product rounds it below)
    x[i] = tenth + g[i];
    const float d = x[i] - p[i];
    twice_rounded_differs += (p[i] + d != x[i]) ? 1 : 0;
  }
  CHECK(twice_rounded_differs > 0); // the test can tell the two forms apart
  steep::optimizer opt(map(rules::rounded_product{}, param, 0.1f) + grad - param, store);
  opt.step();
  CHECK(std::equal(x.begin(), x.end(), p.begin()));
}

TEST_CASE("a stage used twice is one slot, updated once") {
  auto store = small_store();
  auto m = trace<"buf">(grad, 0.5);
  steep::optimizer opt(-1.0 * (m + m), store); // b_1 = g: step = -2 g
  CHECK(opt.n_slots == 1);
  opt.step();
  opt.step(); // b_2 = 0.5 g + g = 1.5 g: step = -3 g
  CHECK(store.param("W")(0, 0) == Approx(0.5 - 2 * 2.0 - 3 * 2.0));
  CHECK(opt.state("W", "buf")(0, 0) == Approx(3.0));
}

TEST_CASE("one name for two differently configured stages is refused") {
  auto store = small_store();
  auto rule = ema<"m">(grad, 0.9) - ema<"m">(grad, 0.99);
  CHECK_THROWS_WITH(steep::optimizer(rule, store), Catch::Contains("slot 'm' is defined twice"));
}

TEST_CASE("slots report their dtype; a slot may be stored in another dtype than the parameters") {
  auto store = small_store();
  auto rule = -0.1 * ema<"m", float>(grad, 0.9);
  steep::optimizer opt(rule, store);
  REQUIRE(opt.slots().size() == 1);
  CHECK(opt.slots()[0].dtype == "float32");
  CHECK(opt.slots()[0].element_size == 4);
  CHECK(decltype(opt)::bytes_per_param() == 8 + 8 + 8 + 4 + 4);
  opt.step();
  CHECK(opt.state<float>("v", "m")(0) == Approx(-0.3f));
  CHECK_THROWS_WITH(opt.state<double>("v", "m"), Catch::Contains("not stored as float64"));
  CHECK_THROWS_WITH(opt.state<float>("v", "nope"), Catch::Contains("no state slot named 'nope'"));
  CHECK_THROWS_WITH(opt.state<float>("x", "m"), Catch::Contains("block 'x'"));
}

TEST_CASE("catalogue rules name their learning rates: opt.set(\"lr\", ...) between steps") {
  auto store = small_store();
  steep::optimizer adam(rules::adam(1e-3), store);
  CHECK(adam.get("lr") == Approx(1e-3));
  adam.set("lr", 1e-4);
  CHECK(adam.get("lr") == Approx(1e-4));
  steep::optimizer adamw(rules::adamw(1e-3), store); // the decay term reads the same lr
  adamw.set("lr", 0.0);
  const double before = store.param("W")(0, 0);
  adamw.step();
  CHECK(store.param("W")(0, 0) == before);
  steep::param_store<double> mixed({ { "W", { 4, 3 } }, { "v", { 5 } } });
  steep::optimizer hybrid(rules::muon_adam(0.02, 3e-4), mixed); // one name per arm's rate
  CHECK(hybrid.get("muon_lr") == Approx(0.02));
  CHECK(hybrid.get("adam_lr") == Approx(3e-4));
  CHECK_FALSE(hybrid.has("lr"));
  // A schedule stays a schedule (nothing to set).
  steep::optimizer scheduled(rules::sgd(inv_power(0.1, 0.5)), store);
  CHECK_FALSE(scheduled.has("lr"));
}

TEST_CASE("hyperparameters outside their range are refused by name, when built and at set()") {
  auto store = small_store();
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(steep::optimizer(rules::adam(nan), store), Catch::Contains("hyperparameter 'lr' is nan"));
  CHECK_THROWS_WITH(steep::optimizer(rules::adam(inf), store), Catch::Contains("'lr'"));
  CHECK_THROWS_WITH(steep::optimizer(rules::adam(1e-3, 1.0), store),
                    Catch::Contains("'beta1' is 1.0") && Catch::Contains("in [0, 1)"));
  CHECK_THROWS_WITH(steep::optimizer(rules::adam(1e-3, 0.9, -0.1), store), Catch::Contains("'beta2'"));
  CHECK_THROWS_WITH(steep::optimizer(rules::adam(1e-3, 0.9, 0.999, -1e-8), store),
                    Catch::Contains("'eps'") && Catch::Contains(">= 0"));
  CHECK_THROWS_WITH(steep::optimizer(rules::signum(1e-3, 1.0), store), Catch::Contains("'beta'"));
  CHECK_THROWS_WITH(steep::optimizer(rules::lion(1e-3, 1.5), store), Catch::Contains("'beta1'"));
  CHECK_THROWS_WITH(steep::optimizer(rules::adamw(1e-3, 0.9, 0.999, 1e-8, -0.1), store),
                    Catch::Contains("'weight_decay'"));
  steep::optimizer opt(rules::adam(1e-3), store);
  const double w = store.param("W")(0, 0);
  CHECK_THROWS_WITH(opt.set("lr", nan), Catch::Contains("'lr'") && Catch::Contains("nothing was changed"));
  CHECK_THROWS(opt.set("beta1", 1.0));
  CHECK(opt.get("lr") == Approx(1e-3));
  CHECK(opt.get("beta1") == Approx(0.9));
  opt.step();
  CHECK(std::isfinite(store.param("W")(0, 0)));
  CHECK(store.param("W")(0, 0) != w);
  // A route checks every arm before it changes any.
  steep::param_store<double> mixed({ { "W", { 4, 3 } }, { "v", { 5 } } });
  steep::optimizer hybrid(rules::muon_adam(), mixed);
  CHECK_THROWS(hybrid.set("momentum", 1.0));
  CHECK(hybrid.get("momentum") == Approx(0.95));
}

TEST_CASE("every catalogue setting that a number sets has a name and a range") {
  auto store = small_store();
  steep::param_store<double> mats({ { "W1", { 4, 3 } }, { "W2", { 3, 4 } }, { "v", { 5 } } });
  // Each (rule, name, value): built with the default settings the name reads the value, and
  // set(name, a value out of range) is refused with nothing changed.
  auto named = [](auto& opt, const std::string& name, double value, double bad) {
    INFO(name);
    REQUIRE(opt.has(name));
    CHECK(opt.get(name) == Approx(value));
    CHECK_THROWS_WITH(opt.set(name, bad), Catch::Contains("'" + name + "'"));
    CHECK(opt.get(name) == Approx(value));
  };
  steep::optimizer adagrad(rules::adagrad(1e-2, 1e-10, 0.1, 0.01), store);
  named(adagrad, "lr_decay", 0.01, -1.0);
  named(adagrad, "eps", 1e-10, -1.0);
  steep::optimizer optax(rules::adam_optax(1e-3, 0.9, 0.999, 1e-8, 1e-12, 0.1), store);
  named(optax, "beta1", 0.9, 1.0);
  named(optax, "beta2", 0.999, -0.5);
  named(optax, "eps_root", 1e-12, -1e-12);
  named(optax, "weight_decay", 0.1, -0.1);
  steep::optimizer nadamw(rules::nadamw_optax(1e-3), store);
  named(nadamw, "eps_root", 0.0, std::numeric_limits<double>::quiet_NaN());
  steep::optimizer mini(rules::adam_mini(1e-3), store);
  named(mini, "beta2", 0.999, 1.0);
  named(mini, "weight_decay", 0.0, -1.0);
  steep::optimizer paper(rules::adam_paper(1e-3), store);
  named(paper, "beta1", 0.9, 1.5);
  steep::optimizer mgd(rules::momentum_gd(1e-3), store);
  named(mgd, "beta", 0.9, 1.0);
  steep::param_store<double> hidden({ { "W1", { 4, 3 } }, { "W2", { 3, 4 } } });
  steep::optimizer adamuon(rules::adamuon(0.02), hidden);
  named(adamuon, "momentum", 0.95, 1.0);
  named(adamuon, "beta2", 0.999, 1.0);
  named(adamuon, "eps", 1e-8, -1.0);
  steep::optimizer normuon(rules::normuon(0.02), hidden);
  named(normuon, "beta2", 0.95, 1.0);
  named(normuon, "momentum", 0.95, -0.1);
  named(normuon, "eps", 1e-10, -1.0);
  steep::optimizer stacked(rules::muon_stacked(0.02, 2, 2), hidden);
  named(stacked, "momentum", 0.95, 1.0);
  steep::optimizer normuon_stacked(rules::normuon_stacked(0.02, 2, 2), hidden);
  named(normuon_stacked, "beta2", 0.95, 1.0);
  named(normuon_stacked, "eps", 1e-10, -1.0);
  steep::optimizer mini_sliced(rules::adam_mini_sliced(1e-3, 1, 3), hidden);
  named(mini_sliced, "beta2", 0.999, 1.0);
  steep::optimizer muon_optax(rules::muon_optax(0.02), hidden);
  named(muon_optax, "beta", 0.95, 1.0);
  steep::optimizer full(rules::muon_optax_full(0.02, 0.95, 0.1, 0.9, 0.999, 1e-8, 0.01), mats);
  named(full, "weight_decay", 0.1, -1.0);
  named(full, "adam_weight_decay", 0.01, -1.0);
  steep::param_store<double> model(
    { { "W0", { 4, 3 } }, { "W1", { 4, 4 } }, { "H", { 2, 4 }, steep::block_role::head } });
  steep::optimizer scion(rules::scion(2e-3), model);
  named(scion, "momentum", 0.1, 0.0); // Scion's a: B <- (1 - a) B + a g, so a = 0 never moves B
  named(scion, "radius", 50.0, -1.0);
  named(scion, "radius_out", 3000.0, std::numeric_limits<double>::infinity());
  CHECK_THROWS_WITH(steep::optimizer(rules::scion(2e-3, 1.5), mats),
                    Catch::Contains("'momentum'") && Catch::Contains("in (0, 1]"));
  CHECK_THROWS_WITH(rules::adagrad(1e-2, 1e-10, -1.0), Catch::Contains("initial_accumulator_value"));
  // Two arms with one name and different values: each arm is addressed as "arm<k>/<name>".
  steep::optimizer route(steep::route(steep::on<steep::block_role::hidden_matrix> >> rules::muon(0.02, 0.1),
                                      steep::otherwise >> rules::adamw(1e-3, 0.9, 0.999, 1e-8, 0.01)),
                         mats);
  CHECK_THROWS_WITH(route.get("weight_decay"), Catch::Contains("differs between the route's arms") &&
                                                 Catch::Contains("'arm1/weight_decay'"));
  CHECK(route.get("arm0/weight_decay") == Approx(0.1));
  CHECK(route.get("arm1/weight_decay") == Approx(0.01));
  route.set("arm1/weight_decay", 0.02);
  CHECK(route.get("arm0/weight_decay") == Approx(0.1));
  CHECK(route.get("arm1/weight_decay") == Approx(0.02));
  const auto hp = route.hyperparameters();
  CHECK(std::count_if(hp.begin(), hp.end(), [](const auto& e) { return e.first == "arm1/weight_decay"; }) ==
        1);
  CHECK(std::count_if(hp.begin(), hp.end(), [](const auto& e) { return e.first == "lr"; }) ==
        0);                        // differ too
  route.set("weight_decay", 0.05); // a plain name sets every arm
  CHECK(route.get("weight_decay") == Approx(0.05));
  CHECK_THROWS_WITH(route.set("arm2/lr", 0.1), Catch::Contains("counted from 0"));
  CHECK_THROWS(route.set("arm0/weight_decay", -1.0));
  CHECK(route.get("weight_decay") == Approx(0.05));
  CHECK_THROWS_WITH(steep::optimizer(rules::adagrad(1e-2, 1e-10, 0.0, -0.5), store),
                    Catch::Contains("'lr_decay'"));
}

TEST_CASE("named hyperparameters can be read and changed between steps") {
  auto store = small_store();
  steep::optimizer opt(-hyper<"lr">(0.1) * grad, store);
  CHECK(opt.get("lr") == 0.1);
  opt.step();
  opt.set("lr", 0.01);
  opt.step();
  CHECK(store.param("v")(0) == Approx(-1.0 + 0.3 + 0.03));
  CHECK_THROWS_WITH(opt.set("beta", 1.0), Catch::Contains("no hyperparameter named 'beta'"));
}

TEST_CASE("schedules give the documented learning rates") {
  host_ctx h;
  auto at = [&](const auto& s, std::int64_t t) { return h.t = t, s.hoist_value(h); };
  CHECK(at(inv_power(0.1, 0.5), 4) == Approx(0.05));
  CHECK(at(constant_lr(0.3), 7) == 0.3);
  CHECK(at(cosine(1.0, 10, 0.0), 1) == Approx(1.0));
  CHECK(at(cosine(1.0, 10, 0.0), 6) == Approx(0.5));
  CHECK(at(cosine(1.0, 10, 0.1), 11) == Approx(0.1));
  CHECK(at(warmup_linear(1.0, 4, 8), 2) == Approx(0.5));
  CHECK(at(warmup_linear(1.0, 4, 8), 6) == Approx(0.5));
  CHECK(at(wsd(1.0, 2, 6, 10), 5) == Approx(1.0));
  CHECK(at(wsd(1.0, 2, 6, 10), 8) == Approx(0.5));
  CHECK(at(wsd(1.0, 2, 6, 10), 12) == 0.0);
  CHECK_THROWS_WITH(wsd(1.0, 5, 3, 10), Catch::Contains("1 <= warmup <= decay_start < total"));
  CHECK_THROWS_WITH(cosine(1.0, 0), Catch::Contains("total steps must be >= 1"));
}

TEST_CASE("the step counter and a schedule drive the update") {
  auto store = small_store();
  steep::optimizer opt(rules::sgd(inv_power(1.0, 1.0)), store); // lr_t = 1/t
  opt.step();
  opt.step();
  CHECK(opt.steps() == 2);
  CHECK(store.param("v")(0) == Approx(-1.0 + 3.0 + 1.5));
}

TEST_CASE("a user's elementwise function runs in the fused loop") {
  auto store = small_store();
  auto cube = map([](auto x) noexcept { return x * x * x; }, grad);
  steep::optimizer opt(-0.01 * cube + 0.0 * clamp(param, -1.0, 1.0), store);
  opt.step();
  CHECK(store.param("W")(1, 2) == Approx(0.5 - 0.08));
}

TEST_CASE("reductions: per-block and global norms") {
  auto store = small_store();
  steep::optimizer per_block(-1.0 * grad / block_norm2(grad), store);
  per_block.step();
  // W: every g = 2 over 12 entries -> ||g|| = 2 sqrt(12); v: -3 over 5 -> 3 sqrt(5).
  CHECK(store.param("W")(0, 0) == Approx(0.5 - 1 / std::sqrt(12.0)));
  CHECK(store.param("v")(0) == Approx(-1.0 + 1 / std::sqrt(5.0)));
  steep::optimizer inf(-1.0 * grad / norm_inf(grad) + 0.0 * block_norm1(grad), store);
  inf.step();
  CHECK(store.param("W")(0, 0) == Approx(0.5 - 1 / std::sqrt(12.0) - 2.0 / 3.0));
  CHECK(decltype(inf)::program_type::passes == 2);
}

TEST_CASE("one l2 normalization: zero gives zero, float sums of squares neither overflow nor vanish") {
  using T = float;
  steep::param_store<T> store({ { "big", { 2 } }, { "tiny", { 3 } }, { "zero", { 4 } } });
  auto g = [&](const char* b) { return store.block_named(b).grad; };
  g("big")[0] = 3e20f, g("big")[1] = 4e20f;                               // squares overflow float: 9e40
  g("tiny")[0] = 3e-25f, g("tiny")[1] = 4e-25f, g("tiny")[2] = 0;         // squares vanish in float: 9e-50
  steep::optimizer per_block(rules::normalized_gd_per_block(1.0), store); // dual<l2>
  per_block.step();
  auto p = [&](const char* b, int i) { return store.block_named(b).param[i]; };
  CHECK(p("big", 0) == Approx(-0.6f));
  CHECK(p("big", 1) == Approx(-0.8f));
  CHECK(p("tiny", 0) == Approx(-0.6f));
  CHECK(p("tiny", 1) == Approx(-0.8f));
  for (int i = 0; i < 4; ++i)
    CHECK(p("zero", i) == 0.f); // 0 / ||0|| := 0, never NaN
  // The global version: one norm over all blocks, the same semantics.
  steep::param_store<T> z({ { "a", { 3 } } });
  steep::optimizer global(rules::normalized_gd(1.0), z);
  global.step();
  CHECK(z.block_named("a").param[0] == 0.f);
}

TEST_CASE("row and column lines: a rule normalizes each row or column of a block in a few lines") {
  steep::param_store<double> store({ { "W", { 3, 4 } } });
  double* gr = store.block_named("W").grad;
  for (int i = 0; i < 12; ++i)
    gr[i] = 1.0 + i;
  steep::optimizer rows(-1.0 * grad / row_norm2(grad), store);
  rows.step();
  const double* p = store.block_named("W").param;
  for (int r = 0; r < 3; ++r) {
    double n = 0;
    for (int c = 0; c < 4; ++c)
      n += p[r * 4 + c] * p[r * 4 + c];
    CHECK(n == Approx(1.0)); // each row of the step has unit l2 norm
  }
  store.param("W").fill(0.0);
  steep::optimizer cols(-1.0 * grad / col_norm2(grad) + 0.0 * ema<"c">(col_mean(grad), 0.5), store);
  cols.step();
  for (int c = 0; c < 4; ++c) {
    double n = 0;
    for (int r = 0; r < 3; ++r)
      n += p[r * 4 + c] * p[r * 4 + c];
    CHECK(n == Approx(1.0));
  }
  CHECK(cols.state("W", "c").size() == 4); // one per column
  CHECK(cols.state("W", "c")(1) == Approx(0.5 * (2.0 + 6.0 + 10.0) / 3.0));
  CHECK(cols.slots()[0].granularity == "column");
}

TEST_CASE("a reduction sees the updated state without storing it twice") {
  auto store = small_store();
  auto m = trace<"m">(grad, 0.0);
  steep::optimizer opt(-1.0 * m / norm2(m), store);
  opt.step();
  const double total = std::sqrt(12 * 4.0 + 5 * 9.0);
  CHECK(store.param("v")(0) == Approx(-1.0 + 3.0 / total));
  CHECK(opt.state("v", "m")(0) == -3.0);
}

TEST_CASE("stores reject bad layouts with the block's name") {
  using spec = steep::block_spec<double>;
  CHECK_THROWS_WITH(steep::param_store<double>({ spec("a", { 2 }), spec("a", { 3 }) }),
                    Catch::Contains("block 'a'") && Catch::Contains("used twice"));
  double buf[12] = {};
  const std::span<double> none;
  CHECK_THROWS_WITH(steep::param_store<double>({ spec("e", { 4 }, std::span(buf, 4), none) }),
                    Catch::Contains("block 'e'") && Catch::Contains("both a parameter and a gradient"));
  // External buffers: sized, and no memory shared.
  CHECK_THROWS_WITH(
    steep::param_store<double>({ spec("e", { 2, 3 }, std::span(buf, 5), std::span(buf + 6, 6)) }),
    Catch::Contains("block 'e'") && Catch::Contains("parameter buffer holds 5 elements") &&
      Catch::Contains("(2, 3) needs 6"));
  CHECK_THROWS_WITH(steep::param_store<double>({ spec("e", { 4 }, std::span(buf, 4), std::span(buf, 4)) }),
                    Catch::Contains("block 'e'") &&
                      Catch::Contains("overlaps the parameter buffer of the same block"));
  CHECK_THROWS_WITH(
    steep::param_store<double>({ spec("a", { 4 }, std::span(buf, 4), std::span(buf + 4, 4)),
                                 spec("b", { 4 }, std::span(buf + 6, 4), std::span(buf + 10, 2)) }),
    Catch::Contains("block 'b'") && Catch::Contains("gradient buffer holds 2"));
  CHECK_THROWS_WITH(
    steep::param_store<double>({ spec("a", { 4 }, std::span(buf, 4), std::span(buf + 4, 4)),
                                 spec("b", { 2 }, std::span(buf + 7, 2), std::span(buf + 10, 2)) }),
    Catch::Contains("block 'b'") && Catch::Contains("overlaps the gradient buffer of block 'a'"));
  const std::size_t big = std::size_t{ 1 } << 32;
  CHECK_THROWS_WITH(steep::param_store<double>({ spec("huge", { big, big }) }),
                    Catch::Contains("block 'huge'") &&
                      Catch::Contains("more elements than memory can address"));
  double other[4] = {};
  steep::param_store<double> adopted({ spec("a", { 2, 2 }, std::span(buf, 4), std::span(buf + 4, 4)),
                                       spec("b", { 4 }, std::span(buf + 8, 4), std::span(other)) });
  CHECK(adopted.block_named("b").grad == other);
  steep::param_store<double> s({ spec("x", { 2, 2 }) });
  CHECK_THROWS_WITH(s.param("y"), Catch::Contains("block 'y'"));
  CHECK(s.block_named("x").role == steep::block_role::hidden_matrix);
  CHECK(reinterpret_cast<std::uintptr_t>(s.block_named("x").param) % 64 == 0);
}

TEST_CASE("describe() says what the compiler made of a rule") {
  auto store = small_store();
  steep::optimizer opt(rules::adam(1e-3), store);
  const auto d = opt.describe();
  CHECK_THAT(d, Catch::Contains("passes: 1") && Catch::Contains("exp_avg:float64") &&
                  Catch::Contains("exp_avg_sq:float64") &&
                  Catch::Contains("bytes per parameter (update pass): 56"));
}

TEMPLATE_TEST_CASE("float32 rules track a float64 run", "", float) {
  steep::param_store<TestType> s32({ { "w", { 1000 } } });
  steep::param_store<double> s64({ { "w", { 1000 } } });
  for (std::size_t i = 0; i < 1000; ++i) {
    const double p = std::sin(0.1 * i), g = std::cos(0.37 * i);
    s32.param("w")(i) = static_cast<TestType>(p), s64.param("w")(i) = p;
    s32.grad("w")(i) = static_cast<TestType>(g), s64.grad("w")(i) = g;
  }
  steep::optimizer a(rules::adamw(1e-2, 0.9, 0.999, 1e-8, 0.1), s32);
  steep::optimizer b(rules::adamw(1e-2, 0.9, 0.999, 1e-8, 0.1), s64);
  for (int t = 0; t < 10; ++t)
    a.step(), b.step();
  for (std::size_t i = 0; i < 1000; ++i)
    CHECK(s32.param("w")(i) == Approx(s64.param("w")(i)).margin(1e-5));
}

TEST_CASE("bfloat16: round to nearest even, NaN stays NaN, overflow goes to Inf") {
  using steep::bfloat16;
  CHECK(float(bfloat16(1.0f + 0x1p-8f)) == 1.0f);                      // a tie: to the even neighbour
  CHECK(float(bfloat16(1.0f + 0x1p-7f + 0x1p-8f)) == 1.0f + 0x1p-6f);  // a tie: up, to even
  CHECK(float(bfloat16(1.0f + 0x1p-8f + 0x1p-20f)) == 1.0f + 0x1p-7f); // past the tie: up
  CHECK(bfloat16(-0.0f).bits == 0x8000);
  CHECK(std::isnan(float(bfloat16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isnan(float(bfloat16(std::bit_cast<float>(0x7f800001u))))); // a NaN with only low payload bits
  CHECK(std::isinf(float(bfloat16(std::numeric_limits<float>::max()))));
  CHECK(std::abs(float(bfloat16(3.0e38f)) / 3.0e38f - 1) < 0x1p-8f);
  // The engine's SIMD conversions (kernel::load / store) agree with these bit for bit.
  using V = steep::kernel::batch<float>;
  std::vector<float> xs(4 * V::size);
  for (std::size_t i = 0; i < xs.size(); ++i)
    xs[i] = std::sin(0.37f * static_cast<float>(i)) * std::pow(10.f, static_cast<float>(i % 9) - 4.f);
  xs[1] = 1.0f + 0x1p-8f, xs[2] = std::numeric_limits<float>::quiet_NaN(), xs[3] = -0.0f;
  xs[4] = std::numeric_limits<float>::infinity(), xs[5] = std::numeric_limits<float>::max();
  std::vector<bfloat16> simd(xs.size());
  for (std::size_t i = 0; i < xs.size(); i += V::size)
    steep::kernel::store(simd.data() + i, V::load_unaligned(xs.data() + i));
  for (std::size_t i = 0; i < xs.size(); ++i) {
    INFO("x = " << xs[i]);
    CHECK(simd[i].bits == bfloat16(xs[i]).bits);
  }
  std::vector<float> back(xs.size());
  for (std::size_t i = 0; i < xs.size(); i += V::size)
    steep::kernel::load<V>(simd.data() + i).store_unaligned(back.data() + i);
  for (std::size_t i = 0; i < xs.size(); ++i)
    CHECK(std::bit_cast<std::uint32_t>(back[i]) == std::bit_cast<std::uint32_t>(float(simd[i])));
}

namespace {
// How many of xs divided by d differ from the division, bit for bit (NaN for NaN), in SIMD
// through kernel::div_uniform.
template <class T>
std::size_t div_uniform_mismatches(const std::vector<T>& xs, T d) {
  using V = steep::kernel::batch<T>;
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  std::size_t bad = 0;
  std::array<T, V::size> out{};
  for (std::size_t i = 0; i + V::size <= xs.size(); i += V::size) {
    steep::kernel::div_uniform(V::load_unaligned(xs.data() + i), V(d)).store_unaligned(out.data());
    for (std::size_t k = 0; k < V::size; ++k) {
      const T want = xs[i + k] / d;
      bad += std::isnan(want) ? !std::isnan(out[k]) : std::bit_cast<U>(out[k]) != std::bit_cast<U>(want);
    }
  }
  return bad;
}
} // namespace

TEST_CASE("Division by a per-step scalar without the divider: bit for bit the division") {
  // Every float significand in [1, 2) (so, by scaling, every x away from under- and overflow),
  // over divisors of every kind: Adam's sqrt(1 - 0.999^t), significands of all ones, a power of
  // two, the range's edges and past them (there it divides).
  std::vector<float> all(std::size_t{ 1 } << 23);
  for (std::uint32_t m = 0; m < all.size(); ++m)
    all[m] = std::bit_cast<float>(0x3f800000u | m);
  for (float d : { std::sqrt(1.f - std::pow(0.999f, 1.f)), std::sqrt(1.f - std::pow(0.999f, 7.f)),
                   std::bit_cast<float>(0x3fffffffu), std::bit_cast<float>(0x3f7fffffu), 3.f, 0.1f, 0x1p-20f,
                   0x1p20f, 0x1.fffffep-21f, 1e-30f, -7.3f })
    CHECK(div_uniform_mismatches(all, d) == 0);
  // Edge values among ordinary ones, one per batch: zeros, subnormals, the range's edges, Inf, NaN,
  // the largest float; and every step's divisor of Adam for 2000 steps.
  std::vector<float> xs;
  const float edges[] = { 0.f,
                          -0.f,
                          1e-45f,
                          -1e-40f,
                          0x1p-100f,
                          0x1.fffffep-101f,
                          0x1p100f,
                          0x1.000002p100f,
                          std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::min() };
  for (int i = 0; i < 4096; ++i)
    xs.push_back(i % 37 == 0
                   ? edges[(i / 37) % 12]
                   : std::sin(0.71f * static_cast<float>(i)) * std::exp2(static_cast<float>(i % 61 - 30)));
  for (int t = 1; t <= 2000; ++t)
    CHECK(div_uniform_mismatches(xs, std::sqrt(1.f - std::pow(0.999f, static_cast<float>(t)))) == 0);
  std::vector<double> xd;
  for (int i = 0; i < 1 << 18; ++i)
    xd.push_back(i % 101 == 0 ? static_cast<double>(edges[(i / 101) % 12])
                              : std::sin(0.37 * i + 0.1) * std::exp2(i % 121 - 60) + 1e-3 * std::cos(i));
  for (double d : { std::sqrt(1 - std::pow(0.999, 3.0)), 1.0 / 3.0, 0x1.fffffffffffffp0, 1e-300, 0x1p-20 })
    CHECK(div_uniform_mismatches(xd, d) == 0);
}

TEST_CASE(
  "Adam with bfloat16 moments: float arithmetic, state rounded once per store, 20 bytes per parameter") {
  using steep::bfloat16;
  steep::param_store<float> store({ { "W", { 7, 9 } } });
  const auto& b = store.block_at(0);
  for (std::size_t i = 0; i < b.size; ++i)
    b.param[i] = std::sin(0.3f * static_cast<float>(i));
  std::vector<double> p_full(b.param, b.param + b.size), mf(b.size), vf(b.size);
  steep::optimizer opt(rules::adam_bf16(1e-2), store, { .threads = 2, .chunk_elements = 64 });
  CHECK(decltype(opt)::bytes_per_param() == 20);
  CHECK(opt.slots()[0].dtype == "bfloat16");
  CHECK(opt.slots()[1].element_size == 2);
  auto m = opt.state<bfloat16>("W", "exp_avg");
  auto v = opt.state<bfloat16>("W", "exp_avg_sq");
  for (int t = 1; t <= 5; ++t) {
    std::vector<double> m0(m.begin(), m.end()), v0(v.begin(), v.end()), p0(b.param, b.param + b.size);
    for (std::size_t i = 0; i < b.size; ++i)
      b.grad[i] = std::cos(0.7f * static_cast<float>(i) + static_cast<float>(t));
    opt.step();
    const double c1 = 1 - std::pow(0.9, t), c2 = 1 - std::pow(0.999, t);
    double worst_m = 0, worst_v = 0, worst_p = 0, apart = 0;
    for (std::size_t i = 0; i < b.size; ++i) {
      const double g = b.grad[i], mi = float(m.data()[i]), vi = float(v.data()[i]);
      // The stored moments are the exact recurrences rounded once to bfloat16 (half an ulp: 2^-8
      // relative), and the step used the stored values.
      const double m_exact = 0.9 * m0[i] + 0.1 * g, v_exact = 0.999 * v0[i] + 0.001 * g * g;
      worst_m = std::max(worst_m, std::abs(mi - m_exact) / std::abs(m_exact));
      worst_v = std::max(worst_v, std::abs(vi - v_exact) / std::abs(v_exact));
      worst_p =
        std::max(worst_p, std::abs(b.param[i] - (p0[i] - 1e-2 * (mi / c1) / (std::sqrt(vi / c2) + 1e-8))));
      mf[i] = 0.9 * mf[i] + 0.1 * g, vf[i] = 0.999 * vf[i] + 0.001 * g * g;
      p_full[i] -= 1e-2 * (mf[i] / c1) / (std::sqrt(vf[i] / c2) + 1e-8);
      apart = std::max(apart, std::abs(b.param[i] - p_full[i]));
    }
    INFO("step " << t);
    CHECK(worst_m <= 0x1p-8 * (1 + 1e-4));
    CHECK(worst_v <= 0x1p-8 * (1 + 1e-4));
    CHECK(worst_p < 1e-6);       // float rounding of the step itself
    CHECK(apart > 10 * worst_p); // and measurably not the full-precision Adam
  }
}

TEST_CASE("an optimizer whose store is gone, or that was moved from, refuses to step") {
  std::optional<steep::optimizer<decltype(rules::adam(1e-3)), double>> orphan;
  {
    auto store = small_store();
    orphan.emplace(rules::adam(1e-3), store);
    orphan->step();
  }
  CHECK_THROWS_WITH(orphan->step(), Catch::Contains("param_store no longer exists"));
  auto store = small_store();
  steep::optimizer a(rules::adam(1e-3), store);
  auto b = std::move(a);
  CHECK_THROWS_WITH(a.step(), Catch::Contains("moved from")); // NOLINT(bugprone-use-after-move)
  auto moved_store = std::move(store);                        // the memory moves with the store
  CHECK(b.step());
  steep::optimizer hybrid(rules::muon_adam(), moved_store);
  auto hybrid2 = std::move(hybrid);
  CHECK_THROWS_WITH(hybrid.step(), Catch::Contains("moved from")); // NOLINT(bugprone-use-after-move)
  CHECK(hybrid2.step());
}

TEST_CASE("Adam without eps takes no step where the second moment is zero (0 / 0 := 0)") {
  steep::param_store<float> store({ { "w", { 3 } } });
  steep::optimizer eps0(rules::adam_eps0(1e-2f), store);
  steep::optimizer paper(rules::adam_paper(1e-2f), store);
  store.grad("w")(1) = 1e-25f; // its square underflows in float32: v = 0, m != 0
  store.grad("w")(2) = 0.5f;
  CHECK(eps0.step());
  CHECK(paper.step());
  CHECK(store.param("w")(0) == 0.f);
  CHECK(store.param("w")(1) == 0.f);
  CHECK(store.param("w")(2) == Approx(-2e-2f)); // two steps of -lr sign(g)
}

TEST_CASE("concurrent optimizers leave OpenBLAS's thread count as they found it") {
  // The engine's products go to OpenBLAS (kernel/blas.hpp), so its thread-count symbols resolve.
  REQUIRE(openblas_get_num_threads != nullptr);
  const int before = openblas_get_num_threads();
  for (int run = 0; run < 20; ++run) {
    auto one = [](int threads) {
      steep::param_store<double> s({ { "W", { 16, 16 } } });
      s.grad("W").fill(1.0);
      steep::optimizer o(rules::muon(0.02), s, { .threads = threads });
      for (int i = 0; i < 10; ++i)
        o.step();
    };
    std::thread a(one, 1), b(one, 2);
    a.join(), b.join();
    REQUIRE(openblas_get_num_threads() == before);
  }
}

TEST_CASE("serial_below: a small step runs on the calling thread, bitwise as on two") {
  // The executor: a work list below the threshold never leaves the calling thread.
  const steep::kernel::work_list wl({ 600, 300, 0 }, 64);
  REQUIRE(wl.elements() == 900);
  std::vector<std::thread::id> ran(wl.size());
  steep::kernel::executor(2, 901).for_each_chunk(wl,
                                                 [&](std::size_t c) { ran[c] = std::this_thread::get_id(); });
  CHECK(std::all_of(ran.begin(), ran.end(), [](auto id) { return id == std::this_thread::get_id(); }));

  // The optimizer: the same parameters and state as two threads splitting every pass.
  auto run = [](steep::optimizer_options opts) {
    steep::param_store<float> s({ { "W", { 40, 30 } }, { "b", { 77 } } });
    steep::optimizer opt(rules::adam(1e-2f), s, opts);
    for (int t = 1; t <= 3; ++t) {
      for (std::size_t k = 0; k < s.size(); ++k)
        for (std::size_t i = 0; i < s.block_at(k).size; ++i)
          s.block_at(k).grad[i] = std::sin(0.1f * static_cast<float>(i * t + k));
      opt.step();
    }
    std::vector<float> out(s.param("W").data(), s.param("W").data() + 1200);
    const auto v = opt.state("b", "exp_avg_sq");
    out.insert(out.end(), v.data(), v.data() + 77);
    return std::make_pair(out, opt.describe());
  };
  const auto [split, split_text] = run({ .threads = 2, .chunk_elements = 64 });
  const auto [serial, serial_text] = run({ .threads = 2, .chunk_elements = 64, .serial_below = 1 << 18 });
  CHECK(std::memcmp(split.data(), serial.data(), split.size() * sizeof(float)) == 0);
  CHECK_THAT(serial_text, Catch::Contains("threads: 2 (passes run on the calling thread: serial_below)"));
  CHECK_THAT(split_text, !Catch::Contains("serial_below"));
}
