#pragma once
// The matrix phase: each matrix stage's operand gathered per element into a scratch arena (the
// pre-pass, read-only), then the stage's map applied per block (expr/matrix.hpp; the maps'
// bodies: norms/maps.hpp). The update pass reads the result per element (eval_ctx::matrix_value).
//
//   Muon's newton_schulz(ema(grad))   ->  pre-pass: m_new per element into scratch;
//                                          phase: Newton-Schulz on each block's scratch (BLAS)
//
//   matrix_phase<State>::init(s, opts);    // checks the blocks, lays out scratch, plans the tasks
//   matrix_phase<State>::prepass(s);  matrix_phase<State>::run(s);
//
// A NaN or Inf in an operand would spread through a whole block's map, so each task checks its
// operand first and refuses the step, by block, before anything is written.

#include "steep/core/error.hpp"
#include "steep/engine/eval_ctx.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/options.hpp"
#include "steep/engine/tables.hpp"
#include "steep/expr/program.hpp"
#include "steep/kernel/blas.hpp"
#include "steep/kernel/chunk_loop.hpp"
#include "steep/norms/maps.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace steep::engine::detail {

// The matrix phase's tasks and checks, the same for every rule (compiled once per T).
// A block a matrix stage cannot take (not a matrix, or a role it was not given): a route
// (routed.hpp) catches it to say which of its arms caught the block.
struct matrix_block_error : error {
  // role: the block's role where that is what the stage does not take; empty: not a matrix.
  matrix_block_error(const std::string& block, const std::string& problem, std::string role = {})
    : error(block, problem)
    , role(std::move(role)) {}
  std::string role;
};

template <class T>
struct matrix_tables {
  explicit matrix_tables(const optimizer_options& opts)
    : deterministic_(opts.deterministic) {}

  // Every block is a matrix of a role opts.matrix_roles allows (a rule whose matrix stage maps
  // every block, as Muon's does); throws naming the first that is not.
  [[gnu::cold]] static void check_matrix_blocks(const tables<T>& t, const optimizer_options& opts) {
    for (const auto& blk : t.blocks_) {
      if (blk.shape.size() < 2)
        throw matrix_block_error(
          blk.name, "the rule applies a matrix map (e.g. Muon's Newton-Schulz) to every block, but this "
                    "block has shape " +
                      to_string(blk.shape) +
                      ", not a matrix; route it to an elementwise rule with steep::route(...)");
      bool allowed = false;
      for (auto r : opts.matrix_roles)
        allowed = allowed || r == blk.role;
      if (!allowed)
        throw matrix_block_error(
          blk.name,
          "the rule applies a matrix map (e.g. Muon's Newton-Schulz) to this block, whose role "
          "is " +
            std::string(to_string(blk.role)) +
            "; Muon is meant for hidden matrices: route the block elsewhere, or opt in "
            "explicitly with steep::on<block_role::" +
            std::string(to_string(blk.role)) + ">.explicitly()",
          std::string(to_string(blk.role)));
    }
  }

  struct matrix_task {
    std::size_t stage, block, piece, size; // piece `piece` of `size` entries of the block
  };
  // Largest first, ties in the order listed: by block, stage, piece (LPT: the dynamic schedule
  // ends with small tasks). A total order, so std::sort gives what a stable sort by size would,
  // without libstdc++ 12's deprecated temporary buffer (a warning under clang). Here, not in the
  // rule's room, so the sort is compiled once per parameter type, not per rule.
  [[gnu::cold]] void order_matrix_tasks() {
    std::sort(matrix_tasks_.begin(), matrix_tasks_.end(), [](const matrix_task& x, const matrix_task& y) {
      return x.size != y.size ? x.size > y.size
                              : std::tie(x.block, x.stage, x.piece) < std::tie(y.block, y.stage, y.piece);
    });
  }

  std::vector<matrix_task> matrix_tasks_;
  bool deterministic_;
};

template <class State>
struct matrix_phase {
  using P = typename State::program_type;
  using T = typename State::value_type;
  using E = evaluator<State>;
  static constexpr std::size_t n_matrices = P::n_matrices;

  // For each stage K: f.template operator()<K>(its map).
  template <class F>
  static void for_each_map(const State& s, F&& f) {
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (f.template operator()<K>(std::get<K>(s.maps_)), ...);
    }
    (std::make_index_sequence<n_matrices>{});
  }

  [[gnu::cold]] static void init(State& s, const optimizer_options& opts) {
    if constexpr (P::needs_matrix_blocks)
      s.check_matrix_blocks(s, opts);
    // A map whose settings make no map (Newton-Schulz with no steps) is refused outright.
    for_each_map(s, [&]<std::size_t>(const auto& map) {
      if constexpr (requires { map.check_settings(); }) {
        const std::string problem = map.check_settings();
        if (!problem.empty())
          throw usage_error(problem + " (the optimizer was not built)");
      }
    });
    // A map that takes only some shapes (stacked slices) says which it refuses, by block.
    for (std::size_t b = 0; b < s.blocks_.size(); ++b)
      for_each_map(s, [&]<std::size_t>(const auto& map) {
        if constexpr (requires { map.check_block(std::size_t{}, std::size_t{}); }) {
          const std::string problem = map.check_block(static_cast<std::size_t>(s.dims_[b].rows),
                                                      static_cast<std::size_t>(s.dims_[b].cols));
          if (!problem.empty())
            throw error(s.blocks_[b].name, "the rule's matrix stage cannot take this block: " + problem);
        }
      });
    for (auto& sb : s.scratch_)
      sb.lay_out(s.blocks_, T(0));
    // One task per block, or per piece of a map that splits blocks (a stacked block's slices);
    // largest first, so the dynamic schedule ends with small tasks (LPT).
    for (std::size_t b = 0; b < s.blocks_.size(); ++b)
      for_each_map(s, [&]<std::size_t K>(const auto& map) {
        std::size_t pieces = 1;
        if constexpr (requires { map.pieces(std::size_t{}, std::size_t{}); })
          pieces =
            map.pieces(static_cast<std::size_t>(s.dims_[b].rows), static_cast<std::size_t>(s.dims_[b].cols));
        for (std::size_t p = 0; p < pieces; ++p)
          s.matrix_tasks_.push_back({ K, b, p, s.blocks_[b].size / pieces });
      });
    s.order_matrix_tasks();
  }

  // Read-only pass: each matrix stage's operand, per element, into its scratch arena (and the
  // guard, when no reduction pass ran before it).
  static void prepass(State& s) {
    // (As in reduction_pass: the guarded loop exists only where the guard rides on this pass.)
    constexpr bool guarded = guard_plan<P>::in_prepass;
    if (s.guard_ && guarded)
      s.exec_.for_each_chunk(s.wl_, [&](std::size_t ci) { prepass_chunk<guarded>(s, ci); });
    else
      s.exec_.for_each_chunk(s.wl_, [&](std::size_t ci) { prepass_chunk<false>(s, ci); });
  }

  // Each block's map. Deterministic (the default), or enough blocks to share: blocks in parallel
  // over TBB, BLAS on the calling thread, so every block's products are the same single-threaded
  // calls for any thread count (bitwise the same results). Otherwise (fewer blocks than threads,
  // optimizer_options::deterministic off): one block at a time, BLAS threaded, whose blocking
  // and so rounding depend on the thread count.
  static void run(State& s) {
    const std::size_t n = s.matrix_tasks_.size();
    if (s.deterministic_ || (s.exec_.threads() > 1 && n >= static_cast<std::size_t>(s.exec_.threads()))) {
      kernel::blas::thread_limit one(1);
      s.exec_.for_each_task(n, [&](std::size_t t) { run_task(s, t); });
    } else {
      kernel::blas::thread_limit own(s.exec_.threads());
      for (std::size_t t = 0; t < n; ++t)
        run_task(s, t);
    }
  }

private:
  template <bool Guard>
  [[gnu::flatten]] static void prepass_chunk(State& s, std::size_t ci) {
    const kernel::chunk& ch = s.wl_[ci];
    const auto step_v = E::step_vectors(s);
    const typename E::chunk_frame f = E::frame(s, ch.block, step_v.data());
    finite_check<T> check;
    kernel::chunk_loop<T>(ch.begin, ch.end, [&]<class V, bool Tail>(std::size_t i, std::size_t n) {
      auto c = E::template evaluate_group<V, false, Tail>(s, f, i, n);
      if constexpr (Guard)
        check.add(c.grad);
      s.template for_each_node<expr::is_matrix_node>(
        [&]<std::size_t S, std::size_t B, std::size_t>(const auto& m) {
          using M = std::remove_cvref_t<decltype(m)>;
          const V x = expr::evaluate<S, B>(expr::get<0>(m.kids), c);
          kernel::store_group<Tail>(f.mats[P::template matrix_index<M>] + i, x, n);
        });
    });
    if constexpr (Guard)
      s.chunk_bad_[ci] = !check.finite();
  }

  static void run_task(State& s, std::size_t t) {
    const auto [k, b, piece, size] = s.matrix_tasks_[t];
    // A NaN or Inf anywhere in a block (piece) would spread through every entry of its map (one
    // GEMM mixes them all). Nothing has been written yet, so the step can still be refused whole.
    const T* in = s.scratch_[k].at(b);
    for (std::size_t i = piece * size; i < (piece + 1) * size; ++i)
      if (!std::isfinite(in[i]))
        throw error(s.blocks_[b].name,
                    "the operand of a matrix stage has a non-finite entry (NaN or Inf in the "
                    "gradient or the state) at flat index " +
                      std::to_string(i) + "; the step was refused and parameters and state are unchanged");
    for_each_map(s, [&]<std::size_t K>(const auto& map) {
      if (K != k)
        return;
      const auto rows = static_cast<std::size_t>(s.dims_[b].rows),
                 cols = static_cast<std::size_t>(s.dims_[b].cols);
      if constexpr (requires { map.pieces(rows, cols); })
        map.apply_piece(s.scratch_[K].at(b), rows, cols, piece);
      else
        map.apply(s.scratch_[K].at(b), rows, cols);
    });
  }
};

} // namespace steep::engine::detail
