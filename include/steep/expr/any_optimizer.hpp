#pragma once
// any_optimizer<T>: an optimizer whose rule is chosen at run time (from a config file, a
// command line, a golden manifest), behind one virtual call per step.
//
//   std::unique_ptr<steep::any_optimizer<double>> opt =
//     steep::make_any_optimizer(steep::rules::adam(1e-3), store);
//   opt->step();
//
// The virtual call happens once per step, outside the loop; the loop itself is the rule's
// fully compiled kernel.

#include "steep/expr/optimizer.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace steep {

template <class T>
class any_optimizer {
public:
  virtual ~any_optimizer() = default;
  virtual void step() = 0;
  virtual std::int64_t steps() const = 0;
  virtual void set(std::string_view name, double value) = 0;
  virtual double get(std::string_view name) const = 0;
  virtual std::vector<slot_info> slots() const = 0;
  virtual std::string describe() const = 0;
  virtual std::size_t bytes_per_param() const = 0;
};

template <class Rule, class T>
class any_optimizer_impl final : public any_optimizer<T> {
public:
  any_optimizer_impl(Rule rule, param_store<T>& store, optimizer_options opts)
    : opt_(rule, store, opts) {}
  void step() override { opt_.step(); }
  std::int64_t steps() const override { return opt_.steps(); }
  void set(std::string_view name, double value) override { opt_.set(name, value); }
  double get(std::string_view name) const override { return opt_.get(name); }
  std::vector<slot_info> slots() const override { return opt_.slots(); }
  std::string describe() const override { return opt_.describe(); }
  std::size_t bytes_per_param() const override { return optimizer<Rule, T>::bytes_per_param; }
  optimizer<Rule, T>& get_optimizer() { return opt_; }

private:
  optimizer<Rule, T> opt_;
};

template <class Rule, class T>
std::unique_ptr<any_optimizer<T>> make_any_optimizer(Rule rule, param_store<T>& store,
                                                     optimizer_options opts = {}) {
  return std::make_unique<any_optimizer_impl<std::remove_cvref_t<Rule>, T>>(std::move(rule), store, opts);
}

} // namespace steep
