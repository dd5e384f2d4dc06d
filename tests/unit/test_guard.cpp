// The non-finite guard (engine/guard.hpp) on every rule of the catalogue, plain and routed: a
// NaN or Inf in any gradient refuses the step (or skips it, by policy) with parameters, every
// slot of every arm and the step counter bitwise as they were; a retry with a clean gradient
// then gives exactly what a run that never saw the bad gradient gives. Under the mask policy,
// exactly the non-finite coordinates are held back.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <steep/rules/catalogue.hpp>
#include <steep/steep.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace rules = steep::rules;
using steep::block_role;

namespace {
using T = double;

// Matrices only (Muon-style rules refuse vectors), or matrices and a bias-like vector.
steep::param_store<T> make_store(bool with_vector) {
  std::vector<steep::block_spec<T>> specs;
  steep::param_store<T> s =
    with_vector ? steep::param_store<T>({ { "W1", { 6, 4 } }, { "W2", { 5, 6 } }, { "b", { 5 } } })
                : steep::param_store<T>({ { "W1", { 6, 4 } }, { "W2", { 5, 6 } } });
  for (std::size_t k = 0; k < s.size(); ++k) {
    const auto& b = s.block_at(k);
    for (std::size_t i = 0; i < b.size; ++i)
      b.param[i] = std::sin(1.0 + 0.37 * static_cast<double>(i + 7 * k));
  }
  return s;
}

void fill_grads(steep::param_store<T>& s, int step) {
  for (std::size_t k = 0; k < s.size(); ++k) {
    const auto& b = s.block_at(k);
    for (std::size_t i = 0; i < b.size; ++i)
      b.grad[i] = std::cos(0.3 * step + 0.11 * static_cast<double>(i) + static_cast<double>(k));
  }
}

// Every parameter and every slot value of every block, as bytes.
template <class Opt>
std::map<std::string, std::vector<unsigned char>> snapshot(Opt& opt, steep::param_store<T>& s) {
  std::map<std::string, std::vector<unsigned char>> out;
  auto bytes = [](const T* p, std::size_t n) {
    std::vector<unsigned char> v(n * sizeof(T));
    std::memcpy(v.data(), p, v.size());
    return v;
  };
  for (std::size_t k = 0; k < s.size(); ++k) {
    const auto& b = s.block_at(k);
    out["param " + b.name] = bytes(b.param, b.size);
    for (const auto& slot : opt.slots()) {
      if (!opt.has_slot(b.name, slot.name))
        continue;
      if (slot.dtype == "float64") {
        auto v = opt.state(b.name, slot.name); // per element, per row or column, or one per block
        out[slot.name + " " + b.name] = bytes(v.data(), v.size());
      } else if constexpr (requires { opt.template state<steep::bfloat16>(b.name, slot.name); }) {
        auto v = opt.template state<steep::bfloat16>(b.name, slot.name);
        std::vector<unsigned char> raw(v.size() * sizeof(steep::bfloat16));
        std::memcpy(raw.data(), v.data(), raw.size());
        out[slot.name + " " + b.name] = raw;
      }
    }
  }
  return out;
}

// Two clean steps, a refused (or skipped) one with `bad` at grad[block][index], then a clean
// retry: compared with a twin that only ever saw the clean steps.
template <class Rule>
void check_rule(const Rule& rule, bool with_vector, const std::string& block, std::size_t index, double bad,
                steep::nonfinite_policy policy) {
  auto store = make_store(with_vector);
  auto twin_store = make_store(with_vector);
  steep::optimizer opt(rule, store, { .threads = 2, .chunk_elements = 64, .nonfinite = policy });
  steep::optimizer twin(rule, twin_store, { .threads = 2, .chunk_elements = 64 });
  static_assert(steep::optimizer_interface<decltype(opt)>);
  for (int t = 0; t < 2; ++t) {
    fill_grads(store, t), fill_grads(twin_store, t);
    REQUIRE(opt.step());
    twin.step();
  }
  fill_grads(store, 2), fill_grads(twin_store, 2);
  const auto before = snapshot(opt, store);
  // Some slot was captured, where the rule has state (sgd's snapshot is its parameters alone).
  REQUIRE((before.size() > store.size() || opt.slots().empty()));
  T& g = store.block_named(block).grad[index];
  const T clean = g;
  g = static_cast<T>(bad);
  if (policy == steep::nonfinite_policy::refuse) {
    try {
      opt.step();
      FAIL("a non-finite gradient was not refused");
    } catch (const steep::nonfinite_error& e) {
      CHECK(e.subject() == block);
      CHECK(e.index() == index);
      CHECK_THAT(e.what(), Catch::Contains("unchanged"));
    }
  } else {
    CHECK_FALSE(opt.step());
    CHECK(opt.skipped_steps() == 1);
  }
  CHECK(opt.steps() == 2);
  CHECK(snapshot(opt, store) == before);
  g = clean;
  REQUIRE(opt.step());
  twin.step();
  CHECK(snapshot(opt, store) == snapshot(twin, twin_store));
}

template <class Rule>
void check_all(const Rule& rule, bool with_vector) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const std::string last = with_vector ? "b" : "W2";
  for (auto policy : { steep::nonfinite_policy::refuse, steep::nonfinite_policy::skip }) {
    check_rule(rule, with_vector, "W1", 0, nan, policy);
    check_rule(rule, with_vector, "W2", 29, inf, policy);
    check_rule(rule, with_vector, last, 3, -inf, policy);
  }
}

// f(rule) for every coordinate-wise rule of the catalogue (steep/rules/catalogue.hpp): each
// coordinate steps on its own gradient entry alone.
template <class F>
void for_coordinatewise_rules(F&& f) {
  rules::for_each_catalogue_rule([&](std::string_view, const auto& rule, rules::takes) {
    using Opt = steep::optimizer<std::remove_cvref_t<decltype(rule)>, T>;
    if constexpr (requires { Opt::coordinatewise; })
      if constexpr (Opt::coordinatewise)
        f(rule);
  });
}

// nonfinite_policy::mask: a step with non-finite entries at three places leaves exactly those
// coordinates (parameter and every slot) bitwise as they were, steps every other coordinate
// exactly as a twin given finite values there does, and reports all three.
template <class Rule>
void check_mask(const Rule& rule) {
  auto store = make_store(true);
  auto twin_store = make_store(true);
  const steep::optimizer_options opts{ .threads = 2,
                                       .chunk_elements = 64,
                                       .nonfinite = steep::nonfinite_policy::mask };
  // The twin runs the same (masked) loop: the compiler may contract a * b + c into an FMA
  // differently in another loop, which would differ in the last bit.
  steep::optimizer opt(rule, store, opts);
  steep::optimizer twin(rule, twin_store, opts);
  static_assert(steep::optimizer_interface<decltype(opt)>);
  for (int t = 0; t < 2; ++t) {
    fill_grads(store, t), fill_grads(twin_store, t);
    REQUIRE(opt.step());
    CHECK_FALSE(opt.held_back());
    twin.step();
  }
  fill_grads(store, 2), fill_grads(twin_store, 2);
  const std::vector<std::pair<std::string, std::size_t>> bad_at = { { "W1", 0 }, { "W2", 29 }, { "b", 3 } };
  const double values[] = { std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                            -std::numeric_limits<double>::infinity() };
  for (std::size_t k = 0; k < bad_at.size(); ++k)
    store.block_named(bad_at[k].first).grad[bad_at[k].second] = static_cast<T>(values[k]);
  const auto before = snapshot(opt, store);
  CHECK_FALSE(opt.step());
  twin.step();
  CHECK(opt.steps() == 3);
  CHECK(opt.skipped_steps() == 1);
  const auto held = opt.held_back();
  REQUIRE(held);
  CHECK(held->block == "W1");
  CHECK(held->index == 0);
  CHECK(held->count == 3);
  const auto after = snapshot(opt, store), expected = snapshot(twin, twin_store);
  REQUIRE(after.size() == before.size());
  for (const auto& [key, bytes] : after) {
    const std::string block = key.substr(key.rfind(' ') + 1);
    const std::size_t n = store.block_named(block).size, width = bytes.size() / n;
    REQUIRE(width * n == bytes.size()); // every slot of a coordinate-wise rule is per element
    for (std::size_t i = 0; i < n; ++i) {
      const bool held_here = std::find(bad_at.begin(), bad_at.end(), std::pair{ block, i }) != bad_at.end();
      const auto& want = held_here ? before.at(key) : expected.at(key);
      INFO(key << " [" << i << "]");
      CHECK(std::memcmp(bytes.data() + i * width, want.data() + i * width, width) == 0);
    }
  }
  fill_grads(store, 3);
  CHECK(opt.step());
  CHECK_FALSE(opt.held_back());
}
} // namespace

TEST_CASE("guard: every catalogue rule refuses a non-finite gradient before writing anything") {
  // Elementwise rules, reductions, per-block and per-line slots, matrix stages and routes, as
  // steep/rules/catalogue.hpp lists them: a rule added there is checked here.
  rules::for_each_catalogue_rule([](std::string_view name, const auto& rule, rules::takes blocks) {
    INFO(name);
    check_all(rule, blocks == rules::takes::any);
  });
}

TEST_CASE("every catalogue rule: 1, 2 and 8 threads give the same bits, typed or behind any_optimizer") {
  // The equivalence suite's thread and buffer laws (test_equivalence.cpp) for each rule of
  // steep/rules/catalogue.hpp, routes included: a rule added there is checked here. Small chunks
  // (64 entries) split every block, so the threads share blocks, rows and reductions.
  rules::for_each_catalogue_rule([](std::string_view name, const auto& rule, rules::takes blocks) {
    INFO(name);
    const bool vectors = blocks == rules::takes::any;
    std::map<std::string, std::vector<unsigned char>> first;
    // Three steps of `opt` over `store`, then every parameter and slot byte, against the first run.
    auto check = [&](auto& opt, steep::param_store<T>& store, const std::string& what) {
      for (int t = 0; t < 3; ++t) {
        fill_grads(store, t);
        REQUIRE(opt.step());
      }
      const auto now = snapshot(opt, store);
      if (first.empty())
        first = now;
      INFO(what);
      CHECK(now == first);
    };
    for (int threads : { 1, 2, 8 }) {
      const steep::optimizer_options o{ .threads = threads, .chunk_elements = 64 };
      auto typed_store = make_store(vectors);
      steep::optimizer typed(rule, typed_store, o);
      check(typed, typed_store, std::to_string(threads) + " threads");
      auto erased_store = make_store(vectors);
      steep::any_optimizer<T> any = steep::optimizer(rule, erased_store, o);
      check(any, erased_store, std::to_string(threads) + " threads, any_optimizer");
    }
  });
}

TEST_CASE("guard: mask holds back exactly the non-finite coordinates, in the update pass") {
  for_coordinatewise_rules([](const auto& rule) { check_mask(rule); });
  check_mask(steep::route(steep::on_name("b") >> rules::lion(1e-2), steep::otherwise >> rules::adam(1e-2)));
  auto store = make_store(true);
  const steep::optimizer_options mask{ .nonfinite = steep::nonfinite_policy::mask };
  auto message = Catch::Contains("needs a rule in which every coordinate steps on its own gradient");
  CHECK_THROWS_WITH(steep::optimizer(rules::adam_mini(1e-2), store, mask), message);
  CHECK_THROWS_WITH(steep::optimizer(rules::normalized_gd(1e-2), store, mask), message);
  CHECK_THROWS_WITH(steep::optimizer(rules::muon_adam(), store, mask), message);
  steep::optimizer opt(rules::adam(1e-2), store, mask);
  CHECK_THAT(opt.describe(), Catch::Contains("non-finite guard: per coordinate, fused into the update pass"));
}

TEST_CASE("guard: rules with reductions and matrix stages refuse in their read-only pass") {
  using namespace steep::expr;
  // Reductions (no state of their own: a momentum slot makes the snapshot meaningful).
  check_all(-0.1 * dual<steep::norms::l2>(ema<"m">(grad, 0.9)), true);
  check_all(-0.1 * ema<"m">(grad, 0.9) / norm2(grad), true);
  // (The catalogue's, adamuon's reduction after the matrix phase and normuon's per-row slot and
  // reductions of depth 1 and 2 among them: the test above.) A rule whose first read-only pass is a line pass
  // checks there, not in a pass of its own.
  auto store = make_store(false);
  CHECK_THAT(steep::optimizer(rules::adam_mini_sliced(1e-2, 2, 3), store).describe(),
             Catch::Contains("non-finite guard: fused into the line reduction pass"));
  CHECK_THAT(steep::optimizer(rules::scion_colnorm(0.02), store).describe(),
             Catch::Contains("non-finite guard: fused into the line reduction pass"));
}

TEST_CASE("guard: a routed rule refuses for every arm at once, and a retry applies no arm twice") {
  // (The catalogue's routes: the first test.)
  check_all(steep::route(steep::on_name("W2") >> rules::muon(0.02), steep::otherwise >> rules::signum(0.01)),
            true);
}

TEST_CASE("guard: the plain and type-erased optimizers offer the same interface") {
  auto store = make_store(true);
  auto any =
    steep::make_any_optimizer(rules::adam(1e-2), store, { .nonfinite = steep::nonfinite_policy::skip });
  static_assert(steep::optimizer_interface<steep::any_optimizer<T>>);
  fill_grads(store, 0);
  store.block_named("b").grad[1] = std::numeric_limits<T>::quiet_NaN();
  CHECK_FALSE(any->step());
  CHECK(any->skipped_steps() == 1);
  CHECK(any->steps() == 0);
  CHECK(any->state("W1", "exp_avg")(0, 0) == 0.0);
  CHECK(any->has("lr")); // every catalogue rule names its learning rate
  CHECK(any->get("lr") == Approx(1e-2));
  CHECK(any->has_slot("W1", "exp_avg_sq"));
  any->set_threads(1);
  CHECK(any->threads() == 1);
  // The guard's own pass reads the gradient: 8 bytes per parameter in float64, 4 in float32.
  CHECK_THAT(any->describe(), Catch::Contains("non-finite guard: a read-only pass of its own (8 bytes per "
                                              "parameter in float64), skips the step"));
  steep::param_store<float> floats({ { "b", { 3 } } });
  CHECK_THAT(
    steep::optimizer(rules::adam(1e-2f), floats).describe(),
    Catch::Contains("non-finite guard: a read-only pass of its own (4 bytes per parameter in float32)"));
}

TEST_CASE("guard: policy off runs the step as the arithmetic says, and describe() tells") {
  auto store = make_store(true);
  steep::optimizer opt(rules::adam(1e-2), store, { .nonfinite = steep::nonfinite_policy::off });
  fill_grads(store, 0);
  store.block_named("b").grad[1] = std::numeric_limits<T>::quiet_NaN();
  CHECK(opt.step());
  CHECK(std::isnan(store.block_named("b").param[1]));
  CHECK(store.block_named("b").param[0] == store.block_named("b").param[0]);
  CHECK_THAT(opt.describe(), Catch::Contains("non-finite guard: off"));
}

TEST_CASE("guard: the error names the block, the index in its shape, and the value") {
  auto store = make_store(true);
  steep::optimizer opt(rules::muon_adam(), store);
  fill_grads(store, 0);
  store.block_named("W2").grad[13] = -std::numeric_limits<T>::infinity();
  CHECK_THROWS_WITH(opt.step(), Catch::Contains("block 'W2'") && Catch::Contains("-Inf at flat index 13") &&
                                  Catch::Contains("index (2, 1) of shape (5, 6)"));
}

namespace {
// float32 Adam with |g| = 3e19 at one coordinate: v = (1 - b2) g^2 overflows to +Inf from
// finite inputs. That coordinate keeps its parameter and state, the rest steps exactly as a
// twin given an ordinary gradient there, and the step says so.
template <class Rule>
void check_overflow(const Rule& rule, steep::nonfinite_policy policy, const std::string& slot) {
  using F = float;
  auto make = [] {
    steep::param_store<F> s({ { "W1", { 6, 4 } }, { "W2", { 5, 6 } }, { "b", { 5 } } });
    for (std::size_t k = 0; k < s.size(); ++k)
      for (std::size_t i = 0; i < s.block_at(k).size; ++i) {
        s.block_at(k).param[i] = std::sin(1.0f + 0.37f * static_cast<F>(i + 7 * k));
        s.block_at(k).grad[i] = std::cos(0.11f * static_cast<F>(i) + static_cast<F>(k));
      }
    return s;
  };
  auto store = make(), twin_store = make();
  const steep::optimizer_options opts{ .threads = 2, .chunk_elements = 64, .nonfinite = policy };
  steep::optimizer opt(rule, store, opts), twin(rule, twin_store, opts);
  REQUIRE(opt.step());
  REQUIRE(twin.step());
  auto& b = store.block_named("b");
  const F p_before = b.param[2];
  const F m_before = opt.state("b", slot)(2);
  b.grad[2] = 3e19f;
  CHECK_FALSE(opt.step());
  CHECK(twin.step());
  CHECK(opt.skipped_steps() == 1);
  CHECK(opt.steps() == 2);
  const auto held = opt.held_back();
  REQUIRE(held);
  CHECK(held->block == "b");
  CHECK(held->index == 2);
  CHECK(held->count == 1);
  CHECK(held->output == slot);
  CHECK(held->value == std::numeric_limits<double>::infinity());
  CHECK_THAT(steep::engine::describe_held_back(*held),
             Catch::Contains("its new " + slot + " would be +Inf") && Catch::Contains("block 'b'"));
  CHECK(std::memcmp(&b.param[2], &p_before, sizeof(F)) == 0);
  const F m_after = opt.state("b", slot)(2);
  CHECK(std::memcmp(&m_after, &m_before, sizeof(F)) == 0);
  for (std::size_t k = 0; k < store.size(); ++k)
    for (std::size_t i = 0; i < store.block_at(k).size; ++i)
      if (!(k == 2 && i == 2)) {
        INFO(store.block_at(k).name << " [" << i << "]");
        CHECK(store.block_at(k).param[i] == twin_store.block_at(k).param[i]);
      }
  b.grad[2] = 0.5f;
  CHECK(opt.step());
  CHECK_FALSE(opt.held_back());
  CHECK(std::isfinite(b.param[2]));
}
} // namespace

TEST_CASE("guard: a value that would overflow its float32 storage is held back and reported") {
  for (auto policy :
       { steep::nonfinite_policy::refuse, steep::nonfinite_policy::skip, steep::nonfinite_policy::mask })
    check_overflow(rules::adam(1e-2f), policy, "exp_avg_sq");
  check_overflow(rules::adamw(1e-2f), steep::nonfinite_policy::refuse, "exp_avg_sq");
  check_overflow(rules::rmsprop(1e-2f), steep::nonfinite_policy::refuse, "square_avg");
  check_overflow(rules::muon_adam(), steep::nonfinite_policy::refuse, "exp_avg_sq");
  auto store = steep::param_store<float>({ { "b", { 5 } } });
  steep::optimizer opt(rules::adam(1e-2f), store, { .nonfinite = steep::nonfinite_policy::off });
  store.block_named("b").grad[1] = 3e19f;
  CHECK(opt.step()); // off: no check, v is +Inf and that coordinate never moves again
  CHECK(opt.state("b", "exp_avg_sq")(1) == std::numeric_limits<float>::infinity());
}

TEMPLATE_TEST_CASE("guard: the read-only check finds a non-finite entry at any position", "", float, double) {
  // all_finite reads a range as four quarters in lockstep plus a remainder; every position of
  // every part, for lengths around the batch width and offsets that misalign the range.
  constexpr std::size_t w = steep::kernel::batch<TestType>::size;
  const TestType bad[] = { std::numeric_limits<TestType>::quiet_NaN(),
                           std::numeric_limits<TestType>::infinity(),
                           -std::numeric_limits<TestType>::infinity() };
  for (std::size_t begin : { std::size_t(0), std::size_t(3) })
    for (std::size_t n = 0; n <= 9 * w + 3; ++n) {
      std::vector<TestType> g(begin + n, TestType(-1.5));
      CHECK(steep::kernel::all_finite(g.data(), begin, begin + n));
      for (std::size_t k = 0; k < n; ++k)
        for (TestType x : bad) {
          g[begin + k] = x;
          if (steep::kernel::all_finite(g.data(), begin, begin + n))
            FAIL("missed " << x << " at " << k << " of " << n << " entries from " << begin);
          g[begin + k] = TestType(-1.5);
        }
      // Entries outside [begin, end) are not read as part of it.
      if (begin > 0) {
        g[0] = bad[0];
        CHECK(steep::kernel::all_finite(g.data(), begin, begin + n));
      }
    }
}
