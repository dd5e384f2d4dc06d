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
//
// Its parts: the type-list toolkit (detail/type_list.hpp), the phase analysis (phases.hpp) and the
// tree index with its visits (tree.hpp); here, the program itself and the host tables it fills.

#include "steep/core/error.hpp"
#include "steep/expr/detail/type_list.hpp"
#include "steep/expr/matrix.hpp"
#include "steep/expr/operands.hpp"
#include "steep/expr/ops.hpp"
#include "steep/expr/phases.hpp"
#include "steep/expr/reduce.hpp"
#include "steep/expr/state.hpp"
#include "steep/expr/tree.hpp"

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
  // The operands of each stage beyond its first (a stage over inputs(x, y, ...)), each with a
  // scratch arena of its own: stage K's are arenas extra_operand_first[K] .. [K + 1] - 1.
  static constexpr std::array<std::size_t, n_matrices + 1> extra_operand_first = [] {
    return [&]<std::size_t... K>(std::index_sequence<K...>) {
      return partial_sums<n_matrices>({ (matrix_t<K>::n_operands - 1)... });
    }
    (std::make_index_sequence<n_matrices>{});
  }();
  static constexpr std::size_t n_extra_operands = extra_operand_first[n_matrices];
  // Each stage's matrix phase (detail::matrix_phase_of: 1, 2, ...), and how many phases a step runs.
  static constexpr std::array<int, n_matrices> matrix_phase = [] {
    return [&]<std::size_t... K>(std::index_sequence<K...>) {
      return std::array<int, n_matrices>{ detail::matrix_phase_of<matrix_t<K>>()... };
    }
    (std::make_index_sequence<n_matrices>{});
  }();
  static constexpr int n_matrix_phases = [] {
    int n = 0;
    for (int p : matrix_phase)
      n = std::max(n, p);
    return n;
  }();
  template <int Phase>
  static constexpr std::size_t matrices_in_phase = [] {
    std::size_t n = 0;
    for (int p : matrix_phase)
      n += p == Phase ? 1 : 0;
    return n;
  }();
  // The phases that have stages, each one pre-pass over memory (a phase can have none: a stage
  // whose operand needs a depth-1 reduction of the gradient alone runs in phase 2).
  static constexpr std::size_t matrix_phases_run = [] {
    std::size_t n = 0;
    for (int p = 1; p <= n_matrix_phases; ++p)
      n += std::find(matrix_phase.begin(), matrix_phase.end(), p) != matrix_phase.end() ? 1 : 0;
    return n;
  }();

  // Passes of reductions by depth (detail::reduction_depth): depth 0 before matrix phase 1, depth
  // p after matrix phase p, up to max_depth; each depth has a pass for block reductions and one
  // for lines when it has any.
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

  // Memory passes per step: the reduction passes, a pre-pass per matrix phase, update (plus the
  // matrix phases themselves, which run on the pre-passes' scratch).
  static constexpr std::size_t passes = [] {
    std::size_t n = 1 + matrix_phases_run;
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
      (visit_each<is_matrix_node, 0, 0, 0>(get<R>(roots), note), ...); // nested stages too
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

} // namespace steep::expr
