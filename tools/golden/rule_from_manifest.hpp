#pragma once
// Maps a golden manifest's optimizer group (peer algorithm name + hyperparameters, as in
// tests/data/golden/manifest.json) to a steep rule, bound to a store.
//
//   auto opt = steep::golden::make_group_optimizer<double>("adam", hp, store);  // nullptr-free:
//   // throws steep::golden::unsupported("why") for a group steep cannot run yet.
//
// Every supported (algorithm, hyperparameter) combination is a steep rule from the catalogue;
// nothing here computes an update itself. order::torch runs torch's Adam, AdamW and SGD with
// momentum with the rules in torch's order of operations (torch_order.hpp: what steep.torch runs).

#include <array>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <steep/steep.hpp>
#include <string>

namespace steep::golden {

// Which catalogue rules run torch.optim's Adam, AdamW and SGD with momentum: steep's (adam,
// adamw, adam_eps0, momentum, nesterov) or the ones in torch's order of operations (adam_torch,
// adamw_torch, momentum_torch, nesterov_torch).
enum class order { steep, torch };

struct unsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A manifest (or a group of it) that is malformed: says what and where.
struct manifest_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline double num(const nlohmann::json& hp, const char* key, double fallback) {
  if (!hp.contains(key) || hp.at(key).is_null())
    return fallback;
  return hp.at(key).get<double>();
}
// A whole number in [lo, hi] (a count like ns_steps: a double out of int's range would be UB
// to convert).
inline int whole(const nlohmann::json& hp, const char* key, int fallback, int lo, int hi) {
  const double x = num(hp, key, fallback);
  if (!(x >= lo && x <= hi) || x != static_cast<double>(static_cast<int>(x)))
    throw manifest_error(std::string("hyperparameter '") + key + "' must be a whole number in [" +
                         std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}
inline std::array<double, 3> triple(const nlohmann::json& hp, const char* key) {
  const auto& a = hp.at(key);
  if (!a.is_array() || a.size() != 3)
    throw manifest_error(std::string("hyperparameter '") + key + "' must be a list of 3 numbers");
  return { a.at(0).get<double>(), a.at(1).get<double>(), a.at(2).get<double>() };
}
inline bool flag(const nlohmann::json& hp, const char* key) {
  return hp.contains(key) && !hp.at(key).is_null() && hp.at(key).get<bool>();
}
inline void require_zero(const nlohmann::json& hp, const char* key, const std::string& algo) {
  if (num(hp, key, 0.0) != 0.0)
    throw unsupported(algo + " with " + key + " != 0 is not in steep's catalogue yet");
}

namespace detail {
template <class T>
std::unique_ptr<any_optimizer<T>> make_group_optimizer(const std::string& algo, const nlohmann::json& hp,
                                                       param_store<T>& store, optimizer_options opts,
                                                       order rule_order) {
  using namespace steep::rules;
  if (!hp.is_object())
    throw manifest_error("group '" + algo + "': 'hp' must be an object");
  const double lr = num(hp, "lr", 1e-3);
  auto make = [&](auto rule) {
#ifdef STEEP_COMPILED
    static_assert(compiled::has_instance<decltype(rule), T>,
                  "steep-golden-compiled: this rule is not in steep::compiled (steep/compiled/)");
#endif
    return make_any_optimizer(rule, store, opts);
  };

  if (algo == "sgd") {
    require_zero(hp, "dampening", algo);
    require_zero(hp, "weight_decay", algo);
    const double mu = num(hp, "momentum", 0.0);
    const std::string schedule = hp.value("lr_schedule", std::string("constant"));
    if (schedule != "constant" && schedule != "inv_sqrt")
      throw unsupported("sgd lr_schedule '" + schedule + "'");
    auto with_lr = [&](auto lr_expr) {
      if (mu == 0.0)
        return make(sgd(lr_expr));
      if (rule_order == order::torch)
        return flag(hp, "nesterov") ? make(nesterov_torch(lr_expr, mu)) : make(momentum_torch(lr_expr, mu));
      if (flag(hp, "nesterov"))
        return make(nesterov(lr_expr, mu));
      return make(momentum(lr_expr, mu));
    };
    // inv_sqrt: lr_t = lr / sqrt(t) (torch LambdaLR stepped after each optimizer step).
    return schedule == "inv_sqrt" ? with_lr(inv_power(lr, 0.5)) : with_lr(lr);
  }
  if (algo == "adam") {
    if (flag(hp, "amsgrad"))
      throw unsupported("adam with amsgrad has no golden semantics pinned yet");
    const double b1 = hp.at("betas").at(0).get<double>(), b2 = hp.at("betas").at(1).get<double>();
    const double eps = num(hp, "eps", 1e-8), wd = num(hp, "weight_decay", 0.0);
    if (wd != 0.0 && !flag(hp, "decoupled"))
      throw unsupported("adam with coupled (L2) weight decay");
    if (rule_order == order::torch)
      return wd != 0.0 ? make(adamw_torch(lr, b1, b2, eps, wd)) : make(adam_torch(lr, b1, b2, eps));
    if (wd != 0.0)
      return make(adamw(lr, b1, b2, eps, wd));
    if (eps == 0.0)
      return make(adam_eps0(lr, b1, b2));
    return make(adam(lr, b1, b2, eps));
  }
  if (algo == "rmsprop") {
    require_zero(hp, "momentum", algo);
    require_zero(hp, "weight_decay", algo);
    if (flag(hp, "centered"))
      throw unsupported("centered rmsprop is not in steep's catalogue yet");
    return make(rmsprop(lr, num(hp, "alpha", 0.99), num(hp, "eps", 1e-8)));
  }
  if (algo == "adagrad") {
    require_zero(hp, "weight_decay", algo);
    return make(adagrad(lr, num(hp, "eps", 1e-10), num(hp, "initial_accumulator_value", 0.0),
                        num(hp, "lr_decay", 0.0)));
  }
  if (algo == "signum")
    return make(signum(lr, num(hp, "beta", 0.9)));
  if (algo == "lion")
    return make(lion(lr, num(hp, "b1", 0.9), num(hp, "b2", 0.99), num(hp, "weight_decay", 0.0)));
  if (algo == "ngd_global")
    return make(normalized_gd(lr));
  if (algo == "ngd_per_tensor")
    return make(normalized_gd_per_block(lr));
  if (algo == "optax_adamw") {
    const double b1 = num(hp, "b1", 0.9), b2 = num(hp, "b2", 0.999), eps = num(hp, "eps", 1e-8);
    const double eps_root = num(hp, "eps_root", 0.0), wd = num(hp, "weight_decay", 0.0);
    if (flag(hp, "nesterov"))
      return make(nadamw_optax(lr, b1, b2, eps, eps_root, wd));
    return make(adam_optax(lr, b1, b2, eps, eps_root, wd));
  }
  if (algo == "muon") {
    const double wd = num(hp, "weight_decay", 0.1), mu = num(hp, "momentum", 0.95);
    newton_schulz ns{ .steps = whole(hp, "ns_steps", 5, 1, 1000), .eps = num(hp, "eps", 1e-7) };
    if (hp.contains("ns_coefficients")) {
      const auto [a, b, c] = triple(hp, "ns_coefficients");
      ns.coefficients = { a, b, c };
    }
    const std::string ortho = hp.value("ortho", std::string("newton_schulz"));
    const std::string adjust = hp.contains("adjust_lr_fn") && !hp.at("adjust_lr_fn").is_null()
                                 ? hp.at("adjust_lr_fn").get<std::string>()
                                 : std::string("original");
    if (ortho != "newton_schulz" && ortho != "svd")
      throw unsupported("muon ortho '" + ortho + "'");
    if (adjust != "original" && adjust != "match_rms_adamw")
      throw unsupported("muon adjust_lr_fn '" + adjust + "'");
    const lr_adjust adj = adjust == "original" ? lr_adjust::original : lr_adjust::match_rms_adamw;
    auto with_map = [&](auto map) {
      return flag(hp, "nesterov") ? make(muon_rule<true>(lr, wd, mu, adj, map))
                                  : make(muon_rule<false>(lr, wd, mu, adj, map));
    };
    return ortho == "svd" ? with_map(exact_polar{}) : with_map(ns);
  }
  if (algo == "optax_muon_matrix") {
    if (!flag(hp, "nesterov"))
      throw unsupported("optax muon without nesterov");
    newton_schulz ns{ .steps = whole(hp, "ns_steps", 5, 1, 1000),
                      .eps = num(hp, "eps", 1e-8),
                      .guard = frobenius_guard::additive };
    if (hp.contains("ns_coeffs")) {
      const auto [a, b, c] = triple(hp, "ns_coeffs");
      ns.coefficients = { a, b, c };
    }
    return make(muon_optax(lr, num(hp, "beta", 0.95), num(hp, "weight_decay", 0.0), ns));
  }
  throw unsupported("unknown algorithm '" + algo + "'");
}
} // namespace detail

// The optimizer of one group; a malformed hyperparameter is a manifest_error naming the group.
template <class T>
std::unique_ptr<any_optimizer<T>> make_group_optimizer(const std::string& algo, const nlohmann::json& hp,
                                                       param_store<T>& store, optimizer_options opts = {},
                                                       order rule_order = order::steep) {
  try {
    return detail::make_group_optimizer(algo, hp, store, opts, rule_order);
  } catch (const nlohmann::json::exception& e) {
    throw manifest_error("group '" + algo + "': a hyperparameter is malformed (" + e.what() + ")");
  }
}

} // namespace steep::golden
