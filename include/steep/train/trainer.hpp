#pragma once
// Full-batch training of a homogeneous network with any steep optimizer, recording margins,
// KKT certificates and directional cosines over training.
//
//   steep::train::full_batch<net_t, double> task(net, data, steep::model::loss_fn{logistic});
//   steep::optimizer opt(steep::rules::signum(steep::expr::inv_power(1e-3, 0.8)), net.store());
//   auto h = steep::train::fit(task, opt, {.steps = 10000, .records = 60, .norms = {model_norm::linf()}});
//   h.records.back().margins.at("linf").gamma;   // final normalized l_inf margin
//   h.records[k].cosine_to_final;                  // cos(theta_t, theta_T)
//
// One step is: forward over every sample (a GEMM per layer), the loss and dL/d(output) in
// log-space (model/loss.hpp), backward into the store's gradients (a GEMM per layer and
// direction), then one optimizer step over every block. Nothing is allocated per step.
// `objective<T>` erases the network's type, so fit() is compiled once per optimizer, not once per
// (optimizer, architecture) pair.

#include "steep/core/error.hpp"
#include "steep/model/loss.hpp"
#include "steep/model/network.hpp"
#include "steep/train/data.hpp"
#include "steep/train/margins.hpp"
#include "steep/train/rescale.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace steep::train {

template <class T>
class objective {
public:
  virtual ~objective() = default;
  virtual param_store<T>& store() = 0;
  virtual int degree() const = 0;
  // Loss at the current parameters; dL/dtheta * exp(-log_shift) into the store's gradients.
  virtual model::loss_report gradient(double log_shift = 0) = 0;
  // Margins and certificates at the current parameters (overwrites the gradients).
  virtual margin_report measure(const std::vector<model_norm>& norms) = 0;
};

// The objective of full-batch training: every sample in every step. The margin meter already
// holds the network, the data and the loss (and the scratch a gradient needs), so this only adapts
// it to objective<T>.
template <class Net, class T>
class full_batch final : public objective<T> {
public:
  // The network and the data must outlive the task (it keeps references), so temporaries are refused.
  full_batch(model::network<Net, T>&, dataset<T>&&, model::loss_fn) = delete;
  full_batch(model::network<Net, T>& net, const dataset<T>& data, model::loss_fn loss)
    : meter_(net, data, loss) {
    if ((data.classes == 1) != (net.output_dim() == 1) ||
        (data.classes > 1 && data.classes != net.output_dim()))
      throw usage_error("full_batch: the data has " + std::to_string(data.classes) +
                        " class(es) (1 = binary +-1) " + "but the network has " +
                        std::to_string(net.output_dim()) + " outputs");
  }
  param_store<T>& store() override { return meter_.network().store(); }
  int degree() const override { return meter_.degree(); }
  model::loss_report gradient(double log_shift = 0) override { return meter_.gradient(log_shift); }
  margin_report measure(const std::vector<model_norm>& norms) override { return meter_.measure(norms); }

private:
  margin_meter<Net, T> meter_;
};

struct fit_options {
  std::int64_t steps = 1000;
  std::size_t records = 60;      // about this many records, log-spaced in the step, plus the last
  std::vector<model_norm> norms; // margins and certificates measured at each record
  double stop_log_loss = -1e300; // stop once log(Loss) falls below this (natural log)
  bool rescale = true;           // rescale gradients and state for scale-invariant rules (rescale.hpp)
  std::function<void(std::int64_t, const margin_report&)> on_record = {}; // progress
};

struct record {
  std::int64_t step = 0;
  margin_report margins;
  double cosine_to_final = 0;
};

struct history {
  std::vector<record> records;
  std::int64_t steps = 0;    // steps taken
  double seconds = 0;        // wall time of training (records excluded)
  bool rescaled = false;     // whether gradient rescaling was on (rescale.hpp)
  int rescales = 0;          // how often the gradient scale moved
  std::vector<double> theta; // final parameters, flattened
};

// The steps at which fit() records: 0 (the initialization), then a geometric grid up to `steps`.
inline std::vector<std::int64_t> record_steps(std::int64_t steps, std::size_t records) {
  std::vector<std::int64_t> s{ 0 };
  const double ratio =
    std::pow(static_cast<double>(std::max<std::int64_t>(steps, 2)), 1.0 / std::max<std::size_t>(records, 2));
  double t = 1;
  while (t < static_cast<double>(steps)) {
    const auto k = static_cast<std::int64_t>(std::llround(t));
    if (k > s.back())
      s.push_back(k);
    t *= ratio;
  }
  if (s.back() != steps)
    s.push_back(steps);
  return s;
}

// Empty if every parameter is finite and every block's squared l2 norm is (the margins divide by
// a norm: one that overflows makes them NaN); otherwise the first block that is not, and why.
template <class T>
std::string first_nonfinite(const param_store<T>& store) {
  for (const auto& b : store.blocks()) {
    double squares = 0, largest = 0;
    for (std::size_t i = 0; i < b.size; ++i) {
      const double v = static_cast<double>(b.param[i]);
      if (!std::isfinite(v))
        return "block '" + b.name + "', entry " + std::to_string(i) + ": " + std::to_string(v);
      squares += v * v;
      largest = std::max(largest, std::abs(v));
    }
    if (!std::isfinite(squares)) {
      char big[32];
      std::snprintf(big, sizeof big, "%.3g", largest);
      return "block '" + b.name + "': its squared l2 norm overflows, largest entry " + big;
    }
  }
  return {};
}

template <class T, engine::optimizer_interface Opt>
history fit(objective<T>& task, Opt& opt, const fit_options& o) {
  if (o.steps < 0)
    throw usage_error("fit: steps must be >= 0, got " + std::to_string(o.steps));
  history h;
  const auto when = record_steps(o.steps, o.records);
  std::vector<std::vector<double>> thetas;
  std::size_t next = 0;
  // A diverged run stops with what diverged and when, before a margin is measured of it.
  auto require_finite_parameters = [&](std::int64_t t) {
    if (const std::string bad = first_nonfinite(task.store()); !bad.empty())
      throw usage_error("fit: the parameters are not finite after step " + std::to_string(t) + " (" + bad +
                        "): the run diverged; a smaller learning rate may help");
  };
  auto record_now = [&](std::int64_t t) {
    require_finite_parameters(t);
    record r;
    r.step = t;
    r.margins = task.measure(o.norms);
    if (o.on_record)
      o.on_record(t, r.margins);
    h.records.push_back(std::move(r));
    thetas.push_back(flatten(task.store()));
  };
  using clock = std::chrono::steady_clock;
  double seconds = 0;
  gradient_scale scale(opt);
  for (std::int64_t t = 0; t <= o.steps; ++t) {
    if (next < when.size() && when[next] == t) {
      record_now(t);
      ++next;
    }
    if (t == o.steps)
      break;
    const auto t0 = clock::now();
    auto lr = task.gradient(scale.log_shift());
    // Refused before anything (the scale, the state) has changed.
    if (!std::isfinite(lr.log_loss)) {
      require_finite_parameters(t); // the parameters, where they are the cause
      throw usage_error("fit: the loss is not finite at step " + std::to_string(t + 1));
    }
    if (o.rescale && scale.wants_move(lr.max_log_weight) && scale.move(opt, task.store(), lr.max_log_weight))
      lr = task.gradient(scale.log_shift());
    if (lr.log_loss < o.stop_log_loss) {
      h.steps = t;
      if (h.records.back().step != t)
        record_now(t);
      break;
    }
    opt.step();
    seconds += std::chrono::duration<double>(clock::now() - t0).count();
    h.steps = t + 1;
  }
  h.seconds = seconds;
  h.rescaled = o.rescale && scale.enabled();
  h.rescales = scale.rescales();
  h.theta = thetas.back();
  for (std::size_t k = 0; k < h.records.size(); ++k)
    h.records[k].cosine_to_final = cosine(thetas[k], h.theta);
  return h;
}

} // namespace steep::train
