#pragma once
// The non-finite guard: a NaN or Inf in any gradient refuses the whole step before anything is
// written.
//
//   steep::optimizer opt(rule, store);                      // nonfinite_policy::refuse (default)
//   try { opt.step(); } catch (const steep::nonfinite_error& e) { e.subject(); e.index(); }
//   steep::optimizer lenient(rule, store, {.nonfinite = steep::nonfinite_policy::skip});
//   if (!lenient.step()) { /* skipped: lenient.skipped_steps() counts it */ }
//
// Why the whole step: one NaN spreads through any reduction or matrix map over its block (l2
// normalization divides every entry by a NaN norm; Newton-Schulz mixes all entries), and
// through a global reduction into every block. A half-applied step cannot be undone bitwise,
// so the check runs in the first pass of a step that reads the gradient, and every pass before
// the update pass is read-only. A rule with a reduction or a matrix stage begins with such a
// pass already, and the check rides on it at no extra memory traffic; a purely elementwise
// rule writes in its only pass, so the guard reads the gradient once more, alone (its cost is
// measured by bench/steep_bench.cpp, "guard"). A routed rule prepares every arm before any arm
// commits (engine/routed.hpp).
//
// That extra read has a floor no fusion can remove while the step stays all-or-nothing: every
// gradient entry must be seen before the first write, and a gradient larger than the caches
// must then be read twice: 4 more bytes per float32 parameter to the 16 Adam's update pass
// reads (and 12 it writes). On the machine of README's "Benchmarks" such a loop is bound by its
// reads, so at 64M that is about +25%. steep-bench times the read alone (guard_read), and
// refuse sits on it (1.14-1.26 against a floor of 1.22-1.26 in one run). For rules whose
// coordinates step independently, nonfinite_policy::mask trades the all-or-nothing step for a
// per-coordinate one: the update pass keeps parameter and state wherever g is not finite, at
// no extra traffic, and held_back() reports every such entry (options.hpp).
//
// A finite gradient can still give a value its storage cannot hold: float32 Adam's
// v = b2 v + (1 - b2) g^2 is +Inf for |g| > ~1.8e19, and a coordinate whose v is +Inf never
// moves again. So under every policy but off the update pass stores a coordinate's new
// parameter and element-wise slots only where they and its gradient entry are finite (the same
// loop serves mask, and refuse and skip, whose gradient is known finite by then); elsewhere it
// stores back what it loaded. step() then returns false, skipped_steps() counts the step and held_back()
// names the block, index and output (describe_held_back). This is a select in registers, no
// memory traffic. Per-block and per-row slots, computed on the host, are not covered.
//
// How: per chunk the loop adds g - g over every element, which is 0 for a finite g and NaN for
// NaN or +-Inf; a sum of zeros cannot overflow. That is one subtraction and one addition per
// batch. Only a chunk that failed is scanned again, serially, for its first bad index, so the
// error is the same for any thread count.

#include "steep/core/error.hpp"
#include "steep/core/shape.hpp"
#include "steep/engine/options.hpp"
#include "steep/kernel/simd.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace steep::engine {

// A refused step: names the block, the first non-finite flat index and its value.
class nonfinite_error : public error {
public:
  nonfinite_error(const std::string& block, std::size_t index, const std::string& problem)
    : error(block, problem)
    , index_(index) {}
  std::size_t index() const noexcept { return index_; }

private:
  std::size_t index_;
};

// The first non-finite gradient entry a step found.
struct nonfinite_entry {
  std::string block;
  shape_t shape;
  std::size_t index = 0;
  double value = 0;
  std::size_t count = 1; // how many entries are not finite (held back: how many coordinates)
  // Empty: the gradient entry was not finite. Otherwise the coordinate's finite inputs gave a
  // value that is not (a float32 overflow, say): "param" or the state slot's name, and `value`
  // is what would have been stored.
  std::string output;
};

// One chunk's running check (a masked tail's lanes past its end hold zeros: finite).
template <class T>
struct finite_check {
  kernel::batch<T> lanes = kernel::batch<T>(T(0));
  void add(const kernel::batch<T>& g) { lanes = lanes + (g - g); }
  bool finite() const { return std::isfinite(static_cast<double>(kernel::hsum(lanes))); }
};

// Whether every entry of g[begin, end) is finite. The range is read as four streams, one per
// quarter, in lockstep, each with its own sum of g - g: one core reads four streams faster
// than one (a 64K-entry chunk at a time, 256 MB of float32 in 18 ms instead of 22 ms on the
// machine of README's "Benchmarks"), and four sums keep the additions off one dependency chain.
template <class T>
bool all_finite(const T* g, std::size_t begin, std::size_t end) {
  using V = kernel::batch<T>;
  constexpr std::size_t w = V::size;
  const std::size_t quarter = (end - begin) / (4 * w) * w;
  const T* const q0 = g + begin;
  const T* const q1 = q0 + quarter;
  const T* const q2 = q1 + quarter;
  const T* const q3 = q2 + quarter;
  V a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
  for (std::size_t i = 0; i < quarter; i += w) {
    const V x0 = V::load_unaligned(q0 + i), x1 = V::load_unaligned(q1 + i);
    const V x2 = V::load_unaligned(q2 + i), x3 = V::load_unaligned(q3 + i);
    a0 = a0 + (x0 - x0), a1 = a1 + (x1 - x1), a2 = a2 + (x2 - x2), a3 = a3 + (x3 - x3);
  }
  std::size_t i = begin + 4 * quarter;
  for (; i + w <= end; i += w) {
    const V x = V::load_unaligned(g + i);
    a0 = a0 + (x - x);
  }
  T tail = 0;
  for (; i < end; ++i)
    tail = tail + (g[i] - g[i]);
  return std::isfinite(static_cast<double>(kernel::hsum((a0 + a1) + (a2 + a3)) + tail));
}

// Several values' finiteness in one compare: x * 0 is a zero for a finite x and NaN for NaN or
// +-Inf, so a running sum of such terms is a zero exactly while every term was finite, and,
// unlike a sum of the values, it cannot overflow. One fused multiply-add per value, then
// finite_sum_ok's one compare: the update pass's hold-back test, which needed a subtract, a
// compare and a mask-and per value as x - x == 0 tests.
template <class V>
V add_finite_probe(const V& sum, const V& x) {
  if constexpr (kernel::is_batch_v<V>)
    return xsimd::fma(x, V(0), sum);
  else
    return sum + x * V(0);
}
template <class V>
auto finite_sum_ok(const V& sum) {
  return sum == V(0); // lane-wise for a batch, a bool for the scalar tail
}

// Whether every lane of a batch_bool holds (a bool: whether it does).
template <class M>
bool all_lanes(const M& m) {
  if constexpr (std::is_same_v<M, bool>)
    return m;
  else
    return xsimd::all(m);
}

inline std::string describe_nonfinite(const nonfinite_entry& e) {
  std::string where = std::to_string(e.index);
  if (e.shape.size() > 1) {
    std::string multi;
    std::size_t rest = e.index;
    for (std::size_t d = e.shape.size(); d-- > 0;) {
      const std::size_t n = e.shape[d] ? e.shape[d] : 1;
      multi = std::to_string(rest % n) + (multi.empty() ? "" : ", ") + multi;
      rest /= n;
    }
    where += " (index (" + multi + ") of shape " + to_string(e.shape) + ")";
  }
  const std::string value = std::isnan(e.value) ? "NaN" : (e.value > 0 ? "+Inf" : "-Inf");
  const std::string more = e.count > 1 ? " (" + std::to_string(e.count) + " non-finite entries in all)" : "";
  return "non-finite gradient: " + value + " at flat index " + where + more +
         "; the step was refused and parameters and optimizer state are unchanged";
}

// What a step does with a non-finite gradient under `policy`: throws (refuse), or counts the
// skipped step and returns false (skip).
inline bool on_nonfinite(nonfinite_policy policy, const nonfinite_entry& e, std::int64_t& skipped) {
  if (policy == nonfinite_policy::skip) {
    ++skipped;
    return false;
  }
  throw nonfinite_error(e.block, e.index, describe_nonfinite(e));
}

// What held_back() reports, as a sentence.
inline std::string describe_held_back(const nonfinite_entry& e) {
  const std::string value = std::isnan(e.value) ? "NaN" : (e.value > 0 ? "+Inf" : "-Inf");
  const std::string what = e.output.empty() ? "its gradient is " + value
                                            : "its new " + e.output + " would be " + value +
                                                " (from finite inputs: the storage type overflowed)";
  return "block '" + e.block + "': flat index " + std::to_string(e.index) + " was held back, " + what + "; " +
         std::to_string(e.count) + " coordinate(s) in all kept their parameter and state this step";
}

// One step of an optimizer that splits it into prepare_step() (read-only, reports the first
// non-finite gradient entry) and commit_step() (the writes): plain and routed alike.
// commit_step() holds back coordinates whose new values are not finite (and, under mask, those
// with a non-finite gradient); held_back() reports them, and the step counts as skipped.
template <class Opt>
bool run_step(Opt& opt, nonfinite_policy policy, std::int64_t& skipped) {
  if (auto bad = opt.prepare_step())
    return on_nonfinite(policy, *bad, skipped);
  opt.commit_step();
  if (opt.held_back()) {
    ++skipped;
    return false;
  }
  return true;
}

} // namespace steep::engine
