#pragma once
// optimizer_core<T>: what a compiled optimizer (engine/optimizer.hpp) holds whatever its rule —
// the blocks it updates, the work list and its executor, the guard's policy and flags, the step
// counters, and the tables its passes fill, sized by the rule's program.
//
//   optimizer_core(store, opts, { .slots = 2, .step_scalars = 3, .block_scalars = 0,
//                                 .reductions = 0, .reads_grad = true, .coordinatewise = true });
//
// Why a base of its own: its constructor, destructor and checks are compiled once per parameter
// type in a translation unit instead of once per rule. In a translation unit with the whole
// catalogue, the optimizers' constructors and destructors were a third of the machine code
// (docs/compile-time.md).

#include "steep/core/aligned_buffer.hpp"
#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/options.hpp"
#include "steep/engine/slots.hpp"
#include "steep/expr/matrix.hpp"
#include "steep/expr/program.hpp"
#include "steep/kernel/executor.hpp"
#include "steep/kernel/work_list.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace steep::engine::detail {

// The rule's shape as the core needs it (expr::program's counts).
struct program_sizes {
  std::size_t slots, step_scalars, block_scalars, reductions;
  bool reads_grad;     // the rule reads the gradient (the guard has something to check)
  bool coordinatewise; // every coordinate steps on its own gradient alone (nonfinite_policy::mask)
};

// A named hyperparameter outside its range (the check itself is the range's, per type).
[[noreturn, gnu::cold]] inline void hyper_out_of_range(std::string_view name, double value,
                                                       std::string_view range) {
  throw usage_error("hyperparameter '" + std::string(name) + "' is " + std::to_string(value) +
                    "; it must be " + std::string(range) + " (nothing was changed)");
}

template <class T>
class optimizer_core {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "steep optimizers run on float32 or float64 parameters");

protected:
  [[gnu::cold, gnu::noinline]] optimizer_core(param_store<T>& store, const optimizer_options& opts,
                                              const program_sizes& n)
    : blocks_(store.blocks())
    , store_alive_(store.lifetime())
    , wl_(sizes(store), opts.chunk_elements)
    , exec_(checked_threads(opts.threads), opts.serial_below)
    , policy_(opts.nonfinite)
    , deterministic_(opts.deterministic)
    , guard_(opts.nonfinite != nonfinite_policy::off && opts.nonfinite != nonfinite_policy::mask &&
             n.reads_grad) {
    if (opts.nonfinite == nonfinite_policy::mask && !n.coordinatewise)
      throw usage_error(
        "nonfinite_policy::mask holds back single coordinates, so it needs a rule in which every "
        "coordinate steps on its own gradient alone; this rule has a reduction or a matrix "
        "stage, through which one NaN reaches a whole block. Use refuse or skip: for this "
        "rule their check already rides on a read-only pass it makes anyway");
    for (auto& b : blocks_)
      dims_.push_back(expr::dims_of(b.shape, b.layout));
    step_host_.assign(n.step_scalars, 0.0);
    step_T_.assign(n.step_scalars + 1, T{ 0 });
    reductions_.assign(blocks_.size() * n.reductions, 0.0);
    partials_.assign(wl_.size() * n.reductions, 0.0);
    block_host_.assign(n.block_scalars, 0.0);
    block_T_.assign(blocks_.size() * n.block_scalars + 1, T{ 0 });
    chunk_bad_.assign(wl_.size(), 0);
    chunk_held_.assign(wl_.size(), held_record{});
    block_news_.assign(blocks_.size() * n.slots, 0.0);
    line_T_.resize(blocks_.size() * n.block_scalars);
    line_red_.resize(blocks_.size() * n.block_scalars);
    line_len_.assign(n.block_scalars + 1, 1);
    line_news_.resize(n.slots * blocks_.size());
    line_slot_shapes_.resize(n.slots * blocks_.size());
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      const std::size_t parts = std::max<std::size_t>(1, blocks_[b].size / wl_.chunk_elements());
      for (std::size_t k = 0; k < parts; ++k)
        line_tasks_.push_back({ b, k, parts });
    }
  }
  [[gnu::noinline]] ~optimizer_core() = default;
  optimizer_core(optimizer_core&&) noexcept = default;
  optimizer_core& operator=(optimizer_core&&) noexcept = default;

  static int checked_threads(int n) {
    if (n < 0)
      throw usage_error("optimizer_options.threads is " + std::to_string(n) +
                        "; it must be 0 (every core TBB sees) or a positive count");
    return n;
  }

  static std::vector<std::size_t> sizes(const param_store<T>& s) {
    std::vector<std::size_t> out;
    for (auto& b : s.blocks())
      out.push_back(b.size);
    return out;
  }

  std::size_t block_index(const std::string& name) const {
    for (std::size_t b = 0; b < blocks_.size(); ++b)
      if (blocks_[b].name == name)
        return b;
    throw error(name, "no block of that name is updated by this optimizer");
  }

  // How many lines of this kind block b has; `slice` is a slice line's length.
  std::size_t line_count(std::size_t b, int line, std::size_t slice = 1) const {
    return line == expr::slices_line
             ? blocks_[b].size / slice
             : static_cast<std::size_t>(line == expr::rows_line ? dims_[b].rows : dims_[b].cols);
  }

  // A slice line's length, checked against block b (expr/reduce.hpp, per_slice).
  std::size_t checked_slice(std::size_t b, std::size_t len) const {
    if (len == expr::mixed_slices)
      throw usage_error("the rule combines per-slice values of different slice lengths in one "
                        "expression; each value is one per slice of its own length, so they do not "
                        "line up entry by entry. Use one slice shape per expression");
    if (len == 0 || blocks_[b].size % len != 0)
      throw error(blocks_[b].name, "its " + std::to_string(blocks_[b].size) +
                                     " entries do not split into slices of " + std::to_string(len) +
                                     " consecutive entries (slice_sum / slice_mean / slice_norm2)");
    return len;
  }

  struct line_task {
    std::size_t block, part, parts;
  };
  // Part `part` of `parts` of n lines: [begin, end).
  static std::pair<std::size_t, std::size_t> lines_of_part(std::size_t n, const line_task& t) {
    return { n * t.part / t.parts, n * (t.part + 1) / t.parts };
  }

  // Lays out slot k's arena, every entry `init`: one value per element of each block (line
  // not_a_line), one per block (line -1), or one per line of each block (its line_slot_shapes_).
  // Per storage type, not per slot of each rule.
  template <class S>
  [[gnu::cold]] void lay_out_slot(slot_buffer<S>& sb, std::size_t k, int line, double init) {
    if (line < 0) {
      sb.lay_out_per_block(blocks_.size(), static_cast<S>(init));
    } else if (line != expr::not_a_line) {
      std::vector<std::size_t> counts;
      for (std::size_t b = 0; b < blocks_.size(); ++b)
        counts.push_back(line_slot_shapes_[k * blocks_.size() + b][0]);
      sb.lay_out_counts(counts, static_cast<S>(init));
    } else {
      sb.lay_out(blocks_, static_cast<S>(init));
    }
  }

  // Every block is a matrix of a role opts.matrix_roles allows (a rule whose matrix stage maps
  // every block, as Muon's does); throws naming the first that is not.
  [[gnu::cold]] void check_matrix_blocks(const optimizer_options& opts) const {
    for (const auto& blk : blocks_) {
      if (blk.shape.size() < 2)
        throw error(blk.name,
                    "the rule applies a matrix map (e.g. Muon's Newton-Schulz) to every block, but this "
                    "block has shape " +
                      to_string(blk.shape) +
                      ", not a matrix; route it to an elementwise rule with steep::route(...)");
      bool allowed = false;
      for (auto r : opts.matrix_roles)
        allowed = allowed || r == blk.role;
      if (!allowed)
        throw error(blk.name,
                    "the rule applies a matrix map (e.g. Muon's Newton-Schulz) to this block, whose role "
                    "is " +
                      std::string(to_string(blk.role)) +
                      "; Muon is meant for hidden matrices: route the block elsewhere, or opt in "
                      "explicitly with steep::on<block_role::" +
                      std::string(to_string(blk.role)) + ">.explicitly()");
    }
  }

  struct matrix_task {
    std::size_t stage, block, piece, size; // piece `piece` of `size` entries of the block
  };
  // Largest first, ties in the order listed: by block, stage, piece (LPT: the dynamic schedule
  // ends with small tasks). A total order, so std::sort gives what a stable sort by size would,
  // without libstdc++ 12's deprecated temporary buffer (a warning under clang). Here, not in the
  // optimizer, so the sort is compiled once per parameter type, not per rule.
  [[gnu::cold]] void order_matrix_tasks() {
    std::sort(matrix_tasks_.begin(), matrix_tasks_.end(), [](const matrix_task& x, const matrix_task& y) {
      return x.size != y.size ? x.size > y.size
                              : std::tie(x.block, x.stage, x.piece) < std::tie(y.block, y.stage, y.piece);
    });
  }

  // ---- the non-finite guard's scans (guard.hpp), the same for every rule ----------------------

  // The guard alone, for a rule whose only pass writes: reads the gradient and nothing else.
  void guard_pass() {
    exec_.for_each_chunk(wl_, [&](std::size_t ci) {
      const kernel::chunk& ch = wl_[ci];
      chunk_bad_[ci] = !all_finite(blocks_[ch.block].grad, ch.begin, ch.end);
    });
  }

  // The first non-finite gradient entry of the chunks the guard's passes flagged, with how many
  // there are, if the guard is on; clears the flags. Scanned serially: rare, and the same for
  // any thread count. Noted and reported as the update pass's held-back coordinates are.
  std::optional<nonfinite_entry> first_bad_chunk() {
    if (!guard_)
      return std::nullopt;
    for (std::size_t ci = 0; ci < chunk_bad_.size(); ++ci)
      if (chunk_bad_[ci]) {
        chunk_bad_[ci] = 0;
        const kernel::chunk& ch = wl_[ci];
        for (std::size_t i = ch.begin; i < ch.end; ++i)
          note_held(ci, i, 1, 1, blocks_[ch.block].grad + i, 1);
      }
    return held_entries(nullptr);
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

  // The noted coordinates: the first in list order, with how many there are; clears the notes.
  // slot_name(K) names slot K (for notes of the update pass's outputs).
  [[gnu::cold]] std::optional<nonfinite_entry> held_entries(std::string_view (*slot_name)(std::size_t)) {
    std::optional<nonfinite_entry> out;
    std::size_t count = 0;
    for (std::size_t ci = 0; ci < chunk_held_.size(); ++ci) {
      held_record& h = chunk_held_[ci];
      if (h.count == 0)
        continue;
      if (count == 0) {
        const block<T>& blk = blocks_[wl_[ci].block];
        out = nonfinite_entry{ blk.name,
                               blk.shape,
                               h.index,
                               h.value,
                               0,
                               h.output == 0   ? std::string()
                               : h.output == 1 ? std::string("param")
                                               : std::string(slot_name(h.output - 2)) };
      }
      count += h.count;
      h.count = 0;
    }
    if (out)
      out->count = count;
    return out;
  }

  std::vector<block<T>> blocks_;
  std::weak_ptr<const bool> store_alive_; // param_store::lifetime()
  std::vector<expr::block_dims> dims_;
  std::vector<matrix_task> matrix_tasks_;
  kernel::work_list wl_;
  kernel::executor exec_;
  nonfinite_policy policy_;
  bool deterministic_;
  bool guard_;
  std::optional<nonfinite_entry> held_;
  std::vector<std::uint8_t> chunk_bad_;
  struct held_record {
    std::size_t count = 0, index = 0, output = 0; // output: as note_held's rows
    double value = 0;
  };
  std::vector<held_record> chunk_held_; // [chunk]: the last update pass's held-back coordinates
  std::int64_t t_ = 0;
  std::int64_t skipped_ = 0;
  std::vector<double> block_news_;             // per-block slots' new values, [block][slot], until commit
  std::size_t host_block_ = 0;                 // the block compute_block_slots() is evaluating
  shape_t one_value_ = { 1 };                  // the shape state() gives a per-block slot
  std::vector<shape_t> line_slot_shapes_;      // [slot][block]: a per-line slot's shape, (its lines)
  std::vector<std::size_t> line_len_;          // [per-block offset]: a slice line's slice length
  std::vector<std::uint8_t> line_bad_;         // [line task]: it read a non-finite gradient entry (guard)
  std::vector<line_task> line_tasks_;          // the line passes' tasks: each block in parts of about a chunk
  std::vector<std::vector<T>> line_T_;         // [block][per-block offset]: a line's values, for the loop
  std::vector<std::vector<double>> line_red_;  // [block][per-block offset]: a line reduction's results
  std::vector<std::vector<double>> line_news_; // [slot][block]: per-line slots' new values until commit
  std::vector<double> step_host_;
  aligned_buffer<T> step_T_;
  std::vector<double> reductions_;
  std::vector<double> partials_;
  std::vector<double> block_host_;
  aligned_buffer<T> block_T_;
};

} // namespace steep::engine::detail
