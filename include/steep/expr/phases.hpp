#pragma once
// The phase analysis: when each value of a rule is known within a step, so the engine can run it
// in passes (docs/design.md, "The plan of one step").
//
//   detail::reduction_depth<N>();        // 0: known after the first read-only pass; 1: after the
//                                        // matrix phase (NorMuon's row norms of the polar factor)
//   detail::phases_ok(hana::type_c<Rule>);   // every matrix stage fits the one matrix phase
//   detail::count_reductions<true, 1>(hana::type_c<Rule>);   // line reductions of depth 1
//
// A matrix stage's operand must be known before the matrix phase, so it may not read another
// matrix stage's result (a rule needing two matrix phases does not compile).

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
namespace detail {

// Does evaluating N need a matrix stage's result, directly or through the state it reads?
template <class N>
constexpr bool reaches_matrix(hana::basic_type<N> t) {
  return any_in_tree<true, is_matrix_node>(t);
}

// The pass after which a reduction's value is known ("depth"): 0 for a reduction of what the
// step starts with (gradient, parameters, state), computed before the matrix phase; 1 + the
// depth of any reduction its operand needs (directly, through a line or a state slot's update),
// and at least 1 if it needs a matrix stage's result. Passes run in order of depth, the matrix
// phase between depth 0 and depth 1 (AdaMuon's norm of its normalized polar factor: depth 1;
// NorMuon's per-row second moment of the polar factor: 1, and the norm of the row-normalized
// factor: 2). max_reduction_depth is -1 where no reduction is needed.
template <class N>
constexpr int max_reduction_depth(hana::basic_type<N>);

template <class N>
constexpr int reduction_depth() {
  using C = typename N::child_type;
  const int inner = max_reduction_depth(hana::type_c<C>) + 1;
  const int matrix = reaches_matrix(hana::type_c<C>) ? 1 : 0;
  return inner > matrix ? inner : matrix;
}

template <class N>
constexpr int max_reduction_depth(hana::basic_type<N>) {
  if constexpr (is_reduce_node<N>::value)
    return reduction_depth<N>(); // covers whatever its operand needs
  else
    return []<class... K>(type_list<K...>) {
      return std::max({ -1, max_reduction_depth(hana::type_c<K>)... });
    }(analysis_kids<true, N>());
}

// Checks that every matrix stage under N can run in the one matrix phase: its operand is
// evaluated before any matrix map has run, from reductions of depth 0 at most.
template <class M>
constexpr bool matrix_phase_ok() {
  constexpr bool ok = !reaches_matrix(hana::type_c<typename M::child_type>) &&
                      max_reduction_depth(hana::type_c<typename M::child_type>) <= 0;
  static_assert(ok, "a matrix stage whose operand needs another matrix stage (or state updated from one, "
                    "or a norm of one) would need two matrix phases; steep runs one");
  return ok;
}
template <class N>
constexpr bool phases_ok(hana::basic_type<N>) {
  return
    []<class... M>(type_list<M...>) { return (true && ... && matrix_phase_ok<M>()); }(collect_matrices<N>{});
}

// Kind (line or block reduction) and depth of every reduction under N (state updates are roots
// of their own). A class, so each node type's list is made once, whatever is counted in it.
struct reduction_kind {
  bool line = false;
  int depth = 0;
};
template <class N>
struct reductions_under {
  static constexpr auto value = []<class... K>(type_list<K...>) {
    constexpr bool self = is_reduce_node<N>::value;
    std::array<reduction_kind, (std::size_t{ self ? 1 : 0 } + ... + reductions_under<K>::value.size())> out{};
    std::size_t k = 0;
    if constexpr (self)
      out[k++] = { N::line != not_a_line, reduction_depth<N>() };
    ((std::copy(reductions_under<K>::value.begin(), reductions_under<K>::value.end(), out.begin() + k),
      k += reductions_under<K>::value.size()),
     ...);
    return out;
  }(typename kid_types<N>::type{});
};

// How many reductions under N are lines (Line) or block reductions, of depth D.
template <bool Line, int D, class N>
constexpr std::size_t count_reductions(hana::basic_type<N>) {
  std::size_t n = 0;
  for (const reduction_kind& r : reductions_under<N>::value)
    n += r.line == Line && r.depth == D ? 1 : 0;
  return n;
}

template <class Leaf>
struct is_leaf_type {
  template <class N>
  using test = std::is_same<N, Leaf>;
};
template <class N, class Leaf>
constexpr bool contains(hana::basic_type<N> t) {
  return any_in_tree<false, is_leaf_type<Leaf>::template test>(t);
}
} // namespace detail
} // namespace steep::expr
