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
// (DESIGN.md; Gronich & Vardi 2026, Muon-Adam / Muon-Signum). So a hybrid is not new code:
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
#include "steep/core/param_store.hpp"
#include "steep/core/shape.hpp"
#include "steep/expr/optimizer.hpp"
#include "steep/expr/program.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <fnmatch.h>
#include <initializer_list>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace steep {

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

// The optimizer of a routed rule: one compiled optimizer per arm, each over the blocks it
// receives (adopted from the store, so memory is shared and nothing is copied).
template <class... Arms, class T>
class optimizer<routed<Arms...>, T> {
  using routed_type = routed<Arms...>;
  template <std::size_t I>
  using arm_optimizer = optimizer<typename routed_type::template arm_t<I>::rule_type, T>;
  template <class Seq>
  struct parts;
  template <std::size_t... I>
  struct parts<std::index_sequence<I...>> {
    using type = std::tuple<std::unique_ptr<arm_optimizer<I>>...>;
  };
  static constexpr auto arms_seq = std::index_sequence_for<Arms...>{};

public:
  using value_type = T;
  static constexpr std::size_t bytes_per_param =
    std::max({ optimizer<typename Arms::rule_type, T>::bytes_per_param... });

  optimizer(routed_type rule, param_store<T>& store, optimizer_options opts = {}) {
    std::array<std::vector<block_spec<T>>, sizeof...(Arms)> specs;
    for (std::size_t index = 0; index < store.size(); ++index) {
      const auto& b = store.block_at(index);
      const block_info info{ b.name, b.shape, b.role, b.layout, index };
      const std::size_t arm = first_arm(rule, info);
      if (arm == sizeof...(Arms))
        throw error(b.name, "no arm of the route selects this block (role " + std::string(to_string(b.role)) +
                              "); add one (on<block_role::" + std::string(to_string(b.role)) +
                              "> >> rule, on_name(...) >> rule) or end the route with otherwise >> rule");
      specs[arm].emplace_back(b.name, b.shape, b.role, b.param, b.grad);
      specs[arm].back().layout = b.layout;
      owner_.emplace_back(b.name, arm);
    }
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (build<I>(std::get<I>(rule.arms).rule, std::move(specs[I]), opts), ...);
    }
    (arms_seq);
  }

  void step() {
    for_parts([](auto& o) { o.step(); });
    ++t_;
  }
  std::int64_t steps() const noexcept { return t_; }
  int threads() const noexcept { return threads_; }

  // Sets the hyperparameter in every arm that has one of that name.
  void set(std::string_view name, double value) {
    bool found = false;
    for_parts([&](auto& o) {
      if (o.has(name))
        o.set(name, value), found = true;
    });
    if (!found)
      throw usage_error("no arm of the route has a hyperparameter named '" + std::string(name) + "'");
  }
  double get(std::string_view name) const {
    double v = 0;
    bool found = false;
    for_parts([&](const auto& o) {
      if (!found && o.has(name))
        v = o.get(name), found = true;
    });
    if (!found)
      throw usage_error("no arm of the route has a hyperparameter named '" + std::string(name) + "'");
    return v;
  }

  // Every arm's slots, each once.
  static std::vector<slot_info> slots() {
    std::vector<slot_info> out;
    (
      [&] {
        for (auto& s : optimizer<typename Arms::rule_type, T>::slots()) {
          bool dup = false;
          for (auto& o : out)
            dup = dup || o.name == s.name;
          if (!dup)
            out.push_back(s);
        }
      }(),
      ...);
    return out;
  }

  template <class S = T>
  auto state(const std::string& block, const std::string& slot) {
    const std::size_t arm = arm_of(block);
    using view_t = decltype(std::get<0>(parts_)->template state<S>(block, slot));
    std::optional<view_t> v;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((I == arm ? (v.emplace(std::get<I>(parts_)->template state<S>(block, slot)), 0) : 0), ...);
    }
    (arms_seq);
    return *v;
  }

  // Which arm runs a block, and what each arm compiled to.
  std::string describe() const {
    std::ostringstream os;
    os << "route with " << sizeof...(Arms) << " arms\n";
    for_parts_indexed([&](std::size_t k, const auto* o) {
      os << "arm " << k << ": blocks";
      for (auto& [name, arm] : owner_)
        if (arm == k)
          os << ' ' << name;
      os << '\n' << (o ? o->describe() : std::string("(no blocks)\n"));
    });
    return os.str();
  }

  // Whether `block`'s arm has a state slot named `slot` (arms hold different slots).
  bool has_slot(const std::string& block, std::string_view slot) const {
    const std::size_t arm = arm_of(block);
    bool found = false;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
        [&] {
          if (I == arm)
            for (const auto& s : arm_optimizer<I>::slots())
              found = found || s.name == slot;
        }(),
        ...);
    }
    (arms_seq);
    return found;
  }

  // The index of the arm that updates `block`.
  std::size_t arm_of(const std::string& block) const {
    for (auto& [name, arm] : owner_)
      if (name == block)
        return arm;
    throw error(block, "no block of that name is updated by this optimizer");
  }

private:
  // The first arm that selects the block (sizeof...(Arms) if none does).
  static std::size_t first_arm(const routed_type& rule, const block_info& info) {
    std::size_t arm = sizeof...(Arms);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((arm == sizeof...(Arms) && selects<I>(rule, info) ? (arm = I, 0) : 0), ...);
    }
    (arms_seq);
    return arm;
  }
  template <std::size_t I>
  static bool selects(const routed_type& rule, const block_info& info) {
    using sel = typename routed_type::template arm_t<I>::selector;
    if constexpr (runtime_selector<sel>)
      return std::get<I>(rule.arms).select.matches(info);
    else
      return (routed_type::masks[I] & detail::role_bit(info.role)) != 0;
  }

  template <std::size_t I, class Rule>
  void build(const Rule& rule, std::vector<block_spec<T>> specs, optimizer_options opts) {
    threads_ = opts.threads;
    if (specs.empty())
      return;
    // Which roles this arm's matrix stage may take: a role arm's were vetted at compile time; a
    // run-time arm takes hidden matrices, or every matrix role if it opted in with .explicitly()
    // (never vectors or scalars); the arm's optimizer refuses any other block it got, by name.
    using sel = typename routed_type::template arm_t<I>::selector;
    opts.matrix_roles.clear();
    for (auto r : detail::role_list) {
      const bool vec = r == block_role::vector || r == block_role::scalar;
      const bool ok = runtime_selector<sel> ? (r == block_role::hidden_matrix || (sel::is_explicit && !vec))
                                            : (routed_type::masks[I] & detail::role_bit(r)) != 0;
      if (ok)
        opts.matrix_roles.push_back(r);
    }
    auto& st = std::get<I>(stores_);
    st = std::make_unique<param_store<T>>(std::move(specs));
    std::get<I>(parts_) = std::make_unique<arm_optimizer<I>>(rule, *st, opts);
    threads_ = std::get<I>(parts_)->threads();
  }

  template <class F>
  void for_parts(F&& f) {
    std::apply([&](auto&... p) { ((p ? f(*p) : void()), ...); }, parts_);
  }
  template <class F>
  void for_parts(F&& f) const {
    std::apply([&](const auto&... p) { ((p ? f(std::as_const(*p)) : void()), ...); }, parts_);
  }
  template <class F>
  void for_parts_indexed(F&& f) const {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (f(I, std::get<I>(parts_).get()), ...); }
    (arms_seq);
  }

  std::array<std::unique_ptr<param_store<T>>, sizeof...(Arms)> stores_;
  typename parts<std::index_sequence_for<Arms...>>::type parts_;
  std::vector<std::pair<std::string, std::size_t>> owner_;
  std::int64_t t_ = 0;
  int threads_ = 0;
};

} // namespace steep
