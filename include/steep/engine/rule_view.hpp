#pragma once
// rule_view<P>: a compiled rule's trees (program P's roots: each slot's update, then the
// parameter's change) and its matrix stages' maps, with the walks every room makes over them.
//
//   v.for_roots([&]<std::size_t R>(const auto& root) { ... });   // evaluation order
//   v.for_each_reduction([&]<std::size_t S, std::size_t B, std::size_t R>(const auto& red) { ... });
//
// The walks hand each node its table offsets (per-step S, per-block B, reduction R), computed
// once by the compiler (expr/program.hpp); no room computes an offset itself.

#include "steep/expr/program.hpp"

#include <cstddef>
#include <utility>

namespace steep::engine::detail {

template <class P>
struct rule_view {
  rule_view(typename P::roots_t roots)
    : roots_(std::move(roots))
    , maps_(P::make_matrix_maps(roots_)) {}

  // f.template operator()<R>(root) for each root in evaluation order (slot updates, output).
  // (The fold is written in both, not forwarded to a shared helper: every walk of every rule
  // instantiated that helper too, docs/compile-time.md.)
  template <class F>
  void for_roots(F&& f) const {
    [&]<std::size_t... R>(std::index_sequence<R...>) {
      (f.template operator()<R>(expr::get<R>(roots_)), ...);
    }
    (std::make_index_sequence<P::n_roots>{});
  }
  template <class F>
  void for_roots(F&& f) {
    [&]<std::size_t... R>(std::index_sequence<R...>) {
      (f.template operator()<R>(expr::get<R>(roots_)), ...);
    }
    (std::make_index_sequence<P::n_roots>{});
  }
  // f.template operator()<S, B, R>(node) for every node of the rule with Trait<node>, with its
  // table offsets (program.hpp, visit_where); with Below, also those inside a matching node's
  // operand (visit_each: a reduction inside a reduction, a matrix stage inside another's operand).
  template <template <class> class Trait, bool Below = false, class F>
  void for_each_node(F&& f) const {
    for_roots([&]<std::size_t R>(const auto& root) {
      if constexpr (Below)
        expr::visit_each<Trait, P::step_offset[R], P::block_offset[R], P::red_offset[R]>(root, f);
      else
        expr::visit_where<Trait, P::step_offset[R], P::block_offset[R], P::red_offset[R]>(root, f);
    });
  }
  // f.template operator()<S, B, R>(node) for every reduction of the rule, those inside another
  // reduction's operand included.
  template <class F>
  void for_each_reduction(F&& f) const {
    for_each_node<expr::is_reduce_node, true>(f);
  }

  typename P::roots_t roots_;
  typename P::matrix_maps_t maps_;
};

} // namespace steep::engine::detail
