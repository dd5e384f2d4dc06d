#pragma once
// The timing harness shared by steep's benchmarks: interleaved rounds, per-round ratios, medians.
//
//   std::vector<steep::bench::variant> vs = {{"adam", "steep", [&] { opt.step(); }}, ...};
//   steep::bench::run_interleaved(vs, rounds, steps, warmup);
//   steep::bench::round_ratio(vs[0], vs[1]);   // median over rounds of per-round time ratios
//
// Why: throughput on the project's shared VMs drifts by up to 2x
// between minutes, so every variant of one setting is timed interleaved in one process, in an
// order rotated every round; ratios are taken per round and their median reported. Absolute
// rates are indicative only. Rotation keeps the cyclic order, so each variant always follows
// the same one: a caller orders the variants so that none follows a variant on the same arrays
// (which leaves them warmer for it: steep-bench's alternating layouts, docs/benchmarks.md).

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <oneapi/tbb/info.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <xsimd/xsimd.hpp>

namespace steep::bench {

using clock_type = std::chrono::steady_clock;

struct variant {
  std::string name, impl;
  std::function<void()> step;
  std::vector<double> samples;       // seconds per step, all rounds
  std::vector<double> round_medians; // per round
  std::size_t tensors = 1;           // what the variant runs on (benchmark-specific)
  std::size_t bytes_per_param = 0;
};

inline double median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  const std::size_t k = x.size() / 2;
  return x.size() % 2 ? x[k] : 0.5 * (x[k - 1] + x[k]);
}

// Before a timed step, the calling thread computes for gap_us microseconds, untimed: what a
// training loop's forward and backward pass do between optimizer steps. Thread pools put their
// workers to sleep in such a gap, and the step after it pays for waking them.
inline void busy_gap(double gap_us) {
  if (gap_us <= 0)
    return;
  const auto t0 = clock_type::now();
  while (std::chrono::duration<double, std::micro>(clock_type::now() - t0).count() < gap_us) {
  }
}

// Warm-up, then `rounds` rounds; in round r the variants run starting at index r (rotation), each
// `steps` steps, every step timed on its own: back to back, or each after a busy_gap(gap_us).
inline void run_interleaved(std::vector<variant>& vs, int rounds, int steps, int warmup, double gap_us = 0) {
  for (auto& v : vs)
    for (int s = 0; s < warmup; ++s)
      v.step();
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t j = 0; j < vs.size(); ++j) {
      auto& v = vs[(j + static_cast<std::size_t>(r)) % vs.size()];
      std::vector<double> round;
      for (int s = 0; s < steps; ++s) {
        busy_gap(gap_us);
        const auto t0 = clock_type::now();
        v.step();
        round.push_back(std::chrono::duration<double>(clock_type::now() - t0).count());
      }
      v.samples.insert(v.samples.end(), round.begin(), round.end());
      v.round_medians.push_back(median(round));
    }
  }
}

// median over rounds of (a's round median / b's round median): drift between rounds cancels
// (each round's ratio is computed first, then the median taken).
inline double round_ratio(const variant& a, const variant& b) {
  std::vector<double> r;
  for (std::size_t k = 0; k < a.round_medians.size(); ++k)
    r.push_back(a.round_medians[k] / b.round_medians[k]);
  return median(r);
}

inline nlohmann::json machine_info(const std::vector<int>& threads) {
  std::string cpu = "unknown";
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  return { { "cpu", cpu },
           { "hardware_concurrency", std::thread::hardware_concurrency() },
           { "tbb_default_concurrency", oneapi::tbb::info::default_concurrency() },
           { "simd_arch", xsimd::default_arch::name() },
           { "simd_float_lanes", xsimd::batch<float>::size },
           { "compiler", __VERSION__ },
           { "threads_measured", threads } };
}

// The distinct thread counts, in order: 1 and "all" coincide on a 1-core machine, and each is
// timed once. A count below 1 is a usage error.
inline std::vector<int> distinct_threads(const std::vector<int>& threads) {
  std::vector<int> out;
  for (int t : threads) {
    if (t < 1)
      throw std::invalid_argument("thread counts must be positive");
    if (std::find(out.begin(), out.end(), t) == out.end())
      out.push_back(t);
  }
  return out;
}

// Median, min and max of a variant's samples.
struct spread {
  double median, min, max;
};
inline spread summarize(const std::vector<double>& x) {
  return { median(x), *std::min_element(x.begin(), x.end()), *std::max_element(x.begin(), x.end()) };
}

// B same-shape blocks of R x C, as a benchmark's --shapes gives them ("RxC" or "BxRxC").
struct block_shape {
  std::size_t blocks, rows, cols;
  std::string label() const {
    return std::to_string(blocks) + "x" + std::to_string(rows) + "x" + std::to_string(cols);
  }
};
inline block_shape parse_block_shape(const std::string& s) {
  std::vector<std::size_t> v;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, 'x');)
    v.push_back(std::stoul(part));
  if (v.size() == 2)
    return { 1, v[0], v[1] };
  if (v.size() == 3)
    return { v[0], v[1], v[2] };
  throw std::runtime_error("shape '" + s + "' is not RxC or BxRxC");
}
inline std::vector<block_shape> parse_block_shapes(const std::vector<std::string>& args) {
  std::vector<block_shape> out;
  for (const auto& s : args)
    out.push_back(parse_block_shape(s));
  return out;
}

// Writes the results file; false, with a message naming the tool, when it cannot.
inline bool write_results(const std::string& path, const nlohmann::json& result, const char* tool) {
  std::ofstream out(path);
  if (!out) {
    std::fprintf(stderr, "%s: cannot write %s\n", tool, path.c_str());
    return false;
  }
  out << result.dump(2) << '\n';
  std::printf("wrote %s\n", path.c_str());
  return true;
}

} // namespace steep::bench
