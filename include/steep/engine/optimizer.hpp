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

// The engine by concern (docs/design.md, "The engine's rooms"): this class is the public surface
// only. What one compiled rule keeps is detail::engine_state (engine/state.hpp); the order of a
// step and its accounting is step_plan (plan.hpp); the passes are engine/passes/, the guard is
// guard.hpp, the slots slot_set.hpp and the named hyperparameters hyper_table.hpp.

#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
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
class optimizer {
  static_assert(expr::expression<Rule>,
                "optimizer<Rule, T>: the rule must be a steep expression (built from grad, "
                "param, stages, ...) or a route(...)");
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "steep optimizers run on float32 or float64 parameters");

public:
  using rule_type = std::remove_cvref_t<Rule>;
  using program_type = expr::program<rule_type>;
  using value_type = T;
  static constexpr std::size_t n_slots = program_type::n_slots;
  static constexpr std::size_t n_matrices = program_type::n_matrices;
  static_assert(program_type::phases_checked);
  static constexpr std::size_t bytes_per_param = program_type::template bytes_per_param<T>;
  // Whether each coordinate's step reads only its own gradient entry: the rules
  // nonfinite_policy::mask can hold back coordinate by coordinate (guard.hpp).
  static constexpr bool coordinatewise = detail::guard_plan<program_type>::coordinatewise;

  [[gnu::cold]] optimizer(Rule rule, param_store<T>& store, optimizer_options opts = {});

private:
  using state_type = detail::engine_state<program_type, T>;
  using plan = detail::step_plan<state_type>;
  using slot_set = detail::slot_set<state_type>;

  [[gnu::cold]] optimizer(typename program_type::compiled rule, param_store<T>& store,
                          const optimizer_options& opts);

public:
  // One optimizer step with the gradients currently in the store. Returns false if the step
  // was skipped (a non-finite gradient under nonfinite_policy::skip); under refuse it throws
  // nonfinite_error instead. Either way nothing was written.
  bool step() { return run_step(*this, s_.policy_, s_.skipped_); }

  // The read-only part of a step: per-step and per-block scalars, the guard, the reduction
  // pass and the matrix phase. Writes only tables and scratch. Returns the first non-finite
  // gradient entry (if the guard is on and found one); then the step must not be committed.
  std::optional<nonfinite_entry> prepare_step();
  // The update pass of a step prepare_step() accepted: stores parameters and slots once.
  void commit_step();

  // Steps skipped for a non-finite gradient (nonfinite_policy::skip), or applied with some
  // coordinates held back (a non-finite gradient under nonfinite_policy::mask, or a new value
  // that would not be finite under any policy but off).
  std::int64_t skipped_steps() const noexcept { return s_.skipped_; }
  // The last step's first held-back coordinate (its cause in `output`, guard.hpp) and, in its
  // count, how many were held back; empty if it held back none.
  std::optional<nonfinite_entry> held_back() const { return s_.held_; }
  nonfinite_policy nonfinite() const noexcept { return s_.policy_; }

  std::int64_t steps() const noexcept { return s_.t_; }
  // The rule's structural hash (slots.hpp, rule_hash): checkpoints refuse another rule's state.
  static std::string rule_id() { return rule_hash<rule_type>(); }
  // Sets the step counter (a checkpoint's load: engine/checkpoint.hpp).
  void restore_steps(std::int64_t t, std::int64_t skipped = 0) {
    if (t < 0 || skipped < 0)
      throw usage_error("a step count cannot be negative");
    s_.t_ = t, s_.skipped_ = skipped;
  }
  // f(slot_bytes) for every slot of every block, in slot order then block order: the raw state.
  template <class F>
  void visit_slots(F&& f) {
    slot_set::visit(s_, f);
  }
  int threads() const noexcept { return s_.exec_.threads(); }
  void set_threads(int n) { s_.exec_ = kernel::executor(s_.checked_threads(n), s_.exec_.serial_below()); }

  // Named hyperparameters (hyper<"lr">(...)): read or change between steps (hyper_table.hpp).
  void set(std::string_view name, double value) { s_.hypers_.set(&s_.roots_, name, value); }
  // Throws, naming it, if `value` is outside the range of hyperparameter `name` (node.hpp, range).
  void check(std::string_view name, double value) const { s_.hypers_.check(name, value); }
  // Every named hyperparameter, once per name, with its value (checkpoints save them).
  std::vector<std::pair<std::string, double>> hyperparameters() const {
    return s_.hypers_.hyperparameters(&s_.roots_);
  }
  // Whether the rule has a named hyperparameter `name`.
  bool has(std::string_view name) const { return s_.hypers_.has(name); }
  double get(std::string_view name) const { return s_.hypers_.get(&s_.roots_, name); }

  static std::vector<slot_info> slots() { return slot_set::info(); }
  // Whether `block` has a state slot named `slot` (every block of a plain rule has them all).
  bool has_slot(const std::string& block, std::string_view slot) const { return slot_set::has_slot(s_, block, slot); }
  // A view of slot `slot` of block `block` (S must be the slot's storage dtype): in the block's
  // shape, of shape (lines) for a per-line slot, or (1) for a per-block slot.
  template <class S = T>
  state_view<S> state(const std::string& block, const std::string& slot) {
    return slot_set::template state<S>(s_, block, slot);
  }

  // A readable account of what the compiler made of the rule (plan.hpp).
  [[gnu::cold]] std::string describe() const { return plan::describe(s_); }

  const kernel::work_list& work() const noexcept { return s_.wl_; }

private:
  state_type s_;
};

// The constructors and the two halves of a step are defined outside the class, so they are not
// inline: a unit that declares optimizer<Rule, T> `extern template` (steep::compiled,
// steep/compiled/instance.hpp) then compiles none of the passes they reach. Defined in the
// class, GCC instantiates them in such a unit anyway, to inline them when optimizing: the
// catalogue unit took 32 s that way against 11 s (docs/compile-time.md, "The compiled catalogue").
template <class Rule, class T>
optimizer<Rule, T>::optimizer(Rule rule, param_store<T>& store, optimizer_options opts)
  : optimizer(program_type::make_roots(rule, [](const auto& hp) { detail::check_hyper(hp, hp.value); }), store,
              opts) {}

template <class Rule, class T>
optimizer<Rule, T>::optimizer(typename program_type::compiled rule, param_store<T>& store,
                              const optimizer_options& opts)
  : s_(std::move(rule), store, opts) {}

template <class Rule, class T>
std::optional<nonfinite_entry> optimizer<Rule, T>::prepare_step() {
  return plan::prepare(s_);
}

template <class Rule, class T>
void optimizer<Rule, T>::commit_step() {
  plan::commit(s_);
}

template <class Rule, class T>
optimizer(Rule, param_store<T>&) -> optimizer<Rule, T>;
template <class Rule, class T>
optimizer(Rule, param_store<T>&, optimizer_options) -> optimizer<Rule, T>;

} // namespace steep::engine
