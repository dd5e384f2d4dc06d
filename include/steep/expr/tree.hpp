#pragma once
// The tree index: every node of a rule with its place (the operand path from the root) and its
// offsets into the per-step, per-block and reduction tables, all at compile time, and the visits
// built on it.
//
//   visit_where<is_matrix_node, S, B, R>(root, [&]<std::size_t S2, std::size_t B2, std::size_t R2>(const
//   auto& m) {...}); visit_each<is_reduce_node, S, B, R>(root, f);     // reductions, those under reductions
//   too visit_hypers(root, [&](auto& hp) { hp.value; });  // every named hyperparameter
//
// The one place that knows how table offsets pass from a node to its operands (node.hpp's
// offsets); the engine's walks (engine/rule_view.hpp) go through here.

#include "steep/expr/detail/type_list.hpp"

#include <algorithm>
#include <array>
#include <boost/hana/type.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace steep::expr {

// A named hyperparameter (hyper<"lr">(...)); a state stage has a name but is not one.
template <class N>
concept named_hyper = !is_state_node_v<N> && requires(const N& n) {
  N::name;
  n.value;
};
template <class N>
struct is_named_hyper : std::bool_constant<named_hyper<N>> {};

namespace detail {
// Where a node sits under another: the operand index at each level, from the node up (path[0]
// is its index in its parent), and its offsets into the per-step, per-block and reduction
// tables relative to the top one.
struct node_match {
  std::array<std::uint8_t, 64> path{};
  std::size_t depth = 0, step = 0, block = 0, red = 0;
};

// Every node under N (N included) in pre-order: its type, where it sits, and how many nodes
// its subtree has. One class per node type, built from its operands' tables; it is the one
// place that knows how table offsets pass from a node to its operands (N::offsets), and every
// traversal with offsets below reads it. (Before, every walk (trait) recursed through the
// tree with a function per node type of its own: the catalogue's largest front-end item,
// docs/compile-time.md.)
template <class N>
struct preorder {
  using types = type_list<N>;
  static constexpr std::size_t size = 1;
  static constexpr std::array<node_match, 1> at{};
  static constexpr std::array<std::size_t, 1> subtree{ 1 };
};
template <has_kids N>
struct preorder<N> {
  template <class Kids>
  struct of_kids;
  template <class... K>
  struct of_kids<type_list<K...>> {
    using types = concat_t<type_list<N>, typename preorder<K>::types...>;
    static constexpr std::size_t size = (std::size_t{ 1 } + ... + preorder<K>::size);
  };
  using kids = of_kids<typename kid_types<N>::type>;
  using types = typename kids::types;
  static constexpr std::size_t size = kids::size;
  static constexpr auto tables = []<class... K>(type_list<K...>) {
    using O = typename N::offsets;
    std::pair<std::array<node_match, size>, std::array<std::size_t, size>> t{};
    t.second[0] = size;
    std::size_t k = 1, i = 0;
    (
      [&] {
        for (std::size_t j = 0; j < preorder<K>::size; ++j, ++k) {
          node_match m = preorder<K>::at[j];
          if (m.depth == m.path.size())
            throw "a rule nested more than 64 levels deep"; // (not a constant: fails to compile)
          m.path[m.depth++] = static_cast<std::uint8_t>(i);
          m.step += O::step[i], m.block += O::block[i], m.red += O::red[i];
          t.first[k] = m;
          t.second[k] = preorder<K>::subtree[j];
        }
        ++i;
      }(),
      ...);
    return t;
  }(typename kid_types<N>::type{});
  static constexpr const auto& at = tables.first;
  static constexpr const auto& subtree = tables.second;
};

template <template <class> class Trait, class... A>
constexpr std::array<bool, sizeof...(A)> trait_holds(type_list<A...>) {
  return { Trait<A>::value... };
}

// Every node under N (N included) for which Trait holds, in pre-order; with Below, also those
// under a matching node. Computed once per node type and trait, however many visitors use it.
template <template <class> class Trait, bool Below, class N>
struct matches_of {
  using P = preorder<N>;
  static constexpr auto hit = trait_holds<Trait>(typename P::types{});
  template <class Out>
  static constexpr std::size_t walk(Out out) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < P::size;)
      if (hit[i]) {
        out(n++, P::at[i]);
        i += Below ? 1 : P::subtree[i];
      } else {
        ++i;
      }
    return n;
  }
  static constexpr auto value = [] {
    std::array<node_match, walk([](std::size_t, const node_match&) {})> out{};
    walk([&](std::size_t k, const node_match& m) { out[k] = m; });
    return out;
  }();
};

// One step down a rule's tree: node ->* kid_at<I>{} is its I-th operand. (An operator, so that
// node_at below is one fold over the path, not a function per level.)
template <std::size_t I>
struct kid_at {};
template <has_kids N, std::size_t I>
[[gnu::always_inline]] constexpr auto& operator->*(N& n, kid_at<I>) noexcept {
  return get<I>(n.kids);
}

// The node at M's path under n (D = 0, 1, ..., M.depth - 1): one function per match, the
// sequence passed in rather than made by a lambda inside (GCC compiles every instantiated
// function, however small, before it inlines it: docs/compile-time.md).
template <node_match M, class N, std::size_t... D>
[[gnu::always_inline]] inline auto& node_at(N& n, std::index_sequence<D...>) {
  return (n->*...->*kid_at<M.path[M.depth - 1 - D]>{});
}

// f.template operator()<S', B', R'>(node) for each of Ms under n, with the node's own offsets.
template <const auto& Ms, std::size_t S, std::size_t B, std::size_t R, class N, class F, std::size_t... K>
void visit_matches(const N& n, F& f, std::index_sequence<K...>) {
  (f.template operator()<S + Ms[K].step, B + Ms[K].block, R + Ms[K].red>(
     node_at<Ms[K]>(n, std::make_index_sequence<Ms[K].depth>{})),
   ...);
}
} // namespace detail

// ---------------------------------------------------------------------------------------------
// Traversals with compile-time table offsets (used by the optimizer's passes)
// ---------------------------------------------------------------------------------------------

// Calls f.template operator()<S, B, R>(node) for every node under n for which Trait<node>
// holds, without looking below it; S, B, R are the node's offsets into the per-step, per-block
// and reduction tables. The passes find their matrix stages (is_matrix_node) and lines with it.
// The matches are listed at compile time once per node type (detail::matches_of), so a visitor
// costs one function and its own calls: a rule's passes visit from many call sites, and a
// recursive walk per visitor instantiated two functions per node for each, a third of what a
// rule such as NorMuon instantiated (docs/compile-time.md).
template <template <class> class Trait, std::size_t S, std::size_t B, std::size_t R, class N, class F>
void visit_where(const N& n, F&& f) {
  constexpr auto& ms = detail::matches_of<Trait, false, N>::value;
  detail::visit_matches<ms, S, B, R>(n, f, std::make_index_sequence<ms.size()>{});
}

// Like visit_where, but looks below a matching node as well (a line reduction inside the
// operand of a block reduction is a reduction of its own).
template <template <class> class Trait, std::size_t S, std::size_t B, std::size_t R, class N, class F>
void visit_each(const N& n, F&& f) {
  constexpr auto& ms = detail::matches_of<Trait, true, N>::value;
  detail::visit_matches<ms, S, B, R>(n, f, std::make_index_sequence<ms.size()>{});
}

// The length of the slices a slice line (reduce.hpp, per_slice) has one value each for; 0 for
// a node that fixes none (a slot's own previous value, a scalar), mixed_slices for an operation
// on slice lines of different lengths, which the engine refuses when the optimizer is built.
inline constexpr std::size_t mixed_slices = static_cast<std::size_t>(-1);
template <class N>
std::size_t slice_length(const N& n) {
  if constexpr (line_of_v<N> != slices_line) {
    return 0;
  } else if constexpr (is_reduce_node<N>::value) {
    return n.over.length;
  } else if constexpr (is_state_node_v<N>) {
    return slice_length(n.update);
  } else if constexpr (detail::has_kids<N>) {
    std::size_t len = 0;
    auto merge = [&](std::size_t l) {
      if (l != 0 && len == 0)
        len = l;
      else if (l != 0 && l != len)
        len = mixed_slices;
    };
    [&]<std::size_t... I>(std::index_sequence<I...>) { (merge(slice_length(get<I>(n.kids))), ...); }
    (std::make_index_sequence<std::remove_cvref_t<decltype(n.kids)>::size>{});
    return len;
  } else {
    return 0;
  }
}

// Calls f(node) for every named hyperparameter under n (mutable, for optimizer::set).
template <class N, class F>
inline void visit_hypers(N& n, F&& f) {
  constexpr auto& ms = detail::matches_of<is_named_hyper, false, std::remove_const_t<N>>::value;
  [&]<std::size_t... K>(std::index_sequence<K...>) {
    (f(detail::node_at<ms[K]>(n, std::make_index_sequence<ms[K].depth>{})), ...);
  }
  (std::make_index_sequence<ms.size()>{});
}

} // namespace steep::expr
