// steep-bench: steep's generated update loops against hand-written fused loops and the memory
// roof, for one big tensor and for the same parameters cut into 200 tensors.
//
//   steep-bench                                        # the default grid (below), float32
//   steep-bench --dtype float64 --sizes 1048576 --threads 1,2 --out r.json
//   steep-bench --rules adam --sizes 268435456 --sequential-layouts   # one rule, big sizes
//   steep-bench --quick                                # smoke test: tiny sizes (ctest)
//
// What is timed (one optimizer step = one sample), for each rule of adam, adamw, lion, signum and
// momentum (SGD with heavy-ball momentum):
//   steep_noguard   steep::optimizer's generated loop with the non-finite guard off: the loop
//                   a hand-written kernel is compared with;
//   handwritten     a fused xsimd + TBB loop written by hand (bench/handwritten.hpp), checked
//                   against steep on the same inputs before anything is timed;
//   handwritten_copy  a second, identical copy of that loop: copy / handwritten is the noise
//                   floor of the ratios, shown next to them;
//   and for adam: steep (the default guard, nonfinite_policy::refuse) and steep_mask, whose
//   times over steep_noguard are the guard's cost; adam_bf16 (bfloat16 moments, float32 only);
//   the rooflines 4r3w (Adam's stream mix), 3r2w (Lion, Signum, momentum) and 2r1w+2h
//   (adam_bf16): the same loads and stores with no arithmetic, the ceiling of any such update.
// Each in two layouts: one tensor of n parameters, and 200 tensors of n/200 (a model's many
// small tensors, the case steep's flat work list exists for).
//
// Why the harness looks the way it does (harness.hpp): bandwidth on the project's VMs drifts by
// up to 2x between minutes, so every variant of one (size, threads) setting is timed
// interleaved in one process, in an order rotated every round; ratios are taken per round, and
// their median is reported. A fresh 4 KiB page costs ~10 us to fault in, so every buffer is
// allocated and touched up front, and the hand-written loops and rooflines run on the steep
// optimizers' own state arrays. Small sizes time more steps per round, so a round lasts long
// enough for the clock. Where two layouts do not fit in memory together, they run one after the
// other (the many/one ratios are then not interleaved, and say so).

// steep first: its xsimd_fence.hpp must be the first to include <immintrin.h> (TBB's headers
// include it too) for GCC 12's false AVX-512 -Wuninitialized (PR105593) to stay silenced.
// clang-format off
#include <steep/steep.hpp> // first: see xsimd_fence.hpp
#include "handwritten.hpp"
#include "harness.hpp"
// clang-format on

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace steep::bench;

// ---- the rules under test, with their hyperparameters ----------------------------------------

constexpr double adam_lr = 1e-3, adam_b1 = 0.9, adam_b2 = 0.999, adam_eps = 1e-8, adamw_wd = 0.01;
constexpr double lion_lr = 1e-4, lion_b1 = 0.9, lion_b2 = 0.99;
constexpr double signum_lr = 1e-3, signum_beta = 0.9, momentum_lr = 1e-3, momentum_mu = 0.9;

template <class T>
auto adam_rule() {
  return steep::rules::adam(T(adam_lr), adam_b1, adam_b2, adam_eps);
}
template <class T>
auto adamw_rule() {
  return steep::rules::adamw(T(adam_lr), adam_b1, adam_b2, adam_eps, adamw_wd);
}
template <class T>
auto lion_rule() {
  return steep::rules::lion(T(lion_lr), lion_b1, lion_b2);
}
template <class T>
auto signum_rule() {
  return steep::rules::signum(T(signum_lr), signum_beta);
}
template <class T>
auto momentum_rule() {
  return steep::rules::momentum(T(momentum_lr), momentum_mu);
}

const std::vector<std::string> all_rules = { "adam", "adamw", "lion", "signum", "momentum" };

template <class T, class Rule>
using opt_of = steep::optimizer<Rule, T>;
template <class T>
using adam_opt = opt_of<T, decltype(adam_rule<T>())>;
template <class T>
using adamw_opt = opt_of<T, decltype(adamw_rule<T>())>;
template <class T>
using lion_opt = opt_of<T, decltype(lion_rule<T>())>;
template <class T>
using signum_opt = opt_of<T, decltype(signum_rule<T>())>;
template <class T>
using momentum_opt = opt_of<T, decltype(momentum_rule<T>())>;
using adam_bf16_opt = opt_of<float, decltype(steep::rules::adam_bf16(float(adam_lr)))>;

// The hand-written step of rule `name` at step t over `chunks` (Copy: which identical copy).
template <int Copy, class T>
void handwritten_step(const std::string& name, oneapi::tbb::task_arena& arena,
                      const std::vector<hw::streams<T>>& chunks, std::int64_t t) {
  if (name == "adam" || name == "adamw") {
    const bool decoupled = name == "adamw";
    const auto s = hw::adam_step<T>(adam_lr, adam_b1, adam_b2, adam_eps, decoupled ? adamw_wd : 0.0, t);
    if (decoupled)
      hw::run(arena, chunks, [&](const hw::streams<T>& c) { hw::adam_like<Copy, true>(c, s); });
    else
      hw::run(arena, chunks, [&](const hw::streams<T>& c) { hw::adam_like<Copy, false>(c, s); });
  } else if (name == "lion") {
    const hw::ema_scalars<T> s{
      T(lion_b1), T(1.0 - lion_b1), T(lion_b2), T(1.0 - lion_b2), T(-lion_lr), T(0)
    };
    hw::run(arena, chunks, [&](const hw::streams<T>& c) { hw::lion<Copy>(c, s); });
  } else if (name == "signum") {
    const hw::ema_scalars<T> s{ T(signum_beta), T(1.0 - signum_beta), T(0), T(0), T(-signum_lr), T(0) };
    hw::run(arena, chunks, [&](const hw::streams<T>& c) { hw::signum<Copy>(c, s); });
  } else {
    const hw::ema_scalars<T> s{ T(momentum_mu), T(0), T(0), T(0), T(-momentum_lr), T(0) };
    hw::run(arena, chunks, [&](const hw::streams<T>& c) { hw::momentum<Copy>(c, s); });
  }
}

// ---- data ------------------------------------------------------------------------------------

// Deterministic, cheap values: parameters in [-1, 1], gradients of magnitude in [0.01, 0.1]
// so that g^2 and the EMAs stay far from denormals (which would time the FPU, not memory).
float unit_hash(std::uint64_t i, std::uint64_t salt) {
  std::uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ salt;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return static_cast<float>(x >> 40) / static_cast<float>(1ull << 24); // [0, 1)
}

template <class T>
void fill_inputs(steep::param_store<T>& store) {
  std::uint64_t k = 0;
  for (const auto& b : store.blocks())
    for (std::size_t i = 0; i < b.size; ++i, ++k) {
      b.param[i] = T(2.f * unit_hash(k, 1) - 1.f);
      const float mag = 0.01f + 0.09f * unit_hash(k, 2);
      b.grad[i] = T(unit_hash(k, 3) < 0.5f ? -mag : mag);
    }
}

// "w<b>". Built by appending: GCC 12 reports a false -Werror=restrict for "w" + std::to_string(b)
// (GCC PR105651).
std::string block_name(std::size_t b) {
  std::string s = "w";
  s += std::to_string(b);
  return s;
}

// n elements as `tensors` blocks of (almost) equal size: the first n % tensors get one more.
template <class T>
std::vector<steep::block_spec<T>> block_specs(std::size_t n, std::size_t tensors) {
  std::vector<steep::block_spec<T>> specs;
  for (std::size_t b = 0; b < tensors; ++b)
    specs.emplace_back(block_name(b), steep::shape_t{ n / tensors + (b < n % tensors ? 1 : 0) });
  return specs;
}

// The state arrays of one rule's optimizer, block by block, as hand-written streams.
template <class T, class Opt>
std::vector<hw::streams<T>> streams_of(Opt& opt, steep::param_store<T>& store, const char* s0,
                                       const char* s1) {
  std::vector<hw::streams<T>> out;
  for (const auto& b : store.blocks())
    out.push_back(
      { b.param, b.grad, opt.state(b.name, s0).data(), s1 ? opt.state(b.name, s1).data() : nullptr, b.size });
  return out;
}

// What a rule keeps per parameter besides p and g, by name: its state slots.
const char* first_slot(const std::string& rule) {
  return rule == "adam" || rule == "adamw" || rule == "lion" ? "exp_avg" : "momentum_buffer";
}
const char* second_slot(const std::string& rule) {
  return rule == "adam" || rule == "adamw" ? "exp_avg_sq" : nullptr;
}

// ---- correctness check -----------------------------------------------------------------------

// max |a - b| / max |a| over one array (normwise: elementwise relative error is meaningless for
// parameters that pass near zero). NaN anywhere makes it NaN, which fails the check.
template <class T>
double normwise_error(const T* a, const T* b, std::size_t n) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (d != d)
      return d;
    diff = std::max(diff, d);
    scale = std::max(scale, std::fabs(static_cast<double>(a[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

// One rule: steep on one store, the hand-written loop on an identical copy with its own state,
// `steps` steps each, over layouts with chunk edges and SIMD tails inside blocks.
template <class T, class Opt, class Rule>
bool check_rule(const std::string& name, const Rule& rule, int threads) {
  const double tolerance = std::is_same_v<T, float> ? 2e-6 : 1e-13;
  constexpr int steps = 5;
  oneapi::tbb::task_arena arena(threads);
  bool ok = true;
  for (const auto& sizes :
       std::vector<std::vector<std::size_t>>{ { 100003 }, { 16384, 16385, 7, 40000, 1 } }) {
    std::vector<steep::block_spec<T>> specs;
    for (std::size_t b = 0; b < sizes.size(); ++b)
      specs.emplace_back(block_name(b), steep::shape_t{ sizes[b] });
    steep::param_store<T> a(specs), h(specs);
    fill_inputs(a);
    fill_inputs(h);
    Opt opt(rule, a, { .threads = threads, .nonfinite = steep::nonfinite_policy::off });
    std::vector<std::vector<T>> s0(sizes.size()), s1(sizes.size());
    std::vector<hw::streams<T>> blocks;
    for (std::size_t b = 0; b < sizes.size(); ++b) {
      s0[b].assign(sizes[b], T(0));
      s1[b].assign(sizes[b], T(0));
      const auto& hb = h.block_at(b);
      blocks.push_back({ hb.param, hb.grad, s0[b].data(), s1[b].data(), sizes[b] });
    }
    const auto chunks = hw::make_chunks(blocks);
    for (int t = 1; t <= steps; ++t) {
      opt.step();
      handwritten_step<0, T>(name, arena, chunks, t);
    }
    double err = 0;
    for (std::size_t b = 0; b < sizes.size(); ++b) {
      const auto& ab = a.block_at(b);
      err = std::max(err, normwise_error(ab.param, h.block_at(b).param, sizes[b]));
      err =
        std::max(err, normwise_error(opt.state(ab.name, first_slot(name)).data(), s0[b].data(), sizes[b]));
      if (const char* second = second_slot(name))
        err = std::max(err, normwise_error(opt.state(ab.name, second).data(), s1[b].data(), sizes[b]));
    }
    const bool pass = err <= tolerance;
    std::printf(
      "check: hand-written vs steep %-8s %zu block(s), %d steps, %d thread(s): rel. error %.2e -> %s\n",
      name.c_str(), sizes.size(), steps, threads, err, pass ? "ok" : "FAILED");
    ok = ok && pass;
  }
  return ok;
}

template <class T>
bool check_all(const std::vector<std::string>& rules, int threads) {
  bool ok = true;
  for (const auto& r : rules) {
    if (r == "adam")
      ok = check_rule<T, adam_opt<T>>(r, adam_rule<T>(), threads) && ok;
    else if (r == "adamw")
      ok = check_rule<T, adamw_opt<T>>(r, adamw_rule<T>(), threads) && ok;
    else if (r == "lion")
      ok = check_rule<T, lion_opt<T>>(r, lion_rule<T>(), threads) && ok;
    else if (r == "signum")
      ok = check_rule<T, signum_opt<T>>(r, signum_rule<T>(), threads) && ok;
    else
      ok = check_rule<T, momentum_opt<T>>(r, momentum_rule<T>(), threads) && ok;
  }
  return ok;
}

// The roofline of Adam with bfloat16 moments: p, g in float32, m, v in 16 bits; read all four,
// write p, m, v (20 B/param), no arithmetic worth the name; m and v are xor-ed with 0.
struct stream_block16 {
  float* p;
  const float* g;
  std::uint16_t* m;
  std::uint16_t* v;
  std::size_t n;
};

void roofline16_chunk(const stream_block16& c, float zero) {
  using VF = xsimd::batch<float>;
  using VH = xsimd::batch<std::uint16_t>;
  static_assert(VH::size == 2 * VF::size);
  const VF z(zero);
  const VH zb(static_cast<std::uint16_t>(zero));
  std::size_t i = 0;
  for (; i + VH::size <= c.n; i += VH::size) {
    for (std::size_t h = 0; h < 2; ++h) {
      const std::size_t j = i + h * VF::size;
      (VF::load_unaligned(c.p + j) + VF::load_unaligned(c.g + j) * z).store_unaligned(c.p + j);
    }
    (VH::load_unaligned(c.m + i) ^ zb).store_unaligned(c.m + i);
    (VH::load_unaligned(c.v + i) ^ zb).store_unaligned(c.v + i);
  }
  for (; i < c.n; ++i) {
    c.p[i] = c.p[i] + c.g[i] * zero;
    c.m[i] = static_cast<std::uint16_t>(c.m[i] ^ static_cast<std::uint16_t>(zero));
    c.v[i] = static_cast<std::uint16_t>(c.v[i] ^ static_cast<std::uint16_t>(zero));
  }
}

// ---- one layout ------------------------------------------------------------------------------

// One layout of one size: the store, the steep optimizers of the selected rules bound to it, and
// the hand-written views of their state. Everything is allocated and first-touched here.
template <class T>
struct layout {
  std::size_t params, tensors;
  steep::param_store<T> store;
  std::optional<adam_opt<T>> adam, adam_guarded, adam_masked;
  std::optional<adamw_opt<T>> adamw;
  std::optional<lion_opt<T>> lion;
  std::optional<signum_opt<T>> signum;
  std::optional<momentum_opt<T>> momentum;
  std::optional<adam_bf16_opt> adam_bf16;
  std::map<std::string, std::vector<hw::streams<T>>> chunks; // per rule, over its optimizer's state
  std::vector<stream_block16> chunks16;                      // over adam_bf16's slots
  std::map<std::string, std::int64_t> handwritten_t;

  layout(std::size_t n, std::size_t t, int threads, const std::set<std::string>& rules, bool guard)
    : params(n)
    , tensors(t)
    , store(block_specs<T>(n, t)) {
    const steep::optimizer_options off{ .threads = threads, .nonfinite = steep::nonfinite_policy::off };
    auto has = [&](const char* r) { return rules.count(r) > 0; };
    if (has("adam")) {
      adam.emplace(adam_rule<T>(), store, off);
      chunks["adam"] = hw::make_chunks(streams_of(*adam, store, first_slot("adam"), second_slot("adam")));
      if (guard) {
        adam_guarded.emplace(adam_rule<T>(), store, steep::optimizer_options{ .threads = threads });
        adam_masked.emplace(
          adam_rule<T>(), store,
          steep::optimizer_options{ .threads = threads, .nonfinite = steep::nonfinite_policy::mask });
        if constexpr (std::is_same_v<T, float>) {
          adam_bf16.emplace(steep::rules::adam_bf16(float(adam_lr)), store,
                            steep::optimizer_options{ .threads = threads });
          for (const auto& b : store.blocks()) {
            auto* m = reinterpret_cast<std::uint16_t*>(
              adam_bf16->template state<steep::bfloat16>(b.name, "exp_avg").data());
            auto* v = reinterpret_cast<std::uint16_t*>(
              adam_bf16->template state<steep::bfloat16>(b.name, "exp_avg_sq").data());
            const std::size_t ce = adam_bf16->work().chunk_elements();
            for (std::size_t i = 0; i < b.size; i += ce)
              chunks16.push_back({ b.param + i, b.grad + i, m + i, v + i, std::min(ce, b.size - i) });
          }
        }
      }
    }
    if (has("adamw")) {
      adamw.emplace(adamw_rule<T>(), store, off);
      chunks["adamw"] = hw::make_chunks(streams_of(*adamw, store, first_slot("adamw"), second_slot("adamw")));
    }
    if (has("lion")) {
      lion.emplace(lion_rule<T>(), store, off);
      chunks["lion"] = hw::make_chunks(streams_of(*lion, store, first_slot("lion"), second_slot("lion")));
    }
    if (has("signum")) {
      signum.emplace(signum_rule<T>(), store, off);
      chunks["signum"] =
        hw::make_chunks(streams_of(*signum, store, first_slot("signum"), second_slot("signum")));
    }
    if (has("momentum")) {
      momentum.emplace(momentum_rule<T>(), store, off);
      chunks["momentum"] =
        hw::make_chunks(streams_of(*momentum, store, first_slot("momentum"), second_slot("momentum")));
    }
    fill_inputs(store);
  }

  void set_threads(int n) {
    auto set = [n](auto& o) {
      if (o)
        o->set_threads(n);
    };
    set(adam), set(adam_guarded), set(adam_masked), set(adamw), set(lion), set(signum), set(momentum),
      set(adam_bf16);
  }

  // The arrays this layout allocates per parameter (p, g and every slot), for the memory plan.
  static double arrays_per_param(const std::set<std::string>& rules, bool guard) {
    double a = 2;
    for (const auto& r : rules)
      a += second_slot(r) ? 2 : 1;
    if (guard && rules.count("adam"))
      a += 4 + (std::is_same_v<T, float> ? 1 : 0); // two more Adams; adam_bf16's 2 x 16 bits
    return a;
  }
};

volatile float roofline_zero = 0.f; // read once per step: keeps the rooflines' adds in the binary

// ---- variants (timing: harness.hpp) ------------------------------------------------------------

template <class T>
std::vector<variant> make_variants(layout<T>& l, oneapi::tbb::task_arena& arena) {
  std::vector<variant> out;
  auto add = [&](std::string name, std::string impl, std::size_t bpp, std::function<void()> f) {
    out.push_back({ std::move(name), std::move(impl), std::move(f), {}, {}, l.tensors, bpp });
  };
  constexpr std::size_t w = sizeof(T);
  auto add_rule = [&](const std::string& name, auto& opt, std::size_t arrays) {
    if (!opt)
      return;
    add(name, "steep_noguard", arrays * w, [&o = *opt] { o.step(); });
    add(name, "handwritten", arrays * w, [&l, &arena, name] {
      handwritten_step<0, T>(name, arena, l.chunks.at(name), ++l.handwritten_t[name]);
    });
    add(name, "handwritten_copy", arrays * w, [&l, &arena, name] {
      handwritten_step<1, T>(name, arena, l.chunks.at(name), ++l.handwritten_t[name]);
    });
  };
  add_rule("adam", l.adam, 7);
  add_rule("adamw", l.adamw, 7);
  add_rule("lion", l.lion, 5);
  add_rule("signum", l.signum, 5);
  add_rule("momentum", l.momentum, 5);
  if (l.adam_guarded) {
    add("adam", "steep", 7 * w, [&l] { l.adam_guarded->step(); });
    add("adam", "steep_mask", 7 * w, [&l] { l.adam_masked->step(); });
  }
  if (l.adam_bf16) {
    add("adam_bf16", "steep", 20, [&l] { l.adam_bf16->step(); });
    add("2r1w+2h", "roofline", 20, [&l, &arena] {
      const float zero = roofline_zero;
      arena.execute([&] {
        oneapi::tbb::parallel_for(
          oneapi::tbb::blocked_range<std::size_t>(0, l.chunks16.size(), 1),
          [&](const oneapi::tbb::blocked_range<std::size_t>& r) {
            for (std::size_t c = r.begin(); c < r.end(); ++c)
              roofline16_chunk(l.chunks16[c], zero);
          },
          oneapi::tbb::static_partitioner{});
      });
    });
  }
  const std::string two = l.chunks.count("adam") ? "adam" : l.chunks.count("adamw") ? "adamw" : "";
  if (!two.empty())
    add("4r3w", "roofline", 7 * w, [&l, &arena, two] {
      const T zero = T(roofline_zero);
      hw::run(arena, l.chunks.at(two), [&](const hw::streams<T>& c) { hw::roofline<2>(c, zero); });
    });
  for (const char* one : { "momentum", "signum", "lion" })
    if (l.chunks.count(one)) {
      add("3r2w", "roofline", 5 * w, [&l, &arena, one] {
        const T zero = T(roofline_zero);
        hw::run(arena, l.chunks.at(one), [&](const hw::streams<T>& c) { hw::roofline<1>(c, zero); });
      });
      break;
    }
  return out;
}

// Bytes the machine can give this run: MemAvailable from /proc/meminfo (0 if unknown).
double available_bytes() {
  std::ifstream in("/proc/meminfo");
  for (std::string key; in >> key;) {
    double kb = 0;
    in >> kb;
    if (key == "MemAvailable:")
      return kb * 1024;
    in.ignore(256, '\n');
  }
  return 0;
}

struct run_settings {
  int rounds, steps, warmup;
};

// Small sizes time more steps per round (about 16M parameter-steps per variant and round, at
// least `steps`, at most 100), so that one round is long enough for the clock and the machine.
run_settings settings_for(std::size_t n, const run_settings& base) {
  const std::size_t want = (std::size_t{ 1 } << 24) / std::max<std::size_t>(n, 1);
  return { base.rounds,
           static_cast<int>(std::clamp<std::size_t>(want, static_cast<std::size_t>(base.steps), 100)),
           base.warmup };
}

template <class T>
int run_all(const std::vector<std::size_t>& sizes, const std::vector<int>& thread_list,
            std::size_t many_tensors, const std::set<std::string>& rules, std::size_t guard_max,
            bool sequential, const run_settings& base, const std::string& dtype, nlohmann::json& records,
            nlohmann::json& ratios) {
  for (int t : thread_list)
    if (!check_all<T>({ rules.begin(), rules.end() }, t)) {
      std::cerr << "steep-bench: a hand-written loop disagrees with steep; aborting\n";
      return 1;
    }
  std::printf("\n%-9s %-16s %11s %7s %4s %7s %10s %10s %10s %4s %8s\n", "name", "impl", "params", "tensors",
              "thr", "dtype", "median_ms", "min_ms", "max_ms", "B/p", "GB/s");
  for (std::size_t n : sizes) {
    const bool guard = n <= guard_max;
    const run_settings rs = settings_for(n, base);
    std::vector<std::size_t> counts{ 1 };
    if (many_tensors != 1 && many_tensors <= n)
      counts.push_back(many_tensors);
    const double need = layout<T>::arrays_per_param(rules, guard) * static_cast<double>(n) * sizeof(T);
    const double have = available_bytes();
    const bool together = !sequential && counts.size() == 2 && (have == 0 || 2 * need < 0.85 * have);
    if (have > 0 && need > 0.85 * have) {
      std::printf("skip: %zu %s parameters need %.1f GB per layout for rules and variants asked, %.1f GB is "
                  "available (fewer --rules, or a bigger machine)\n",
                  n, dtype.c_str(), need / 1e9, have / 1e9);
      ratios.push_back(
        { { "kind", "skipped" }, { "params", n }, { "dtype", dtype }, { "need_gb", need / 1e9 } });
      continue;
    }
    // Groups of layouts timed interleaved: both at once where they fit, else one after the other.
    std::vector<std::vector<std::size_t>> groups;
    if (together)
      groups.push_back(counts);
    else
      for (std::size_t c : counts)
        groups.push_back({ c });
    std::map<std::pair<std::string, std::string>, std::map<std::pair<std::size_t, int>, double>> medians;
    for (const auto& group : groups) {
      std::vector<std::unique_ptr<layout<T>>> layouts;
      for (std::size_t c : group)
        layouts.push_back(std::make_unique<layout<T>>(n, c, thread_list.front(), rules, guard));
      for (int thr : thread_list) {
        oneapi::tbb::task_arena arena(thr);
        std::vector<variant> vs;
        for (auto& l : layouts) {
          l->set_threads(thr);
          for (auto& v : make_variants(*l, arena))
            vs.push_back(std::move(v));
        }
        run_interleaved(vs, rs.rounds, rs.steps, rs.warmup);
        for (const auto& v : vs) {
          const auto [med, lo, hi] = summarize(v.samples);
          const double gbs = static_cast<double>(v.bytes_per_param) * static_cast<double>(n) / med / 1e9;
          medians[{ v.name, v.impl }][{ v.tensors, thr }] = med;
          std::printf("%-9s %-16s %11zu %7zu %4d %7s %10.4f %10.4f %10.4f %4zu %8.1f\n", v.name.c_str(),
                      v.impl.c_str(), n, v.tensors, thr, dtype.c_str(), med * 1e3, lo * 1e3, hi * 1e3,
                      v.bytes_per_param, gbs);
          records.push_back({ { "name", v.name },
                              { "impl", v.impl },
                              { "params", n },
                              { "tensors", v.tensors },
                              { "threads", thr },
                              { "dtype", dtype },
                              { "median_s", med },
                              { "min_s", lo },
                              { "max_s", hi },
                              { "samples", v.samples.size() },
                              { "round_medians_s", v.round_medians },
                              { "bytes_per_param", v.bytes_per_param },
                              { "gb_per_s", gbs } });
        }
        auto find = [&](const std::string& name, const std::string& impl,
                        std::size_t tensors) -> const variant* {
          for (const auto& v : vs)
            if (v.name == name && v.impl == impl && v.tensors == tensors)
              return &v;
          return nullptr;
        };
        for (const auto& l : layouts) {
          std::printf(
            "  %zu tensor(s), %d thread(s): time over hand-written (noise floor: copy / hand-written)\n",
            l->tensors, thr);
          for (const auto& r : all_rules) {
            const variant* sa = find(r, "steep_noguard", l->tensors);
            if (!sa)
              continue;
            const variant* h = find(r, "handwritten", l->tensors);
            const double ratio = round_ratio(*sa, *h),
                         floor = round_ratio(*find(r, "handwritten_copy", l->tensors), *h);
            const char* roof = second_slot(r) ? "4r3w" : "3r2w";
            const variant* rf = find(roof, "roofline", l->tensors);
            const double roof_frac = rf ? round_ratio(*rf, *sa) : 0.0;
            std::printf("    %-9s steep/hand-written %.3f  (floor %.3f)  roofline/steep %.3f\n", r.c_str(),
                        ratio, floor, roof_frac);
            ratios.push_back({ { "kind", "steep_over_handwritten" },
                               { "name", r },
                               { "params", n },
                               { "tensors", l->tensors },
                               { "threads", thr },
                               { "dtype", dtype },
                               { "ratio", ratio },
                               { "noise_floor", floor },
                               { "roofline_over_steep", roof_frac } });
          }
          if (const variant* g = find("adam", "steep", l->tensors)) {
            const variant* off = find("adam", "steep_noguard", l->tensors);
            const double refuse = round_ratio(*g, *off),
                         mask = round_ratio(*find("adam", "steep_mask", l->tensors), *off);
            nlohmann::json q{ { "kind", "guard_cost" }, { "params", n },    { "tensors", l->tensors },
                              { "threads", thr },       { "dtype", dtype }, { "refuse", refuse },
                              { "mask", mask } };
            std::printf("    guard: adam/adam_noguard time %.3f (refuse), %.3f (mask)", refuse, mask);
            if (const variant* b = find("adam_bf16", "steep", l->tensors)) {
              q["adam_bf16_over_adam"] = round_ratio(*b, *g);
              q["roofline20_over_adam_bf16"] = round_ratio(*find("2r1w+2h", "roofline", l->tensors), *b);
              std::printf("; adam_bf16/adam %.3f, its roofline/it %.3f",
                          q["adam_bf16_over_adam"].get<double>(),
                          q["roofline20_over_adam_bf16"].get<double>());
            }
            std::printf("\n");
            ratios.push_back(q);
          }
        }
        if (layouts.size() == 2)
          for (const auto& v : vs) {
            if (v.tensors != 1)
              continue;
            // throughput(many) / throughput(one) = time(one) / time(many), same params
            const double r = round_ratio(v, *find(v.name, v.impl, layouts[1]->tensors));
            ratios.push_back({ { "kind", "many_over_one_tensor_throughput" },
                               { "name", v.name },
                               { "impl", v.impl },
                               { "params", n },
                               { "tensors", layouts[1]->tensors },
                               { "threads", thr },
                               { "dtype", dtype },
                               { "interleaved", true },
                               { "ratio", r } });
          }
        std::printf("\n");
      }
    }
    if (groups.size() == 2) // layouts timed one after the other: a ratio of medians, not interleaved
      for (const auto& [key, by] : medians)
        for (int thr : thread_list)
          if (by.count({ 1, thr }) && by.count({ many_tensors, thr }))
            ratios.push_back({ { "kind", "many_over_one_tensor_throughput" },
                               { "name", key.first },
                               { "impl", key.second },
                               { "params", n },
                               { "tensors", many_tensors },
                               { "threads", thr },
                               { "dtype", dtype },
                               { "interleaved", false },
                               { "ratio", by.at({ 1, thr }) / by.at({ many_tensors, thr }) } });
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  const int all_threads = oneapi::tbb::info::default_concurrency();
  std::vector<std::size_t> sizes{ 50000, 65536, 1048576, 16777216, 67108864 };
  std::vector<int> threads{ 1, all_threads };
  std::vector<std::string> rule_list = all_rules;
  std::size_t many_tensors = 200, guard_max = std::size_t{ 1 } << 26;
  run_settings base{ 7, 3, 2 };
  std::string out_path = "bench-results.json", dtype = "float32";
  bool quick = false, sequential = false;

  CLI::App app{
    "steep-bench: steep's generated optimizer steps vs hand-written fused xsimd + TBB loops and the "
    "memory roofline, timed interleaved in one process"
  };
  app.add_option("--sizes", sizes, "parameter counts (total over all tensors)")
    ->delimiter(',')
    ->capture_default_str();
  app.add_option("--threads", threads, "thread counts")->delimiter(',')->capture_default_str();
  app.add_option("--dtype", dtype, "float32 or float64")
    ->check(CLI::IsMember({ "float32", "float64" }))
    ->capture_default_str();
  app.add_option("--rules", rule_list, "rules to time")->delimiter(',')->check(CLI::IsMember(all_rules));
  app.add_option("--tensors", many_tensors, "tensor count of the many-tensor layout")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  app.add_option("--guard-max", guard_max, "largest size with the guard and bf16 variants")
    ->capture_default_str();
  app.add_flag("--sequential-layouts", sequential,
               "time the 1-tensor and many-tensor layouts one after the other");
  app.add_option("--rounds", base.rounds, "interleaved rounds")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  app
    .add_option("--steps-per-round", base.steps,
                "timed steps per variant per round (at least; small sizes more)")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  app.add_option("--warmup", base.warmup, "untimed steps per variant before the rounds")
    ->capture_default_str()
    ->check(CLI::NonNegativeNumber);
  app.add_option("--out", out_path, "JSON results file")->capture_default_str();
  app.add_flag("--quick", quick, "smoke test: 100003 parameters, 2 rounds");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    sizes = { 100003 };
    base.rounds = 2;
  }
  std::vector<int> thread_list;
  try {
    thread_list = distinct_threads(threads);
  } catch (const std::invalid_argument& e) {
    std::cerr << "steep-bench: " << e.what() << '\n';
    return 2;
  }
  const std::set<std::string> rules(rule_list.begin(), rule_list.end());
  nlohmann::json records = nlohmann::json::array(), ratios = nlohmann::json::array();
  const int rc = dtype == "float32" ? run_all<float>(sizes, thread_list, many_tensors, rules, guard_max,
                                                     sequential, base, dtype, records, ratios)
                                    : run_all<double>(sizes, thread_list, many_tensors, rules, guard_max,
                                                      sequential, base, dtype, records, ratios);
  if (rc != 0)
    return rc;
  const nlohmann::json result{
    { "machine", machine_info(thread_list) },
    { "settings",
      { { "rounds", base.rounds },
        { "steps_per_round_min", base.steps },
        { "warmup", base.warmup },
        { "dtype", dtype },
        { "chunk_elements", "16384, or a 16th of a smaller model (at least 1024)" },
        { "ratio_method", "median over rounds of per-round median ratios" } } },
    { "records", records },
    { "ratios", ratios }
  };
  return write_results(out_path, result, "steep-bench") ? 0 : 1;
}
