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
// reads (and 12 it writes). On the machine of docs/benchmarks.md such a loop is bound by its
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
//
// The whole guard is here: the checks on a batch (finite_check, add_finite_probe), where it runs
// for a rule (guard_plan), its state and scans (guard_state: chunk flags, held-back notes) and
// what a step does with what it found (optimizer_facade::step, facade.hpp). The passes only carry its flags
// (engine/passes/).

#include "steep/core/error.hpp"
#include "steep/core/shape.hpp"
#include "steep/engine/options.hpp"
#include "steep/kernel/simd.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
  // The output is a slot kept per block or per line, computed on the host: the whole block was
  // held back, and `index` is the slot's entry (its line; 0 for a per-block slot).
  bool whole_block = false;
};

// One chunk's running check (a masked tail's lanes past its end hold zeros: finite).
template <class T>
struct finite_check {
  kernel::batch<T> lanes = kernel::batch<T>(T(0));
  void add(const kernel::batch<T>& g) { lanes = lanes + (g - g); }
  bool finite() const { return std::isfinite(static_cast<double>(kernel::hsum(lanes))); }
};

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

[[gnu::cold]] inline std::string describe_nonfinite(const nonfinite_entry& e) {
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

// What a step did (step() returns it; cheap: one byte):
//   applied    every parameter and slot was written;
//   held_back  the step was applied except the coordinates held_back() reports, which kept their
//              parameter and state (a non-finite gradient under nonfinite_policy::mask, or a new
//              value that would not be finite): the step counts, do not apply it again;
//   refused    nothing was written and the step count did not move (a non-finite gradient under
//              nonfinite_policy::skip): the caller may fix the gradient and step again.
// Both held_back and refused count in skipped_steps(). In a condition it is true only for
// applied, as the bool step() returned before: `if (!opt.step())` still asks "anything amiss?";
// retry only on `refused()` (docs/robustness.md, "Retrying a step").
enum class step_outcome : std::uint8_t { applied, held_back, refused };
struct step_result {
  step_outcome outcome = step_outcome::applied;
  constexpr explicit operator bool() const noexcept { return outcome == step_outcome::applied; }
  constexpr bool applied() const noexcept { return outcome == step_outcome::applied; }
  constexpr bool held_back() const noexcept { return outcome == step_outcome::held_back; }
  constexpr bool refused() const noexcept { return outcome == step_outcome::refused; }
  friend constexpr bool operator==(step_result, step_result) = default;
};

// What a step does with a non-finite gradient under `policy`: throws (refuse), or counts the
// skipped step and says it was refused (skip).
inline step_result on_nonfinite(nonfinite_policy policy, const nonfinite_entry& e, std::int64_t& skipped) {
  if (policy == nonfinite_policy::skip) {
    ++skipped;
    return { step_outcome::refused };
  }
  throw nonfinite_error(e.block, e.index, describe_nonfinite(e));
}

// What held_back() reports, as a sentence.
inline std::string describe_held_back(const nonfinite_entry& e) {
  const std::string value = std::isnan(e.value) ? "NaN" : (e.value > 0 ? "+Inf" : "-Inf");
  const std::string what = e.output.empty() ? "its gradient is " + value
                                            : "its new " + e.output + " would be " + value +
                                                " (from finite inputs: the storage type overflowed)";
  if (e.whole_block)
    return "block '" + e.block + "' was held back whole: its new " + e.output + " (entry " +
           std::to_string(e.index) + ", kept per block or line, which every coordinate reads) would be " +
           value + "; " + std::to_string(e.count) +
           " coordinate(s) in all kept their parameter and state this step";
  return "block '" + e.block + "': flat index " + std::to_string(e.index) + " was held back, " + what + "; " +
         std::to_string(e.count) + " coordinate(s) in all kept their parameter and state this step";
}

namespace detail {

template <class T>
struct tables; // engine/tables.hpp

// Where the guard runs for a program P, and whether a rule can hold back single coordinates.
template <class P>
struct guard_plan {
  // Fused into the depth-0 reduction pass if there is one, else into a depth-0 line pass (Adam-
  // mini per slice), else into the matrix pre-pass, else in a read-only pass of its own.
  static constexpr bool in_reductions = P::template reductions_at<false, 0> > 0;
  static constexpr bool in_lines = !in_reductions && P::template reductions_at<true, 0> > 0;
  static constexpr bool in_prepass = !in_reductions && !in_lines && P::n_matrices > 0;
  static constexpr bool alone = !in_reductions && !in_lines && !in_prepass;
  // Whether each coordinate's step reads only its own gradient entry (no reduction of any kind,
  // no matrix stage): the rules nonfinite_policy::mask can hold back coordinate by coordinate.
  static constexpr bool coordinatewise = P::n_matrices == 0 && P::max_depth < 0;

  // Whether a step under `policy` holds back non-finite coordinates in its update pass (mask,
  // which the constructor accepts only for coordinatewise rules).
  static bool masked(nonfinite_policy policy) noexcept {
    return coordinatewise && P::reads_grad && policy == nonfinite_policy::mask;
  }

  // Where the guard runs and what it does, for describe().
  // (bytes, dtype: the parameters' element size and name, what a pass of its own reads.)
  static std::string text(nonfinite_policy policy, bool on, std::size_t bytes, std::string_view dtype) {
    if (masked(policy))
      return "per coordinate, fused into the update pass (mask)";
    if (!on)
      return "off";
    const std::string where = in_reductions ? "fused into the reduction pass"
                              : in_lines    ? "fused into the line reduction pass"
                              : in_prepass  ? "fused into the matrix pre-pass"
                                            : "a read-only pass of its own (" + std::to_string(bytes) +
                                               " bytes per parameter in " + std::string(dtype) + ")";
    return where + (policy == nonfinite_policy::skip ? ", skips the step" : "");
  }
};

// The guard's state and scans, the same for every rule (compiled once per T): its policy, the
// chunk flags the read-only passes set, and the update pass's notes of held-back coordinates.
template <class T>
struct guard_state {
  // reads_grad: the rule reads the gradient (the guard has something to check); coordinatewise:
  // guard_plan's. chunks: the work list's.
  [[gnu::cold, gnu::noinline]] guard_state(const optimizer_options& opts, bool reads_grad,
                                           bool coordinatewise, std::size_t chunks)
    : policy_(opts.nonfinite)
    , guard_(opts.nonfinite != nonfinite_policy::off && opts.nonfinite != nonfinite_policy::mask &&
             reads_grad) {
    if (opts.nonfinite == nonfinite_policy::mask && !coordinatewise)
      throw usage_error(
        "nonfinite_policy::mask holds back single coordinates, so it needs a rule in which every "
        "coordinate steps on its own gradient alone; this rule has a reduction or a matrix "
        "stage, through which one NaN reaches a whole block. Use refuse or skip: for this "
        "rule their check already rides on a read-only pass it makes anyway");
    chunk_bad_.assign(chunks, 0);
    chunk_held_.assign(chunks, held_record{});
  }
  [[gnu::noinline]] ~guard_state() = default;
  guard_state(guard_state&&) noexcept = default;
  guard_state& operator=(guard_state&&) noexcept = default;

  // The guard alone, for a rule whose only pass writes: reads the gradient and nothing else.
  // (Members of a class template, not templates: compiled once per T, whatever the rule.)
  void guard_pass(const tables<T>& t) {
    t.exec_.for_each_chunk(t.wl_, [&](std::size_t ci) {
      const auto& ch = t.wl_[ci];
      chunk_bad_[ci] = !kernel::all_finite(t.blocks_[ch.block].grad, ch.begin, ch.end);
    });
  }

  // The first non-finite gradient entry of the chunks the guard's passes flagged, with how many
  // there are, if the guard is on; clears the flags. Scanned serially: rare, and the same for
  // any thread count. Noted and reported as the update pass's held-back coordinates are.
  std::optional<nonfinite_entry> first_bad_chunk(const tables<T>& t) {
    if (!guard_)
      return std::nullopt;
    for (std::size_t ci = 0; ci < chunk_bad_.size(); ++ci)
      if (chunk_bad_[ci]) {
        chunk_bad_[ci] = 0;
        const auto& ch = t.wl_[ci];
        for (std::size_t i = ch.begin; i < ch.end; ++i)
          note_held(ci, i, 1, 1, t.blocks_[ch.block].grad + i, 1);
      }
    return held_entries(t, nullptr);
  }

  // Notes the bad coordinates among n from i of chunk ci: rows[r * w + k] is lane k of output r,
  // the gradient (r = 0), the new parameter (1), slot K's new value (2 + K); the update pass
  // passes a group with held-back coordinates (its rare branch), the guard's scan a gradient
  // entry alone. A coordinate is bad if any of its outputs is not finite; the chunk counts them
  // and keeps its first. Out of line: the pass's loops carry only the call.
  [[gnu::cold, gnu::noinline]] void note_held(std::size_t ci, std::size_t i, std::size_t n, std::size_t w,
                                              const T* rows, std::size_t n_rows) {
    held_record& h = chunk_held_[ci];
    for (std::size_t k = 0; k < n; ++k)
      for (std::size_t r = 0; r < n_rows; ++r)
        if (!std::isfinite(rows[r * w + k])) {
          if (h.count++ == 0)
            h.index = i + k, h.value = static_cast<double>(rows[r * w + k]), h.output = r;
          break;
        }
  }

  // Holds back block b whole: slot K's new value at entry `line` (0 for a per-block slot) would
  // be `value`, not finite. A slot kept per block or per line is computed on the host while the
  // step is prepared, and every coordinate of the block reads it, so the block keeps its
  // parameters and every slot this step (the update pass skips it, and its host slots are not
  // stored); held_entries() reports it with the coordinates held back one by one.
  [[gnu::cold, gnu::noinline]] void hold_block(std::size_t blocks, std::size_t b, std::size_t slot,
                                               std::size_t line, double value) {
    if (block_held_.size() != blocks)
      block_held_.assign(blocks, block_record{});
    if (!block_held_[b].held)
      block_held_[b] = { true, slot, line, value };
  }
  // Forgets the last step's block holds (a step's prepare starts with none).
  void clear_block_holds() noexcept {
    for (auto& h : block_held_)
      h.held = false;
  }
  bool block_held(std::size_t b) const noexcept { return !block_held_.empty() && block_held_[b].held; }

  // The noted coordinates and held blocks: the first in the store's order (a held block counts
  // all its coordinates), with how many there are; clears the coordinates' notes. slot_name(K)
  // names slot K (for notes of the update pass's outputs).
  [[gnu::cold]] std::optional<nonfinite_entry> held_entries(const tables<T>& t,
                                                            std::string_view (*slot_name)(std::size_t)) {
    std::optional<nonfinite_entry> out;
    std::size_t count = 0;
    std::size_t first = t.blocks_.size(); // the block `out` is in
    if (slot_name)
      for (std::size_t b = 0; b < block_held_.size(); ++b)
        if (const auto& h = block_held_[b]; h.held) {
          const auto& blk = t.blocks_[b];
          if (b < first)
            out = nonfinite_entry{ blk.name, blk.shape, h.line, h.value, 0, std::string(slot_name(h.slot)),
                                   true },
            first = b;
          count += blk.size;
        }
    for (std::size_t ci = 0; ci < chunk_held_.size(); ++ci) {
      held_record& h = chunk_held_[ci];
      if (h.count == 0)
        continue;
      if (const std::size_t b = t.wl_[ci].block; b < first) {
        const auto& blk = t.blocks_[b];
        out = nonfinite_entry{ blk.name,
                               blk.shape,
                               h.index,
                               h.value,
                               0,
                               h.output == 0   ? std::string()
                               : h.output == 1 ? std::string("param")
                                               : std::string(slot_name(h.output - 2)) };
        first = b;
      }
      count += h.count;
      h.count = 0;
    }
    if (out)
      out->count = count;
    return out;
  }

  nonfinite_policy policy_;
  bool guard_; // the gradient is checked before anything is written (refuse, skip)
  std::optional<nonfinite_entry> held_;
  std::vector<std::uint8_t> chunk_bad_; // [chunk]: a read-only pass saw a non-finite gradient entry
  struct held_record {
    std::size_t count = 0, index = 0, output = 0; // output: as note_held's rows
    double value = 0;
  };
  std::vector<held_record> chunk_held_; // [chunk]: the last update pass's held-back coordinates
  struct block_record {
    bool held = false;
    std::size_t slot = 0, line = 0; // the slot and entry whose new value was not finite
    double value = 0;
  };
  std::vector<block_record> block_held_; // [block]: held whole this step (hold_block); empty if never
};

} // namespace detail

} // namespace steep::engine
