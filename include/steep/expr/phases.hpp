#pragma once
// The phase analysis: when each value of a rule is known within a step, so the engine can run it
// in passes (docs/design.md, "The plan of one step").
//
//   detail::reduction_depth<N>();        // 0: known after the first read-only pass; 1: after
//                                        // matrix phase 1 (NorMuon's row norms of the polar factor)
//   detail::matrix_phase_of<M>();        // 1 for Muon's map; 2 for a map of its result
//   detail::count_reductions<true, 1>(hana::type_c<Rule>);   // line reductions of depth 1
//
// A step runs the depth-0 reductions, then for p = 1, 2, ...: matrix phase p (its stages'
// operands gathered in one read-only pre-pass, then their maps per block) and the reductions of
// depth p (docs/design.md, "The plan of one step").

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

// Matrix phases and reduction depths are one order: the depth-0 reductions, matrix phase 1,
// the depth-1 reductions, matrix phase 2, ... A matrix stage runs in phase p >= 1 once every
// matrix stage its operand needs ran (phases < p) and every reduction it needs is known
// (depths < p); a reduction has depth d once what its operand needs ran (matrix phases <= d,
// reductions of depth < d). Both are -1 / 0 where nothing is needed, and both descend through the
// state a value reads (a slot's update, the slot a prev(...) reads).
template <class N>
constexpr int max_reduction_depth(hana::basic_type<N>);
template <class N>
constexpr int max_matrix_phase(hana::basic_type<N>);

// The phase of matrix stage M (Muon's newton_schulz(ema(grad)): 1; a second orthogonalization of
// a momentum of orthogonalized gradients: 2).
template <class M>
constexpr int matrix_phase_of() {
  using C = typename M::child_type;
  return std::max({ 1, max_matrix_phase(hana::type_c<C>) + 1, max_reduction_depth(hana::type_c<C>) + 1 });
}
template <class N>
constexpr int max_matrix_phase(hana::basic_type<N>) {
  if constexpr (is_matrix_node<N>::value)
    return matrix_phase_of<N>(); // covers whatever its operand needs
  else
    return []<class... K>(type_list<K...>) {
      return std::max({ 0, max_matrix_phase(hana::type_c<K>)... });
    }(analysis_kids<true, N>());
}

// The pass after which a reduction's value is known ("depth"): 0 for a reduction of what the
// step starts with (gradient, parameters, state), computed before matrix phase 1; 1 + the depth
// of any reduction its operand needs (directly, through a line or a state slot's update), and at
// least p if it needs the result of a matrix stage of phase p (AdaMuon's norm of its normalized
// polar factor: depth 1; NorMuon's per-row second moment of the polar factor: 1, and the norm of
// the row-normalized factor: 2). max_reduction_depth is -1 where no reduction is needed.
template <class N>
constexpr int reduction_depth() {
  using C = typename N::child_type;
  return std::max(max_reduction_depth(hana::type_c<C>) + 1, max_matrix_phase(hana::type_c<C>));
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
