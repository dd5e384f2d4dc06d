#pragma once
// The matrix phases: each matrix stage's operand gathered per element into a scratch arena (the
// pre-pass, read-only), then the stage's map applied per block (expr/matrix.hpp; the maps'
// bodies: norms/maps.hpp). The update pass reads the result per element (eval_ctx::matrix_value).
//
//   Muon's newton_schulz(ema(grad))   ->  pre-pass: m_new per element into scratch;
//                                          phase 1: Newton-Schulz on each block's scratch (BLAS)
//   newton_schulz(ema(newton_schulz(grad)))  ->  phase 1 as above; phase 2's pre-pass reads its
//                                          result per element into the outer stage's scratch
//
//   matrix_phase<State>::init(s, opts);    // checks the blocks, lays out scratch, plans the tasks
//   matrix_phase<State>::prepass<1>(s);  matrix_phase<State>::run<1>(s);   // and so on per phase
//
// A stage's phase is the compiler's (expr/phases.hpp): after every stage and reduction its operand
// needs. Each phase is one pre-pass over memory and one set of tasks.
//
// A NaN or Inf in an operand would spread through a whole block's map, so each task checks its
// operand first and refuses the step, by block, before anything is written.

#include "steep/core/aligned_buffer.hpp"
#include "steep/core/error.hpp"
#include "steep/core/shape.hpp"
#include "steep/engine/eval_ctx.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/options.hpp"
#include "steep/engine/slots.hpp"
#include "steep/engine/tables.hpp"
#include "steep/expr/program.hpp"
#include "steep/kernel/blas.hpp"
#include "steep/kernel/chunk_loop.hpp"
#include "steep/norms/maps.hpp"
#include "steep/precond/maps.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>
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
    std::size_t phase;                     // the stage's matrix phase (1, 2, ...)
  };
  // By phase; within a phase largest first, ties in the order listed: by block, stage, piece
  // (LPT: the dynamic schedule ends with small tasks). A total order, so std::sort gives what a
  // stable sort by size would, without libstdc++ 12's deprecated temporary buffer (a warning
  // under clang). Here, not in the rule's room, so the sort is compiled once per parameter type,
  // not per rule. phase_first_[p - 1] is where phase p's tasks begin.
  [[gnu::cold]] void order_matrix_tasks(std::size_t phases) {
    std::sort(matrix_tasks_.begin(), matrix_tasks_.end(), [](const matrix_task& x, const matrix_task& y) {
      return x.phase != y.phase ? x.phase < y.phase
             : x.size != y.size ? x.size > y.size
                                : std::tie(x.block, x.stage, x.piece) < std::tie(y.block, y.stage, y.piece);
    });
    phase_first_.assign(phases + 1, matrix_tasks_.size());
    for (std::size_t t = matrix_tasks_.size(); t-- > 0;)
      phase_first_[matrix_tasks_[t].phase - 1] = t;
    for (std::size_t p = phases; p-- > 0;) // a phase without tasks begins where the next does
      phase_first_[p] = std::min(phase_first_[p], phase_first_[p + 1]);
  }

  std::vector<matrix_task> matrix_tasks_;
  std::vector<std::size_t> phase_first_;
  bool deterministic_;

  // The state of the matrix stages that keep some (expr::stateful_matrix_map: Shampoo's factors),
  // one entry per stage and slot: each block's value in the shape the map declares for it, at a
  // 64-byte aligned offset. `cur` is the state as the last committed step left it (what state(),
  // checkpoints and the next step read); the matrix phase writes `next`, which commit_state copies
  // into `cur` once the update pass has run, so a refused step changes none of it. A slot the map
  // stores as bfloat16 (expr::state_bfloat16) keeps both in `cur16`, `next16` instead: the map
  // reads and writes T, widened and rounded around it (matrix_phase::run_stateful).
  struct map_slot {
    std::size_t stage;
    std::string name;
    std::vector<shape_t> shapes;     // per block
    std::vector<std::size_t> offset; // per block, in values
    bool bf16 = false;
    aligned_buffer<T> cur, next;
    aligned_buffer<bfloat16> cur16, next16;

    std::size_t element_size() const { return bf16 ? sizeof(bfloat16) : sizeof(T); }
    dtype_names dtype() const { return bf16 ? dtype_of<bfloat16>() : dtype_of<T>(); }
    std::byte* committed() {
      return bf16 ? reinterpret_cast<std::byte*>(cur16.data()) : reinterpret_cast<std::byte*>(cur.data());
    }
  };
  std::vector<map_slot> map_slots_;
  std::vector<std::size_t> map_slot_first_; // per stage: its first entry in map_slots_

  // Lays out `shapes` (one per block) in a new entry, stored as T or as bfloat16.
  [[gnu::cold]] void add_map_slot(std::size_t stage, std::string name, std::vector<shape_t> shapes,
                                  bool bf16) {
    map_slot m{ stage, std::move(name), std::move(shapes), {}, bf16, {}, {}, {}, {} };
    std::size_t n = 0;
    for (const auto& sh : m.shapes) {
      m.offset.push_back(n);
      n += bf16 ? padded_count<bfloat16>(element_count(sh)) : padded_count<T>(element_count(sh));
    }
    if (bf16) {
      m.cur16.assign(n, bfloat16(0.f));
      m.next16.assign(n, bfloat16(0.f));
    } else {
      m.cur.assign(n, T(0));
      m.next.assign(n, T(0));
    }
    map_slots_.push_back(std::move(m));
  }
  // The step's new state becomes the state (after the update pass of a step prepare accepted).
  void commit_state() {
    for (auto& m : map_slots_) {
      std::copy(m.next.begin(), m.next.end(), m.cur.begin());
      std::copy(m.next16.begin(), m.next16.end(), m.cur16.begin());
    }
  }
  // The entries' metadata for the slot directory and slots(): granularity "matrix".
  [[gnu::cold]] std::vector<slot_meta> map_slot_metas() const {
    std::vector<slot_meta> out;
    for (const auto& m : map_slots_)
      out.push_back(
        { m.name, m.dtype().name, m.element_size(), "matrix", std::numeric_limits<double>::quiet_NaN() });
    return out;
  }
  // Values of matrix-stage state in all, and their bytes as stored (describe(): what it
  // allocates, padding aside).
  std::size_t map_state_values() const {
    std::size_t n = 0;
    for (const auto& m : map_slots_)
      for (const auto& sh : m.shapes)
        n += element_count(sh);
    return n;
  }
  std::size_t map_state_bytes() const {
    std::size_t n = 0;
    for (const auto& m : map_slots_)
      for (const auto& sh : m.shapes)
        n += element_count(sh) * m.element_size();
    return n;
  }
};

// A refused matrix step or optimizer, by block (outside the templates: the same for every rule, so
// compiled once per unit, not once per rule).
[[noreturn, gnu::cold, gnu::noinline]] inline void refuse_matrix(const std::string& block,
                                                                 const std::string& why) {
  throw error(block, why);
}
[[noreturn, gnu::cold, gnu::noinline]] inline void refuse_matrix_step(const std::string& block,
                                                                      const std::string& why) {
  throw error(block, why + "; the step was refused and parameters and state are unchanged");
}
[[noreturn, gnu::cold, gnu::noinline]] inline void refuse_nonfinite_operand(const std::string& block,
                                                                            std::size_t i) {
  refuse_matrix_step(block,
                     "the operand of a matrix stage has a non-finite entry (NaN or Inf in the gradient or "
                     "the state) at flat index " +
                       std::to_string(i));
}

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
            refuse_matrix(s.blocks_[b].name, "the rule's matrix stage cannot take this block: " + problem);
        }
      });
    for (auto& sb : s.scratch_)
      sb.lay_out(s.blocks_, T(0));
    for (auto& sb : s.extra_scratch_)
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
          s.matrix_tasks_.push_back(
            { K, b, p, s.blocks_[b].size / pieces, static_cast<std::size_t>(P::matrix_phase[K]) });
      });
    s.order_matrix_tasks(static_cast<std::size_t>(P::n_matrix_phases));
    // The state of the maps that keep some, each slot shaped per block as the map declares.
    for_each_map(s, [&]<std::size_t K>(const auto& map) {
      using M = std::remove_cvref_t<decltype(map)>;
      s.map_slot_first_.push_back(s.map_slots_.size());
      if constexpr (expr::stateful_matrix_map<M>)
        for (std::size_t j = 0; j < M::state_count; ++j) {
          std::vector<shape_t> shapes;
          for (std::size_t b = 0; b < s.blocks_.size(); ++b)
            shapes.push_back(map.state_shape(j, static_cast<std::size_t>(s.dims_[b].rows),
                                             static_cast<std::size_t>(s.dims_[b].cols)));
          s.add_map_slot(K, map.state_name(j), std::move(shapes), expr::state_bfloat16(map, j));
        }
    });
  }

  // Records the maps' state in the slot directory (after the rule's own slots).
  [[gnu::cold]] static void register_state(State& s) {
    const std::vector<slot_meta> metas = s.map_slot_metas();
    for (std::size_t i = 0; i < metas.size(); ++i) {
      auto& m = s.map_slots_[i];
      s.add_shaped_slot(metas[i], m.dtype().safetensors, m.committed(), &m.offset, &m.shapes);
    }
  }

  // Read-only pass: the operand of each matrix stage of phase `Phase`, per element, into its
  // scratch arena (and the guard, when no reduction pass ran before phase 1's).
  template <int Phase>
  static void prepass(State& s) {
    // (As in reduction_pass: the guarded loop exists only where the guard rides on this pass.)
    constexpr bool guarded = Phase == 1 && guard_plan<P>::in_prepass;
    if (s.guard_ && guarded)
      s.exec_.for_each_chunk(s.wl_, [&](std::size_t ci) { prepass_chunk<Phase, guarded>(s, ci); });
    else
      s.exec_.for_each_chunk(s.wl_, [&](std::size_t ci) { prepass_chunk<Phase, false>(s, ci); });
  }

  // Each block's map. Deterministic (the default), or enough blocks to share: blocks in parallel
  // over TBB, BLAS on the calling thread, so every block's products are the same single-threaded
  // calls for any thread count (bitwise the same results). Otherwise (fewer blocks than threads,
  // optimizer_options::deterministic off): one block at a time, BLAS threaded, whose blocking
  // and so rounding depend on the thread count.
  // (Phase `Phase`'s tasks.)
  template <int Phase>
  static void run(State& s) {
    const std::size_t first = s.phase_first_[Phase - 1], n = s.phase_first_[Phase] - first;
    if (s.deterministic_ || (s.exec_.threads() > 1 && n >= static_cast<std::size_t>(s.exec_.threads()))) {
      kernel::blas::thread_limit one(1);
      s.exec_.for_each_task(n, [&](std::size_t t) { run_task(s, first + t); });
    } else {
      kernel::blas::thread_limit own(s.exec_.threads());
      for (std::size_t t = 0; t < n; ++t)
        run_task(s, first + t);
    }
  }

private:
  template <int Phase, bool Guard>
  [[gnu::flatten]] static void prepass_chunk(State& s, std::size_t ci) {
    const kernel::chunk& ch = s.wl_[ci];
    const auto step_v = E::step_vectors(s);
    const typename E::chunk_frame f = E::frame(s, ch.block, step_v.data());
    finite_check<T> check;
    kernel::chunk_loop<T>(ch.begin, ch.end, [&]<class V, bool Tail>(std::size_t i, std::size_t n) {
      // (Phase p > 1 reads the results of the phases before it.)
      auto c = E::template evaluate_group<V, (Phase > 1), Tail>(s, f, i, n);
      if constexpr (Guard)
        check.add(c.grad);
      s.template for_each_node<expr::is_matrix_node, true>( // a stage inside a later one's operand too
        [&]<std::size_t S, std::size_t B, std::size_t>(const auto& m) {
          using M = std::remove_cvref_t<decltype(m)>;
          constexpr std::size_t k = P::template matrix_index<M>;
          if constexpr (P::matrix_phase[k] == Phase) {
            const auto& x = expr::get<0>(m.kids);
            kernel::store_group<Tail>(f.mats[k] + i, expr::evaluate<S, B>(x, c), n);
            if constexpr (M::n_operands > 1) // inputs(x, y, ...): y, ... to arenas of their own
              [&]<std::size_t... J>(std::index_sequence<J...>) {
                using X = std::remove_cvref_t<decltype(x)>;
                (kernel::store_group<Tail>(
                   s.extra_scratch_[P::extra_operand_first[k] + J].at(ch.block) + i,
                   expr::evaluate<S + X::offsets::step[J + 1], B + X::offsets::block[J + 1]>(
                     expr::get<J + 1>(x.kids), c),
                   n),
                 ...);
              }
            (std::make_index_sequence<M::n_operands - 1>{});
          }
        });
    });
    if constexpr (Guard)
      s.chunk_bad_[ci] = !check.finite();
  }

  static void run_task(State& s, std::size_t t) {
    const auto [k, b, piece, size, phase] = s.matrix_tasks_[t];
    // A NaN or Inf anywhere in a block (piece) would spread through every entry of its map (one
    // GEMM mixes them all). Nothing has been written yet, so the step can still be refused whole.
    const auto check = [&](const T* in) {
      for (std::size_t i = piece * size; i < (piece + 1) * size; ++i)
        if (!std::isfinite(in[i]))
          refuse_nonfinite_operand(s.blocks_[b].name, i);
    };
    check(s.scratch_[k].at(b));
    if constexpr (P::n_extra_operands > 0) // (the other operands of inputs(x, y, ...))
      for (std::size_t j = P::extra_operand_first[k]; j < P::extra_operand_first[k + 1]; ++j)
        check(s.extra_scratch_[j].at(b));
    for_each_map(s, [&]<std::size_t K>(const auto& map) {
      if (K != k)
        return;
      const auto rows = static_cast<std::size_t>(s.dims_[b].rows),
                 cols = static_cast<std::size_t>(s.dims_[b].cols);
      using M = std::remove_cvref_t<decltype(map)>;
      if constexpr (expr::stateful_matrix_map<M>)
        run_stateful<K>(s, map, b, rows, cols, piece);
      else if constexpr (requires { map.pieces(rows, cols); })
        map.apply_piece(s.scratch_[K].at(b), rows, cols, piece);
      else
        map.apply(s.scratch_[K].at(b), rows, cols);
    });
  }

  // Block b of stage K with its state (or piece `piece` of it, for a map that splits blocks: a
  // stacked block's slice, which reads and writes only its own part of x and of each slot, so the
  // pieces of one block run in parallel): the map reads the committed state and writes the new one
  // to `next`. A failure (a root of a singular factor without eps), or a non-finite value in the
  // new state or the result, refuses the step by block, before anything is written. A bfloat16
  // slot's part for this piece is widened into `wide` for the map, which writes its new value there
  // too; each new value is rounded once into next16 (and one that rounds to Inf refuses the step).
  template <std::size_t K, class M>
  static void run_stateful(State& s, const M& map, std::size_t b, std::size_t rows, std::size_t cols,
                           std::size_t piece) {
    std::size_t pieces = 1;
    if constexpr (requires { map.pieces(rows, cols); })
      pieces = map.pieces(rows, cols);
    std::array<const T*, M::state_count> old{};
    std::array<T*, M::state_count> next{};
    std::array<aligned_buffer<T>, M::state_count> wide; // a bfloat16 slot's block: old, then new
    const std::size_t first = s.map_slot_first_[K];
    for (std::size_t j = 0; j < M::state_count; ++j) {
      auto& m = s.map_slots_[first + j];
      if (m.bf16) { // (the block's length, so the map indexes its piece as in T; only the piece read)
        const std::size_t n = element_count(m.shapes[b]), at = padded_count<T>(n), size = n / pieces;
        wide[j].assign(at + n, T(0));
        const bfloat16* in = m.cur16.data() + m.offset[b];
        for (std::size_t i = piece * size; i < (piece + 1) * size; ++i)
          wide[j][i] = static_cast<T>(static_cast<float>(in[i]));
        old[j] = wide[j].data();
        next[j] = wide[j].data() + at;
      } else {
        old[j] = m.cur.data() + m.offset[b];
        next[j] = m.next.data() + m.offset[b];
      }
    }
    T* x = s.scratch_[K].at(b);
    std::array<const T*, P::extra_operand_first[K + 1] - P::extra_operand_first[K]> operands{};
    for (std::size_t j = 0; j < operands.size(); ++j)
      operands[j] = s.extra_scratch_[P::extra_operand_first[K] + j].at(b);
    const std::string& name = s.blocks_[b].name;
    const expr::matrix_state<T> st{ old.data(), next.data(), s.t_ + 1,
                                    operands.empty() ? nullptr : operands.data(), operands.size() };
    try {
      if constexpr (requires { map.pieces(rows, cols); }) {
        map.apply_piece(x, rows, cols, piece, st);
      } else {
        map.apply(x, rows, cols, st);
      }
    } catch (const usage_error& e) {
      refuse_matrix_step(name, std::string("the rule's matrix stage failed: ") + e.what());
    }
    // (This piece's part only: another task may be writing the others.)
    const std::size_t n = rows * cols / pieces;
    if (!kernel::all_finite(x + piece * n, 0, n))
      refuse_matrix_step(name, "the rule's matrix stage gave a non-finite value");
    for (std::size_t j = 0; j < M::state_count; ++j) {
      auto& m = s.map_slots_[first + j];
      const std::size_t size = element_count(m.shapes[b]) / pieces;
      bool stored = true; // (a NaN or Inf in T stays one in bfloat16: one pass rounds and checks)
      if (m.bf16) {
        bfloat16* out = m.next16.data() + m.offset[b];
        for (std::size_t i = piece * size; i < (piece + 1) * size; ++i) {
          out[i] = bfloat16(static_cast<float>(next[j][i]));
          stored = stored && std::isfinite(static_cast<float>(out[i]));
        }
      } else {
        stored = kernel::all_finite(next[j] + piece * size, 0, size);
      }
      if (!stored)
        refuse_matrix_step(name, "the new value of the matrix stage's state '" + m.name + "' is not finite" +
                                   (m.bf16 && kernel::all_finite(next[j] + piece * size, 0, size)
                                      ? " as stored, in bfloat16 (past its largest value, 3.39e38)"
                                      : ""));
    }
  }
};

} // namespace steep::engine::detail
