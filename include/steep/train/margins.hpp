#pragma once
// Normalized margins under any model norm, smoothed margins, directional cosines and a KKT
// certificate for the margin-maximization problem of a given norm.
//
//   steep::train::margin_meter<net_t, double> meter(net, data, loss);
//   auto r = meter.measure({model_norm::l2(), model_norm::linf(), model_norm::spectral_max()});
//   r.norms[0].gamma;       // q_min / ||theta||_l2^L
//   r.norms[0].rho;         // KKT alignment in [0, 1]: 1 at a KKT direction of the l2 problem
//   meter.gradient(0.0);    // the training gradient into the store (full_batch uses it)
//   steep::train::cosine(flatten(net.store()), theta_final);
//
// The math (Gronich & Vardi 2026; Lyu & Li 2020; docs: README, "The main job"). For an
// L-homogeneous model with margins q_i = y_i f(x_i; theta):
//   normalized margin   gamma_N = min_i q_i / N(theta)^L                  (scale invariant)
//   smoothed margin     phi^{-1}(log 1/Loss) / N^L: exponential -log Loss, logistic -log(e^Loss - 1)
//   KKT certificate     for  min 1/2 N(theta)^2  s.t.  q_i(theta) >= 1 : rescale theta~ = theta /
//     q_min^{1/L}, take multipliers along the loss's weights w_i = -l'(q_i), v = sum_i w_i grad q_i,
//     and measure the alignment  rho = <theta, v> / (N(theta) N*(v))  in (0, 1]  (Fenchel-Young:
//     rho = 1 iff v is, up to scale, a subgradient of N^2/2 at theta). Reported:
//       rho, the stationarity residual  eps = sqrt(1 - rho^2)  (relative to N(theta~)), and the
//       complementary slackness  delta = sum_i w_i (q_i/q_min - 1) / sum_i w_i  (0 when only the
//       support vectors carry weight).
// v is -grad Loss up to a positive factor (for a multiclass model: the cross-entropy's gradient,
// its multipliers spread over the runner-up classes), so it is computed by one backward pass with
// the weights scaled by exp(-max_i log w_i): the same direction without underflow at tiny losses.
// rho, eps and delta go to 0 / 1 in the norm an optimizer's theory predicts and stay away in the
// others (paper: "KKT point of the margin problem of *that* norm").

#include "steep/model/loss.hpp"
#include "steep/model/network.hpp"
#include "steep/train/data.hpp"
#include "steep/train/model_norm.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

namespace steep::train {

struct norm_margin {
  std::string norm;
  double value = 0;    // N(theta)
  double gamma = 0;    // normalized margin
  double smoothed = 0; // smoothed normalized margin
  double rho = 0;      // KKT alignment
  double kkt_eps = 0;  // sqrt(1 - rho^2)
  double kkt_delta = 0;
};

struct margin_report {
  double log_loss = 0;
  double q_min = 0;
  std::size_t errors = 0;
  std::vector<norm_margin> norms;
  const norm_margin& at(const std::string& name) const {
    for (auto& n : norms)
      if (n.norm == name)
        return n;
    throw usage_error("margin_report: no norm named '" + name + "' was measured");
  }
};

// Every parameter of a store in block order, as one vector (for cosines between iterates).
template <class T>
std::vector<double> flatten(const param_store<T>& s) {
  std::vector<double> v;
  v.reserve(s.total_elements());
  for (const auto& b : s.blocks())
    v.insert(v.end(), b.param, b.param + b.size);
  return v;
}

inline double cosine(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size())
    throw usage_error("cosine: vectors of sizes " + std::to_string(a.size()) + " and " +
                      std::to_string(b.size()));
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
  return ab / std::sqrt(aa * bb);
}

// The sums over samples of the multiplier weights w_i = exp(log w_i - max_log_weight) and of
// w_i (q_i / q_min - 1), in sample order (q_min > 0 only: before the data is separated there is no
// slackness), for the samples of one evaluation (terms).
struct weight_sum {
  double w = 0, slack = 0;
};
inline weight_sum weight_sums(const model::loss_fn& loss, const model::sample_terms& terms, double q_min,
                              double max_log_weight) {
  weight_sum out;
  for (std::size_t i = 0; i < terms.s.size(); ++i) {
    const double w = std::exp(loss.log_weight(terms.s[i]) - max_log_weight);
    out.w += w;
    if (q_min > 0)
      out.slack += w * (terms.q[i] / q_min - 1);
  }
  return out;
}

// <theta, grad> over every block of a store, in block order.
template <class T>
double inner_params_grads(const param_store<T>& store) {
  double s = 0;
  for (const auto& b : store.blocks())
    for (std::size_t i = 0; i < b.size; ++i)
      s += double(b.param[i]) * b.grad[i];
  return s;
}

// The margin report of one evaluation over the whole data set: lr its loss report, wsum and
// wslack its weight_sums, and -v (the backward pass of the weights dout) in the store's gradients.
// margin_meter::measure ends with it, and so does dist::sharded_full_batch once it has added its
// shards' sums (dist/sharded_full_batch.hpp).
template <class T>
margin_report certify(const model::loss_report& lr, double wsum, double wslack, model::loss_kind kind,
                      int degree, const param_store<T>& store, const std::vector<model_norm>& norms) {
  margin_report r;
  r.log_loss = lr.log_loss;
  r.q_min = lr.q_min;
  r.errors = lr.errors;
  const double theta_v = -inner_params_grads(store);
  // smoothed: phi^{-1}(log 1/Loss)
  const double loss = std::exp(r.log_loss);
  const double phi_inv = kind == model::loss_kind::exponential
                           ? -r.log_loss
                           : -(r.log_loss + (loss > 1e-8 ? std::log(std::expm1(loss) / loss) : loss / 2));
  for (const auto& nrm : norms) {
    norm_margin m;
    m.norm = nrm.name;
    m.value = nrm.value(store);
    const double nl = std::pow(m.value, degree);
    m.gamma = r.q_min / nl;
    m.smoothed = phi_inv / nl;
    const double dual = nrm.dual().value_of_grads(store);
    m.rho = theta_v / (m.value * dual);
    m.kkt_eps = std::sqrt(std::max(0.0, 1 - m.rho * m.rho));
    m.kkt_delta = lr.q_min > 0 ? wslack / wsum : std::numeric_limits<double>::quiet_NaN();
    r.norms.push_back(m);
  }
  return r;
}

template <class Net, class T>
class margin_meter {
  static_assert(
    model::homogeneous_graph<Net>,
    "margin_meter<Net, T>: normalized margins need a positively homogeneous graph (bias-free linear "
    "layers and homogeneous activations, ending in a linear layer); this one is not");

public:
  // The network and the data must outlive the meter (it keeps references): temporaries are refused.
  margin_meter(model::network<Net, T>&, dataset<T>&&, model::loss_fn) = delete;
  margin_meter(model::network<Net, T>& net, const dataset<T>& data, model::loss_fn loss)
    : net_(net)
    , data_(data)
    , loss_(loss)
    , degree_(model::network<Net, T>::degree()) {
    if (data.dim != net.input_dim() || data.size() > net.capacity())
      throw usage_error("margin_meter: the data (" + std::to_string(data.size()) + " x " +
                        std::to_string(data.dim) + ") does not fit the network (input " +
                        std::to_string(net.input_dim()) + ", capacity " + std::to_string(net.capacity()) +
                        ")");
    dout_.resize(data.size() * net.output_dim());
  }

  int degree() const noexcept { return degree_; }
  model::network<Net, T>& network() noexcept { return net_; }

  // The training gradient: the loss at the current parameters, and dL/dtheta * exp(-log_shift)
  // into the store's gradients (train/rescale.hpp chooses the shift).
  model::loss_report gradient(double log_shift) {
    const T* out = net_.forward(data_.x.data(), data_.size());
    const auto r = loss_.evaluate(out, data_.labels.data(), data_.size(), net_.output_dim(), dout_.data(),
                                  terms_, log_shift);
    net_.backward(dout_.data());
    return r;
  }

  // Measures at the network's current parameters. Overwrites the store's gradients.
  margin_report measure(const std::vector<model_norm>& norms) {
    const std::size_t n = data_.size(), c = net_.output_dim();
    const T* out = net_.forward(data_.x.data(), n);
    // One evaluation: the loss, the margins, and the multipliers' direction v (dout, shifted so the
    // largest weight is 1); grads = -v after the backward pass.
    const auto lr = loss_.evaluate(out, data_.labels.data(), n, c, dout_.data(), terms_, std::nullopt);
    const auto [wsum, wslack] = weight_sums(loss_, terms_, lr.q_min, lr.max_log_weight);
    net_.backward(dout_.data());
    return certify(lr, wsum, wslack, loss_.kind(), degree_, net_.store(), norms);
  }

private:
  model::network<Net, T>& net_;
  const dataset<T>& data_;
  model::loss_fn loss_;
  int degree_;
  model::sample_terms terms_;
  std::vector<T> dout_;
};

} // namespace steep::train
