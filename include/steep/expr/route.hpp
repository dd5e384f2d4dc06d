#pragma once
// route: a hybrid rule — a different composition for each kind of block, chosen by block role.
//
//   auto rule = steep::route(steep::on<block_role::hidden_matrix> >> rules::muon(0.02),
//                            steep::otherwise >> rules::adam(3e-4));
//   steep::optimizer opt(rule, store);          // Muon-Adam; opt.step(), opt.state("W1", ...)
//   steep::on<block_role::embedding>.explicitly() >> rules::muon(0.02)  // opt-in, see below
//
// The math: a max-composition of per-block norms, ||theta|| = max_b ||theta_b||_{N_b}, has dual
// sum_b ||g_b||_{N_b*} and its dual map is the per-block dual maps side by side
// (DESIGN.md; Gronich & Vardi 2026, Muon-Adam / Muon-Signum). So a hybrid is not new code:
// each arm is an ordinary compiled rule, run over the blocks whose role it claims.
//
// Arms are tried in order; a block goes to the first arm whose roles include its role, and
// `otherwise` claims every role not claimed before it. Which roles each arm gets is known at
// compile time, so a rule with a matrix stage (Muon's Newton-Schulz) on an arm that could
// receive embeddings, heads, vectors or scalars is a compile error unless that arm lists the
// roles and says .explicitly() (issue #3). Vectors and scalars can never take a matrix map.

#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/core/shape.hpp"
#include "steep/expr/optimizer.hpp"
#include "steep/expr/program.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
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

template <class Selector, class Rule>
struct route_arm {
  using selector = Selector;
  using rule_type = Rule;
  Rule rule;
};

template <bool E, block_role... R, expr::expression Rule>
constexpr auto operator>>(on_t<E, R...>, Rule rule) {
  return route_arm<on_t<E, R...>, Rule>{ std::move(rule) };
}
template <expr::expression Rule>
constexpr auto operator>>(otherwise_t, Rule rule) {
  return route_arm<otherwise_t, Rule>{ std::move(rule) };
}

template <class... Arms>
struct routed {
  static constexpr std::size_t n_arms = sizeof...(Arms);
  // The roles each arm actually receives: its own, less those claimed by earlier arms.
  static constexpr std::array<unsigned, n_arms> masks = [] {
    std::array<unsigned, n_arms> m{};
    unsigned taken = 0;
    std::size_t i = 0;
    ((m[i++] = Arms::selector::mask & ~taken, taken |= Arms::selector::mask), ...);
    return m;
  }();
  template <std::size_t I>
  using arm_t = std::tuple_element_t<I, std::tuple<Arms...>>;

  std::tuple<Arms...> arms;
};

namespace detail {
template <class Arm, unsigned Mask>
constexpr bool check_arm() {
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
    for (const auto& b : store.blocks()) {
      std::size_t arm = sizeof...(Arms);
      for (std::size_t i = 0; i < sizeof...(Arms) && arm == sizeof...(Arms); ++i)
        if (routed_type::masks[i] & detail::role_bit(b.role))
          arm = i;
      if (arm == sizeof...(Arms))
        throw error(b.name, "no arm of the route takes role " + std::string(to_string(b.role)) +
                              "; add one (on<block_role::" + std::string(to_string(b.role)) +
                              "> >> rule) or end the route with otherwise >> rule");
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

  // The index of the arm that updates `block`.
  std::size_t arm_of(const std::string& block) const {
    for (auto& [name, arm] : owner_)
      if (name == block)
        return arm;
    throw error(block, "no block of that name is updated by this optimizer");
  }

private:
  template <std::size_t I, class Rule>
  void build(const Rule& rule, std::vector<block_spec<T>> specs, optimizer_options opts) {
    threads_ = opts.threads;
    if (specs.empty())
      return;
    // The route's compile-time check already vetted which roles this arm may take.
    opts.matrix_roles.clear();
    for (auto r : detail::role_list)
      if (routed_type::masks[I] & detail::role_bit(r))
        opts.matrix_roles.push_back(r);
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
