#pragma once
// The compiler's type-list toolkit: a rule's node types as lists, walked at compile time.
//
//   using L = detail::type_list<int, float>;
//   detail::list_at<1, L>::type;                                      // float
//   detail::collected<true, is_state, Rule>::type;                    // every state stage, children first
//   detail::unique_states<L>::type;                                   // each slot name's first stage
//
// Lists, not tuples of values: nothing here is instantiated at run time (expr/program.hpp uses
// them to number a rule's slots, matrix stages and roots).

#include "steep/expr/matrix.hpp"
#include "steep/expr/operands.hpp"
#include "steep/expr/ops.hpp"
#include "steep/expr/reduce.hpp"
#include "steep/expr/state.hpp"

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
namespace hana = boost::hana;

template <class N>
concept has_kids = requires(const N& n) {
  n.kids;
};

template <class... C>
struct type_list {};

template <class N>
struct kid_types {
  using type = type_list<>;
};
template <has_kids N>
struct kid_types<N> {
  using type = decltype([]<class S, class... C>(std::type_identity<operands_of<S, C...>>) {
    return type_list<C...>{};
  }(std::type_identity<std::remove_cvref_t<decltype(std::declval<N>().kids)>>{}));
};

// What the compile-time analysis descends into: a node's operands, and with Through also the
// update of a slot it reads and the slot a prev(...) reads (a slot's update is a root of its
// own, so counting walks do not go Through). Every walk below is one of the folds after it, or a
// class per node type (reductions_under, and matches_of further down).
template <bool Through, class N>
constexpr auto analysis_kids() {
  if constexpr (Through && is_state_node_v<N>)
    return type_list<typename N::update_type>{};
  else if constexpr (Through && is_prev_node<N>::value)
    return type_list<typename N::state_type>{};
  else
    return typename kid_types<N>::type{};
}

// The folds below expand a node's kids in one pack (a lambda over the type list and a C++17
// fold) rather than with hana::fold_left and a growing accumulator, or hana::unpack: the
// analysis runs for every rule in every translation unit, and an accumulating fold
// instantiates one concatenation per kid, hana::unpack two functions per call (docs/compile-time.md).

// Type lists joined in order, and the K-th type of one (through operands.hpp's operand_t).
template <class... L>
struct concat_lists {
  using type = type_list<>;
};
template <class... A>
struct concat_lists<type_list<A...>> {
  using type = type_list<A...>;
};
template <class... A, class... B, class... L>
struct concat_lists<type_list<A...>, type_list<B...>, L...> : concat_lists<type_list<A..., B...>, L...> {};
template <class... L>
using concat_t = typename concat_lists<L...>::type;

template <class L>
struct list_size;
template <class... A>
struct list_size<type_list<A...>> : std::integral_constant<std::size_t, sizeof...(A)> {};
template <std::size_t K, class L>
struct list_at;
template <std::size_t K, class... A>
struct list_at<K, type_list<A...>> {
  using type = operand_t<K, operands<A...>>;
};

template <class X, class... A>
constexpr std::size_t count_in(type_list<A...>) {
  return (std::size_t{ 0 } + ... + std::is_same_v<X, A>);
}

// Every node type M under (and including) N with Pred<M>, children before parents, as a
// type_list. A class per node type (each subtree's list is made once), joined by plain pack
// expansion: hana's make_tuple, flatten and append per node took 2.8 s of clang's 67 s on the
// catalogue (docs/compile-time.md).
template <bool Through, template <class> class Pred, class N>
struct collected;
template <bool Through, template <class> class Pred, class Kids>
struct collected_kids;
template <bool Through, template <class> class Pred, class... K>
struct collected_kids<Through, Pred, type_list<K...>> {
  using type = concat_t<typename collected<Through, Pred, K>::type...>;
};
template <bool Through, template <class> class Pred, class N>
struct collected {
  using type = concat_t<typename collected_kids<Through, Pred, decltype(analysis_kids<Through, N>())>::type,
                        std::conditional_t<Pred<N>::value, type_list<N>, type_list<>>>;
};

// Whether some node type under (and including) N has Pred.
template <bool Through, template <class> class Pred, class N>
constexpr bool any_in_tree(hana::basic_type<N>) {
  if constexpr (Pred<N>::value)
    return true;
  else
    return []<class... K>(type_list<K...>) {
      return (false || ... || any_in_tree<Through, Pred>(hana::type_c<K>));
    }(analysis_kids<Through, N>());
}

template <class N>
struct is_state : std::bool_constant<is_state_node_v<N>> {};

// Every state stage reachable from N, children before parents (duplicates kept).
template <class N>
using collect_states = typename collected<true, is_state, N>::type;

// The types of L at the positions Keep marks, in order.
template <const auto& Keep, class Seq, class L>
struct keep_where;
template <const auto& Keep, std::size_t... I, class... A>
struct keep_where<Keep, std::index_sequence<I...>, type_list<A...>> {
  using type = concat_t<std::conditional_t<Keep[I], type_list<A>, type_list<>>...>;
};

// Every matrix stage under N, operands first (slot updates are roots of their own).
template <class N>
using collect_matrices = typename collected<false, is_matrix_node, N>::type;

// First occurrence of each type, in order.
template <class X, class... A>
constexpr std::size_t first_index = [] {
  constexpr bool same[] = { std::is_same_v<X, A>... };
  std::size_t i = 0;
  while (!same[i])
    ++i;
  return i;
}();
template <class L>
struct unique_types;
template <class... A>
struct unique_types<type_list<A...>> {
  static constexpr std::array<bool, sizeof...(A)> keep = [] {
    std::array<bool, sizeof...(A)> k{};
    std::size_t i = 0;
    ((k[i] = first_index<A, A...> == i, ++i), ...);
    return k;
  }();
  using type = typename keep_where<keep, std::index_sequence_for<A...>, type_list<A...>>::type;
};

// First occurrence of each name, in order; one name must mean one stage (so, once that is
// checked, the first occurrence of each type).
template <class L>
struct unique_states;
template <class... A>
struct unique_states<type_list<A...>> {
  template <class X>
  static constexpr bool one_stage = ((X::name.view() != A::name.view() || std::is_same_v<X, A>)&&...);
  static_assert((one_stage<A> && ...),
                "two different stages that own state share one slot name: give each its "
                "own name, e.g. ema<\"m1\">(...) and ema<\"m2\">(...)");
  using type = typename unique_types<type_list<A...>>::type;
};
} // namespace detail
} // namespace steep::expr
