#pragma once
// program<Rule>: what the compiler derives from a rule's type, all at compile time.
//
//   auto rule = -0.01 * debias(ema<"m">(grad, 0.9)) / (sqrt(debias(ema<"v">(square(grad), 0.999))) + 1e-8);
//   using P = steep::expr::program<decltype(rule)>;
//   P::n_slots == 2;                  // slots to allocate, in dependency order: "m", "v"
//   P::slot_name(0) == "m";
//   P::n_step_scalars;                // per-step scalars hoisted out of the loop
//   P::n_reductions == 0, P::passes == 1;
//
// The analysis walks the rule's type (type lists and constexpr tables, one per node type): it
// collects every stage that owns state (looking through prev(...) and through other stages'
// updates, children first, so a slot is updated after the slots it reads), merges stages that
// share a name, and fails to compile if one name stands for two different stages. The compiled
// program is a list of roots evaluated in order inside one loop: the update of each slot, then
// the rule's output (the parameter's change). Every root gets fixed offsets into the per-step,
// per-block and reduction tables.

#include "steep/core/error.hpp"
#include "steep/expr/matrix.hpp"
#include "steep/expr/node.hpp"
#include "steep/expr/operands.hpp"
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

// What make_roots needs from a rule's nodes: named hyperparameters, state stages, and prev(...)
// (to reach the stage it reads).
template <class N>
struct is_stage_or_hyper
  : std::bool_constant<named_hyper<N> || is_state_node_v<N> || is_prev_node<N>::value> {};

// Keeps the first definition of something a rule may define more than once (a slot's stage, a
// matrix stage's map) in `kept` (a pointer to it: a copy of a stage copies its whole subtree,
// and a std::optional of one instantiated a constructor per node type); with Compare, a later
// one must equal it, else throws usage_error(message()). (make_roots compiles the comparison
// only for a stage reached twice.)
template <bool Compare, class V, class Message>
void keep_first(const V*& kept, const V& v, Message&& message) {
  if (!kept)
    kept = &v;
  else if constexpr (Compare)
    if (!(*kept == v))
      throw usage_error(message());
}
} // namespace detail

template <template <class> class Trait, std::size_t S, std::size_t B, std::size_t R, class N, class F>
void visit_where(const N& n, F&& f);
template <template <class> class Trait, std::size_t S, std::size_t B, std::size_t R, class N, class F>
void visit_each(const N& n, F&& f);

template <class Rule>
struct program {
  static_assert(expression<Rule>, "a rule must be a steep expression (built from grad, param, stages, ...)");

  // Every state stage the rule reaches, as often as it is reached, and each name's first.
  using state_uses = detail::collect_states<std::remove_cvref_t<Rule>>;
  using slot_types = typename detail::unique_states<state_uses>::type;
  static constexpr std::size_t n_slots = detail::list_size<slot_types>::value;

  template <std::size_t K>
  using slot_t = typename detail::list_at<K, slot_types>::type;

  template <class Seq>
  struct roots_of;
  template <std::size_t... K>
  struct roots_of<std::index_sequence<K...>> {
    using type = operands<typename slot_t<K>::update_type..., std::remove_cvref_t<Rule>>;
  };
  // Evaluation order inside the loop: slot updates (dependencies first), then the output. An
  // aggregate like a node's operands (operands.hpp: get<R>(roots)), not a std::tuple, whose
  // chain of bases and constructors cost a tenth of the functions of the optimizers'
  // constructors across the catalogue (docs/compile-time.md).
  using roots_t = typename roots_of<std::make_index_sequence<n_slots>>::type;
  static constexpr std::size_t n_roots = n_slots + 1;
  static constexpr std::size_t output_root = n_slots;
  template <std::size_t R>
  using root_t = operand_t<R, roots_t>;

private:
  template <class Roots>
  struct root_counts;
  template <std::size_t... I, class... C>
  struct root_counts<operands_of<std::index_sequence<I...>, C...>> {
    static constexpr std::array<std::size_t, n_roots> step{ C::n_step... }, block{ C::n_block... },
      red{ C::n_red... };
  };
  using counts = root_counts<roots_t>;

public:
  // Table offsets of each root; the last entry is the table's size.
  static constexpr auto step_offset = partial_sums<n_roots>(counts::step);
  static constexpr auto block_offset = partial_sums<n_roots>(counts::block);
  static constexpr auto red_offset = partial_sums<n_roots>(counts::red);
  static constexpr std::size_t n_step_scalars = step_offset[n_roots];
  static constexpr std::size_t n_block_scalars = block_offset[n_roots];
  static constexpr std::size_t n_reductions = red_offset[n_roots];

  // Matrix stages (matrix.hpp), each with a scratch arena; one stage type = one stage.
  template <class Seq>
  struct matrices_of;
  template <std::size_t... R>
  struct matrices_of<std::index_sequence<R...>> {
    using type =
      typename detail::unique_types<detail::concat_t<detail::collect_matrices<root_t<R>>...>>::type;
  };
  using matrix_types = typename matrices_of<std::make_index_sequence<n_roots>>::type;
  static constexpr std::size_t n_matrices = detail::list_size<matrix_types>::value;
  template <std::size_t K>
  using matrix_t = typename detail::list_at<K, matrix_types>::type;
  template <class N>
  static constexpr std::size_t matrix_index = [] {
    std::size_t idx = n_matrices;
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      ((std::is_same_v<matrix_t<K>, N> && idx == n_matrices ? (idx = K, 0) : 0), ...);
    }
    (std::make_index_sequence<n_matrices>{});
    return idx;
  }();
  // Whether some matrix stage needs rank >= 2 blocks of an allowed role (Muon's maps do).
  static constexpr bool needs_matrix_blocks = [] {
    return [&]<std::size_t... K>(std::index_sequence<K...>) {
      return (false || ... || matrix_t<K>::needs_matrix);
    }
    (std::make_index_sequence<n_matrices>{});
  }();
  static constexpr bool phases_checked = [] {
    // (each failing check static_asserts with its own message inside phases_ok)
    return [&]<std::size_t... R>(std::index_sequence<R...>) {
      return (detail::phases_ok(boost::hana::type_c<root_t<R>>) && ...);
    }
    (std::make_index_sequence<n_roots>{});
  }();

  // Passes of reductions by depth (detail::reduction_depth): depth 0 before the matrix phase,
  // 1 ... max_depth after it; each depth has a pass for block reductions and one for lines
  // when it has any.
  static constexpr int max_depth = [] {
    return [&]<std::size_t... R>(std::index_sequence<R...>) {
      return std::max({ -1, detail::max_reduction_depth(boost::hana::type_c<root_t<R>>)... });
    }
    (std::make_index_sequence<n_roots>{});
  }();
  template <bool Line, int D>
  static constexpr std::size_t reductions_at = [] {
    return [&]<std::size_t... R>(std::index_sequence<R...>) {
      return (std::size_t{ 0 } + ... + detail::count_reductions<Line, D>(boost::hana::type_c<root_t<R>>));
    }
    (std::make_index_sequence<n_roots>{});
  }();

  // Memory passes per step: the reduction passes, [matrix pre-pass], update (plus the matrix phase).
  static constexpr std::size_t passes = [] {
    std::size_t n = 1 + (n_matrices > 0 ? 1 : 0);
    [&]<std::size_t... D>(std::index_sequence<D...>) {
      ((n += (reductions_at<false, D> > 0 ? 1 : 0) + (reductions_at<true, D> > 0 ? 1 : 0)), ...);
    }
    (std::make_index_sequence<static_cast<std::size_t>(max_depth + 1)>{});
    return n;
  }();

  static constexpr bool reads_grad = [] {
    return [&]<std::size_t... R>(std::index_sequence<R...>) {
      return (detail::contains<root_t<R>, grad_t>(boost::hana::type_c<root_t<R>>) || ...);
    }
    (std::make_index_sequence<n_roots>{});
  }();

  template <fixed_string Name>
  static constexpr std::size_t index_of = [] {
    std::size_t idx = n_slots;
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      ((slot_t<K>::name.view() == Name.view() && idx == n_slots ? (idx = K, 0) : 0), ...);
    }
    (std::make_index_sequence<n_slots>{});
    return idx;
  }();

  static constexpr std::string_view slot_name(std::size_t k) {
    std::string_view out;
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      ((K == k ? (out = slot_t<K>::name.view(), 0) : 0), ...);
    }
    (std::make_index_sequence<n_slots>{});
    return out;
  }

  // Storage type of slot K for parameters of type T.
  template <std::size_t K, class T>
  using slot_storage_t =
    std::conditional_t<std::is_same_v<typename slot_t<K>::dtype, param_dtype>, T, typename slot_t<K>::dtype>;

  template <class T, class Seq = std::make_index_sequence<n_slots>>
  struct slot_pointers;
  template <class T, std::size_t... K>
  struct slot_pointers<T, std::index_sequence<K...>> {
    using type = std::tuple<slot_storage_t<K, T>*...>;
  };
  // One pointer per slot, each of its storage type.
  template <class T>
  using slot_pointers_t = typename slot_pointers<T>::type;

  // Bytes the update pass moves per parameter: param read + write, grad read, each per-element
  // slot read + write (a per-block slot is one value per block).
  template <class T>
  static constexpr std::size_t bytes_per_param = [] {
    std::size_t bytes = 2 * sizeof(T) + (reads_grad ? sizeof(T) : 0);
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      ((bytes +=
        slot_t<K>::per_block || slot_t<K>::line != not_a_line ? 0 : 2 * sizeof(slot_storage_t<K, T>)),
       ...);
    }
    (std::make_index_sequence<n_slots>{});
    return bytes;
  }();

  // The roots of a rule value, and each slot's initial value (ema: 0, Adagrad's accumulator:
  // initial_accumulator_value).
  struct compiled {
    roots_t roots;
    std::array<double, n_slots> inits;
  };

  // Builds the roots from a rule value: finds each slot's definition (the first stage with its
  // name) and checks that every other stage of that name carries the same hyperparameters;
  // on_hyper(node) sees every named hyperparameter (the optimizer checks its range there). One
  // walk over the rule for everything the optimizer needs from its nodes: a walk is a function
  // per node type, and a second walk per root (the hyperparameters') cost as much again.
  template <class OnHyper>
  static compiled make_roots(const std::remove_cvref_t<Rule>& rule, OnHyper&& on_hyper) {
    auto found = []<std::size_t... K>(std::index_sequence<K...>) { return operands<const slot_t<K>*...>{}; }
    (std::make_index_sequence<n_slots>{});
    auto note = [&](const auto& s) {
      using S = std::remove_cvref_t<decltype(s)>;
      if constexpr (named_hyper<S>) {
        on_hyper(s);
      } else if constexpr (is_state_node_v<S>) {
        // (A stage the rule reaches once cannot disagree with itself: only a stage reached
        // twice compiles the comparison, a function per node of its subtree.)
        detail::keep_first<(detail::count_in<S>(state_uses{}) > 1)>(get<index_of<S::name>>(found), s, [] {
          return "slot '" + std::string(S::name.view()) +
                 "' is defined twice with different hyperparameters; give each stage its own name";
        });
      }
    };
    visit_stages(rule, note);
    return [&]<std::size_t... K>(std::index_sequence<K...>) {
      return compiled{ roots_t{ { get<K>(found)->update }..., { rule } }, { get<K>(found)->init... } };
    }
    (std::make_index_sequence<n_slots>{});
  }

  // The map of each matrix stage; one stage type used twice must carry the same map.
  template <class Seq = std::make_index_sequence<n_matrices>>
  struct matrix_values;
  template <std::size_t... K>
  struct matrix_values<std::index_sequence<K...>> {
    using type = std::tuple<typename matrix_t<K>::map_type...>;
  };
  using matrix_maps_t = typename matrix_values<>::type;

  static matrix_maps_t make_matrix_maps(const roots_t& roots) {
    auto found = []<std::size_t... K>(std::index_sequence<K...>) {
      return operands<const typename matrix_t<K>::map_type*...>{};
    }
    (std::make_index_sequence<n_matrices>{});
    auto note = [&]<std::size_t, std::size_t, std::size_t>(const auto& m) {
      detail::keep_first<true>(get<matrix_index<std::remove_cvref_t<decltype(m)>>>(found), m.map, [] {
        return std::string("one matrix stage is used twice with different settings (e.g. two "
                           "Newton-Schulz step counts); apply each setting to a different operand");
      });
    };
    [&]<std::size_t... R>(std::index_sequence<R...>) {
      (visit_where<is_matrix_node, 0, 0, 0>(get<R>(roots), note), ...);
    }
    (std::make_index_sequence<n_roots>{});
    return [&]<std::size_t... K>(std::index_sequence<K...>) { return matrix_maps_t{ *get<K>(found)... }; }
    (std::make_index_sequence<n_matrices>{});
  }

  // f(node) for every named hyperparameter and state stage of the rule, through a state stage's
  // update (visited before the stage) and through the stage a prev(...) reads. It follows the
  // compile-time list of where those nodes sit (detail::matches_of), so the rule's other nodes
  // cost no function of their own.
  template <class N, class F>
  static void visit_stages(const N& n, F& f) {
    constexpr auto& ms = detail::matches_of<detail::is_stage_or_hyper, false, N>::value;
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (visit_stage(detail::node_at<ms[K]>(n, std::make_index_sequence<ms[K].depth>{}), f), ...);
    }
    (std::make_index_sequence<ms.size()>{});
  }
  template <class M, class F>
  static void visit_stage(const M& m, F& f) {
    if constexpr (is_state_node_v<M>) {
      visit_stages(m.update, f);
      f(m);
    } else if constexpr (is_prev_node<M>::value) {
      visit_stages(m.state, f);
    } else {
      f(m);
    }
  }
};

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

template <class N>
struct is_per_step : std::bool_constant<N::level == 0> {};
template <class N>
struct is_per_block : std::bool_constant<N::level == 1> {};

// Writes the value of every maximal per-step subtree of n into table[S ...].
template <std::size_t S, class N>
inline void fill_step_table(const N& n, double* table, const host_ctx& h) {
  visit_where<is_per_step, S, 0, 0>(n, [&]<std::size_t S2, std::size_t, std::size_t>(const auto& m) {
    if constexpr (!std::remove_cvref_t<decltype(m)>::is_inline)
      table[S2] = m.hoist_value(h);
  });
}

// Writes the value of every per-block subtree of n into table[B ...]: the maximal ones, and
// below them those a reduction's operand or a line reads.
template <std::size_t B, std::size_t R, class N>
inline void fill_block_table(const N& n, double* table, const host_ctx& h) {
  visit_each<is_per_block, 0, B, R>(
    n, [&]<std::size_t, std::size_t B2, std::size_t R2>(const auto& m) { table[B2] = host_value<R2>(m, h); });
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
