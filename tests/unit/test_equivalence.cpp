// Every catalogue rule against its naive per-element reference loop (reference.hpp), in float64:
// block sizes 0, 1, 15, 16, 17 and 1000003 in one store (empty blocks, scalar-only blocks, one
// full batch, a batch plus tails, many chunks); 1, 2 and 8 threads bitwise equal; unaligned
// external buffers bitwise equal to the arena (docs/testing.md).

#include "bits.hpp"
#include "reference.hpp"

#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <span>
#include <steep/steep.hpp>
#include <string>
#include <vector>

namespace {

const std::vector<std::size_t> block_sizes{ 0, 1, 15, 16, 17, 1000003 };
constexpr int steps = 5;

std::vector<std::vector<double>> initial_params() {
  std::mt19937_64 rng(42);
  std::normal_distribution<double> n(0.0, 0.5);
  std::vector<std::vector<double>> out;
  for (auto s : block_sizes) {
    std::vector<double> v(s);
    for (auto& x : v)
      x = n(rng);
    out.push_back(v);
  }
  return out;
}

// Gradients of step t: normal, scaled per step, ~10% exact zeros at t = 3 unless `no_zeros`.
std::vector<std::vector<double>> gradients(int t, bool no_zeros) {
  std::mt19937_64 rng(1000 + t);
  std::normal_distribution<double> n(0.0, t % 2 ? 1.0 : 0.01);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<std::vector<double>> out;
  for (auto s : block_sizes) {
    std::vector<double> v(s);
    for (auto& x : v)
      x = (!no_zeros && t == 3 && u(rng) < 0.1) ? 0.0 : n(rng);
    out.push_back(v);
  }
  return out;
}

struct result {
  std::vector<std::vector<double>> params;
  std::vector<std::vector<std::vector<double>>> slots; // [slot][block][i]
};

template <class Rule>
result run_steep(const Rule& rule, int threads, bool external, bool no_zeros,
                 const std::vector<std::string>& slots) {
  auto init = initial_params();
  // External buffers start one double past a 64-byte boundary: misaligned for every vector width.
  std::vector<std::vector<double>> ext_p(block_sizes.size()), ext_g(block_sizes.size());
  std::vector<steep::block_spec<double>> specs;
  for (std::size_t b = 0; b < block_sizes.size(); ++b) {
    const std::string name = "b" + std::to_string(b);
    if (external) {
      ext_p[b].assign(block_sizes[b] + 9, 0.0);
      ext_g[b].assign(block_sizes[b] + 9, 0.0);
      auto *p = ext_p[b].data() + 1, *g = ext_g[b].data() + 1;
      specs.emplace_back(name, steep::shape_t{ block_sizes[b] }, std::span(p, block_sizes[b]),
                         std::span(g, block_sizes[b]));
    } else {
      specs.emplace_back(name, steep::shape_t{ block_sizes[b] });
    }
  }
  steep::param_store<double> store(std::move(specs));
  for (std::size_t b = 0; b < block_sizes.size(); ++b)
    std::copy(init[b].begin(), init[b].end(), store.block_at(b).param);
  steep::optimizer opt(rule, store, { .threads = threads });
  for (int t = 1; t <= steps; ++t) {
    auto g = gradients(t, no_zeros);
    for (std::size_t b = 0; b < block_sizes.size(); ++b)
      std::copy(g[b].begin(), g[b].end(), store.block_at(b).grad);
    opt.step();
  }
  result r;
  for (std::size_t b = 0; b < block_sizes.size(); ++b)
    r.params.emplace_back(store.block_at(b).param, store.block_at(b).param + block_sizes[b]);
  for (auto& s : slots) {
    r.slots.emplace_back();
    for (std::size_t b = 0; b < block_sizes.size(); ++b) {
      auto view = opt.state("b" + std::to_string(b), s);
      r.slots.back().emplace_back(view.begin(), view.end());
    }
  }
  return r;
}

template <class Ref>
ref::model run_reference(Ref reference, bool no_zeros) {
  auto init = initial_params();
  ref::model m(block_sizes.size());
  for (std::size_t b = 0; b < block_sizes.size(); ++b)
    m[b].p = init[b];
  for (int t = 1; t <= steps; ++t) {
    auto g = gradients(t, no_zeros);
    for (std::size_t b = 0; b < block_sizes.size(); ++b)
      m[b].g = g[b];
    reference(t, m);
  }
  return m;
}

double max_rel_error(const std::vector<double>& a, const std::vector<double>& b) {
  double e = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    e = std::max(e, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
  return e;
}

// (An empty block's vector has no data(): memcmp on it would be undefined, so sizes go first.)
bool same_bits(const std::vector<double>& x, const std::vector<double>& y) {
  return x.size() == y.size() &&
         (x.empty() || std::memcmp(x.data(), y.data(), x.size() * sizeof(double)) == 0);
}

bool bitwise_equal(const result& a, const result& b) {
  for (std::size_t k = 0; k < a.params.size(); ++k)
    if (!same_bits(a.params[k], b.params[k]))
      return false;
  for (std::size_t s = 0; s < a.slots.size(); ++s)
    for (std::size_t k = 0; k < a.slots[s].size(); ++k)
      if (!same_bits(a.slots[s][k], b.slots[s][k]))
        return false;
  return true;
}

template <class Rule, class Ref>
void check_rule(const Rule& rule, Ref reference, std::vector<std::string> slots, bool no_zeros = false) {
  const auto one = run_steep(rule, 1, false, no_zeros, slots);
  steep_test::bits fingerprint;
  for (const auto& p : one.params)
    fingerprint.add(p.data(), p.size() * sizeof(double));
  for (const auto& slot : one.slots)
    for (const auto& v : slot)
      fingerprint.add(v.data(), v.size() * sizeof(double));
  fingerprint.print(Catch::getResultCapture().getCurrentTestName());
  const auto m = run_reference(reference, no_zeros);
  for (std::size_t b = 0; b < block_sizes.size(); ++b) {
    INFO("block of " << block_sizes[b] << " elements");
    CHECK(max_rel_error(one.params[b], m[b].p) <= 1e-12);
    for (std::size_t s = 0; s < slots.size(); ++s) {
      INFO("slot " << slots[s]);
      ref::block blk = m[b];
      CHECK(max_rel_error(one.slots[s][b], blk.slot(slots[s])) <= 1e-12);
    }
  }
  SECTION("1, 2 and 8 threads and unaligned external buffers give bitwise the same result") {
    CHECK(bitwise_equal(one, run_steep(rule, 2, false, no_zeros, slots)));
    CHECK(bitwise_equal(one, run_steep(rule, 8, false, no_zeros, slots)));
    CHECK(bitwise_equal(one, run_steep(rule, 2, true, no_zeros, slots)));
  }
}

} // namespace

using namespace steep::rules;

TEST_CASE("sgd matches its reference loop") { check_rule(sgd(0.1), ref::sgd(0.1), {}); }
TEST_CASE("momentum matches its reference loop") {
  check_rule(momentum(0.05, 0.9), ref::momentum(0.05, 0.9, false), { "momentum_buffer" });
}
TEST_CASE("nesterov matches its reference loop") {
  check_rule(nesterov(0.05, 0.9), ref::momentum(0.05, 0.9, true), { "momentum_buffer" });
}
TEST_CASE("adam matches its reference loop") {
  check_rule(adam(0.01, 0.9, 0.999, 1e-8), ref::adam(0.01, 0.9, 0.999, 1e-8), { "exp_avg", "exp_avg_sq" });
}
TEST_CASE("adam with eps = 0 matches its reference loop") {
  check_rule(adam_eps0(0.01, 0.9, 0.999), ref::adam(0.01, 0.9, 0.999, 0.0), { "exp_avg", "exp_avg_sq" },
             true);
}
TEST_CASE("amsgrad matches its reference loop") {
  check_rule(amsgrad(0.01, 0.9, 0.999, 1e-8), ref::adam(0.01, 0.9, 0.999, 1e-8, 0.0, true),
             { "exp_avg", "exp_avg_sq", "max_exp_avg_sq" });
}
TEST_CASE("adamw matches its reference loop") {
  check_rule(adamw(0.01, 0.9, 0.999, 1e-8, 0.1), ref::adam(0.01, 0.9, 0.999, 1e-8, 0.1),
             { "exp_avg", "exp_avg_sq" });
}
TEST_CASE("rmsprop matches its reference loop") {
  check_rule(rmsprop(0.01, 0.99, 1e-8), ref::rmsprop(0.01, 0.99, 1e-8), { "square_avg" });
}
TEST_CASE("adagrad matches its reference loop") {
  check_rule(adagrad(0.01, 1e-10), ref::adagrad(0.01, 1e-10), { "sum" });
}
TEST_CASE("signum matches its reference loop") {
  check_rule(signum(0.01, 0.9), ref::signum(0.01, 0.9), { "momentum_buffer" });
}
TEST_CASE("lion matches its reference loop") {
  check_rule(lion(0.001, 0.9, 0.99, 0.1), ref::lion(0.001, 0.9, 0.99, 0.1), { "exp_avg" });
}
TEST_CASE("normalized gd (one global norm) matches its reference loop") {
  check_rule(normalized_gd(0.1), ref::normalized_gd(0.1, false), {});
}
TEST_CASE("normalized gd per block matches its reference loop") {
  check_rule(normalized_gd_per_block(0.1), ref::normalized_gd(0.1, true), {}, true);
}
TEST_CASE("optax adam and nadamw match their reference loops") {
  check_rule(adam_optax(0.01, 0.9, 0.999, 1e-8, 0.0, 0.1),
             ref::nadamw_optax(0.01, 0.9, 0.999, 1e-8, 0.1, false), { "mu", "nu" });
  check_rule(nadamw_optax(0.01, 0.9, 0.999, 1e-8, 0.0, 0.1),
             ref::nadamw_optax(0.01, 0.9, 0.999, 1e-8, 0.1, true), { "mu", "nu" });
}
