#pragma once
// Losses of a classifier in the margin regime: exponential and logistic, evaluated in log-space so
// they stay exact down to losses of 1e-300 and below (float64).
//
//   steep::model::loss_fn loss{steep::model::loss_kind::logistic};
//   steep::model::sample_terms terms;
//   auto r = loss.evaluate(out, labels, n, classes, dout, terms);   // dout = dL/d(out), n x classes
//   r.log_loss;   // log L, finite even when L underflows to 0
//   r.q_min;      // min_i q_i, the unnormalized margin
//
// The math (Gronich & Vardi 2026; docs: README, "The main job"): for a binary model (one output,
// labels y_i = +-1) the margin of sample i is q_i = y_i f(x_i); for C > 1 outputs and a label
// y_i in [0, C) it is q_i = f_{y_i}(x_i) - max_{j != y_i} f_j(x_i). The loss is the sum
//   exponential  L = sum_i sum_{j != y} exp(-(f_y - f_j))        (binary: exp(-q_i))
//   logistic     L = sum_i log(1 + sum_{j != y} exp(-(f_y - f_j)))  (binary: log(1 + exp(-q_i)))
// Per-sample terms are formed from s_i = log sum_{j != y} exp(f_j - f_y) (binary: -q_i), so
// log l_i = s_i (exponential) or log(softplus(s_i)) (logistic), and log L = logsumexp_i log l_i.
// The derivative weights exp(s_i) or sigmoid(s_i) are exp of log-space values: they underflow
// only where the true gradient is below float64's range. paper's caveat: Adam squares the
// gradient, so at losses below ~1e-150 its second moment underflows (docs/implicit-bias.md §6).

#include "steep/core/error.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace steep::model {

enum class loss_kind { exponential, logistic };

inline std::string_view to_string(loss_kind k) {
  return k == loss_kind::exponential ? "exponential" : "logistic";
}

// log(1 + e^x) without overflow or loss of digits.
inline double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
// log(softplus(x)): for x << 0, softplus(x) ~ e^x and its log is ~ x (no underflow).
inline double log_softplus(double x) {
  if (x < -30)
    return x - 0.5 * std::exp(x); // log(e^x - e^{2x}/2 + ...) = x - e^x/2 + O(e^{2x})
  return std::log(softplus(x));
}
// log(sum_i exp(a_i)).
inline double logsumexp(const double* a, std::size_t n) {
  double m = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < n; ++i)
    m = std::max(m, a[i]);
  if (!std::isfinite(m))
    return m;
  double s = 0;
  for (std::size_t i = 0; i < n; ++i)
    s += std::exp(a[i] - m);
  return m + std::log(s);
}

struct loss_report {
  double log_loss = 0;       // log L (natural log)
  double q_min = 0;          // min_i q_i
  double max_log_weight = 0; // max_i log w_i, w_i = -dl/dq_i: the log of the gradient's scale
  std::size_t errors = 0;    // samples with q_i <= 0
  double loss() const { return std::exp(log_loss); }
};

// Per-sample quantities of one evaluation: margin q_i, log-odds s_i (the loss is a function of it)
// and log l_i.
struct sample_terms {
  std::vector<double> q, s, log_term;
};

class loss_fn {
public:
  explicit loss_fn(loss_kind k = loss_kind::logistic)
    : kind_(k) {}
  loss_kind kind() const noexcept { return kind_; }

  // s_i of one sample (outputs o, label y): -q_i for one output, log sum_{j != y} e^{f_j - f_y} for several.
  template <class T>
  static double log_odds(const T* o, int y, std::size_t classes) {
    return classes == 1 ? -y * double(o[0]) : log_sum_others(o, y, classes);
  }

  // log l_i of one sample from its s_i.
  double log_term(double s) const { return kind_ == loss_kind::exponential ? s : log_softplus(s); }
  // log(dl/ds) at s: the per-sample multiplier weight w_i = -dl/dq_i in log-space (s = -q for a
  // binary model; docs/implicit-bias.md §5).
  double log_weight(double s) const { return kind_ == loss_kind::exponential ? s : -softplus(-s); }

  // Loss, margins and dL/d(out) (dout may be null) times exp(-log_shift): a shift near
  // max_log_weight keeps the derivative in range at any loss (train/rescale.hpp); no shift given
  // means this batch's own max_log_weight. `terms` receives each sample's q_i, s_i and log l_i
  // (sized to n once, then reused).
  template <class T>
  loss_report evaluate(const T* out, const int* labels, std::size_t n, std::size_t classes, T* dout,
                       sample_terms& terms, std::optional<double> log_shift = 0.0) const {
    terms.q.resize(n), terms.s.resize(n), terms.log_term.resize(n);
    loss_report r;
    r.q_min = std::numeric_limits<double>::infinity();
    r.max_log_weight = -std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < n; ++i) {
      const T* o = out + i * classes;
      const double q = margin_of(o, labels[i], classes, i);
      const double s = log_odds(o, labels[i], classes);
      terms.q[i] = q, terms.s[i] = s, terms.log_term[i] = log_term(s);
      r.q_min = std::min(r.q_min, q);
      r.errors += q <= 0 ? 1 : 0;
      r.max_log_weight = std::max(r.max_log_weight, log_weight(s));
    }
    const double shift = log_shift.value_or(r.max_log_weight);
    for (std::size_t i = 0; dout && i < n; ++i) {
      // dl/ds = w(s); ds/df_j = softmax over j != y of (f_j - f_y); ds/df_y = -1.
      const T* o = out + i * classes;
      const int y = labels[i];
      const double s = terms.s[i], w = std::exp(log_weight(s) - shift);
      if (classes == 1) {
        dout[i] = static_cast<T>(-w * y);
        continue;
      }
      const double fy = o[y];
      for (std::size_t j = 0; j < classes; ++j)
        dout[i * classes + j] =
          static_cast<T>(static_cast<int>(j) == y ? -w : w * std::exp(double(o[j]) - fy - s));
    }
    r.log_loss = logsumexp(terms.log_term.data(), n);
    return r;
  }

private:
  template <class T>
  static double margin_of(const T* o, int y, std::size_t classes, std::size_t i) {
    if (classes == 1) {
      if (y != 1 && y != -1)
        throw usage_error("loss: sample " + std::to_string(i) + " has label " + std::to_string(y) +
                          "; a one-output (binary) model needs labels +1 or -1");
      return y * double(o[0]);
    }
    if (y < 0 || static_cast<std::size_t>(y) >= classes)
      throw usage_error("loss: sample " + std::to_string(i) + " has label " + std::to_string(y) +
                        "; expected a class index in [0, " + std::to_string(classes) + ")");
    double other = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < classes; ++j)
      if (static_cast<int>(j) != y)
        other = std::max(other, double(o[j]));
    return double(o[y]) - other;
  }
  template <class T>
  static double log_sum_others(const T* o, int y, std::size_t classes) {
    const double fy = o[y];
    double m = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < classes; ++j)
      if (static_cast<int>(j) != y)
        m = std::max(m, double(o[j]) - fy);
    double s = 0;
    for (std::size_t j = 0; j < classes; ++j)
      if (static_cast<int>(j) != y)
        s += std::exp(double(o[j]) - fy - m);
    return m + std::log(s);
  }

  loss_kind kind_;
};

} // namespace steep::model
