#pragma once
// tables<T>: what every pass of a step reads and fills, whatever the rule: the blocks it updates
// and their matrix dims, the work list and its executor, the step counter, and the per-step,
// per-block and reduction tables, sized by the rule's program (expr/program.hpp).
//
//   detail::tables<float> t(store, opts, { .slots = 2, .step_scalars = 3, .block_scalars = 0,
//                                          .reductions = 0, .reads_grad = true, .coordinatewise = true });
//   t.exec_.for_each_chunk(t.wl_, [&](std::size_t ci) { const kernel::chunk& ch = t.wl_[ci]; ... });
//
// Tables flow one way through a step (docs/design.md, "The plan of one step"): per-step scalars
// (step_host_ in double, step_T_ rounded once) before every pass; chunk partials -> per-block
// reductions -> per-block scalars (block_host_, block_T_) between passes; the update pass reads
// them broadcast. Per parameter type, not per rule: the constructor, destructor and checks are
// compiled once per T in a translation unit (in the catalogue's unit the optimizers'
// constructors and destructors were a third of the machine code when they were per rule,
// docs/compile-time.md).

#include "steep/core/aligned_buffer.hpp"
#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/engine/options.hpp"
#include "steep/expr/matrix.hpp"
#include "steep/expr/program.hpp"
#include "steep/kernel/executor.hpp"
#include "steep/kernel/work_list.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace steep::engine {

// fold(per_block, combine): a reduction over all blocks from the blocks' results, the reduction's
// combine (a sum, or the larger of two) applied in block order, starting from 0.
using all_blocks_fold =
  std::function<double(std::span<const double> per_block, double (*combine)(double, double))>;

} // namespace steep::engine

namespace steep::engine::detail {

// The rule's shape as the per-type rooms need it (expr::program's counts).
struct program_sizes {
  std::size_t slots, step_scalars, block_scalars, reductions;
  bool reads_grad;     // the rule reads the gradient (the guard has something to check)
  bool coordinatewise; // every coordinate steps on its own gradient alone (nonfinite_policy::mask)
};

template <class T>
struct tables {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "steep optimizers run on float32 or float64 parameters");

  [[gnu::cold, gnu::noinline]] tables(param_store<T>& store, const optimizer_options& opts,
                                      const program_sizes& n)
    : blocks_(store.blocks())
    , store_alive_(store.lifetime())
    , wl_(sizes(store), opts.chunk_elements)
    , exec_(checked_threads(opts.threads), opts.serial_below) {
    for (auto& b : blocks_)
      dims_.push_back(expr::dims_of(b.shape, b.layout));
    step_host_.assign(n.step_scalars, 0.0);
    step_T_.assign(n.step_scalars + 1, T{ 0 });
    reductions_.assign(blocks_.size() * n.reductions, 0.0);
    partials_.assign(wl_.size() * n.reductions, 0.0);
    block_host_.assign(n.block_scalars, 0.0);
    block_T_.assign(blocks_.size() * n.block_scalars + 1, T{ 0 });
  }
  [[gnu::noinline]] ~tables() = default;
  tables(tables&&) noexcept = default;
  tables& operator=(tables&&) noexcept = default;

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

  std::vector<block<T>> blocks_;
  std::weak_ptr<const bool> store_alive_; // param_store::lifetime()
  std::vector<expr::block_dims> dims_;
  kernel::work_list wl_;
  kernel::executor exec_;
  std::int64_t t_ = 0;
  std::vector<double> step_host_;  // [per-step offset]: this step's scalars, in double
  aligned_buffer<T> step_T_;       // the same, rounded to T once (and one spare entry)
  std::vector<double> reductions_; // [block][reduction]: each block reduction's result
  std::vector<double> partials_;   // [chunk][reduction]: a chunk's partial result
  // How a reduction over all blocks folds the blocks' results (in block order, from 0, with the
  // reduction's combine). Unset: over this part's blocks. Set by a caller whose part holds some of
  // the model's blocks (dist/sharded_optimizer.hpp: every rank's, in the model's order).
  all_blocks_fold fold_all_blocks_;
  std::size_t all_blocks_reductions_ = 0; // how many times a step calls it (the rule's global reductions)
  std::vector<double> block_host_;        // [per-block offset]: the block being filled, in double
  aligned_buffer<T> block_T_;             // [block][per-block offset]: every block's, rounded to T
};

} // namespace steep::engine::detail
