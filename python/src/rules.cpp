// The rules steep._C builds by name (rules.hpp).
#include "rules.hpp"

#include "steep/compiled/adam.hpp"
#include "steep/compiled/adam_mini.hpp"
#include "steep/compiled/adamw.hpp"
#include "steep/compiled/lion.hpp"
#include "steep/compiled/muon.hpp"
#include "steep/compiled/normuon.hpp"
#include "steep/compiled/sgd.hpp"
#include "steep/compiled/shampoo.hpp"
#include "steep/compiled/soap.hpp"
#include "steep/compiled/torch_order.hpp"

#include <functional>
#include <utility>

namespace steep::python {

namespace {

// Reads the construction settings a rule takes; refuses any other name.
class settings_reader {
public:
  settings_reader(const std::string& rule, const std::map<std::string, double>& s)
    : rule_(rule)
    , s_(s) {}
  template <class V>
  void read(const char* name, V& out) {
    if (auto it = s_.find(name); it != s_.end()) {
      out = static_cast<V>(it->second);
      ++used_;
    }
  }
  void done() const {
    if (used_ == s_.size())
      return;
    std::string unknown;
    for (const auto& [k, v] : s_)
      unknown += (unknown.empty() ? "'" : ", '") + k + "'";
    throw usage_error("rule '" + rule_ + "' takes no construction setting among " + unknown +
                      " (its hyperparameters are set per step; python/README.md lists its settings)");
  }

private:
  const std::string& rule_;
  const std::map<std::string, double>& s_;
  std::size_t used_ = 0;
};

template <class T, class Rule>
std::unique_ptr<engine::any_optimizer<T>> build(Rule rule, param_store<T>& store,
                                                const engine::optimizer_options& opts) {
  static_assert(compiled::has_instance<Rule, T>, "steep._C builds only steep::compiled's instances");
  return std::make_unique<engine::any_optimizer<T>>(engine::optimizer<Rule, T>(std::move(rule), store, opts));
}

} // namespace

std::vector<std::string> rule_names() {
  return { "sgd",       "momentum", "nesterov",   "momentum_torch", "nesterov_torch",
           "adam",      "adamw",    "adam_torch", "adamw_torch",    "lion",
           "adam_mini", "muon",     "normuon",    "shampoo",        "soap" };
}

template <class T>
std::unique_ptr<engine::any_optimizer<T>> make_rule(const std::string& rule, param_store<T>& store,
                                                    const engine::optimizer_options& opts,
                                                    const std::map<std::string, double>& settings) {
  namespace r = steep::rules;
  settings_reader s(rule, settings);
  std::unique_ptr<engine::any_optimizer<T>> out;
  if (rule == "shampoo") {
    precond::shampoo_settings ps;
    s.read("beta2", ps.beta2), s.read("eps", ps.eps), s.read("left", ps.left), s.read("right", ps.right);
    s.read("one_sided", ps.one_sided), s.read("every", ps.every), s.read("relative_eps", ps.relative_eps);
    s.done();
    return build<T>(r::shampoo(1e-3, ps), store, opts);
  }
  if (rule == "soap") {
    precond::soap_settings ps;
    s.read("beta1", ps.beta1), s.read("beta2", ps.beta2), s.read("shampoo_beta", ps.shampoo_beta);
    s.read("eps", ps.eps), s.read("precondition_frequency", ps.precondition_frequency);
    s.read("max_precond_dim", ps.max_precond_dim), s.read("round_trip_every_step", ps.round_trip_every_step);
    s.done();
    return build<T>(r::soap(1e-3, ps), store, opts);
  }
  s.done();
  if (rule == "sgd")
    return build<T>(r::sgd(0.1), store, opts);
  if (rule == "momentum")
    return build<T>(r::momentum(0.1, 0.9), store, opts);
  if (rule == "nesterov")
    return build<T>(r::nesterov(0.1, 0.9), store, opts);
  if (rule == "momentum_torch")
    return build<T>(r::momentum_torch(0.1, 0.9), store, opts);
  if (rule == "nesterov_torch")
    return build<T>(r::nesterov_torch(0.1, 0.9), store, opts);
  if (rule == "adam")
    return build<T>(r::adam(1e-3), store, opts);
  if (rule == "adamw")
    return build<T>(r::adamw(1e-3), store, opts);
  if (rule == "adam_torch")
    return build<T>(r::adam_torch(1e-3), store, opts);
  if (rule == "adamw_torch")
    return build<T>(r::adamw_torch(1e-3), store, opts);
  if (rule == "lion")
    return build<T>(r::lion(1e-4), store, opts);
  if (rule == "adam_mini")
    return build<T>(r::adam_mini(1e-3), store, opts);
  if (rule == "muon")
    return build<T>(r::muon(0.02), store, opts);
  if (rule == "normuon")
    return build<T>(r::normuon(0.02), store, opts);
  std::string known;
  for (const auto& n : rule_names())
    known += (known.empty() ? "" : ", ") + n;
  throw usage_error("no rule named '" + rule + "' in steep._C (it has " + known + ")");
}

template std::unique_ptr<engine::any_optimizer<float>> make_rule(const std::string&, param_store<float>&,
                                                                 const engine::optimizer_options&,
                                                                 const std::map<std::string, double>&);
template std::unique_ptr<engine::any_optimizer<double>> make_rule(const std::string&, param_store<double>&,
                                                                  const engine::optimizer_options&,
                                                                  const std::map<std::string, double>&);

} // namespace steep::python
