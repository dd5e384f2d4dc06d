#pragma once
// The reduction pass of depth D: every block (or all-blocks) reduction of that depth at once, in
// one read-only fused loop (expr/reduce.hpp).
//
//   l2_normalize(m) = m / norm2(m)  ->  one reduction pass sums m * m per chunk (in double
//                                        lanes), the host combines each block's chunks in list
//                                        order, then the update pass divides
//
//   reduction_pass<State>::run<0>(s);   // into s.reductions_, [block][reduction]
//
// Deterministic: each chunk's partial is accumulated in a fixed order, and partials are combined
// in the work list's order, so the result is the same for any thread count. The non-finite guard
// rides on depth 0 when the rule has such a pass (guard_plan::in_reductions).

#include "steep/engine/eval_ctx.hpp"
#include "steep/engine/guard.hpp"
#include "steep/expr/program.hpp"
#include "steep/kernel/chunk_loop.hpp"

#include <array>
#include <cstddef>
#include <type_traits>
#include <vector>

namespace steep::engine::detail {

template <class State>
struct reduction_pass {
  using P = typename State::program_type;
  using T = typename State::value_type;
  using E = evaluator<State>;
  static constexpr std::size_t nr = P::n_reductions;

  // One chunk: the partial result of every block reduction of depth D, in a fixed order.
  template <bool Guard, int D>
  [[gnu::flatten]] static void chunk(State& s, std::size_t ci) {
    // Accumulated in double lanes for float data too (kernel::widen).
    using VD = kernel::batch<double>;
    const auto& ch = s.wl_[ci];
    const auto step_v = E::step_vectors(s);
    const typename E::chunk_frame f = E::frame(s, ch.block, step_v.data());
    std::array<VD, nr> accv;
    accv.fill(VD(0.0));
    finite_check<T> check;
    kernel::chunk_loop<T>(ch.begin, ch.end, [&]<class V, bool Tail>(std::size_t i, std::size_t n) {
      auto c = E::template evaluate_group<V, E::template reads_matrices<D>, Tail>(s, f, i, n);
      if constexpr (Guard)
        check.add(c.grad);
      s.for_each_reduction([&]<std::size_t S, std::size_t B, std::size_t Rr>(const auto& red) {
        using N = std::remove_cvref_t<decltype(red)>;
        if constexpr (E::template block_reduction_at<N, D>) {
          using Op = typename N::op_type;
          using O = typename N::offsets;
          const V x = E::template past_tail<Tail>(
            expr::evaluate<S + O::step[0], B + O::block[0]>(expr::get<0>(red.kids), c), n);
          for (const VD& xd : kernel::widen<T>(x))
            accv[Rr] = Op::accumulate(accv[Rr], xd);
        }
      });
    });
    double* out = s.partials_.data() + ci * nr;
    s.for_each_reduction([&]<std::size_t, std::size_t, std::size_t Rr>(const auto& red) {
      using N = std::remove_cvref_t<decltype(red)>;
      if constexpr (E::template block_reduction_at<N, D>)
        out[Rr] = N::op_type::finish(accv[Rr]);
    });
    if constexpr (Guard)
      s.chunk_bad_[ci] = !check.finite();
  }

  // The block reductions of depth D. The guard rides on depth 0 only.
  template <int D>
  static void run(State& s) {
    // (The guarded variant is compiled only where it can run: each is a whole fused loop.)
    constexpr bool guarded = D == 0 && guard_plan<P>::in_reductions;
    if (s.guard_ && guarded)
      s.exec_.for_each_chunk(s.wl_, [&](std::size_t ci) { chunk<guarded, D>(s, ci); });
    else
      s.exec_.for_each_chunk(s.wl_, [&](std::size_t ci) { chunk<false, D>(s, ci); });
    // Combine chunk partials in list order: per block, then across blocks for global scope.
    s.for_each_reduction([&]<std::size_t, std::size_t, std::size_t Rr>(const auto& red) {
      using N = std::remove_cvref_t<decltype(red)>;
      if constexpr (E::template block_reduction_at<N, D>) {
        using Op = typename N::op_type;
        double total = 0;
        for (std::size_t b = 0; b < s.blocks_.size(); ++b) {
          double acc = 0;
          for (std::size_t c = s.wl_.first_chunk(b); c < s.wl_.first_chunk(b + 1); ++c)
            acc = Op::combine(acc, s.partials_[c * nr + Rr]);
          s.reductions_[b * nr + Rr] = acc;
          total = Op::combine(total, acc);
        }
        if constexpr (std::is_same_v<typename N::scope, expr::all_blocks>) {
          if (s.fold_all_blocks_) { // (the part holds some of the model's blocks: tables.hpp)
            std::vector<double> per_block(s.blocks_.size());
            for (std::size_t b = 0; b < s.blocks_.size(); ++b)
              per_block[b] = s.reductions_[b * nr + Rr];
            total = s.fold_all_blocks_(per_block, &Op::combine);
          }
          for (std::size_t b = 0; b < s.blocks_.size(); ++b)
            s.reductions_[b * nr + Rr] = total;
        }
      }
    });
  }
};

} // namespace steep::engine::detail
