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
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
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
// Arm `arm` caught a block its rule's matrix stage cannot take: the same refusal, saying which
// arm caught the block and what to change in the route.
[[noreturn, gnu::cold]] inline void refuse_arm_block(std::size_t arm, const matrix_block_error& e,
                                                     bool runtime) {
  const std::string k = std::to_string(arm);
  if (e.role.empty())
    throw error(
      e.subject(),
      "arm " + k +
        " of the route (arms count from 0) caught this block, and that arm's rule applies a "
        "matrix map (e.g. Muon's Newton-Schulz) to every block it gets, but this block is not a matrix. " +
        (runtime ? "Narrow arm " + k +
                     "'s selector so it leaves this block out (a name pattern that "
                     "matches only the matrices, or on<block_role::hidden_matrix>)"
                 : "Give arm " + k + " only matrix roles") +
        ", or put an arm with an elementwise rule before it that selects this block");
  throw error(e.subject(),
              "arm " + k + " of the route (arms count from 0) caught this block, whose role (" + e.role +
                ") its matrix map does not take by default (Muon is meant for hidden matrices): add "
                ".explicitly() to arm " +
                k + "'s selector to opt in, or route the block to another arm before it");
}
} // namespace detail

template <class... Arms, class T>
class optimizer<expr::routed<Arms...>, T> : public optimizer_facade<T> {
  using routed_type = expr::routed<Arms...>;
  template <std::size_t I>
  using arm_optimizer = optimizer<typename routed_type::template arm_t<I>::rule_type, T>;
  static constexpr auto arms_seq = std::index_sequence_for<Arms...>{};

public:
  using rule_type = routed_type;
  // The largest of the arms' bytes per parameter (update pass).
  static constexpr std::size_t bytes_per_param() {
    return std::max({ optimizer<typename Arms::rule_type, T>::bytes_per_param()... });
  }
  static std::string rule_id() { return rule_hash<rule_type>(); }
  // The arms' common degree in the gradient (expr/degree.hpp), NaN where they differ.
  static constexpr double gradient_degree() {
    constexpr double d[] = { optimizer<typename Arms::rule_type, T>::gradient_degree()... };
    for (double x : d)
      if (!(x == d[0]))
        return std::numeric_limits<double>::quiet_NaN();
    return d[0];
  }
  // Which arm runs which blocks, and what each arm compiled to (plan.hpp).
  std::string describe() const { return describe_parts(*this); }
  static std::string describe_parts(const optimizer_facade<T>& f) {
    std::vector<std::string> arms;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (arms.push_back(f.parts_[I] ? arm_optimizer<I>::describe_part(*f.parts_[I]) : std::string()), ...);
    }
    (arms_seq);
    return f.describe_route(arms);
  }

  [[gnu::cold]] optimizer(routed_type rule, param_store<T>& store, optimizer_options opts = {});

  // The first arm that selects the block (sizeof...(Arms) if none does): where the route sends it
  // (the sharded optimizer, dist/sharded_optimizer.hpp, asks before it cuts the store).
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

private:
  // Arm I over its blocks: its own optimizer (from steep::compiled where the library holds the
  // arm's rule), whose part this route then keeps.
  template <std::size_t I, class Rule>
  void build(const Rule& rule, std::vector<block_spec<T>> specs, optimizer_options opts) {
    if (specs.empty())
      return;
    using sel = typename routed_type::template arm_t<I>::selector;
    opts.matrix_roles =
      detail::arm_matrix_roles(routed_type::masks[I], expr::runtime_selector<sel>, sel::is_explicit);
    auto& st = this->arm_stores_[I];
    st = std::make_unique<param_store<T>>(std::move(specs));
    try {
      arm_optimizer<I> arm(rule, *st, opts);
      this->parts_[I] = std::move(arm.parts_[0]);
    } catch (const detail::matrix_block_error& e) {
      detail::refuse_arm_block(I, e, expr::runtime_selector<sel>);
    }
    this->threads_ = this->parts_[I]->exec_.threads();
  }
};

// Outside the class, as a plain rule's (optimizer.hpp): not inline, so an `extern template`
// route compiles none of its arms' passes.
template <class... Arms, class T>
optimizer<expr::routed<Arms...>, T>::optimizer(routed_type rule, param_store<T>& store,
                                               optimizer_options opts) {
  if (!opts.arms.empty() && opts.arms.size() != store.size())
    throw usage_error("optimizer_options::arms: " + std::to_string(opts.arms.size()) +
                      " arms for a store of " + std::to_string(store.size()) + " blocks; nothing was built");
  std::vector<std::size_t> arm_of(store.size());
  for (std::size_t index = 0; index < store.size(); ++index) {
    const auto& b = store.block_at(index);
    arm_of[index] = opts.arms.empty()
                      ? first_arm(rule, expr::block_info{ b.name, b.shape, b.role, b.layout, index })
                      : opts.arms[index];
    if (arm_of[index] > sizeof...(Arms))
      throw error(b.name, "optimizer_options::arms gives it arm " + std::to_string(arm_of[index]) +
                            ", and the route has " + std::to_string(sizeof...(Arms)) + " (counted from 0)");
  }
  auto specs = detail::split_by_arm(store, arm_of, sizeof...(Arms), this->owner_);
  this->is_route_ = true;
  this->parts_.resize(sizeof...(Arms));
  this->arm_stores_.resize(sizeof...(Arms));
  this->threads_ = opts.threads;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (build<I>(std::get<I>(rule.arms).rule, std::move(specs[I]), opts), ...);
  }
  (arms_seq);
  (this->add_slots(detail::slot_set<detail::engine_state<expr::program<typename Arms::rule_type>, T>>::metas),
   ...);
  this->finish(store, opts, typeid(rule_type), bytes_per_param(), gradient_degree());
}

} // namespace steep::engine
