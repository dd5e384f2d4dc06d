#pragma once
// any_optimizer<T>: an optimizer whose rule is chosen at run time (from a config file, a
// command line, a golden manifest). It is optimizer_facade<T> (facade.hpp), the class every
// optimizer's interface is written in, taken from a typed optimizer by a move: nothing of the
// rule is left in its type, and nothing is forwarded.
//
//   steep::any_optimizer<double> opt = steep::optimizer(steep::rules::adam(1e-3), store);
//   auto p = steep::make_any_optimizer(steep::rules::muon(0.02), store);   // a unique_ptr
//   opt.step();  opt.state("W", "exp_avg");  opt.describe();
//
// A step is one virtual call per part (a route: per arm), outside the loops; the loops are the
// rule's fully compiled passes (engine/state.hpp).

#include "steep/engine/facade.hpp"
#include "steep/engine/interface.hpp"
#include "steep/engine/optimizer.hpp"
#include "steep/engine/options.hpp"
#include "steep/engine/routed.hpp"

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace steep::engine {

template <class T>
class any_optimizer : public optimizer_facade<T> {
public:
  // Takes a typed optimizer's state: `opt` is left empty.
  template <class Rule>
  any_optimizer(optimizer<Rule, T>&& opt) // NOLINT: implicit, as a move of the same object
    : optimizer_facade<T>(std::move(opt))
    , describe_(&optimizer<Rule, T>::describe_parts) {}
  // Builds the optimizer of `rule` over `store` (from steep::compiled where the library holds it).
  template <class Rule>
  any_optimizer(Rule rule, param_store<T>& store, optimizer_options opts = {})
    : any_optimizer(optimizer<std::remove_cvref_t<Rule>, T>(std::move(rule), store, opts)) {}

  // A readable account of what the compiler made of the rule (plan.hpp).
  std::string describe() const { return describe_(*this); }

private:
  std::string (*describe_)(const optimizer_facade<T>&); // the typed optimizer's
};

template <class Rule, class T>
any_optimizer(optimizer<Rule, T>&&) -> any_optimizer<T>;
template <class Rule, class T>
any_optimizer(Rule, param_store<T>&) -> any_optimizer<T>;
template <class Rule, class T>
any_optimizer(Rule, param_store<T>&, optimizer_options) -> any_optimizer<T>;

template <class Rule, class T>
std::unique_ptr<any_optimizer<T>> make_any_optimizer(Rule rule, param_store<T>& store,
                                                     optimizer_options opts = {}) {
  return std::make_unique<any_optimizer<T>>(
    optimizer<std::remove_cvref_t<Rule>, T>(std::move(rule), store, opts));
}

} // namespace steep::engine
