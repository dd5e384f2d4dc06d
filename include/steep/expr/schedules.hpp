#pragma once
// Learning-rate schedules: per-step scalars, evaluated once per step on the host and never in
// the loop. Any of them stands wherever a rule takes a learning rate.
//
//   rules::sgd(constant_lr(0.1))
//   rules::momentum(inv_power(0.1, 0.5), 0.9)      // eta_t = eta0 t^-a (the paper's schedule, §3.5)
//   rules::adam(cosine(1e-3, 1000, 1e-5))           // cosine from eta0 to eta_min over T steps
//   rules::adam(warmup_linear(1e-3, 100, 1000))     // linear warm-up, then linear decay to 0
//   rules::adam(wsd(1e-3, 100, 800, 1000))          // warm-up, stable, linear decay (WSD)
//   schedule([](std::int64_t t) { return 1.0 / t; }) // any callable of the 1-based step
//
// t is 1-based: the first step uses eta_1, as torch's LambdaLR stepped after each optimizer step.

#include "steep/core/error.hpp"
#include "steep/expr/ops.hpp"

#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>

namespace steep::expr {

template <class F>
struct schedule_node : step_leaf {
  [[no_unique_address]] F f;
  double hoist_value(const host_ctx& h) const { return f(h.t); }
  bool operator==(const schedule_node& o) const {
    if constexpr (requires { o.f == o.f; })
      return f == o.f;
    else
      return true;
  }
};

template <class F>
constexpr auto schedule(F f) {
  return schedule_node<F>{ {}, f };
}

namespace sched {
struct constant_fn {
  double eta;
  double operator()(std::int64_t) const { return eta; }
  bool operator==(const constant_fn&) const = default;
};
struct inv_power_fn {
  double eta0, a;
  double operator()(std::int64_t t) const { return eta0 * std::pow(static_cast<double>(t), -a); }
  bool operator==(const inv_power_fn&) const = default;
};
struct cosine_fn {
  double eta0, total, eta_min;
  double operator()(std::int64_t t) const {
    const double x = std::min(static_cast<double>(t - 1), total) / total;
    return eta_min + 0.5 * (eta0 - eta_min) * (1.0 + std::cos(std::numbers::pi * x));
  }
  bool operator==(const cosine_fn&) const = default;
};
// Warm-up (linear from eta0/warmup to eta0 over `warmup` steps), hold until `decay_start`, then
// linear decay to 0 at `total`. warmup_linear is wsd with decay_start = warmup.
struct wsd_fn {
  double eta0, warmup, decay_start, total;
  double operator()(std::int64_t t) const {
    const double s = static_cast<double>(t);
    if (s <= warmup)
      return eta0 * s / warmup;
    if (s <= decay_start)
      return eta0;
    if (s >= total)
      return 0.0;
    return eta0 * (total - s) / (total - decay_start);
  }
  bool operator==(const wsd_fn&) const = default;
};
} // namespace sched

namespace sched {
// A schedule's rate must be finite and >= 0, as a learning rate's (range::nonnegative): a NaN
// one would hold back every coordinate of every step, a negative one train uphill.
constexpr void check_rate(const char* schedule, const char* name, double value) {
  if (!(value >= 0) || value - value != 0)
    throw usage_error(std::string(schedule) + " schedule: " + name + " is " + std::to_string(value) +
                      "; it must be finite and >= 0");
}
} // namespace sched

inline constexpr auto constant_lr(double eta) {
  sched::check_rate("constant_lr", "eta", eta);
  return schedule(sched::constant_fn{ eta });
}
// a >= 0: a rate that grows without bound is not a schedule the paper's theorem (or anyone) uses.
inline constexpr auto inv_power(double eta0, double a) {
  sched::check_rate("inv_power", "eta0", eta0);
  sched::check_rate("inv_power", "the exponent a", a);
  return schedule(sched::inv_power_fn{ eta0, a });
}
inline constexpr auto cosine(double eta0, std::int64_t total, double eta_min = 0) {
  if (total < 1)
    throw usage_error("cosine schedule: total steps must be >= 1");
  sched::check_rate("cosine", "eta0", eta0);
  sched::check_rate("cosine", "eta_min", eta_min);
  if (eta_min > eta0)
    throw usage_error("cosine schedule: eta_min (" + std::to_string(eta_min) + ") is above eta0 (" +
                      std::to_string(eta0) + "); it decays from eta0 to eta_min");
  return schedule(sched::cosine_fn{ eta0, static_cast<double>(total), eta_min });
}
inline constexpr auto wsd(double eta0, std::int64_t warmup, std::int64_t decay_start, std::int64_t total) {
  sched::check_rate("wsd", "eta0", eta0);
  if (warmup < 1 || decay_start < warmup || total <= decay_start)
    throw usage_error("wsd schedule: needs 1 <= warmup <= decay_start < total");
  return schedule(sched::wsd_fn{ eta0, static_cast<double>(warmup), static_cast<double>(decay_start),
                                 static_cast<double>(total) });
}
inline constexpr auto warmup_linear(double eta0, std::int64_t warmup, std::int64_t total) {
  return wsd(eta0, warmup, warmup, total);
}

} // namespace steep::expr
