// steep-bench: how close steep's generated update loops come to a hand-written fused Adam and to
// the memory roof, for one big tensor and for the same parameters cut into 200 tensors.
//
//   steep-bench                                   # 16M and 64M floats, 1 and all threads
//   steep-bench --sizes 16777216 --threads 2 --rounds 5 --out r.json
//   steep-bench --quick                           # smoke test: tiny sizes, 2 rounds (ctest)
//
// What is timed (float32, one optimizer step = one sample):
//   steep       adam, lion, signum, momentum: steep::optimizer's generated loop; adam also with
//               the non-finite guard off (steep_noguard: the guard's cost is the time ratio)
//               and under the per-coordinate mask policy (steep_mask: fused into the update),
//               and adam_bf16 (bfloat16 moments, 20 B/param);
//   handwritten adam: an explicit xsimd::batch<float> loop with the same math, run by
//               tbb::parallel_for over 16384-element chunks (static_partitioner) in a
//               task_arena — the fused xsimd + TBB reference loop;
//   roofline    4r3w: Adam's stream mix (read p, g, m, v; write p, m, v = 28 B/param) with no
//               math, same chunks and partitioner: the ceiling for any Adam-like update
//               (used instead of STREAM's triad, which undercounts write traffic; a well-fused
//               Adam should reach >= 0.9 of it); 2r1w+2h: adam_bf16's stream mix (float32 p, g;
//               16-bit m, v) likewise.
// Each in two layouts: one tensor of n floats, and 200 tensors of n/200 (a model's many small
// tensors, the case steep's flat work list exists for).
//
// Why the harness looks the way it does: bandwidth on the project's
// VMs drifts by up to 2x between minutes, so every variant of one (size, threads) setting is
// timed interleaved in one process, in an order rotated every round, and the ratios are taken
// per round and then their median is reported; absolute GB/s are indicative only. A fresh 4 KiB
// page costs ~10 us to fault in, and freshly faulted memory streams more slowly for a while, so
// every buffer is allocated and touched once up front and all variants of a layout share the
// same physical arrays: steep's optimizers read the store's params and grads, and the
// hand-written Adam and the roofline run on steep Adam's own exp_avg/exp_avg_sq slots.
//
// Before timing, the hand-written Adam is checked against steep's Adam on identical inputs
// (several block sizes with SIMD tails); the run aborts if they disagree beyond 1e-6 relative,
// since a ratio against a wrong reference means nothing.

// steep first: its xsimd_fence.hpp must be the first to include <immintrin.h> (TBB's headers
// include it too) for GCC 12's false AVX-512 -Wuninitialized (PR105593) to stay silenced.
// clang-format off
#include <steep/steep.hpp> // first: see xsimd_fence.hpp
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
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace steep::bench;

// ---- the rules under test, with their hyperparameters ---------------------------------------

constexpr float adam_lr = 1e-3f;
constexpr double adam_b1 = 0.9, adam_b2 = 0.999, adam_eps = 1e-8; // steep::rules::adam's defaults

using adam_rule = decltype(steep::rules::adam(adam_lr));
using adam_bf16_rule = decltype(steep::rules::adam_bf16(adam_lr));
using lion_rule = decltype(steep::rules::lion(1e-4f));
using signum_rule = decltype(steep::rules::signum(1e-3f, 0.9));
using momentum_rule = decltype(steep::rules::momentum(1e-3f, 0.9));

using store_type = steep::param_store<float>;
template <class Rule>
using opt_type = steep::optimizer<Rule, float>;

// ---- the hand-written kernels ---------------------------------------------------------------

// One block's streams, as the hand-written loops see them. m and v belong to steep's Adam (or,
// in the correctness check, to separate buffers).
struct stream_block {
  float* p;
  const float* g;
  float* m;
  float* v;
  std::size_t n;
};

// A flat list of chunks spanning every block: the same cut as steep's work_list (16384
// elements, chunk starts at multiples of it inside a block), written out independently so the
// reference does not lean on the code it is checking.
constexpr std::size_t chunk_elements = 16384;

std::vector<stream_block> make_chunks(const std::vector<stream_block>& blocks) {
  std::vector<stream_block> out;
  for (const auto& b : blocks)
    for (std::size_t i = 0; i < b.n; i += chunk_elements)
      out.push_back({ b.p + i, b.g + i, b.m + i, b.v + i, std::min(chunk_elements, b.n - i) });
  return out;
}

// Per-step scalars, computed in double and rounded to float once per step, as steep does.
struct adam_scalars {
  float b1, one_minus_b1, b2, one_minus_b2, neg_lr, inv_bc1, inv_bc2, eps;
};

adam_scalars adam_step_scalars(std::int64_t t) {
  const double td = static_cast<double>(t);
  return { static_cast<float>(adam_b1),
           static_cast<float>(1.0 - adam_b1),
           static_cast<float>(adam_b2),
           static_cast<float>(1.0 - adam_b2),
           static_cast<float>(-static_cast<double>(adam_lr)),
           static_cast<float>(1.0 / (1.0 - std::pow(adam_b1, td))),
           static_cast<float>(1.0 / (1.0 - std::pow(adam_b2, td))),
           static_cast<float>(adam_eps) };
}

// torch.optim.Adam's update, in the operation order of steep::rules::adam so that the two can
// be compared tightly. Written once for batch and scalar, like steep's chunk_loop bodies, so
// the tail is exact.
template <class V>
inline void adam_group(const stream_block& c, std::size_t i, const adam_scalars& s) {
  // Qualified calls on purpose: an unqualified store(ptr, batch) finds xsimd::store by ADL,
  // which is an *aligned* store and faults on unaligned (external) buffers.
  namespace k = steep::kernel;
  const V g = k::load<V>(c.g + i);
  const V m = V(s.b1) * k::load<V>(c.m + i) + V(s.one_minus_b1) * g;
  const V v = V(s.b2) * k::load<V>(c.v + i) + V(s.one_minus_b2) * (g * g);
  const V delta = V(s.neg_lr) * (m * V(s.inv_bc1)) / (k::sqrt(v * V(s.inv_bc2)) + V(s.eps));
  k::store(c.p + i, V(k::load<V>(c.p + i) + delta));
  k::store(c.m + i, m);
  k::store(c.v + i, v);
}

void adam_chunk(const stream_block& c, const adam_scalars& s) {
  using V = xsimd::batch<float>;
  std::size_t i = 0;
  for (; i + V::size <= c.n; i += V::size)
    adam_group<V>(c, i, s);
  for (; i < c.n; ++i)
    adam_group<float>(c, i, s);
}

// The roofline: Adam's 4 loads and 3 stores per element, no arithmetic worth the name. The
// scale `zero` is 0 at run time (the compiler cannot know it), so every array keeps its value
// and the Adam variants that share these arrays see the same data whether or not the roofline
// ran before them; the stores still dirty every line, so the traffic is Adam's 28 B/param.
template <class V>
inline void roofline_group(const stream_block& c, std::size_t i, float zero) {
  namespace k = steep::kernel; // qualified, as in adam_group
  const V dg = k::load<V>(c.g + i) * V(zero);
  k::store(c.p + i, V(k::load<V>(c.p + i) + dg));
  k::store(c.m + i, V(k::load<V>(c.m + i) + dg));
  k::store(c.v + i, V(k::load<V>(c.v + i) + dg));
}

void roofline_chunk(const stream_block& c, float zero) {
  using V = xsimd::batch<float>;
  std::size_t i = 0;
  for (; i + V::size <= c.n; i += V::size)
    roofline_group<V>(c, i, zero);
  for (; i < c.n; ++i)
    roofline_group<float>(c, i, zero);
}

volatile float roofline_zero = 0.f; // read once per step: keeps the roofline's adds in the binary

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

// Chunks over a task_arena with the static partitioner: the structure of steep's executor and
// of a fused xsimd + TBB loop (equal chunks, so stealing buys nothing).
template <class Body>
void for_each_chunk(oneapi::tbb::task_arena& arena, const std::vector<stream_block>& chunks, Body&& body) {
  arena.execute([&] {
    oneapi::tbb::parallel_for(
      oneapi::tbb::blocked_range<std::size_t>(0, chunks.size(), 1),
      [&](const oneapi::tbb::blocked_range<std::size_t>& r) {
        for (std::size_t c = r.begin(); c != r.end(); ++c)
          body(chunks[c]);
      },
      oneapi::tbb::static_partitioner{});
  });
}

// ---- data -----------------------------------------------------------------------------------

// Deterministic, cheap values: parameters in [-1, 1], gradients of magnitude in [0.01, 0.1]
// so that g^2 and the EMAs stay far from denormals (which would time the FPU, not memory).
float unit_hash(std::uint64_t i, std::uint64_t salt) {
  std::uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ salt;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return static_cast<float>(x >> 40) / static_cast<float>(1ull << 24); // [0, 1)
}

void fill_inputs(store_type& store) {
  std::uint64_t k = 0;
  for (const auto& b : store.blocks())
    for (std::size_t i = 0; i < b.size; ++i, ++k) {
      b.param[i] = 2.f * unit_hash(k, 1) - 1.f;
      const float mag = 0.01f + 0.09f * unit_hash(k, 2);
      b.grad[i] = unit_hash(k, 3) < 0.5f ? -mag : mag;
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
std::vector<steep::block_spec<float>> block_specs(std::size_t n, std::size_t tensors) {
  std::vector<steep::block_spec<float>> specs;
  for (std::size_t b = 0; b < tensors; ++b)
    specs.emplace_back(block_name(b), steep::shape_t{ n / tensors + (b < n % tensors ? 1 : 0) });
  return specs;
}

// One layout of one size: the store, the steep optimizers bound to it, and the
// hand-written view of the same memory. Everything is allocated and first-touched here.
struct layout {
  std::size_t params, tensors;
  store_type store;
  opt_type<adam_rule> adam;
  opt_type<adam_rule> adam_unguarded; // the same Adam with the non-finite guard off
  opt_type<adam_rule> adam_masked;    // and under nonfinite_policy::mask
  opt_type<adam_bf16_rule> adam_bf16;
  opt_type<lion_rule> lion;
  opt_type<signum_rule> signum;
  opt_type<momentum_rule> momentum;
  std::vector<stream_block> chunks;
  std::vector<stream_block16> chunks16; // over adam_bf16's slots
  std::int64_t handwritten_t = 0;

  layout(std::size_t n, std::size_t t, int threads)
    : params(n)
    , tensors(t)
    , store(block_specs(n, t))
    , adam(steep::rules::adam(adam_lr), store, { .threads = threads })
    , adam_unguarded(steep::rules::adam(adam_lr), store,
                     { .threads = threads, .nonfinite = steep::nonfinite_policy::off })
    , adam_masked(steep::rules::adam(adam_lr), store,
                  { .threads = threads, .nonfinite = steep::nonfinite_policy::mask })
    , adam_bf16(steep::rules::adam_bf16(adam_lr), store, { .threads = threads })
    , lion(steep::rules::lion(1e-4f), store, { .threads = threads })
    , signum(steep::rules::signum(1e-3f, 0.9), store, { .threads = threads })
    , momentum(steep::rules::momentum(1e-3f, 0.9), store, { .threads = threads }) {
    fill_inputs(store);
    std::vector<stream_block> blocks;
    for (const auto& b : store.blocks())
      blocks.push_back({ b.param, b.grad, adam.state(b.name, "exp_avg").data(),
                         adam.state(b.name, "exp_avg_sq").data(), b.size });
    chunks = make_chunks(blocks);
    for (const auto& b : store.blocks()) {
      auto* m = reinterpret_cast<std::uint16_t*>(adam_bf16.state<steep::bfloat16>(b.name, "exp_avg").data());
      auto* v =
        reinterpret_cast<std::uint16_t*>(adam_bf16.state<steep::bfloat16>(b.name, "exp_avg_sq").data());
      for (std::size_t i = 0; i < b.size; i += chunk_elements)
        chunks16.push_back({ b.param + i, b.grad + i, m + i, v + i, std::min(chunk_elements, b.size - i) });
    }
  }

  void set_threads(int n) {
    adam.set_threads(n);
    adam_unguarded.set_threads(n);
    adam_masked.set_threads(n);
    adam_bf16.set_threads(n);
    lion.set_threads(n);
    signum.set_threads(n);
    momentum.set_threads(n);
  }
};

// ---- correctness check ----------------------------------------------------------------------

// max |a - b| / max |a| over one array (normwise: elementwise relative error is meaningless for
// parameters that pass near zero). NaN anywhere makes it NaN, which fails the check.
double normwise_error(const float* a, const float* b, std::size_t n) {
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

// steep's Adam on one store, the hand-written Adam on an identical copy with its own m and v,
// `steps` steps each; several layouts, so chunk edges and SIMD tails inside blocks are covered.
bool check_handwritten_adam(int threads) {
  constexpr double tolerance = 1e-6;
  constexpr int steps = 5;
  oneapi::tbb::task_arena arena(threads);
  bool ok = true;
  for (const auto& sizes :
       std::vector<std::vector<std::size_t>>{ { 100003 }, { 16384, 16385, 7, 40000, 1 } }) {
    std::vector<steep::block_spec<float>> specs;
    for (std::size_t b = 0; b < sizes.size(); ++b)
      specs.emplace_back(block_name(b), steep::shape_t{ sizes[b] });
    store_type a(specs), h(specs);
    fill_inputs(a);
    fill_inputs(h);
    opt_type<adam_rule> opt(steep::rules::adam(adam_lr), a, { .threads = threads });
    std::vector<std::vector<float>> m(sizes.size()), v(sizes.size());
    std::vector<stream_block> blocks;
    for (std::size_t b = 0; b < sizes.size(); ++b) {
      m[b].assign(sizes[b], 0.f);
      v[b].assign(sizes[b], 0.f);
      const auto& hb = h.block_at(b);
      blocks.push_back({ hb.param, hb.grad, m[b].data(), v[b].data(), sizes[b] });
    }
    const auto chunks = make_chunks(blocks);
    for (int t = 1; t <= steps; ++t) {
      opt.step();
      const adam_scalars s = adam_step_scalars(t);
      for_each_chunk(arena, chunks, [&](const stream_block& c) { adam_chunk(c, s); });
    }
    double err_p = 0, err_m = 0, err_v = 0;
    for (std::size_t b = 0; b < sizes.size(); ++b) {
      const auto& ab = a.block_at(b);
      const std::string name = ab.name;
      err_p = std::max(err_p, normwise_error(ab.param, h.block_at(b).param, sizes[b]));
      err_m = std::max(err_m, normwise_error(opt.state(name, "exp_avg").data(), m[b].data(), sizes[b]));
      err_v = std::max(err_v, normwise_error(opt.state(name, "exp_avg_sq").data(), v[b].data(), sizes[b]));
    }
    const bool pass = err_p <= tolerance && err_m <= tolerance && err_v <= tolerance;
    std::printf("check: handwritten vs steep adam, %zu block(s), %d steps, %d thread(s): "
                "rel. error p %.2e, exp_avg %.2e, exp_avg_sq %.2e -> %s\n",
                sizes.size(), steps, threads, err_p, err_m, err_v, pass ? "ok" : "FAILED");
    ok = ok && pass;
  }
  return ok;
}

// ---- variants (timing: harness.hpp)
// ---------------------------------------------------------------------------------

std::vector<variant> make_variants(layout& l, oneapi::tbb::task_arena& arena) {
  std::vector<variant> out;
  auto add = [&](std::string name, std::string impl, std::size_t bpp, std::function<void()> f) {
    out.push_back({ std::move(name), std::move(impl), std::move(f), {}, {}, l.tensors, bpp });
  };
  add("adam", "steep", decltype(l.adam)::bytes_per_param, [&l] { l.adam.step(); });
  add("adam", "steep_noguard", decltype(l.adam)::bytes_per_param, [&l] { l.adam_unguarded.step(); });
  add("adam", "steep_mask", decltype(l.adam)::bytes_per_param, [&l] { l.adam_masked.step(); });
  add("adam_bf16", "steep", decltype(l.adam_bf16)::bytes_per_param, [&l] { l.adam_bf16.step(); });
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
  add("lion", "steep", decltype(l.lion)::bytes_per_param, [&l] { l.lion.step(); });
  add("signum", "steep", decltype(l.signum)::bytes_per_param, [&l] { l.signum.step(); });
  add("momentum", "steep", decltype(l.momentum)::bytes_per_param, [&l] { l.momentum.step(); });
  add("adam", "handwritten", 28, [&l, &arena] {
    const adam_scalars s = adam_step_scalars(++l.handwritten_t);
    for_each_chunk(arena, l.chunks, [&](const stream_block& c) { adam_chunk(c, s); });
  });
  add("4r3w", "roofline", 28, [&l, &arena] {
    const float zero = roofline_zero;
    for_each_chunk(arena, l.chunks, [&](const stream_block& c) { roofline_chunk(c, zero); });
  });
  return out;
}

} // namespace

int main(int argc, char** argv) {
  const int all_threads = oneapi::tbb::info::default_concurrency();
  std::vector<std::size_t> sizes{ 16777216, 67108864 };
  std::vector<int> threads{ 1, all_threads };
  std::size_t many_tensors = 200;
  int rounds = 7, steps = 5, warmup = 3;
  std::string out_path = "bench-results.json";
  bool quick = false;

  CLI::App app{ "steep-bench: steep's generated optimizer steps vs a hand-written fused Adam and the "
                "4-read/3-write memory roofline, timed interleaved in one process" };
  app.add_option("--sizes", sizes, "parameter counts (total over all tensors)")
    ->delimiter(',')
    ->capture_default_str();
  app.add_option("--threads", threads, "thread counts")->delimiter(',')->capture_default_str();
  app.add_option("--tensors", many_tensors, "tensor count of the many-tensor layout")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  app.add_option("--rounds", rounds, "interleaved rounds")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--steps-per-round", steps, "timed steps per variant per round")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps per variant before the rounds")
    ->capture_default_str()
    ->check(CLI::NonNegativeNumber);
  app.add_option("--out", out_path, "JSON results file")->capture_default_str();
  app.add_flag("--quick", quick, "smoke test: 100003 parameters, 2 rounds");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    sizes = { 100003 };
    rounds = 2;
  }
  std::vector<int> thread_list;
  try {
    thread_list = distinct_threads(threads);
  } catch (const std::invalid_argument& e) {
    std::cerr << "steep-bench: " << e.what() << '\n';
    return 2;
  }

  // Small, so it costs nothing before a long run; a wrong reference would make every ratio void.
  for (int t : thread_list)
    if (!check_handwritten_adam(t)) {
      std::cerr << "steep-bench: hand-written Adam disagrees with steep's Adam; aborting\n";
      return 1;
    }

  nlohmann::json records = nlohmann::json::array(), ratios = nlohmann::json::array();
  std::printf("\n%-9s %-12s %11s %7s %4s %10s %10s %10s %4s %8s\n", "name", "impl", "params", "tensors",
              "thr", "median_ms", "min_ms", "max_ms", "B/p", "GB/s");
  for (std::size_t n : sizes) {
    // Both layouts live at once so that the one-vs-many comparison is interleaved too; at 64M
    // that is 2 x (9 float arrays + 2 bf16 arrays) x 256 MiB = 5 GiB (p, g, the two Adams' 2
    // slots each, one slot each for lion, signum and momentum, adam_bf16's two), freed before
    // the next size.
    std::vector<std::unique_ptr<layout>> layouts;
    for (std::size_t t : { std::size_t{ 1 }, many_tensors })
      if (layouts.empty() || t != 1)
        layouts.push_back(std::make_unique<layout>(n, t, thread_list.front()));
    for (int thr : thread_list) {
      oneapi::tbb::task_arena arena(thr);
      std::vector<variant> vs;
      for (auto& l : layouts) {
        l->set_threads(thr);
        for (auto& v : make_variants(*l, arena))
          vs.push_back(std::move(v));
      }
      run_interleaved(vs, rounds, steps, warmup);

      for (const auto& v : vs) {
        const auto [med, lo, hi] = summarize(v.samples);
        const double gbs = static_cast<double>(v.bytes_per_param) * static_cast<double>(n) / med / 1e9;
        std::printf("%-9s %-12s %11zu %7zu %4d %10.3f %10.3f %10.3f %4zu %8.1f\n", v.name.c_str(),
                    v.impl.c_str(), n, v.tensors, thr, med * 1e3, lo * 1e3, hi * 1e3, v.bytes_per_param, gbs);
        records.push_back({ { "name", v.name },
                            { "impl", v.impl },
                            { "params", n },
                            { "tensors", v.tensors },
                            { "threads", thr },
                            { "dtype", "float32" },
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
      std::printf("ratios (median over rounds of per-round ratios), params %zu, threads %d:\n", n, thr);
      for (const auto& l : layouts) {
        const variant* sa = find("adam", "steep", l->tensors);
        const variant* hw = find("adam", "handwritten", l->tensors);
        const variant* rf = find("4r3w", "roofline", l->tensors);
        const double steep_over_hw = round_ratio(*sa, *hw);
        const double roof_frac = round_ratio(*rf, *sa);
        const double roof_frac_hw = round_ratio(*rf, *hw);
        const variant* unguarded = find("adam", "steep_noguard", l->tensors);
        const double guard_cost = round_ratio(*sa, *unguarded);
        const double mask_cost = round_ratio(*find("adam", "steep_mask", l->tensors), *unguarded);
        const double bf16_roof =
          round_ratio(*find("2r1w+2h", "roofline", l->tensors), *find("adam_bf16", "steep", l->tensors));
        const double bf16_over_adam = round_ratio(*find("adam_bf16", "steep", l->tensors), *sa);
        std::printf(
          "  tensors %4zu: steep_adam/handwritten time %.3f, roofline/steep_adam time %.3f "
          "(handwritten %.3f)\n"
          "                guard: adam/adam_noguard time %.3f (refuse), %.3f (mask); adam_bf16 (20 B/p): its "
          "roofline/it %.3f, adam_bf16/adam time %.3f\n",
          l->tensors, steep_over_hw, roof_frac, roof_frac_hw, guard_cost, mask_cost, bf16_roof,
          bf16_over_adam);
        ratios.push_back({ { "kind", "per_group" },
                           { "params", n },
                           { "tensors", l->tensors },
                           { "threads", thr },
                           { "steep_adam_over_handwritten_time", steep_over_hw },
                           { "roofline_over_steep_adam_time", roof_frac },
                           { "roofline_over_handwritten_time", roof_frac_hw },
                           { "guarded_over_unguarded_adam_time", guard_cost },
                           { "masked_over_unguarded_adam_time", mask_cost },
                           { "roofline20_over_steep_adam_bf16_time", bf16_roof },
                           { "steep_adam_bf16_over_steep_adam_time", bf16_over_adam } });
      }
      if (layouts.size() == 2) {
        const std::size_t m = layouts[1]->tensors;
        for (const auto& v : vs) {
          if (v.tensors != 1)
            continue;
          const variant* many = find(v.name, v.impl, m);
          // throughput(many) / throughput(one) = time(one) / time(many), same params
          const double r = round_ratio(v, *many);
          std::printf("  %s %s: %zu-tensor / 1-tensor throughput %.3f\n", v.impl.c_str(), v.name.c_str(), m,
                      r);
          ratios.push_back({ { "kind", "many_over_one_tensor_throughput" },
                             { "name", v.name },
                             { "impl", v.impl },
                             { "params", n },
                             { "tensors", m },
                             { "threads", thr },
                             { "ratio", r } });
        }
      }
      std::printf("\n");
    }
  }

  const nlohmann::json result{ { "machine", machine_info(thread_list) },
                               { "settings",
                                 { { "rounds", rounds },
                                   { "steps_per_round", steps },
                                   { "warmup", warmup },
                                   { "chunk_elements", chunk_elements },
                                   { "ratio_method", "median over rounds of per-round median ratios" } } },
                               { "records", records },
                               { "ratios", ratios } };
  return write_results(out_path, result, "steep-bench") ? 0 : 1;
}
