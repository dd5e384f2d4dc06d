#pragma once
// Naive per-element reference implementations of the catalogue, written straight from the
// papers / torch docs with plain loops in double — independent of steep's DSL and kernels, so
// the equivalence tests compare two different code paths.

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace ref {

struct block {
  std::vector<double> p, g;
  std::map<std::string, std::vector<double>> s; // state by slot name
  std::vector<double>& slot(const std::string& n) {
    auto& v = s[n];
    if (v.size() != p.size())
      v.assign(p.size(), 0.0);
    return v;
  }
};
using model = std::vector<block>;

inline double sgn(double x) { return (x > 0) - (x < 0); }

template <class F>
void each(model& m, F f) { // f(block&, i)
  for (auto& b : m)
    for (std::size_t i = 0; i < b.p.size(); ++i)
      f(b, i);
}

inline auto sgd(double lr) {
  return [=](int, model& m) { each(m, [&](block& b, std::size_t i) { b.p[i] -= lr * b.g[i]; }); };
}
inline auto momentum(double lr, double mu, bool nesterov) {
  return [=](int, model& m) {
    each(m, [&](block& b, std::size_t i) {
      auto& buf = b.slot("momentum_buffer");
      buf[i] = mu * buf[i] + b.g[i];
      b.p[i] -= lr * (nesterov ? b.g[i] + mu * buf[i] : buf[i]);
    });
  };
}
inline auto adam(double lr, double b1, double b2, double eps, double wd = 0, bool ams = false) {
  return [=](int t, model& m) {
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    each(m, [&](block& b, std::size_t i) {
      auto& mm = b.slot("exp_avg");
      auto& vv = b.slot("exp_avg_sq");
      b.p[i] *= 1 - lr * wd;
      mm[i] = b1 * mm[i] + (1 - b1) * b.g[i];
      vv[i] = b2 * vv[i] + (1 - b2) * b.g[i] * b.g[i];
      double v = vv[i];
      if (ams) {
        auto& vm = b.slot("max_exp_avg_sq");
        vm[i] = std::max(vm[i], vv[i]);
        v = vm[i];
      }
      b.p[i] -= (lr / bc1) * mm[i] / (std::sqrt(v) / std::sqrt(bc2) + eps);
    });
  };
}
inline auto rmsprop(double lr, double alpha, double eps) {
  return [=](int, model& m) {
    each(m, [&](block& b, std::size_t i) {
      auto& s = b.slot("square_avg");
      s[i] = alpha * s[i] + (1 - alpha) * b.g[i] * b.g[i];
      b.p[i] -= lr * b.g[i] / (std::sqrt(s[i]) + eps);
    });
  };
}
inline auto adagrad(double lr, double eps) {
  return [=](int, model& m) {
    each(m, [&](block& b, std::size_t i) {
      auto& s = b.slot("sum");
      s[i] += b.g[i] * b.g[i];
      b.p[i] -= lr * b.g[i] / (std::sqrt(s[i]) + eps);
    });
  };
}
inline auto signum(double lr, double beta) {
  return [=](int, model& m) {
    each(m, [&](block& b, std::size_t i) {
      auto& mm = b.slot("momentum_buffer");
      mm[i] = beta * mm[i] + (1 - beta) * b.g[i];
      b.p[i] -= lr * sgn(mm[i]);
    });
  };
}
inline auto lion(double lr, double b1, double b2, double wd) {
  return [=](int, model& m) {
    each(m, [&](block& b, std::size_t i) {
      auto& mm = b.slot("exp_avg");
      const double c = b1 * mm[i] + (1 - b1) * b.g[i];
      b.p[i] -= lr * (sgn(c) + wd * b.p[i]);
      mm[i] = b2 * mm[i] + (1 - b2) * b.g[i];
    });
  };
}
inline auto normalized_gd(double lr, bool per_block) {
  return [=](int, model& m) {
    double total = 0;
    std::vector<double> norms;
    for (auto& b : m) {
      double s = 0;
      for (double x : b.g)
        s += x * x;
      norms.push_back(s);
      total += s;
    }
    for (std::size_t k = 0; k < m.size(); ++k) {
      const double n = std::sqrt(per_block ? norms[k] : total);
      for (std::size_t i = 0; i < m[k].p.size(); ++i)
        m[k].p[i] -= lr * m[k].g[i] / n;
    }
  };
}
inline auto nadamw_optax(double lr, double b1, double b2, double eps, double wd, bool nesterov) {
  return [=](int t, model& m) {
    each(m, [&](block& b, std::size_t i) {
      auto& mu = b.slot("mu");
      auto& nu = b.slot("nu");
      mu[i] = b1 * mu[i] + (1 - b1) * b.g[i];
      nu[i] = b2 * nu[i] + (1 - b2) * b.g[i] * b.g[i];
      const double mh = nesterov
                          ? b1 * mu[i] / (1 - std::pow(b1, t + 1)) + (1 - b1) * b.g[i] / (1 - std::pow(b1, t))
                          : mu[i] / (1 - std::pow(b1, t));
      const double nh = nu[i] / (1 - std::pow(b2, t));
      b.p[i] -= lr * (mh / (std::sqrt(nh) + eps) + wd * b.p[i]);
    });
  };
}

} // namespace ref
