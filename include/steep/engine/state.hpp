#pragma once
// engine_state<P, T>: everything one compiled rule keeps between steps, room by room. What is the
// same for every rule is part<T> (engine/part.hpp, compiled once per T); the rule's trees, maps
// and slot arenas are its own. The passes (engine/passes/), the slot set and the plan of a step
// are functions over this one object; it implements part<T>'s two halves of a step with them,
// so the optimizer interface (facade.hpp) never sees the rule.
//
//   detail::engine_state<expr::program<Rule>, float> s(program::make_roots(rule, check), store, opts);
//   detail::step_plan<decltype(s)>::prepare(s);   // engine/plan.hpp
//
//   room                           data                                      engine/
//   tables                         blocks, work list, scalar and reduction tables   tables.hpp
//   guard                          policy, chunk flags, held-back notes      guard.hpp
//   lines                          line tables, per-line slots' new values   passes/lines.hpp
//   matrix phase                   tasks, maps, scratch                      passes/matrix_phase.hpp
//   slots                          one arena per slot, per-block new values  slot_set.hpp
//   rule                           the trees and maps, their walks           rule_view.hpp
//   hyperparameters                the flat table of named values            hyper_table.hpp

#include "steep/core/param_store.hpp"
#include "steep/engine/hyper_table.hpp"
#include "steep/engine/options.hpp"
#include "steep/engine/part.hpp"
#include "steep/engine/passes/lines.hpp"
#include "steep/engine/passes/matrix_phase.hpp"
#include "steep/engine/plan.hpp"
#include "steep/engine/rule_view.hpp"
#include "steep/engine/slot_set.hpp"
#include "steep/engine/slots.hpp"
#include "steep/expr/program.hpp"

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

namespace steep::engine::detail {

template <class P, class T>
struct engine_state final
  : part<T>
  , rule_view<P> {
  using program_type = P;
  using value_type = T;
  using typename line_tables<T>::line_task;

  static constexpr program_sizes sizes{ P::n_slots,      P::n_step_scalars, P::n_block_scalars,
                                        P::n_reductions, P::reads_grad,     guard_plan<P>::coordinatewise };

  [[gnu::noinline]] engine_state(typename P::compiled rule, param_store<T>& store,
                                 const optimizer_options& opts)
    : part<T>(store, opts, sizes)
    , rule_view<P>(std::move(rule.roots)) {
    this->hypers_ = hyper_table::of(static_cast<const rule_view<P>&>(*this));
    this->roots_ptr_ = &this->roots_;
    if constexpr (P::n_matrices > 0)
      matrix_phase<engine_state>::init(*this, opts);
    line_pass<engine_state>::init(*this);
    slot_set<engine_state>::lay_out(*this, rule.inits);
    if constexpr (P::n_matrices > 0)
      matrix_phase<engine_state>::register_state(*this);
    if constexpr (P::n_reductions > 0) // (counted by the reduction pass's own walk)
      this->for_each_reduction([&]<std::size_t, std::size_t, std::size_t>(const auto& red) {
        using N = std::remove_cvref_t<decltype(red)>;
        if constexpr (std::is_same_v<typename N::scope, expr::all_blocks>)
          ++this->all_blocks_reductions_;
      });
  }

  // Not inlined: a unit that sees one part type would devirtualize the facade's call and compile
  // the whole step a second time inside it (docs/compile-time.md).
  [[gnu::noinline]] std::optional<nonfinite_entry> prepare() override {
    return step_plan<engine_state>::prepare(*this);
  }
  [[gnu::noinline]] void commit() override { step_plan<engine_state>::commit(*this); }

  std::array<slot_buffer<T>, P::n_matrices> scratch_; // each matrix stage's operand, then its result
  // A stage's operands after its first (inputs(x, y, ...)): P::extra_operand_first.
  std::array<slot_buffer<T>, P::n_extra_operands> extra_scratch_;
  typename slot_tuple<P, T>::type slots_;
};

} // namespace steep::engine::detail
