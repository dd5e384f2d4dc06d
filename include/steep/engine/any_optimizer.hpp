#pragma once
// any_optimizer<T>: an optimizer whose rule is chosen at run time (from a config file, a
// command line, a golden manifest), behind one virtual call per step.
//
//   std::unique_ptr<steep::any_optimizer<double>> opt =
//     steep::make_any_optimizer(steep::rules::adam(1e-3), store);
//   opt->step();
//   opt->state("W", "exp_avg");
//
// The virtual call happens once per step, outside the loop; the loop itself is the rule's
// fully compiled kernel. It offers the whole optimizer_interface (interface.hpp).

#include "steep/engine/interface.hpp"
#include "steep/engine/optimizer.hpp"
#include "steep/engine/routed.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace steep::engine {

template <class T>
class any_optimizer {
public:
  using value_type = T;
  virtual ~any_optimizer() = default;
  virtual bool step() = 0;
  virtual std::optional<nonfinite_entry> prepare_step() = 0;
  virtual void commit_step() = 0;
  virtual std::int64_t steps() const = 0;
  virtual void restore_steps(std::int64_t t, std::int64_t skipped = 0) = 0;
  virtual std::string rule_id() const = 0;
  virtual void visit_slots(const std::function<void(const slot_bytes&)>& f) = 0;
  virtual std::int64_t skipped_steps() const = 0;
  virtual nonfinite_policy nonfinite() const = 0;
  virtual std::optional<nonfinite_entry> held_back() const = 0;
  virtual void set(std::string_view name, double value) = 0;
  virtual double get(std::string_view name) const = 0;
  virtual bool has(std::string_view name) const = 0;
  virtual void check(std::string_view name, double value) const = 0;
  virtual std::vector<std::pair<std::string, double>> hyperparameters() const = 0;
  virtual std::vector<slot_info> slots() const = 0;
  virtual bool has_slot(const std::string& block, std::string_view slot) const = 0;
  virtual state_view<T> state(const std::string& block, const std::string& slot) = 0;
  virtual int threads() const = 0;
  virtual void set_threads(int n) = 0;
  virtual std::string describe() const = 0;
  virtual std::size_t bytes_per_param() const = 0;
};

template <class Rule, class T>
class any_optimizer_impl final : public any_optimizer<T> {
public:
  any_optimizer_impl(Rule rule, param_store<T>& store, optimizer_options opts)
    : opt_(rule, store, opts) {}
  bool step() override { return opt_.step(); }
  std::optional<nonfinite_entry> prepare_step() override { return opt_.prepare_step(); }
  void commit_step() override { opt_.commit_step(); }
  std::int64_t steps() const override { return opt_.steps(); }
  void restore_steps(std::int64_t t, std::int64_t skipped = 0) override { opt_.restore_steps(t, skipped); }
  std::string rule_id() const override { return opt_.rule_id(); }
  void visit_slots(const std::function<void(const slot_bytes&)>& f) override { opt_.visit_slots(f); }
  std::int64_t skipped_steps() const override { return opt_.skipped_steps(); }
  nonfinite_policy nonfinite() const override { return opt_.nonfinite(); }
  std::optional<nonfinite_entry> held_back() const override { return opt_.held_back(); }
  void set(std::string_view name, double value) override { opt_.set(name, value); }
  double get(std::string_view name) const override { return opt_.get(name); }
  bool has(std::string_view name) const override { return opt_.has(name); }
  void check(std::string_view name, double value) const override { opt_.check(name, value); }
  std::vector<std::pair<std::string, double>> hyperparameters() const override {
    return opt_.hyperparameters();
  }
  std::vector<slot_info> slots() const override { return opt_.slots(); }
  bool has_slot(const std::string& block, std::string_view slot) const override {
    return opt_.has_slot(block, slot);
  }
  state_view<T> state(const std::string& block, const std::string& slot) override {
    return opt_.template state<T>(block, slot);
  }
  int threads() const override { return opt_.threads(); }
  void set_threads(int n) override { opt_.set_threads(n); }
  std::string describe() const override { return opt_.describe(); }
  std::size_t bytes_per_param() const override { return optimizer<Rule, T>::bytes_per_param(); }
  optimizer<Rule, T>& get_optimizer() { return opt_; }

private:
  optimizer<Rule, T> opt_;
};

template <class Rule, class T>
std::unique_ptr<any_optimizer<T>> make_any_optimizer(Rule rule, param_store<T>& store,
                                                     optimizer_options opts = {}) {
  return std::make_unique<any_optimizer_impl<std::remove_cvref_t<Rule>, T>>(std::move(rule), store, opts);
}

} // namespace steep::engine
