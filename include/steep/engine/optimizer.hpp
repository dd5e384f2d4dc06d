#pragma once
// optimizer<Rule, T>: a compiled rule bound to a param_store — its state slots, tables and passes.
//
//   steep::param_store<float> store({{"W", {64, 32}}, {"b", {64}}});
//   steep::optimizer opt(steep::rules::adam(1e-3), store, {.threads = 2});
//   for (...) { fill store.grad(...); opt.step(); }
//   opt.state("W", "exp_avg");     // a view of one block's slot (core/tensor_view.hpp)
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
// optimizer_facade<T>'s (facade.hpp), written once for plain, routed and type-erased optimizers;
// what one compiled rule keeps is detail::engine_state (state.hpp), a part<T> (part.hpp); the
// order of a step and its accounting is step_plan (plan.hpp); the passes are engine/passes/, the
// guard guard.hpp.

#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/engine/facade.hpp"
#include "steep/engine/options.hpp"
#include "steep/engine/plan.hpp"
#include "steep/engine/slot_set.hpp"
#include "steep/engine/slots.hpp"
#include "steep/engine/state.hpp"
#include "steep/expr/degree.hpp"
#include "steep/expr/program.hpp"
#include "steep/kernel/work_list.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace steep::engine {

// (A routed rule, route.hpp, has a specialization of its own.)
template <class Rule, class T>
class optimizer : public optimizer_facade<T> {
  static_assert(expr::expression<Rule>,
                "optimizer<Rule, T>: the rule must be a steep expression (built from grad, "
                "param, stages, ...) or a route(...)");
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "steep optimizers run on float32 or float64 parameters");

public:
  using rule_type = std::remove_cvref_t<Rule>;
  using program_type = expr::program<rule_type>;
  static constexpr std::size_t n_slots = program_type::n_slots;
  static constexpr std::size_t n_matrices = program_type::n_matrices;
  // Bytes the update pass moves per parameter (known from the type alone, as the rule's id is).
  static constexpr std::size_t bytes_per_param() { return program_type::template bytes_per_param<T>; }
  static std::string rule_id() { return rule_hash<rule_type>(); }
  // The update's degree in the gradient (expr/degree.hpp; NaN: not homogeneous).
  static constexpr double gradient_degree() { return expr::gradient_degree<rule_type>.or_nan(); }
  // Whether each coordinate's step reads only its own gradient entry: the rules
  // nonfinite_policy::mask can hold back coordinate by coordinate (guard.hpp).
  static constexpr bool coordinatewise = detail::guard_plan<program_type>::coordinatewise;
  // A readable account of what the compiler made of the rule (plan.hpp).
  std::string describe() const { return describe_parts(*this); }
  static std::string describe_parts(const optimizer_facade<T>& f) { return describe_part(*f.parts_[0]); }
  static std::string describe_part(const detail::part<T>& p) {
    return detail::step_plan<state_type>::describe(static_cast<const state_type&>(p));
  }

  [[gnu::cold]] optimizer(Rule rule, param_store<T>& store, optimizer_options opts = {});

  const kernel::work_list& work() const noexcept { return this->parts_[0]->wl_; }

private:
  using state_type = detail::engine_state<program_type, T>;

  [[gnu::cold]] optimizer(typename program_type::compiled rule, param_store<T>& store,
                          const optimizer_options& opts);
};

// The constructors are defined outside the class, so they are not inline: a unit that declares
// optimizer<Rule, T> `extern template` (steep::compiled, steep/compiled/instance.hpp) then
// compiles none of the passes they reach: the rule's part (and its virtual step) is built in
// them alone. Defined in the class, GCC instantiates them in such a unit anyway, to inline them
// when optimizing: the catalogue unit took 32 s that way against 11 s (docs/compile-time.md, "The
// compiled catalogue").
template <class Rule, class T>
optimizer<Rule, T>::optimizer(Rule rule, param_store<T>& store, optimizer_options opts)
  : optimizer(program_type::make_roots(rule, [](const auto& hp) { detail::check_hyper(hp, hp.value); }),
              store, opts) {}

template <class Rule, class T>
optimizer<Rule, T>::optimizer(typename program_type::compiled rule, param_store<T>& store,
                              const optimizer_options& opts) {
  // (A unique_ptr of the part, not make_unique<state_type>: converting a unique_ptr of each rule's
  // state to one of part<T> instantiated a unique_ptr per rule, 3.7 MB of the compiler's memory
  // each, docs/compile-time.md.)
  this->adopt(std::unique_ptr<detail::part<T>>(new state_type(std::move(rule), store, opts)),
              detail::slot_set<state_type>::metas);
  this->finish(store, opts, typeid(rule_type), bytes_per_param(), gradient_degree());
}

template <class Rule, class T>
optimizer(Rule, param_store<T>&) -> optimizer<Rule, T>;
template <class Rule, class T>
optimizer(Rule, param_store<T>&, optimizer_options) -> optimizer<Rule, T>;

} // namespace steep::engine
