#pragma once
// optimizer<routed<Arms...>, T>: the engine of a hybrid rule (expr/route.hpp) — one compiled
// optimizer per arm, each over the blocks its arm selects.
//
//   auto rule = steep::route(steep::on<block_role::hidden_matrix> >> rules::muon(0.02),
//                            steep::otherwise >> rules::adam(3e-4));
//   steep::optimizer opt(rule, store);     // opt.step(); opt.state("W1", "momentum_buffer")
//
// Each arm adopts its blocks from the store (memory is shared, nothing is copied). A step
// prepares every arm (guard, reductions, matrix phase: all read-only) before any arm commits
// its update pass, so a non-finite gradient in any block refuses the step for all arms alike
// and a retry never applies an arm twice (engine/guard.hpp).

#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/optimizer.hpp"
#include "steep/expr/route.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace steep::engine {

namespace detail {
// What every route's constructor does whatever its arms: compiled once per parameter type in a
// translation unit, not once per route (docs/compile-time.md).

// The store's blocks, split by arm: arm_of[i] is block i's arm (n_arms where no arm selects it,
// which is refused, naming the block). `owner` gets each block's name and arm in store order.
template <class T>
[[gnu::cold, gnu::noinline]] std::vector<std::vector<block_spec<T>>> split_by_arm(
  const param_store<T>& store, const std::vector<std::size_t>& arm_of, std::size_t n_arms,
  std::vector<std::pair<std::string, std::size_t>>& owner) {
  std::vector<std::vector<block_spec<T>>> specs(n_arms);
  for (std::size_t index = 0; index < store.size(); ++index) {
    const auto& b = store.block_at(index);
    const std::size_t arm = arm_of[index];
    if (arm == n_arms)
      throw error(b.name, "no arm of the route selects this block (role " + std::string(to_string(b.role)) +
                            "); add one (on<block_role::" + std::string(to_string(b.role)) +
                            "> >> rule, on_name(...) >> rule) or end the route with otherwise >> rule");
    specs[arm].emplace_back(b.name, b.shape, b.role, std::span<T>(b.param, b.size),
                            std::span<T>(b.grad, b.size));
    specs[arm].back().layout = b.layout;
    owner.emplace_back(b.name, arm);
  }
  return specs;
}

// The roles an arm's matrix stage may take: a role arm's (`mask`) were vetted at compile time; a
// run-time arm takes hidden matrices, or every matrix role if it opted in with .explicitly()
// (never vectors or scalars); the arm's optimizer refuses any other block it got, by name.
[[gnu::cold]] inline std::vector<block_role> arm_matrix_roles(unsigned mask, bool runtime, bool is_explicit) {
  std::vector<block_role> roles;
  for (auto r : expr::detail::role_list) {
    const bool vec = r == block_role::vector || r == block_role::scalar;
    if (runtime ? (r == block_role::hidden_matrix || (is_explicit && !vec))
                : (mask & expr::detail::role_bit(r)) != 0)
      roles.push_back(r);
  }
  return roles;
}
} // namespace detail

template <class... Arms, class T>
class optimizer<expr::routed<Arms...>, T> {
  using routed_type = expr::routed<Arms...>;
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

  [[gnu::cold]] optimizer(routed_type rule, param_store<T>& store, optimizer_options opts = {});

  // One step of every arm: all arms prepare (read-only) before any commits, so a non-finite
  // gradient anywhere refuses (or skips) the step for all of them.
  bool step() { return run_step(*this, policy_, skipped_); }
  std::optional<nonfinite_entry> prepare_step();
  void commit_step();
  std::int64_t steps() const noexcept { return t_; }
  // The rule's structural hash (slots.hpp, rule_hash): checkpoints refuse another rule's state.
  static std::string rule_id() { return rule_hash<routed_type>(); }
  void restore_steps(std::int64_t t, std::int64_t skipped = 0) {
    for_parts([&](auto& o) { o.restore_steps(t, skipped); });
    t_ = t, skipped_ = skipped;
  }
  // Every arm's slots of the blocks it updates.
  template <class F>
  void visit_slots(F&& f) {
    for_parts([&](auto& o) { o.visit_slots(f); });
  }
  std::int64_t skipped_steps() const noexcept { return skipped_; }
  nonfinite_policy nonfinite() const noexcept { return policy_; }
  // The last step's first held-back coordinate in the store's block order, counting every
  // arm's (engine/guard.hpp).
  std::optional<nonfinite_entry> held_back() const {
    std::optional<nonfinite_entry> out;
    std::size_t count = 0;
    auto position = [&](const std::string& name) {
      return std::find_if(owner_.begin(), owner_.end(), [&](const auto& o) { return o.first == name; });
    };
    for_parts([&](const auto& o) {
      if (auto h = o.held_back()) {
        count += h->count;
        if (!out || position(h->block) < position(out->block))
          out = h;
      }
    });
    if (out)
      out->count = count;
    return out;
  }
  int threads() const noexcept { return threads_; }
  void set_threads(int n) {
    for_parts([&](auto& o) { o.set_threads(n); });
    for_parts([&](const auto& o) { threads_ = o.threads(); });
  }

  // Named hyperparameters across arms. A plain name addresses every arm that has it: set() sets
  // all of them, get() reads them when they agree and throws when they differ. "arm<k>/<name>"
  // addresses arm k alone (arms count from 0 in route order), e.g. a route of Muon and AdamW
  // whose weight decays differ: opt.set("arm1/weight_decay", 0.01).

  // Whether some arm has a named hyperparameter `name`.
  bool has(std::string_view name) const {
    bool found = false;
    for_arms(name, [&](std::size_t, const auto& o, std::string_view n) { found = found || o.has(n); });
    return found;
  }

  // Throws, naming it, if some arm's hyperparameter `name` would refuse `value`.
  void check(std::string_view name, double value) const {
    for_arms(name, [&](std::size_t, const auto& o, std::string_view n) { o.check(n, value); });
  }
  // Every arm's named hyperparameters: once per name where the arms agree, else once per arm as
  // "arm<k>/<name>" (so a checkpoint restores each arm's own value).
  std::vector<std::pair<std::string, double>> hyperparameters() const {
    std::vector<std::pair<std::string, double>> all; // (name, value) per arm, with the arm's index
    std::vector<std::size_t> arm;
    for_parts_indexed([&](std::size_t k, const auto* o) {
      if (o)
        for (auto& e : o->hyperparameters())
          all.push_back(e), arm.push_back(k);
    });
    std::vector<std::pair<std::string, double>> out;
    for (std::size_t i = 0; i < all.size(); ++i) {
      bool agree = true, first = true;
      for (std::size_t j = 0; j < all.size(); ++j)
        if (all[j].first == all[i].first) {
          agree = agree && all[j].second == all[i].second;
          first = first && j >= i;
        }
      if (!agree)
        out.emplace_back("arm" + std::to_string(arm[i]) + "/" + all[i].first, all[i].second);
      else if (first)
        out.push_back(all[i]);
    }
    return out;
  }

  // Sets the hyperparameter in every arm that has one of that name (or in arm k alone).
  void set(std::string_view name, double value) {
    check(name, value); // every arm accepts it, or none changes
    bool found = false;
    for_arms(name, [&](std::size_t, auto& o, std::string_view n) {
      if (o.has(n))
        o.set(n, value), found = true;
    });
    if (!found)
      throw usage_error("no arm of the route has a hyperparameter named '" + std::string(name) + "'");
  }
  double get(std::string_view name) const {
    std::vector<std::pair<std::size_t, double>> values;
    for_arms(name, [&](std::size_t k, const auto& o, std::string_view n) {
      if (o.has(n))
        values.emplace_back(k, o.get(n));
    });
    if (values.empty())
      throw usage_error("no arm of the route has a hyperparameter named '" + std::string(name) + "'");
    for (const auto& [k, v] : values)
      if (v != values.front().second)
        throw usage_error("hyperparameter '" + std::string(name) + "' differs between the route's arms (arm" +
                          std::to_string(values.front().first) + ": " +
                          std::to_string(values.front().second) + ", arm" + std::to_string(k) + ": " +
                          std::to_string(v) + "); read one arm's as 'arm" + std::to_string(k) + "/" +
                          std::string(name) + "'");
    return values.front().second;
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
  state_view<S> state(const std::string& block, const std::string& slot) {
    const std::size_t arm = arm_of(block);
    std::optional<state_view<S>> v;
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
  static std::size_t first_arm(const routed_type& rule, const expr::block_info& info) {
    std::size_t arm = sizeof...(Arms);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((arm == sizeof...(Arms) && selects<I>(rule, info) ? (arm = I, 0) : 0), ...);
    }
    (arms_seq);
    return arm;
  }
  template <std::size_t I>
  static bool selects(const routed_type& rule, const expr::block_info& info) {
    using sel = typename routed_type::template arm_t<I>::selector;
    if constexpr (expr::runtime_selector<sel>)
      return std::get<I>(rule.arms).select.matches(info);
    else
      return (routed_type::masks[I] & expr::detail::role_bit(info.role)) != 0;
  }

  template <std::size_t I, class Rule>
  void build(const Rule& rule, std::vector<block_spec<T>> specs, optimizer_options opts) {
    threads_ = opts.threads;
    if (specs.empty())
      return;
    using sel = typename routed_type::template arm_t<I>::selector;
    opts.matrix_roles =
      detail::arm_matrix_roles(routed_type::masks[I], expr::runtime_selector<sel>, sel::is_explicit);
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
  // f(k, arm k's optimizer, the name within it) for every built arm that `name` addresses: all
  // of them for a plain name, arm k alone for "arm<k>/<name>".
  template <class Self, class F>
  static void for_arms_of(Self& self, std::string_view name, F&& f) {
    std::size_t only = sizeof...(Arms);
    if (name.rfind("arm", 0) == 0) {
      const auto slash = name.find('/');
      std::size_t k = 0;
      const auto [end, ec] = std::from_chars(name.data() + 3, name.data() + std::min(slash, name.size()), k);
      if (slash != std::string_view::npos && ec == std::errc{} && end == name.data() + slash) {
        if (k >= sizeof...(Arms))
          throw usage_error("'" + std::string(name) + "': the route has " + std::to_string(sizeof...(Arms)) +
                            " arms, counted from 0");
        only = k, name = name.substr(slash + 1);
      }
    }
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
        [&] {
          if (auto* o = std::get<I>(self.parts_).get(); o && (only == sizeof...(Arms) || only == I)) {
            if constexpr (std::is_const_v<Self>)
              f(I, std::as_const(*o), name);
            else
              f(I, *o, name);
          }
        }(),
        ...);
    }
    (arms_seq);
  }
  template <class F>
  void for_arms(std::string_view name, F&& f) {
    for_arms_of(*this, name, f);
  }
  template <class F>
  void for_arms(std::string_view name, F&& f) const {
    for_arms_of(*this, name, f);
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
  std::int64_t skipped_ = 0;
  nonfinite_policy policy_ = nonfinite_policy::refuse;
  std::weak_ptr<const bool> store_alive_;
  int threads_ = 0;
};

// Outside the class, as a plain rule's (optimizer.hpp): not inline, so an `extern template`
// route compiles none of its arms' passes.
template <class... Arms, class T>
optimizer<expr::routed<Arms...>, T>::optimizer(routed_type rule, param_store<T>& store,
                                               optimizer_options opts) {
  std::vector<std::size_t> arm_of(store.size());
  for (std::size_t index = 0; index < store.size(); ++index) {
    const auto& b = store.block_at(index);
    arm_of[index] = first_arm(rule, expr::block_info{ b.name, b.shape, b.role, b.layout, index });
  }
  auto specs = detail::split_by_arm(store, arm_of, sizeof...(Arms), owner_);
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (build<I>(std::get<I>(rule.arms).rule, std::move(specs[I]), opts), ...);
  }
  (arms_seq);
  policy_ = opts.nonfinite;
  store_alive_ = store.lifetime();
}

template <class... Arms, class T>
std::optional<nonfinite_entry> optimizer<expr::routed<Arms...>, T>::prepare_step() {
  require_live_store(store_alive_); // the arms' stores live in this object: ask about the user's
  std::optional<nonfinite_entry> bad;
  for_parts([&](auto& o) {
    if (!bad)
      bad = o.prepare_step();
  });
  return bad;
}

template <class... Arms, class T>
void optimizer<expr::routed<Arms...>, T>::commit_step() {
  for_parts([](auto& o) { o.commit_step(); });
  ++t_;
}

} // namespace steep::engine
