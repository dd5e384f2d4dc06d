#pragma once
// The update pass: the only pass that writes. Per element it loads the gradient, the parameter
// and each per-element slot once, computes every slot's new value and then the parameter's
// change (evaluator), and stores the parameter and the slots once.
//
//   update_pass<State>::run<true>(s);    // every policy but off: hold back what is not finite
//   update_pass<State>::run<false>(s);   // nonfinite_policy::off
//
// Hold (engine/guard.hpp): a coordinate whose gradient or new values are not finite stores back
// what it loaded, and its chunk notes what it held back (guard_state::note_held). Under refuse
// and skip the gradient is already known finite here, so only mask and overflow ever hold back.

#include "steep/engine/eval_ctx.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/slot_set.hpp"
#include "steep/expr/program.hpp"
#include "steep/kernel/chunk_loop.hpp"
#include "steep/kernel/simd.hpp"

#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace steep::engine::detail {

// A rule written as X - param sets the parameter to X: one rounding, where p + (X - p) takes two
// and can differ from X in the last bit (torch's AdamW scales the parameter, then steps it:
// dsl/steep/rules/torch_order.hpp). The same value in exact arithmetic, so the rule's type, id
// and analyses are unchanged.
template <class R>
struct sets_param : std::false_type {};
template <class X>
struct sets_param<expr::apply_node<expr::ops::sub, X, expr::param_t>> : std::true_type {};

template <class State>
struct update_pass {
  using P = typename State::program_type;
  using T = typename State::value_type;
  using E = evaluator<State>;
  static constexpr std::size_t n_slots = P::n_slots;
  template <std::size_t K>
  static constexpr bool element_slot = slot_granularity<P, K>::per_element;

  template <bool Hold>
  static void run(State& s) {
    s.exec_.for_each_range(s.wl_, [&](std::size_t first, std::size_t last) { chunks<Hold>(s, first, last); });
  }

private:
  template <bool Hold>
  [[gnu::flatten]] static void chunks(State& s, std::size_t first, std::size_t last) {
    const auto step_v = E::step_vectors(s);
    for (std::size_t ci = first; ci < last; ++ci) {
      // A block whose per-block or per-line slot would not be finite is held back whole
      // (slot_set::hold_nonfinite_host_slots): one flag per chunk, in rules that have such slots.
      if constexpr (Hold && slot_set<State>::has_host_slots)
        if (s.block_held(s.wl_[ci].block)) [[unlikely]]
          continue;
      chunk<Hold>(s, ci, step_v.data());
    }
  }

  // One chunk, flattened into one loop (no call per batch). The chunk ends in one masked batch,
  // not a scalar tail (kernel/chunk_loop.hpp).
  template <bool Hold>
  [[gnu::flatten]] static void chunk(State& s, std::size_t ci, const typename E::VB* step_v) {
    const kernel::chunk& ch = s.wl_[ci];
    const typename E::chunk_frame f = E::frame(s, ch.block, step_v);
    auto group = [&]<class V, bool Tail>(std::size_t i, [[maybe_unused]] std::size_t n) {
      auto c = E::template evaluate_group<V, true, Tail>(s, f, i, n);
      constexpr std::size_t out = P::output_root;
      constexpr std::size_t S = P::step_offset[out], B = P::block_offset[out];
      const auto& root = expr::get<out>(s.roots_);
      using R = std::remove_cvref_t<decltype(root)>;
      const V p_new = [&] {
        if constexpr (sets_param<R>::value)
          return V(
            expr::evaluate<S + R::offsets::step[0], B + R::offsets::block[0]>(expr::get<0>(root.kids), c));
        else
          return V(c.param + expr::evaluate<S, B>(root, c));
      }();
      auto put = [&](auto* ptr, const V& v) { kernel::store_group<Tail>(ptr + i, v, n); };
      [&]<std::size_t... K>(std::index_sequence<K...>) {
        auto put_all = [&] {
          put(f.p, p_new);
          ((element_slot<K> ? put(std::get<K>(f.slots), c.news[K]) : void()), ...);
        };
        if constexpr (!Hold) {
          put_all();
        } else {
          // The new parameter comes last into the probe: it is the last value the group
          // computes (after Adam's square root and division), and the stores wait on the test,
          // so only one fused multiply-add stands between it and the test. Probing it first
          // put every slot's after it and cost Adam at 50K-1M (in cache) a further 5-15%.
          V probe = c.grad * V(0);
          ((element_slot<K> ? void(probe = add_finite_probe(probe, c.news[K])) : void()), ...);
          probe = add_finite_probe(probe, p_new);
          auto ok = finite_sum_ok(probe); // (bool for the scalar tail)
          if constexpr (Tail)
            ok = ok | kernel::lanes_past<V>(n); // (lanes past the tail are never stored)
          // Every lane finite, the case of nearly every batch: plain stores. A masked store of
          // all lanes cost Adam 3-6% at 64M (docs/benchmarks.md).
          if (all_lanes(ok)) [[likely]] {
            put_all();
            return;
          }
          auto keep = [&](auto* ptr, const V& v, const V& old) {
            kernel::store_where(ptr + i, ok, v, old, n);
          };
          keep(f.p, p_new, c.param);
          ((element_slot<K> ? keep(std::get<K>(f.slots), c.news[K], c.olds[K]) : void()), ...);
          // What held_back() will report, noted here where the values are: the gradient, the
          // new parameter and each slot's new value (zeros for a slot not kept per element).
          constexpr std::size_t w = kernel::lanes_of<V>;
          alignas(64) std::array<T, w*(n_slots + 2)> rows{};
          kernel::store(rows.data(), c.grad);
          kernel::store(rows.data() + w, p_new);
          ((element_slot<K> ? kernel::store(rows.data() + (2 + K) * w, c.news[K]) : void()), ...);
          s.note_held(ci, i, n, w, rows.data(), n_slots + 2);
        }
      }
      (std::make_index_sequence<n_slots>{});
    };
    kernel::chunk_loop<T>(ch.begin, ch.end, group);
  }
};

} // namespace steep::engine::detail
