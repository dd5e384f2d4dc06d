#pragma once
// optimizer_interface: what every steep optimizer offers — plain, routed (route(...)) and
// type-erased (any_optimizer) alike, so code that drives training, checkpoints or analysis is
// written once against this concept.
//
//   template <steep::optimizer_interface Opt>
//   void train(Opt& opt) { while (...) { fill gradients; if (!opt.step()) log("skipped"); } }
//
//   step()            one step: applied, held_back or refused (step_result, guard.hpp)
//   prepare_step()    its read-only part: the first non-finite gradient entry, if any
//   commit_step()     its update pass (only after prepare_step() found nothing)
//   held_back()       what the last step held back (masked gradients, values that overflowed)
//   steps(), skipped_steps(), restore_steps(t)   (checkpoints: engine/checkpoint.hpp)
//   visit_slots(f)    f(slot_bytes) for every slot of every block: the raw state
//   set/get/has(name) named hyperparameters; check(name, value) throws if out of range;
//                     hyperparameters(): every name with its value
//   slots()           slot names and dtypes; has_slot(block, slot); state(block, slot): a view
//   threads(), set_threads(n), describe()
//   bytes_per_param() the bytes the update pass moves per parameter (a route: its largest arm's)
//   gradient_degree() the update's degree in the gradient (0: scale invariant; expr/degree.hpp)
//
// It is implemented once, in optimizer_facade<T> (facade.hpp), over the parts the plain and
// routed optimizers build; any_optimizer<T> is that class with the rule's type gone.

#include "steep/core/tensor_view.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/slots.hpp"

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace steep::engine {

// The largest step count an optimizer keeps: 2^53, so every count is exact in the double that
// bias corrections and schedules read (at one step per nanosecond, 104 days). restore_steps()
// and checkpoints refuse more, and a step that would pass it is refused.
inline constexpr std::int64_t max_steps = std::int64_t{ 1 } << 53;

template <class O>
concept optimizer_interface = requires(O& o, const O& c, std::string_view name, const std::string& s) {
  typename O::value_type;
  { o.step() } -> std::same_as<step_result>;
  { o.prepare_step() } -> std::same_as<std::optional<nonfinite_entry>>;
  o.commit_step();
  { c.steps() } -> std::same_as<std::int64_t>;
  o.restore_steps(std::int64_t{ 0 });
  { c.rule_id() } -> std::same_as<std::string>;
  o.visit_slots([](const slot_bytes&) {});
  { c.skipped_steps() } -> std::same_as<std::int64_t>;
  { c.nonfinite() } -> std::same_as<nonfinite_policy>;
  { c.held_back() } -> std::same_as<std::optional<nonfinite_entry>>;
  o.set(name, 1.0);
  { c.get(name) } -> std::same_as<double>;
  { c.has(name) } -> std::same_as<bool>;
  c.check(name, 1.0);
  { c.hyperparameters() } -> std::same_as<std::vector<std::pair<std::string, double>>>;
  { c.slots() } -> std::same_as<std::vector<slot_info>>;
  { c.has_slot(s, name) } -> std::same_as<bool>;
  { o.state(s, s) } -> std::same_as<tensor_view<typename O::value_type>>;
  { c.threads() } -> std::same_as<int>;
  o.set_threads(1);
  { c.describe() } -> std::same_as<std::string>;
  { c.bytes_per_param() } -> std::same_as<std::size_t>;
  { c.gradient_degree() } -> std::same_as<double>;
};

} // namespace steep::engine
