#pragma once
// The rules steep._C builds by name: steep::compiled's instances (include/steep/compiled/), so
// the module compiles none of their loops.
//
//   auto opt = make_rule<float>("adamw", store, {.threads = 2}, {});         // then opt->set("lr", ...)
//   auto s = make_rule<double>("shampoo", store, {}, {{"every", 10}});        // construction settings
//
// Hyperparameters (lr, beta1, beta2, eps, weight_decay, momentum) are the rule's named ones, set
// per step with set(); `settings` are what a rule fixes when it is built (Shampoo's and SOAP's
// precond::shampoo_settings and soap_settings). An unknown rule or setting is refused by name.

#include "steep/engine/any_optimizer.hpp"
#include "steep/core/param_store.hpp"
#include "steep/engine/options.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace steep::python {

// The names make_rule accepts.
std::vector<std::string> rule_names();

template <class T>
std::unique_ptr<engine::any_optimizer<T>> make_rule(const std::string& rule, param_store<T>& store,
                                         const engine::optimizer_options& opts,
                                         const std::map<std::string, double>& settings);

extern template std::unique_ptr<engine::any_optimizer<float>> make_rule(const std::string&, param_store<float>&,
                                                             const engine::optimizer_options&,
                                                             const std::map<std::string, double>&);
extern template std::unique_ptr<engine::any_optimizer<double>> make_rule(const std::string&, param_store<double>&,
                                                              const engine::optimizer_options&,
                                                              const std::map<std::string, double>&);

} // namespace steep::python
