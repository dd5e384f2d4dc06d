// What an optimizer refuses, and what a step says it did (docs/robustness.md):
//   - a slot kept per block or per line that would overflow is held back as a per-element one
//     is (the whole block keeps its values), and an empty block gives no NaN anywhere;
//   - the two halves of a step: a commit needs a clean prepare with nothing between;
//   - two threads calling in at once are refused, not interleaved;
//   - step counts stay in [0, 2^53];
//   - schedules, Newton-Schulz settings and chunk sizes are checked when the rule is built;
//   - a moved-from optimizer refuses every call;
//   - step() says applied, held back or refused, and the counters agree.

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <steep/rules/catalogue.hpp>
#include <steep/steep.hpp>
#include <string>
#include <thread>
#include <vector>

namespace rules = steep::rules;
using steep::step_outcome;

namespace {

template <class T>
void fill(steep::param_store<T>& s, int step) {
  for (std::size_t k = 0; k < s.size(); ++k) {
    const auto& b = s.block_at(k);
    for (std::size_t i = 0; i < b.size; ++i) {
      b.grad[i] =
        static_cast<T>(std::cos(0.3 * step + 0.11 * static_cast<double>(i) + static_cast<double>(k)));
      if (step == 0)
        b.param[i] = static_cast<T>(std::sin(1.0 + 0.37 * static_cast<double>(i + 7 * k)));
    }
  }
}

// Every parameter and slot byte of every block.
template <class Opt, class T>
std::vector<unsigned char> bytes(Opt& opt, const steep::param_store<T>& s) {
  std::vector<unsigned char> out;
  for (std::size_t k = 0; k < s.size(); ++k) {
    const auto& b = s.block_at(k);
    const auto* p = reinterpret_cast<const unsigned char*>(b.param);
    out.insert(out.end(), p, p + b.size * sizeof(T));
  }
  opt.visit_slots([&](const steep::slot_bytes& sb) {
    const auto* p = reinterpret_cast<const unsigned char*>(sb.bytes.data());
    out.insert(out.end(), p, p + sb.bytes.size());
  });
  return out;
}

template <class Opt>
bool every_slot_finite(Opt& opt) {
  bool ok = true;
  opt.visit_slots([&](const steep::slot_bytes& sb) {
    if (sb.dtype == "F64") {
      std::vector<double> v(sb.bytes.size() / 8);
      std::memcpy(v.data(), sb.bytes.data(), sb.bytes.size());
      for (double x : v)
        ok = ok && std::isfinite(x);
    } else if (sb.dtype == "F32") {
      std::vector<float> v(sb.bytes.size() / 4);
      std::memcpy(v.data(), sb.bytes.data(), sb.bytes.size());
      for (float x : v)
        ok = ok && std::isfinite(x);
    }
  });
  return ok;
}

// A per-block (Adam-mini) or per-slice (Adam-mini by rows) second moment that overflows float32
// from one finite gradient entry: the block is held back whole, the others step as a twin does.
template <class Rule>
void check_host_slot_overflow(const Rule& rule, const std::string& slot) {
  auto make = [] { return steep::param_store<float>({ { "a", { 4, 8 } }, { "b", { 4, 8 } } }); };
  auto store = make(), twin_store = make();
  steep::optimizer opt(rule, store), twin(rule, twin_store);
  fill(store, 0), fill(twin_store, 0);
  REQUIRE(opt.step().applied());
  REQUIRE(twin.step().applied());
  fill(store, 1), fill(twin_store, 1);
  auto& b = store.block_named("b");
  const std::vector<float> b_before(b.param, b.param + b.size);
  auto slot_values = [&] {
    auto v = opt.state("b", slot);
    return std::vector<float>(v.begin(), v.end());
  };
  const std::vector<float> v_before = slot_values();
  b.grad[9] = 3e19f; // its square overflows float32
  const steep::step_result r = opt.step();
  REQUIRE(twin.step().applied());
  CHECK(r.held_back());
  CHECK_FALSE(r);
  CHECK(opt.skipped_steps() == 1);
  CHECK(opt.steps() == 2);
  const auto held = opt.held_back();
  REQUIRE(held);
  CHECK(held->block == "b");
  CHECK(held->output == slot);
  CHECK(held->whole_block);
  CHECK(held->count == b.size);
  CHECK(std::isinf(held->value));
  CHECK_THAT(steep::engine::describe_held_back(*held),
             Catch::Contains("block 'b' was held back whole") && Catch::Contains("new " + slot));
  // b kept its parameters and every slot; a stepped as the twin's a did.
  CHECK(std::memcmp(b.param, b_before.data(), b.size * sizeof(float)) == 0);
  const std::vector<float> v_after = slot_values();
  CHECK(std::memcmp(v_after.data(), v_before.data(), v_before.size() * sizeof(float)) == 0);
  CHECK(every_slot_finite(opt));
  const auto& a = store.block_named("a");
  CHECK(std::memcmp(a.param, twin_store.block_named("a").param, a.size * sizeof(float)) == 0);
  // A clean step applies, and nothing is held back any more.
  fill(store, 2);
  CHECK(opt.step().applied());
  CHECK_FALSE(opt.held_back());
  CHECK(every_slot_finite(opt));
}

} // namespace

TEST_CASE("robustness: a per-block or per-line slot that would overflow holds its block back") {
  check_host_slot_overflow(rules::adam_mini(1e-2), "v");
  check_host_slot_overflow(rules::adam_mini_sliced(1e-2, 1, 8), "v"); // one v per row
}

TEST_CASE("robustness: empty blocks give no NaN in any slot, for every catalogue rule") {
  rules::for_each_catalogue_rule([](std::string_view name, const auto& rule, rules::takes t) {
    INFO(name);
    std::vector<steep::block_spec<double>> specs = { { "W", { 6, 4 } },
                                                     { "E0", { 0, 4 } },
                                                     { "E1", { 4, 0 } } };
    if (t == rules::takes::any)
      specs.push_back({ "e", { 0 } });
    steep::param_store<double> store(specs);
    steep::optimizer opt(rule, store);
    for (int k = 0; k < 3; ++k) {
      fill(store, k);
      REQUIRE(opt.step().applied());
    }
    CHECK(every_slot_finite(opt));
    for (std::size_t k = 0; k < store.size(); ++k)
      for (std::size_t i = 0; i < store.block_at(k).size; ++i)
        CHECK(std::isfinite(store.block_at(k).param[i]));
  });
}

TEST_CASE("robustness: a commit needs a clean prepare with nothing between") {
  auto store = steep::param_store<double>({ { "W", { 4, 3 } }, { "b", { 3 } } });
  steep::optimizer opt(rules::adam(1e-2), store, { .nonfinite = steep::nonfinite_policy::skip });
  fill(store, 0);
  auto same = [&](const std::vector<unsigned char>& before) { return bytes(opt, store) == before; };
  auto before = bytes(opt, store);
  // No prepare at all.
  CHECK_THROWS_WITH(opt.commit_step(),
                    Catch::Contains("commit_step() needs a prepare_step() that found nothing"));
  CHECK(same(before));
  CHECK(opt.steps() == 0);
  // Twice after one prepare: the second commit is refused.
  REQUIRE_FALSE(opt.prepare_step());
  opt.commit_step();
  before = bytes(opt, store);
  CHECK_THROWS_AS(opt.commit_step(), steep::usage_error);
  CHECK(same(before));
  CHECK(opt.steps() == 1);
  // After a refused prepare (a NaN gradient): the guard cannot be bypassed.
  store.block_named("b").grad[1] = std::numeric_limits<double>::quiet_NaN();
  CHECK(opt.prepare_step());
  CHECK_THROWS_AS(opt.commit_step(), steep::usage_error);
  CHECK(same(before));
  store.block_named("b").grad[1] = 0.25;
  // A set(), restore_steps() or set_threads() between the halves invalidates the prepare.
  REQUIRE_FALSE(opt.prepare_step());
  opt.set("lr", 5e-3);
  CHECK_THROWS_AS(opt.commit_step(), steep::usage_error);
  REQUIRE_FALSE(opt.prepare_step());
  opt.restore_steps(1, 0);
  CHECK_THROWS_AS(opt.commit_step(), steep::usage_error);
  REQUIRE_FALSE(opt.prepare_step());
  opt.set_threads(1);
  CHECK_THROWS_AS(opt.commit_step(), steep::usage_error);
  CHECK(same(before));
  CHECK(opt.steps() == 1);
  // A clean prepare then a commit: one step, as step() does.
  REQUIRE_FALSE(opt.prepare_step());
  opt.commit_step();
  CHECK(opt.steps() == 2);
  CHECK(opt.step().applied());
  CHECK(opt.steps() == 3);
}

namespace {
// A per-block scalar that parks the stepping thread inside step() until the test lets it go.
std::atomic<int> parked{ 0 };
std::atomic<bool> release{ false };
struct park_fn {
  double operator()(steep::expr::block_dims) const {
    if (parked.fetch_add(1) == 0)
      while (!release.load())
        std::this_thread::yield();
    return 1.0;
  }
  bool operator==(const park_fn&) const = default;
};
} // namespace

TEST_CASE("robustness: a second thread's call on a busy optimizer is refused, not interleaved") {
  auto store = steep::param_store<double>({ { "W", { 4, 3 } } });
  auto rule = -rules::hp::lr(0.1) * steep::expr::grad * steep::expr::shape_scalar(park_fn{});
  steep::optimizer opt(rule, store);
  fill(store, 0);
  const auto before = bytes(opt, store);
  std::thread stepper([&] { opt.step(); });
  while (parked.load() == 0)
    std::this_thread::yield();
  // The stepper is inside step(): every writing call from here is refused and changes nothing.
  CHECK_THROWS_WITH(opt.step(), Catch::Contains("another call on this optimizer is running"));
  CHECK_THROWS_AS(opt.set("lr", 0.2), steep::usage_error);
  CHECK_THROWS_AS(opt.prepare_step(), steep::usage_error);
  CHECK_THROWS_AS(opt.restore_steps(0), steep::usage_error);
  CHECK(opt.get("lr") == 0.1);
  CHECK(bytes(opt, store) == before);
  release = true;
  stepper.join();
  CHECK(opt.steps() == 1);
  CHECK(opt.step().applied()); // free again
}

TEST_CASE("robustness: step counts stay in [0, 2^53]") {
  auto store = steep::param_store<double>({ { "w", { 5 } } });
  steep::optimizer opt(rules::adam(1e-2), store);
  fill(store, 0);
  for (std::int64_t bad :
       { std::int64_t{ -1 }, steep::engine::max_steps + 1, std::numeric_limits<std::int64_t>::max() })
    CHECK_THROWS_WITH(opt.restore_steps(bad), Catch::Contains("a step count must lie in [0, 2^53]"));
  CHECK_THROWS_AS(opt.restore_steps(5, 6), steep::usage_error); // more skipped than steps
  CHECK(opt.steps() == 0);
  opt.restore_steps(steep::engine::max_steps);
  const auto before = bytes(opt, store);
  CHECK_THROWS_WITH(opt.step(), Catch::Contains("would pass the largest step count"));
  CHECK(bytes(opt, store) == before);
  CHECK(opt.steps() == steep::engine::max_steps);
}

TEST_CASE("robustness: schedules, Newton-Schulz settings and chunk sizes are checked when built") {
  using namespace steep::expr;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(inv_power(nan, 0.5), Catch::Contains("inv_power schedule: eta0 is nan"));
  CHECK_THROWS_WITH(inv_power(-0.1, 0.5), Catch::Contains("must be finite and >= 0"));
  CHECK_THROWS_WITH(inv_power(0.1, -0.5), Catch::Contains("the exponent a"));
  CHECK_THROWS_AS(constant_lr(std::numeric_limits<double>::infinity()), steep::usage_error);
  CHECK_THROWS_WITH(cosine(1e-3, 100, 1e-2), Catch::Contains("eta_min (0.010000) is above eta0"));
  CHECK_THROWS_AS(wsd(nan, 1, 2, 3), steep::usage_error);
  CHECK_NOTHROW(inv_power(0.1, 0.8));
  // A user's schedule is checked at each step, before anything is written.
  {
    auto store = steep::param_store<double>({ { "w", { 5 } } });
    steep::optimizer opt(rules::sgd(schedule([](std::int64_t t) { return t < 2 ? 0.1 : std::nan(""); })),
                         store);
    fill(store, 0);
    CHECK(opt.step().applied());
    const auto before = bytes(opt, store);
    CHECK_THROWS_WITH(opt.step(),
                      Catch::Contains("step 2: a per-step scalar of the rule") && Catch::Contains("nan"));
    CHECK(bytes(opt, store) == before);
    CHECK(opt.steps() == 1);
  }
  // Newton-Schulz: coefficients and step counts.
  auto store = steep::param_store<double>({ { "W", { 4, 3 } } });
  steep::norms::newton_schulz ns;
  ns.coefficients = { nan, -4.775, 2.0315 };
  CHECK_THROWS_WITH(steep::optimizer(rules::muon(0.02, 0.1, 0.95, ns), store),
                    Catch::Contains("coefficients of step 0") && Catch::Contains("finite and at most 100"));
  ns.coefficients = { 3.4445, 1e30, 2.0315 };
  CHECK_THROWS_AS(steep::optimizer(rules::muon(0.02, 0.1, 0.95, ns), store), steep::usage_error);
  ns = {};
  ns.steps = std::numeric_limits<int>::max();
  CHECK_THROWS_WITH(steep::optimizer(rules::muon(0.02, 0.1, 0.95, ns), store),
                    Catch::Contains("more than 100"));
  CHECK_NOTHROW(steep::optimizer(rules::muon(0.02, 0.1, 0.95, steep::norms::polar_express(8)), store));
  // Chunk sizes: steep's error type, naming the option.
  CHECK_THROWS_WITH(steep::optimizer(rules::sgd(0.1), store, { .chunk_elements = 100 }),
                    Catch::Contains("optimizer_options::chunk_elements is 100"));
  CHECK_THROWS_AS(steep::optimizer(rules::sgd(0.1), store, { .chunk_elements = 100 }), steep::usage_error);
}

TEST_CASE("robustness: a moved-from optimizer refuses every call") {
  auto store = steep::param_store<double>({ { "W", { 4, 3 } } });
  steep::optimizer a(rules::adam(1e-2), store);
  fill(store, 0);
  auto b = std::move(a);
  CHECK(b.step().applied());
  const auto moved = Catch::Contains("this optimizer was moved from");
  CHECK_THROWS_WITH(a.step(), moved);
  CHECK_THROWS_WITH(a.prepare_step(), moved);
  CHECK_THROWS_WITH(a.commit_step(), moved);
  CHECK_THROWS_WITH(a.set("lr", 0.1), moved);
  CHECK_THROWS_WITH(a.get("lr"), moved);
  CHECK_THROWS_WITH(a.hyperparameters(), moved);
  CHECK_THROWS_WITH(a.state("W", "exp_avg"), moved);
  CHECK_THROWS_WITH(a.slots(), moved);
  CHECK_THROWS_WITH(a.restore_steps(0), moved);
  CHECK(a.rule_id() == b.rule_id()); // the typed optimizer's is its type's (static), not state
  CHECK_THROWS_WITH(a.held_back(), moved);
  // Checkpoints go through the same calls: a save or a load of a moved-from optimizer is refused.
  const std::string path = "step_protocol_moved.ckpt";
  CHECK_THROWS_WITH(steep::save_checkpoint(a, store, path), moved);
  steep::save_checkpoint(b, store, path);
  CHECK_THROWS_WITH(steep::load_checkpoint(a, store, path), moved);
  std::remove(path.c_str());
  // The erased optimizer too.
  steep::any_optimizer<double> any = std::move(b);
  CHECK(any.step().applied());
  CHECK_THROWS_WITH(b.step(), moved);
}

TEST_CASE("robustness: step() says applied, held back or refused, and the counters agree") {
  auto store = steep::param_store<double>({ { "w", { 5 } } });
  fill(store, 0);
  {
    steep::optimizer opt(rules::adam(1e-2), store, { .nonfinite = steep::nonfinite_policy::skip });
    CHECK(opt.step() == steep::step_result{ step_outcome::applied });
    store.block_named("w").grad[2] = std::numeric_limits<double>::infinity();
    const auto r = opt.step();
    CHECK(r.refused());
    CHECK_FALSE(r.held_back());
    CHECK_FALSE(opt.held_back()); // nothing written, nothing held back
    CHECK(opt.steps() == 1);
    CHECK(opt.skipped_steps() == 1);
  }
  {
    steep::optimizer opt(rules::adam(1e-2), store, { .nonfinite = steep::nonfinite_policy::mask });
    const auto r = opt.step();
    CHECK(r.held_back());
    CHECK_FALSE(r);
    REQUIRE(opt.held_back());
    CHECK(opt.held_back()->index == 2);
    CHECK(opt.steps() == 1); // the step was applied: a retry would apply it twice
    CHECK(opt.skipped_steps() == 1);
    store.block_named("w").grad[2] = 0.5;
    CHECK(opt.step().applied());
    CHECK_FALSE(opt.held_back());
  }
}

TEST_CASE("robustness: rebind() points a block at other memory; the step is the same as there") {
  // A route (two parts), so the block's position inside its part is found too.
  const auto rule = rules::muon_adam();
  steep::param_store<double> a({ { "W", { 6, 4 } }, { "b", { 6 } }, { "W2", { 3, 6 } } });
  steep::param_store<double> ref({ { "W", { 6, 4 } }, { "b", { 6 } }, { "W2", { 3, 6 } } });
  fill(a, 0);
  fill(ref, 0);
  steep::optimizer opt(rule, a);
  steep::optimizer want(rule, ref);
  // W2 (block 2, the second block of Muon's arm) moves to memory of its own.
  std::vector<double> p(a.block_at(2).param, a.block_at(2).param + 18), g(18);
  opt.rebind(2, p.data(), g.data());
  for (int t = 1; t <= 3; ++t) {
    fill(a, t);
    fill(ref, t);
    std::memcpy(g.data(), a.block_at(2).grad, sizeof(double) * 18);
    opt.step();
    want.step();
  }
  CHECK(std::memcmp(p.data(), ref.block_at(2).param, sizeof(double) * 18) == 0);
  CHECK(std::memcmp(a.block_at(0).param, ref.block_at(0).param, sizeof(double) * 24) == 0);
  CHECK(std::memcmp(a.block_at(1).param, ref.block_at(1).param, sizeof(double) * 6) == 0);
  CHECK(a.block_at(2).param[0] != ref.block_at(2).param[0]); // the store's own memory was left alone
  CHECK_THROWS_WITH(opt.rebind(3, p.data(), g.data()), Catch::Contains("the store has 3 blocks"));
  CHECK_THROWS_WITH(opt.rebind(1, nullptr, g.data()), Catch::Contains("block 'b'"));
}

TEST_CASE("robustness: optimizer_options::arms sends each block to the arm given, and is checked") {
  // Muon + Adam routes W1 and W2 (hidden matrices) to Muon (arm 0) and b to Adam (arm 1); given
  // arms, Adam takes everything.
  steep::param_store<double> s({ { "W1", { 6, 4 } }, { "b", { 6 } }, { "W2", { 5, 6 } } });
  fill(s, 0);
  steep::optimizer_options o;
  CHECK(steep::optimizer(rules::muon_adam(), s, o).arm_of("W1") == 0);
  o.arms = { 1, 1, 1 };
  steep::optimizer given(rules::muon_adam(), s, o);
  CHECK(given.arm_of("W1") == 1);
  CHECK(given.arm_of("W2") == 1);
  o.arms = { 1, 1 };
  CHECK_THROWS_WITH(steep::optimizer(rules::muon_adam(), s, o),
                    Catch::Contains("2 arms for a store of 3 blocks"));
  o.arms = { 0, 5, 0 };
  CHECK_THROWS_WITH(steep::optimizer(rules::muon_adam(), s, o), Catch::Contains("block 'b'"));
}
