// steep-bench: steep's generated update loops against hand-written fused loops and the memory
// roof, for one big tensor and for the same parameters cut into 200 tensors.
//
//   steep-bench                                        # the default grid (below), float32
//   steep-bench --dtype float64 --sizes 1048576 --threads 1,2 --out r.json
//   steep-bench --rules adam --sizes 268435456 --sequential-layouts   # one rule, big sizes
//   steep-bench --quick                                # smoke test: tiny sizes (ctest)
//
// What is timed (one optimizer step = one sample), for each elementwise rule of the catalogue
// (rule_table: sgd, momentum, nesterov, adam, adamw, adam_eps0, amsgrad, adagrad, rmsprop, lion,
// signum, adam_optax, nadamw_optax; --rules picks some):
//   steep_noguard   steep::optimizer's generated loop with the non-finite guard off: the loop
//                   a hand-written kernel is compared with;
//   handwritten     a fused xsimd + TBB loop written by hand (bench/handwritten.hpp), checked
//                   against steep on the same inputs before anything is timed;
//   handwritten_copy  a second, identical copy of that loop: copy / handwritten is the noise
//                   floor of the ratios, shown next to them;
//   and for adam: steep (the default guard, nonfinite_policy::refuse) and steep_mask, whose
//   times over steep_noguard are the guard's cost; guard_read, the refusing guard's read of the
//   gradient alone (1 + its time over steep_noguard is that cost's floor: the step must see all
//   of g before it writes); adam_bf16 (bfloat16 moments, float32 only);
//   the rooflines of the rules' stream mixes, 2r1w (SGD), 3r2w (one state array), 4r3w (Adam's)
//   and 5r4w (AMSGrad's), and 2r1w+2h (adam_bf16): the same loads and stores with no arithmetic,
//   the ceiling of any such update.
// Each in two layouts: one tensor of n parameters, and 200 tensors of n/200 (a model's many
// small tensors, the case steep's flat work list exists for).
//
// Why the harness looks the way it does (harness.hpp): bandwidth on the project's VMs drifts by
// up to 2x between minutes, so every variant of one (size, threads) setting is timed
// interleaved in one process, in an order rotated every round, each variant after one on other
// arrays (run_all); ratios are taken per round, and their median is reported. A fresh 4 KiB page costs ~10 us
// to fault in, so every buffer is allocated and touched up front, and the hand-written loops and rooflines
// run on the steep optimizers' own state arrays. Small sizes time more steps per round, so a round lasts long
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
#include <atomic>
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
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace steep::bench;

// ---- the rules under test: steep's rule, its slots and its hand-written loop -------------------

constexpr double adam_lr = 1e-3, adam_b1 = 0.9, adam_b2 = 0.999, adam_eps = 1e-8, adamw_wd = 0.01;
constexpr double lion_lr = 1e-4, lion_b1 = 0.9, lion_b2 = 0.99, lion_wd = 0.1;
constexpr double signum_lr = 1e-3, signum_beta = 0.9, momentum_lr = 1e-3, momentum_mu = 0.9;
constexpr double rms_lr = 1e-3, rms_alpha = 0.99, adagrad_lr = 1e-2, adagrad_decay = 1e-3,
                 adagrad_eps = 1e-10;

template <class T>
auto adam_rule() {
  return steep::rules::adam(T(adam_lr), adam_b1, adam_b2, adam_eps);
}
using adam_bf16_opt = steep::optimizer<decltype(steep::rules::adam_bf16(float(adam_lr))), float>;

// One elementwise rule: its steep optimizer (behind any_optimizer: one virtual call per step,
// outside the loop), the names of its state slots in the order the hand-written loop takes them
// (s0, s1, s2), and that loop's step t over a list of chunks (copy 0 or 1: which identical copy).
template <class T>
struct rule_case {
  std::string name;
  std::vector<std::string> slots;
  std::function<std::unique_ptr<steep::any_optimizer<T>>(steep::param_store<T>&, steep::optimizer_options)>
    make;
  std::function<void(int, oneapi::tbb::task_arena&, const std::vector<hw::streams<T>>&, std::int64_t)>
    handwritten;
  // Arrays moved per parameter: p and g read, p written, each slot read and written.
  std::size_t arrays() const { return 3 + 2 * slots.size(); }
  const char* roofline() const { return hw::roofline_name(slots.size()); }
};

// kernel(copy, chunk, scalars) with copy a std::integral_constant<int, 0 or 1>; scalars(t) the
// per-step scalars, computed once per step as steep computes its own.
template <class T, class Rule, class Scalars, class Kernel>
rule_case<T> make_case(std::string name, std::vector<std::string> slots, Rule rule, Scalars scalars,
                       Kernel kernel) {
  return { std::move(name), std::move(slots),
           [rule](steep::param_store<T>& store, steep::optimizer_options o) {
             return steep::make_any_optimizer(rule, store, o);
           },
           [scalars, kernel](int copy, oneapi::tbb::task_arena& arena,
                             const std::vector<hw::streams<T>>& chunks, std::int64_t t) {
             const auto s = scalars(static_cast<double>(t));
             if (copy == 0)
               hw::run(arena, chunks,
                       [&](const hw::streams<T>& c) { kernel(std::integral_constant<int, 0>{}, c, s); });
             else
               hw::run(arena, chunks,
                       [&](const hw::streams<T>& c) { kernel(std::integral_constant<int, 1>{}, c, s); });
           } };
}

// Every elementwise rule of the catalogue (dsl/steep/rules/), in the order the report lists them.
template <class T>
std::vector<rule_case<T>> rule_table() {
  namespace r = steep::rules;
  // Adam-family scalars: a = -lr, b = b1, c = 1 - b1, d = b2, e = 1 - b2, f = 1/(1 - b1^t),
  // h = 1/(1 - b2^t) (AMSGrad: 1 - b2^t, which it divides by).
  auto adam_scalars = [](double lr, double b1, double b2, double t, bool inverse_bc2 = true) {
    const double bc2 = 1.0 - std::pow(b2, t);
    return hw::scalars<T>{ T(-lr),
                           T(b1),
                           T(1.0 - b1),
                           T(b2),
                           T(1.0 - b2),
                           T(1.0 / (1.0 - std::pow(b1, t))),
                           T(inverse_bc2 ? 1.0 / bc2 : bc2) };
  };
  std::vector<rule_case<T>> out;
  out.push_back(make_case<T>(
    "sgd", {}, r::sgd(T(momentum_lr)), [](double) { return hw::scalars<T>{ T(-momentum_lr) }; },
    []<class K>(K, const hw::streams<T>& c, const hw::scalars<T>& s) { hw::sgd<K::value>(c, s); }));
  out.push_back(make_case<T>(
    "momentum", { "momentum_buffer" }, r::momentum(T(momentum_lr), momentum_mu),
    [](double) { return hw::ema_scalars<T>{ T(momentum_mu), T(0), T(0), T(0), T(-momentum_lr), T(0) }; },
    []<class K>(K, const hw::streams<T>& c, const hw::ema_scalars<T>& s) { hw::momentum<K::value>(c, s); }));
  out.push_back(make_case<T>(
    "nesterov", { "momentum_buffer" }, r::nesterov(T(momentum_lr), momentum_mu),
    [](double) {
      return hw::scalars<T>{ T(-momentum_lr), T(momentum_mu) };
    },
    []<class K>(K, const hw::streams<T>& c, const hw::scalars<T>& s) { hw::nesterov<K::value>(c, s); }));
  auto adam_kernel = []<bool Decoupled>() {
    return []<class K>(K, const hw::streams<T>& c, const hw::adam_scalars<T>& s) {
      hw::adam_like<K::value, Decoupled>(c, s);
    };
  };
  out.push_back(make_case<T>(
    "adam", { "exp_avg", "exp_avg_sq" }, adam_rule<T>(),
    [](double t) {
      return hw::adam_step<T>(adam_lr, adam_b1, adam_b2, adam_eps, 0.0, static_cast<std::int64_t>(t));
    },
    adam_kernel.template operator()<false>()));
  out.push_back(make_case<T>(
    "adamw", { "exp_avg", "exp_avg_sq" }, r::adamw(T(adam_lr), adam_b1, adam_b2, adam_eps, adamw_wd),
    [](double t) {
      return hw::adam_step<T>(adam_lr, adam_b1, adam_b2, adam_eps, adamw_wd, static_cast<std::int64_t>(t));
    },
    adam_kernel.template operator()<true>()));
  out.push_back(make_case<T>(
    "adam_eps0", { "exp_avg", "exp_avg_sq" }, r::adam_eps0(T(adam_lr), adam_b1, adam_b2),
    [=](double t) { return adam_scalars(adam_lr, adam_b1, adam_b2, t); },
    []<class K>(K, const hw::streams<T>& c, const hw::scalars<T>& s) { hw::adam_eps0<K::value>(c, s); }));
  out.push_back(make_case<T>(
    "amsgrad", { "exp_avg", "exp_avg_sq", "max_exp_avg_sq" },
    r::amsgrad(T(adam_lr), adam_b1, adam_b2, adam_eps),
    [=](double t) { return adam_scalars(adam_lr, adam_b1, adam_b2, t, false); },
    []<class K>(K, const hw::streams<T>& c, const hw::scalars<T>& s) {
      hw::amsgrad<K::value>(c, s, T(adam_eps));
    }));
  out.push_back(make_case<T>(
    "adagrad", { "sum" }, r::adagrad(T(adagrad_lr), adagrad_eps, 0.0, adagrad_decay),
    [](double t) {
      return hw::scalars<T>{ T(-(adagrad_lr / (1.0 + (t - 1.0) * adagrad_decay))), T(0), T(0),
                             T(adagrad_eps) };
    },
    []<class K>(K, const hw::streams<T>& c, const hw::scalars<T>& s) {
      hw::rms_like<K::value, true>(c, s);
    }));
  out.push_back(make_case<T>(
    "rmsprop", { "square_avg" }, r::rmsprop(T(rms_lr), rms_alpha, adam_eps),
    [](double) {
      return hw::scalars<T>{ T(-rms_lr), T(rms_alpha), T(1.0 - rms_alpha), T(adam_eps) };
    },
    []<class K>(K, const hw::streams<T>& c, const hw::scalars<T>& s) {
      hw::rms_like<K::value, false>(c, s);
    }));
  out.push_back(make_case<T>(
    "lion", { "exp_avg" }, r::lion(T(lion_lr), lion_b1, lion_b2, lion_wd),
    [](double) {
      return hw::ema_scalars<T>{ T(lion_b1),       T(1.0 - lion_b1), T(lion_b2),
                                 T(1.0 - lion_b2), T(-lion_lr),      T(lion_wd) };
    },
    []<class K>(K, const hw::streams<T>& c, const hw::ema_scalars<T>& s) { hw::lion<K::value>(c, s); }));
  out.push_back(make_case<T>(
    "signum", { "momentum_buffer" }, r::signum(T(signum_lr), signum_beta),
    [](double) {
      return hw::ema_scalars<T>{ T(signum_beta), T(1.0 - signum_beta), T(0), T(0), T(-signum_lr), T(0) };
    },
    []<class K>(K, const hw::streams<T>& c, const hw::ema_scalars<T>& s) { hw::signum<K::value>(c, s); }));
  // optax's Adam and NAdamW with their defaults but a weight decay, so that every term is live.
  auto optax = [=]<bool Nesterov>(double t) {
    hw::scalars<T> s = adam_scalars(adam_lr, adam_b1, adam_b2, t);
    hw::optax_scalars<T> o{ T(0), T(adam_eps), T(0), T(adamw_wd) };
    if (Nesterov) {
      s.f = T(adam_b1 / (1.0 - std::pow(adam_b1, t + 1.0)));
      o.g_factor = T((1.0 - adam_b1) / (1.0 - std::pow(adam_b1, t)));
    }
    return std::pair{ s, o };
  };
  out.push_back(make_case<T>(
    "adam_optax", { "mu", "nu" }, r::adam_optax(T(adam_lr), adam_b1, adam_b2, adam_eps, 0.0, adamw_wd),
    [=](double t) { return optax.template operator()<false>(t); },
    []<class K>(K, const hw::streams<T>& c, const auto& s) {
      hw::optax_adam<K::value, false>(c, s.first, s.second);
    }));
  out.push_back(make_case<T>(
    "nadamw_optax", { "mu", "nu" }, r::nadamw_optax(T(adam_lr), adam_b1, adam_b2, adam_eps, 0.0, adamw_wd),
    [=](double t) { return optax.template operator()<true>(t); },
    []<class K>(K, const hw::streams<T>& c, const auto& s) {
      hw::optax_adam<K::value, true>(c, s.first, s.second);
    }));
  return out;
}

// The names, for --rules and the report's order (the same for float and double).
std::vector<std::string> all_rule_names() {
  std::vector<std::string> out;
  for (const auto& r : rule_table<float>())
    out.push_back(r.name);
  return out;
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
template <class T>
std::vector<hw::streams<T>> streams_of(steep::any_optimizer<T>& opt, const steep::param_store<T>& store,
                                       const std::vector<std::string>& slots) {
  std::vector<hw::streams<T>> out;
  for (const auto& b : store.blocks()) {
    std::array<T*, 3> s{};
    for (std::size_t k = 0; k < slots.size(); ++k)
      s[k] = opt.state(b.name, slots[k]).data();
    out.push_back({ b.param, b.grad, s[0], s[1], b.size, s[2] });
  }
  return out;
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

// One rule: steep on one store, the hand-written loop on an identical copy with its own state
// (starting from steep's initial state), `steps` steps each, over layouts with chunk edges and
// SIMD tails inside blocks.
template <class T>
bool check_rule(const rule_case<T>& rc, int threads) {
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
    const auto opt = rc.make(a, { .threads = threads, .nonfinite = steep::nonfinite_policy::off });
    std::vector<std::vector<std::vector<T>>> state(sizes.size()); // [block][slot]
    std::vector<hw::streams<T>> blocks;
    for (std::size_t b = 0; b < sizes.size(); ++b) {
      std::array<T*, 3> s{};
      for (std::size_t k = 0; k < rc.slots.size(); ++k) {
        const T* start = opt->state(block_name(b), rc.slots[k]).data();
        s[k] = state[b].emplace_back(start, start + sizes[b]).data();
      }
      const auto& hb = h.block_at(b);
      blocks.push_back({ hb.param, hb.grad, s[0], s[1], sizes[b], s[2] });
    }
    const auto chunks = hw::make_chunks(blocks);
    for (int t = 1; t <= steps; ++t) {
      opt->step();
      rc.handwritten(0, arena, chunks, t);
    }
    double err = 0;
    for (std::size_t b = 0; b < sizes.size(); ++b) {
      const auto& ab = a.block_at(b);
      err = std::max(err, normwise_error(ab.param, h.block_at(b).param, sizes[b]));
      for (std::size_t k = 0; k < rc.slots.size(); ++k)
        err = std::max(err,
                       normwise_error(opt->state(ab.name, rc.slots[k]).data(), state[b][k].data(), sizes[b]));
    }
    const bool pass = err <= tolerance;
    std::printf(
      "check: hand-written vs steep %-12s %zu block(s), %d steps, %d thread(s): rel. error %.2e -> %s\n",
      rc.name.c_str(), sizes.size(), steps, threads, err, pass ? "ok" : "FAILED");
    ok = ok && pass;
  }
  return ok;
}

template <class T>
bool check_all(const std::vector<rule_case<T>>& rules, int threads) {
  bool ok = true;
  for (const auto& r : rules)
    ok = check_rule<T>(r, threads) && ok;
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
  std::map<std::string, std::unique_ptr<steep::any_optimizer<T>>> opts; // per rule, guard off
  std::unique_ptr<steep::any_optimizer<T>> adam_guarded, adam_masked;
  std::optional<adam_bf16_opt> adam_bf16;
  std::map<std::string, std::vector<hw::streams<T>>> chunks; // per rule, over its optimizer's state
  std::vector<stream_block16> chunks16;                      // over adam_bf16's slots
  std::map<std::string, std::int64_t> handwritten_t;

  layout(std::size_t n, std::size_t t, int threads, const std::vector<rule_case<T>>& rules, bool guard)
    : params(n)
    , tensors(t)
    , store(block_specs<T>(n, t)) {
    const steep::optimizer_options off{ .threads = threads, .nonfinite = steep::nonfinite_policy::off };
    for (const auto& r : rules) {
      auto& o = opts[r.name] = r.make(store, off);
      chunks[r.name] = hw::make_chunks(streams_of(*o, store, r.slots));
      if (r.name != "adam" || !guard)
        continue;
      adam_guarded = r.make(store, steep::optimizer_options{ .threads = threads });
      adam_masked = r.make(
        store, steep::optimizer_options{ .threads = threads, .nonfinite = steep::nonfinite_policy::mask });
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
    fill_inputs(store);
  }

  void set_threads(int n) {
    for (auto& [name, o] : opts)
      o->set_threads(n);
    for (auto* o : { adam_guarded.get(), adam_masked.get() })
      if (o)
        o->set_threads(n);
    if (adam_bf16)
      adam_bf16->set_threads(n);
  }

  // The arrays this layout allocates per parameter (p, g and every slot), for the memory plan.
  static double arrays_per_param(const std::vector<rule_case<T>>& rules, bool guard) {
    double a = 2;
    for (const auto& r : rules) {
      a += static_cast<double>(r.slots.size());
      if (guard && r.name == "adam")
        a += 4 + (std::is_same_v<T, float> ? 1 : 0); // two more Adams; adam_bf16's 2 x 16 bits
    }
    return a;
  }
};

volatile float roofline_zero = 0.f; // read once per step: keeps the rooflines' adds in the binary

// ---- variants (timing: harness.hpp) ------------------------------------------------------------

template <class T>
std::vector<variant> make_variants(layout<T>& l, const std::vector<rule_case<T>>& rules,
                                   oneapi::tbb::task_arena& arena) {
  std::vector<variant> out;
  auto add = [&](std::string name, std::string impl, std::size_t bpp, std::function<void()> f) {
    out.push_back({ std::move(name), std::move(impl), std::move(f), {}, {}, l.tensors, bpp });
  };
  constexpr std::size_t w = sizeof(T);
  // Implementation-major (every rule's steep loop, then every hand-written one, then the copies):
  // with one layout, a variant then follows another rule's variant, not its own rule's (see the
  // alternating layouts in run_all).
  for (const auto& r : rules)
    add(r.name, "steep_noguard", r.arrays() * w, [&o = *l.opts.at(r.name)] { o.step(); });
  for (int copy : { 0, 1 })
    for (const auto& r : rules)
      add(r.name, copy == 0 ? "handwritten" : "handwritten_copy", r.arrays() * w, [&l, &arena, &r, copy] {
        r.handwritten(copy, arena, l.chunks.at(r.name), ++l.handwritten_t[r.name]);
      });
  // One roofline per stream mix, over the first rule's state arrays that has it.
  std::set<std::string> rooflines;
  for (const auto& r : rules) {
    const std::size_t bytes = r.arrays() * w;
    if (!rooflines.insert(r.roofline()).second)
      continue;
    add(r.roofline(), "roofline", bytes, [&l, &arena, &r] {
      const T zero = T(roofline_zero);
      const auto& chunks = l.chunks.at(r.name);
      switch (r.slots.size()) {
        case 0:
          hw::run(arena, chunks, [&](const hw::streams<T>& c) { hw::roofline<0>(c, zero); });
          break;
        case 1:
          hw::run(arena, chunks, [&](const hw::streams<T>& c) { hw::roofline<1>(c, zero); });
          break;
        case 2:
          hw::run(arena, chunks, [&](const hw::streams<T>& c) { hw::roofline<2>(c, zero); });
          break;
        default:
          hw::run(arena, chunks, [&](const hw::streams<T>& c) { hw::roofline<3>(c, zero); });
      }
    });
  }
  if (l.adam_guarded) {
    add("adam", "steep", 7 * w, [&l] { l.adam_guarded->step(); });
    add("adam", "steep_mask", 7 * w, [&l] { l.adam_masked->step(); });
    // The refusing guard's own read of the gradient (guard.hpp), alone: its time over
    // steep_noguard is what any all-or-nothing check must add to a loop that writes in place.
    add("adam", "guard_read", w, [&l, &arena] {
      std::atomic<bool> finite = true;
      hw::run(arena, l.chunks.at("adam"), [&](const hw::streams<T>& c) {
        if (!steep::kernel::all_finite(c.g, 0, c.n))
          finite = false;
      });
      if (!finite)
        throw std::runtime_error("steep-bench: the benchmark's gradient is not finite");
    });
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
            std::size_t many_tensors, const std::set<std::string>& names, std::size_t guard_max,
            bool sequential, const run_settings& base, const std::string& dtype, nlohmann::json& records,
            nlohmann::json& ratios) {
  std::vector<rule_case<T>> rules;
  for (auto& r : rule_table<T>())
    if (names.count(r.name))
      rules.push_back(std::move(r));
  for (int t : thread_list)
    if (!check_all<T>(rules, t)) {
      std::cerr << "steep-bench: a hand-written loop disagrees with steep; aborting\n";
      return 1;
    }
  std::printf("\n%-12s %-16s %11s %7s %4s %7s %10s %10s %10s %4s %8s\n", "name", "impl", "params", "tensors",
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
        // The layouts' variants alternate (one tensor, 200 tensors, one tensor, ...), so each
        // variant follows one that touched other arrays. Run after a variant on the same arrays,
        // a step was faster the longer that chain (SGD at 16M, one thread, chained steep, then
        // hand-written, its copy, the roofline: 8.7, 7.4, 6.3, 5.7 ms), and the ratios measured
        // position in the order, not the loops.
        std::vector<std::vector<variant>> per_layout;
        for (auto& l : layouts) {
          l->set_threads(thr);
          per_layout.push_back(make_variants(*l, rules, arena));
        }
        std::vector<variant> vs;
        for (std::size_t k = 0; k < per_layout.front().size(); ++k)
          for (auto& one : per_layout)
            vs.push_back(std::move(one[k]));
        run_interleaved(vs, rs.rounds, rs.steps, rs.warmup);
        for (const auto& v : vs) {
          const auto [med, lo, hi] = summarize(v.samples);
          const double gbs = static_cast<double>(v.bytes_per_param) * static_cast<double>(n) / med / 1e9;
          medians[{ v.name, v.impl }][{ v.tensors, thr }] = med;
          std::printf("%-12s %-16s %11zu %7zu %4d %7s %10.4f %10.4f %10.4f %4zu %8.1f\n", v.name.c_str(),
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
          for (const auto& rc : rules) {
            const std::string& r = rc.name;
            const variant* sa = find(r, "steep_noguard", l->tensors);
            if (!sa)
              continue;
            const variant* h = find(r, "handwritten", l->tensors);
            const double ratio = round_ratio(*sa, *h),
                         floor = round_ratio(*find(r, "handwritten_copy", l->tensors), *h);
            const variant* rf = find(rc.roofline(), "roofline", l->tensors);
            const double roof_frac = rf ? round_ratio(*rf, *sa) : 0.0;
            std::printf("    %-12s steep/hand-written %.3f  (floor %.3f)  roofline/steep %.3f\n", r.c_str(),
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
                         mask = round_ratio(*find("adam", "steep_mask", l->tensors), *off),
                         read = 1 + round_ratio(*find("adam", "guard_read", l->tensors), *off);
            nlohmann::json q{ { "kind", "guard_cost" }, { "params", n },       { "tensors", l->tensors },
                              { "threads", thr },       { "dtype", dtype },    { "refuse", refuse },
                              { "mask", mask },         { "read_floor", read } };
            std::printf(
              "    guard: adam/adam_noguard time %.3f (refuse; its read of g alone: %.3f), %.3f (mask)",
              refuse, read, mask);
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
  const std::vector<std::string> all_rules = all_rule_names();
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
