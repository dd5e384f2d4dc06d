#pragma once
// The evaluator: what the SIMD loop of every pass sees while it evaluates the rule's tree on one
// group of elements (eval_ctx, the context expr::evaluate reads, expr/node.hpp), and how a pass
// builds it (evaluator<State>: a chunk's frame, the group's loads, the slots' new values).
//
//   const auto step_v = evaluator<State>::step_vectors(s);
//   const auto f = evaluator<State>::frame(s, block, step_v.data());
//   kernel::chunk_loop<T>(begin, end, [&]<class V, bool Tail>(std::size_t i, std::size_t n) {
//     auto c = evaluator<State>::evaluate_group<V, false, Tail>(s, f, i, n);   // c.news[K], c.grad
//   });
//
// The data's way: host scalars (engine/tables.hpp) are broadcast once per task's range of chunks,
// a chunk's pointers and per-block scalars once per chunk (chunk_frame), and each group loads the
// gradient, the parameter and every per-element slot once; the tree is evaluated in registers.

#include "steep/engine/slot_set.hpp"
#include "steep/expr/program.hpp"
#include "steep/kernel/chunk_loop.hpp"
#include "steep/kernel/simd.hpp"

#include <array>
#include <cstddef>
#include <tuple>
#include <utility>
#include <vector>

namespace steep::engine {

// What the SIMD loop sees while evaluating one group of elements (V = a batch). Every
// slot's old and new value and every matrix stage's result is a V, so they are arrays indexed
// by slot or stage; Known counts the slots whose new values are computed (in evaluation order).
// (Arrays, not growing std::tuples: a tuple_cat per slot per pass cost front-end time in every
// rule, docs/compile-time.md.) Each array has one spare entry, never read: with it the
// pass functions compile to the instructions they had with tuples; with exact sizes GCC laid
// out NorMuon's reduction pass differently (its lane-by-lane gather no longer unrolled).
template <class V, class P, std::size_t Known = 0>
struct eval_ctx {
  using value_type = V;
  using scalar_type = kernel::scalar_of<V>;
  static constexpr bool computes_lines = false; // a line is its table's entry (line_value)
  V grad;
  V param;
  std::array<V, P::n_slots + 1> olds;
  std::array<V, P::n_slots + 1> news;
  std::array<V, P::n_matrices + 1> mats;           // each matrix stage's result here (update pass only)
  const V* steps;                                  // hoisted per-step scalars, broadcast
  const V* block;                                  // this block's per-block scalars, broadcast
  std::size_t index = 0;                           // the first element of this group in its block
  std::size_t cols = 1;                            // the block's columns (matrix view)
  const std::vector<scalar_type>* lines = nullptr; // this block's line tables, by per-block offset
  const std::size_t* line_len = nullptr;           // a slice line's slice length, likewise

  template <std::size_t S>
  V step_scalar() const {
    return steps[S];
  }
  template <std::size_t B>
  V block_scalar() const {
    return block[B];
  }
  template <fixed_string Name>
  V new_value() const {
    static_assert(P::template index_of<Name> < Known, "slot used before its update");
    return news[P::template index_of<Name>];
  }
  template <fixed_string Name>
  V old_value() const {
    return olds[P::template index_of<Name>];
  }

  template <class N>
  V matrix_value() const {
    return mats[P::template matrix_index<N>];
  }

  // The value of the line at per-block offset B (node.hpp) for these elements: one per row
  // (Line = rows_line), column or slice; a group that crosses a row (slice) boundary is
  // gathered lane by lane.
  template <std::size_t B, int Line>
  V line_value() const {
    const scalar_type* t = lines[B].data();
    // A row is a slice of `cols` entries.
    [[maybe_unused]] const std::size_t len = Line == expr::slices_line ? line_len[B] : cols;
    constexpr std::size_t w = V::size;
    if constexpr (Line != expr::cols_line) {
      const std::size_t r = index / len;
      if ((index + w - 1) / len == r)
        return V(t[r]);
    } else {
      const std::size_t c = index % cols;
      if (c + w <= cols)
        return kernel::load<V>(t + c);
    }
    alignas(64) scalar_type g[w];
    for (std::size_t k = 0; k < w; ++k)
      g[k] = Line == expr::cols_line ? t[(index + k) % cols] : t[(index + k) / len];
    return V::load_aligned(g);
  }

  // This context with slot Known's new value x.
  eval_ctx<V, P, Known + 1> with_new(const V& x) const {
    eval_ctx<V, P, Known + 1> c{ grad, param, olds, news, mats, steps, block, index, cols, lines, line_len };
    c.news[Known] = x;
    return c;
  }
};

namespace detail {

// How the passes of engine_state State (engine/state.hpp) evaluate the rule over a chunk.
template <class State>
struct evaluator {
  using P = typename State::program_type;
  using T = typename State::value_type;
  using VB = kernel::batch<T>;
  static constexpr std::size_t n_slots = P::n_slots, n_matrices = P::n_matrices;
  template <std::size_t K>
  using G = slot_granularity<P, K>;

  // (eval_ctx models expr::eval_context: checked once, tests/unit/test_static.cpp.)

  // What one chunk's loop reads, hoisted out of it: pointers, and the per-step and per-block
  // scalars already broadcast into local batches. Locals matter: a table the loop reads
  // through a member pointer may alias the parameters it stores, so the compiler would reload
  // and re-broadcast every scalar on every batch.
  struct chunk_frame {
    T* p;
    const T* g;
    typename P::template slot_pointers_t<T> slots;
    std::array<T*, n_matrices + 1> mats;
    const VB* step_v;                               // the per-step scalars, broadcast (step_vectors)
    std::array<VB, P::n_block_scalars + 1> block_v; // this block's per-block scalars, broadcast
    std::size_t cols;
    const std::vector<T>* lines;
    const std::size_t* line_len;
  };

  // The per-step scalars as batches, built on the stack of the function that loops (where the
  // compiler sees that no store through a parameter pointer reaches them, and keeps them in
  // registers). The update pass builds them once per task's range of chunks, not per chunk: a
  // model of 200 small tensors is 200 chunks (docs/benchmarks.md: many tensors). The
  // read-only passes still build them per chunk; their speed at many tensors is not measured.
  static std::array<VB, P::n_step_scalars + 1> step_vectors(const State& s) {
    std::array<VB, P::n_step_scalars + 1> v;
    for (std::size_t k = 0; k <= P::n_step_scalars; ++k)
      v[k] = VB(s.step_T_[k]);
    return v;
  }

  static chunk_frame frame(State& s, std::size_t b, const VB* step_v) {
    chunk_frame f{ s.blocks_[b].param,
                   s.blocks_[b].grad,
                   slot_pointers(s, b, std::make_index_sequence<n_slots>{}),
                   {},
                   step_v,
                   {},
                   s.line_count(b, expr::cols_line),
                   s.line_T_.data() + b * P::n_block_scalars,
                   s.line_len_.data() };
    for (std::size_t k = 0; k < n_matrices; ++k)
      f.mats[k] = s.scratch_[k].at(b);
    const T* const block_s = s.block_T_.data() + b * P::n_block_scalars;
    for (std::size_t k = 0; k < P::n_block_scalars; ++k)
      f.block_v[k] = VB(block_s[k]);
    return f;
  }
  template <std::size_t... K>
  static auto slot_pointers(State& s, [[maybe_unused]] std::size_t b, std::index_sequence<K...>) {
    return std::make_tuple(std::get<K>(s.slots_).at(b)...);
  }

  template <std::size_t K, class Ctx>
  static auto compute_news(const State& s, const Ctx& c) {
    if constexpr (K == n_slots) {
      return c;
    } else {
      using St = typename P::template slot_storage_t<K, T>;
      auto v = expr::evaluate<P::step_offset[K], P::block_offset[K]>(expr::get<K>(s.roots_), c);
      return compute_news<K + 1>(s, c.with_new(kernel::round_to<St>(v)));
    }
  }

  // Everything the loop computes for the element group at i, nothing stored. Matrix stages'
  // results exist only in the update pass (WithMats); before it they read as zero, and the
  // program's phase check guarantees no value computed before the matrix phase depends on them.
  // Tail: the group is the chunk's last `tail` < V::size elements, loaded as one masked batch
  // (zeros past them; a line table is padded by a batch, so a line read past the block's last
  // row stays inside it). Every pass ends its chunks so, and no pass compiles a scalar copy of
  // the rule: a third of the machine code of a rule with reductions (docs/compile-time.md).
  template <class V, bool WithMats = false, bool Tail = false>
  static auto evaluate_group(const State& s, const chunk_frame& f, std::size_t i,
                             [[maybe_unused]] std::size_t tail = 0) {
    auto ld = [&](const auto* ptr) {
      return kernel::in_register(kernel::load_group<V, Tail>(ptr + i, tail));
    };
    // (A per-block or per-line slot is a per-block scalar or a line to the loop: nothing to load.)
    auto olds = [&]<std::size_t... K>(std::index_sequence<K...>) {
      return std::array<V, n_slots + 1>{ [&] {
        if constexpr (!G<K>::per_element)
          return kernel::broadcast<V>(0.0);
        else
          return V(ld(std::get<K>(f.slots)));
      }()... };
    }
    (std::make_index_sequence<n_slots>{});
    auto mats = [&]<std::size_t... K>(std::index_sequence<K...>) {
      if constexpr (WithMats)
        return std::array<V, n_matrices + 1>{ kernel::load_group<V, Tail>(std::get<K>(f.mats) + i, tail)... };
      else
        return std::array<V, n_matrices + 1>{ (static_cast<void>(K), kernel::broadcast<V>(0.0))... };
    }
    (std::make_index_sequence<n_matrices>{});
    eval_ctx<V, P> c0{ ld(f.g),          ld(f.p), olds,   {},      mats,      f.step_v,
                       f.block_v.data(), i,       f.cols, f.lines, f.line_len };
    return compute_news<0>(s, c0);
  }

  // x with the lanes past a masked tail's n zeroed (every reduction's identity: its operations
  // are sums and a maximum of absolute values), whatever the rule computed from the zeros
  // loaded there (0 / 0, say).
  template <bool Tail, class V>
  static V past_tail(const V& x, [[maybe_unused]] std::size_t n) {
    if constexpr (Tail)
      return xsimd::select(kernel::lanes_past<V>(n), V(0), x);
    else
      return x;
  }

  // Whether a read-only pass of depth D reads the matrix stages' results (after the matrix phase).
  template <int D>
  static constexpr bool reads_matrices = D >= 1 && n_matrices > 0;

  // Whether N is a block (or all-blocks) reduction of depth D, or a line reduction of depth D.
  template <class N, int D>
  static constexpr bool block_reduction_at = N::line ==
                                             expr::not_a_line&& expr::detail::reduction_depth<N>() == D;
  template <class N, int D>
  static constexpr bool line_reduction_at = N::line !=
                                            expr::not_a_line&& expr::detail::reduction_depth<N>() == D;
};

} // namespace detail
} // namespace steep::engine
