#pragma once
// route: a hybrid rule — a different composition for each kind of block, chosen by block role.
//
//   auto rule = steep::route(steep::on<block_role::hidden_matrix> >> rules::muon(0.02),
//                            steep::otherwise >> rules::adam(3e-4));
//   steep::optimizer opt(rule, store);          // Muon-Adam; opt.step(), opt.state("W1", ...)
//   steep::on<block_role::embedding>.explicitly() >> rules::muon(0.02)  // opt-in, see below
//   steep::on_name("W1") >> scion_colnorm, steep::on_name("*.experts.*") >> ...   // glob on the name
//   steep::on_index(0) >> rule, steep::on_if([](const steep::block_info& b) { return b.shape[0] > 512; }) >>
//   rule
//
// The math: a max-composition of per-block norms, ||theta|| = max_b ||theta_b||_{N_b}, has dual
// sum_b ||g_b||_{N_b*} and its dual map is the per-block dual maps side by side
// (docs/design.md; Gronich & Vardi 2026, Muon-Adam / Muon-Signum). So a hybrid is not new code:
// each arm is an ordinary compiled rule, run over the blocks whose role it claims.
//
// Arms are tried in order; a block goes to the first arm that selects it: by role (`on<roles...>`),
// by a glob on its name (`on_name`, POSIX fnmatch), by its position in the store (`on_index`) or
// by any predicate over its spec (`on_if`); `otherwise` takes the rest. For role arms it is
// known at compile time which roles each arm gets, so a rule with a matrix stage (Muon's
// Newton-Schulz) on a role arm that could receive embeddings, heads, vectors or scalars is a
// compile error unless that arm lists the roles and says .explicitly(). A name, index or
// predicate arm selects at run time; the opt-in is still part of its type: without
// .explicitly() its matrix stage takes hidden matrices only, and the optimizer's construction
// refuses any other block it selects, naming it. Vectors and scalars never take a matrix map.

#include "steep/core/error.hpp"
#include "steep/core/shape.hpp"
#include "steep/expr/program.hpp"

#include <algorithm>
#include <array>
#include <fnmatch.h>
#include <initializer_list>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace steep::expr {

namespace detail {
constexpr unsigned role_bit(block_role r) { return 1u << static_cast<unsigned>(r); }
inline constexpr unsigned all_roles = 0x1f;
inline constexpr block_role role_list[] = { block_role::hidden_matrix, block_role::embedding,
                                            block_role::head, block_role::vector, block_role::scalar };
} // namespace detail

// Which roles an arm claims. Explicit: the user accepts a matrix stage on these roles.
template <bool Explicit, block_role... Roles>
struct on_t {
  static constexpr unsigned mask = (0u | ... | detail::role_bit(Roles));
  static constexpr bool is_explicit = Explicit;
  static constexpr bool is_otherwise = false;
  constexpr on_t<true, Roles...> explicitly() const { return {}; }
};
template <block_role... Roles>
inline constexpr on_t<false, Roles...> on{};

struct otherwise_t {
  static constexpr unsigned mask = detail::all_roles;
  static constexpr bool is_explicit = false;
  static constexpr bool is_otherwise = true;
};
inline constexpr otherwise_t otherwise{};

// What a run-time selector sees of a block.
struct block_info {
  std::string_view name;
  const shape_t& shape;
  block_role role;
  weight_layout layout;
  std::size_t index; // position in the store
};

// A selector decided at run time by a predicate over block_info. Its role mask is every role:
// the compile-time checks cannot narrow it, so the construction-time checks do.
template <bool Explicit, class Pred>
struct on_if_t {
  static constexpr unsigned mask = detail::all_roles;
  static constexpr bool is_explicit = Explicit;
  static constexpr bool is_otherwise = false;
  static constexpr bool is_runtime = true;
  Pred pred;
  bool matches(const block_info& b) const { return static_cast<bool>(pred(b)); }
  constexpr on_if_t<true, Pred> explicitly() const { return { pred }; }
};

template <class Pred>
requires std::is_invocable_r_v<bool, const Pred&, const block_info&>
constexpr on_if_t<false, Pred> on_if(Pred pred) { return { std::move(pred) }; }

namespace detail {
struct name_glob {
  std::string pattern;
  bool operator()(const block_info& b) const {
    return ::fnmatch(pattern.c_str(), std::string(b.name).c_str(), 0) == 0;
  }
};
struct index_set {
  std::vector<std::size_t> indices;
  bool operator()(const block_info& b) const {
    return std::find(indices.begin(), indices.end(), b.index) != indices.end();
  }
};
} // namespace detail

// Blocks whose name matches a shell glob ("W1", "layers.*.attn.*", "head").
inline on_if_t<false, detail::name_glob> on_name(std::string pattern) { return { { std::move(pattern) } }; }
// Blocks at these positions in the store (0-based).
inline on_if_t<false, detail::index_set> on_index(std::initializer_list<std::size_t> indices) {
  return { { std::vector<std::size_t>(indices) } };
}

template <class S>
concept runtime_selector = requires {
  S::is_runtime;
}
&&S::is_runtime;

template <class Selector, class Rule>
struct route_arm {
  using selector = Selector;
  using rule_type = Rule;
  Rule rule;
  Selector select{};
};

template <bool E, block_role... R, expr::expression Rule>
constexpr auto operator>>(on_t<E, R...>, Rule rule) {
  return route_arm<on_t<E, R...>, Rule>{ std::move(rule) };
}
template <expr::expression Rule>
constexpr auto operator>>(otherwise_t, Rule rule) {
  return route_arm<otherwise_t, Rule>{ std::move(rule) };
}
template <bool E, class Pred, expr::expression Rule>
auto operator>>(on_if_t<E, Pred> sel, Rule rule) {
  return route_arm<on_if_t<E, Pred>, Rule>{ std::move(rule), std::move(sel) };
}

template <class... Arms>
struct routed {
  static constexpr std::size_t n_arms = sizeof...(Arms);
  // The roles each arm actually receives: its own, less those claimed by earlier arms.
  static constexpr std::array<unsigned, n_arms> masks = [] {
    std::array<unsigned, n_arms> m{};
    unsigned taken = 0;
    std::size_t i = 0;
    // A run-time arm may select any role, and takes none away from later arms.
    ((m[i++] = Arms::selector::mask & ~taken,
      taken |= runtime_selector<typename Arms::selector> ? 0u : Arms::selector::mask),
     ...);
    return m;
  }();
  template <std::size_t I>
  using arm_t = std::tuple_element_t<I, std::tuple<Arms...>>;

  std::tuple<Arms...> arms;
};

namespace detail {
template <class Arm, unsigned Mask>
constexpr bool check_role_arm() {
  constexpr bool has_matrix = expr::program<typename Arm::rule_type>::needs_matrix_blocks;
  constexpr unsigned beyond_hidden = Mask & ~role_bit(block_role::hidden_matrix);
  constexpr unsigned vectors = Mask & (role_bit(block_role::vector) | role_bit(block_role::scalar));
  static_assert(!has_matrix || beyond_hidden == 0 || Arm::selector::is_explicit,
                "route: this arm's rule has a matrix stage (e.g. Muon's Newton-Schulz) but can receive "
                "embeddings, heads, vectors or scalars; give it on<block_role::hidden_matrix>, or list the "
                "roles and opt in with on<...>.explicitly()");
  static_assert(!has_matrix || vectors == 0 || !Arm::selector::is_explicit,
                "route: a matrix stage (e.g. Muon's Newton-Schulz) cannot run on vectors or scalars, even "
                "explicitly; route them to an elementwise rule");
  return true;
}
template <class Arm, unsigned Mask>
constexpr bool check_arm() {
  if constexpr (runtime_selector<typename Arm::selector>)
    return true; // a run-time arm is checked when the optimizer is built, block by block
  else
    return check_role_arm<Arm, Mask>();
}
} // namespace detail

// Builds a hybrid rule from arms `on<roles...> >> rule` and `otherwise >> rule`.
template <class... Arms>
constexpr auto route(Arms... arms) {
  static_assert(sizeof...(Arms) > 0, "route needs at least one arm: on<roles...> >> rule");
  using R = routed<Arms...>;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (detail::check_arm<typename R::template arm_t<I>, R::masks[I]>(), ...);
  }
  (std::index_sequence_for<Arms...>{});
  return R{ std::tuple<Arms...>(std::move(arms)...) };
}

} // namespace steep::expr

namespace steep {
// Routing is spelled steep::route(steep::on<...> >> rule, steep::otherwise >> rule).
using expr::block_info;
using expr::on;
using expr::on_if;
using expr::on_index;
using expr::on_name;
using expr::otherwise;
using expr::route;
using expr::routed;
} // namespace steep
