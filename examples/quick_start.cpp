// Quick start: define a new optimizer in a few lines and train a small homogeneous model with it.
//
// The model is a linear classifier without bias, f(x) = <w, x> (homogeneous of degree 1), on
// separable 2-D data, trained on the exponential loss. The new rule, "clipped Adam", is Adam whose
// per-coordinate step is clipped to [-1, 1] — three lines of DSL, compiled into one fused loop.
// As training drives the loss to 0 the normalized margins min_i y_i <w, x_i> / ||w|| grow; a
// sign-like rule such as this one heads for the l_inf-normalized maximum margin (Gronich & Vardi
// 2026 for Adam/Signum), plain gradient descent for the l2 one. Run it: ./build/examples/quick_start

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <steep/steep.hpp>
#include <vector>

namespace {

struct dataset {
  std::vector<double> x; // n x 2, row-major
  std::vector<double> y; // +-1
  std::size_t n() const { return y.size(); }
};

dataset make_data(std::size_t n) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0.0, 0.4);
  dataset d;
  for (std::size_t i = 0; i < n; ++i) {
    const double label = i % 2 ? 1.0 : -1.0;
    d.x.push_back(label * 2.0 + noise(rng)); // separable along (2, 0.5) with margin
    d.x.push_back(label * 0.5 + noise(rng));
    d.y.push_back(label);
  }
  return d;
}

// Exponential loss L(w) = mean exp(-y <w, x>), its gradient written into g, and the loss returned.
double loss_and_grad(const dataset& d, const double* w, double* g) {
  double loss = 0;
  g[0] = g[1] = 0;
  for (std::size_t i = 0; i < d.n(); ++i) {
    const double e = std::exp(-d.y[i] * (w[0] * d.x[2 * i] + w[1] * d.x[2 * i + 1]));
    loss += e;
    g[0] -= d.y[i] * d.x[2 * i] * e;
    g[1] -= d.y[i] * d.x[2 * i + 1] * e;
  }
  g[0] /= d.n(), g[1] /= d.n();
  return loss / d.n();
}

double min_margin(const dataset& d, const double* w) {
  double m = INFINITY;
  for (std::size_t i = 0; i < d.n(); ++i)
    m = std::min(m, d.y[i] * (w[0] * d.x[2 * i] + w[1] * d.x[2 * i + 1]));
  return m;
}

struct margins {
  double l2, linf;
};

template <class Rule>
margins train(const char* name, Rule rule, const dataset& d) {
  steep::param_store<double> store({ { "w", { 2 } } });
  store.param("w")(0) = 0.1, store.param("w")(1) = -0.3;
  steep::optimizer opt(rule, store, { .threads = 1 });
  double* w = store.block_named("w").param;
  double* g = store.block_named("w").grad;
  std::printf("%s\n  %6s %12s %12s %12s\n", name, "step", "loss", "margin_l2", "margin_linf");
  for (int t = 0; t <= 2000; ++t) {
    const double loss = loss_and_grad(d, w, g);
    if (t % 500 == 0) {
      const double m = min_margin(d, w);
      std::printf("  %6d %12.4e %12.5f %12.5f\n", t, loss, m / std::hypot(w[0], w[1]),
                  m / std::max(std::abs(w[0]), std::abs(w[1])));
    }
    opt.step();
  }
  const double m = min_margin(d, w);
  return { m / std::hypot(w[0], w[1]), m / std::max(std::abs(w[0]), std::abs(w[1])) };
}

} // namespace

int main() {
  using namespace steep::expr;
  const dataset d = make_data(200);

  // A new optimizer: Adam with its per-coordinate step clipped to [-1, 1].
  auto m = ema<"m">(grad, 0.9);
  auto v = ema<"v">(square(grad), 0.999);
  auto clipped_adam = -hyper<"lr">(0.05) * clamp(debias(m) / (sqrt(debias(v)) + 1e-12), -1.0, 1.0);

  const margins a = train("clipped Adam (new rule, l_inf geometry)", clipped_adam, d);
  const margins b = train("gradient descent (steep::rules::sgd, l2 geometry)", steep::rules::sgd(0.5), d);
  std::printf("l_inf margin: clipped Adam %.4f vs GD %.4f; l2 margin: GD %.4f vs clipped Adam %.4f\n", a.linf,
              b.linf, b.l2, a.l2);
  std::printf("each optimizer leads in its own norm's margin: %s\n",
              a.linf > b.linf && b.l2 > a.l2 ? "yes" : "no");
  std::printf("quick start done\n");
}
