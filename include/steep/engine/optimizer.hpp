#pragma once
// optimizer<Rule, T>: a compiled rule bound to a param_store — its state slots, tables and passes.
//
//   steep::param_store<float> store({{"W", {64, 32}}, {"b", {64}}});
//   steep::optimizer opt(steep::rules::adam(1e-3), store, {.threads = 2});
//   for (...) { fill store.grad(...); opt.step(); }
//   opt.state("W", "exp_avg");     // xtensor view of a slot of one block
//   opt.set("lr", 1e-4);           // a named hyperparameter (hyper<"lr">), between steps
//
// One step is a read-only part (prepare_step) and the update pass (commit_step):
//   [guard]           read-only: a NaN or Inf in the gradient refuses the step (guard.hpp); fused
//                     into the first read-only pass below when the rule has one;
//   [reduction pass]  read-only: every reduction of the rule at once (only if it has any);
//   [matrix phase]    read-only pre-pass writing each matrix stage's operand to scratch, then
//                     the stage's map per block (expr/matrix.hpp);
//   update pass       per element: load grad, param and each slot once; compute the new slot
//                     values, then the change of the parameter; store param and slots once.
// Per-step scalars (learning rate, 1/(1 - beta^t), ...) are computed once per step in double
// before the passes, per-block scalars (a block's norm) once per block between them. Nothing
// is written before the update pass, so a refused step leaves every parameter and slot bitwise
// as it was, and a routed rule can prepare all its arms before any of them commits.
//
// State lives in one 64-byte aligned arena per slot, with the blocks at the same positions as
// in the parameter arena. The store must outlive the optimizer; its layout cannot change.

// The engine by concern (docs/design.md, "The engine's rooms"): this class is how a plain rule is
// built and nothing else. The interface (step, state, slots, hyperparameters, describe, ...) is
// optimizer_facade's (facade.hpp), written once for plain and routed optimizers; what one
// compiled rule keeps is detail::engine_state (state.hpp); the order of a step and its accounting
// is step_plan (plan.hpp); the passes are engine/passes/, the guard guard.hpp.

#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/engine/facade.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/options.hpp"
#include "steep/engine/plan.hpp"
#include "steep/engine/slot_set.hpp"
#include "steep/engine/slots.hpp"
#include "steep/engine/state.hpp"
#include "steep/expr/program.hpp"
#include "steep/kernel/work_list.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace steep::engine {

// (A routed rule, route.hpp, has a specialization of its own.)
template <class Rule, class T>
class optimizer : public optimizer_facade<optimizer<Rule, T>, T> {
  static_assert(expr::expression<Rule>,
                "optimizer<Rule, T>: the rule must be a steep expression (built from grad, "
                "param, stages, ...) or a route(...)");
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "steep optimizers run on float32 or float64 parameters");
  using facade = optimizer_facade<optimizer<Rule, T>, T>;
  friend facade;
  template <class, class>
  friend class optimizer; // a route's facade walks its arms' states

public:
  using rule_type = std::remove_cvref_t<Rule>;
  using program_type = expr::program<rule_type>;
  static constexpr std::size_t n_slots = program_type::n_slots;
  static constexpr std::size_t n_matrices = program_type::n_matrices;
  static_assert(program_type::phases_checked);
  // Bytes the update pass moves per parameter (a function, as on every optimizer_interface).
  static constexpr std::size_t bytes_per_param() { return program_type::template bytes_per_param<T>; }
  // Whether each coordinate's step reads only its own gradient entry: the rules
  // nonfinite_policy::mask can hold back coordinate by coordinate (guard.hpp).
  static constexpr bool coordinatewise = detail::guard_plan<program_type>::coordinatewise;

  [[gnu::cold]] optimizer(Rule rule, param_store<T>& store, optimizer_options opts = {});

  // The read-only part of a step: per-step and per-block scalars, the guard, the reduction
  // passes and the matrix phase (plan.hpp). Writes only tables and scratch. Returns the first
  // non-finite gradient entry (if the guard is on and found one); then the step must not be
  // committed.
  std::optional<nonfinite_entry> prepare_step();
  // The update pass of a step prepare_step() accepted: stores parameters and slots once.
  void commit_step();

  const kernel::work_list& work() const noexcept { return s_.wl_; }

private:
  using state_type = detail::engine_state<program_type, T>;

  [[gnu::cold]] optimizer(typename program_type::compiled rule, param_store<T>& store,
                          const optimizer_options& opts);

  // What the facade walks: one part, this rule's state.
  static constexpr std::size_t n_parts = 1;
  static constexpr bool is_route = false;
  template <std::size_t>
  using part_t = state_type;
  template <class F>
  void visit_parts(F&& f) {
    f(std::size_t{ 0 }, &s_);
  }
  template <class F>
  void visit_parts(F&& f) const {
    f(std::size_t{ 0 }, &s_);
  }

  state_type s_;
};

// The constructors and the two halves of a step are defined outside the class, so they are not
// inline: a unit that declares optimizer<Rule, T> `extern template` (steep::compiled,
// steep/compiled/instance.hpp) then compiles none of the passes they reach. Defined in the
// class, GCC instantiates them in such a unit anyway, to inline them when optimizing: the
// catalogue unit took 32 s that way against 11 s (docs/compile-time.md, "The compiled catalogue").
template <class Rule, class T>
optimizer<Rule, T>::optimizer(Rule rule, param_store<T>& store, optimizer_options opts)
  : optimizer(program_type::make_roots(rule, [](const auto& hp) { detail::check_hyper(hp, hp.value); }),
              store, opts) {}

template <class Rule, class T>
optimizer<Rule, T>::optimizer(typename program_type::compiled rule, param_store<T>& store,
                              const optimizer_options& opts)
  : s_(std::move(rule), store, opts) {
  for (const auto& b : s_.blocks_)
    this->owner_.emplace_back(b.name, 0);
  this->policy_ = opts.nonfinite;
  this->store_alive_ = store.lifetime();
  this->threads_ = s_.exec_.threads();
}

template <class Rule, class T>
std::optional<nonfinite_entry> optimizer<Rule, T>::prepare_step() {
  return this->prepare_parts();
}

template <class Rule, class T>
void optimizer<Rule, T>::commit_step() {
  this->commit_parts();
}

template <class Rule, class T>
optimizer(Rule, param_store<T>&) -> optimizer<Rule, T>;
template <class Rule, class T>
optimizer(Rule, param_store<T>&, optimizer_options) -> optimizer<Rule, T>;

} // namespace steep::engine
