// My first rule: write an optimizer in the DSL, then see what steep makes of it. Copy this file,
// change `my_rule`, rebuild and run: ./build/examples/my_first_rule
//
//   1. the rule: Nesterov momentum, normalized per block in l2 (a rule not in the catalogue);
//   2. what the compiler made of it (describe()) and the norm its type implies (implied_norm_of);
//   3. its trajectory on the main job's default data (synthetic separable, 2-layer ReLU^2, width
//      16): the loss and the normalized margins in l2, l_inf and the spectral max-norm, which the
//      theory says it maximizes in its implied norm (Gronich & Vardi 2026; README, "The main job");
//   4. its speed against the catalogue's Adam, one step on a 1M-parameter float32 matrix.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <steep/steep.hpp>
#include <steep/train.hpp>
#include <string>
#include <vector>

namespace md = steep::model;
namespace tr = steep::train;
using namespace steep::expr;

namespace {

// 1. The rule: u = beta m_t + (1 - beta) g_t (Nesterov's look-ahead, m an EMA of gradients),
// stepped by eta0 t^-a along u / ||u||_2 of each block (dual<l2>: l2's dual map, per block).
// Edit these lines.
auto my_rule(double eta0, double a, double beta = 0.9) {
  auto m = ema<"m">(grad, beta);
  return -inv_power(eta0, a) * dual<steep::norms::l2>(beta * m + (1 - beta) * grad);
}

// The median seconds of `steps` steps of opt (after 3 untimed ones).
template <class Opt>
double seconds_per_step(Opt& opt, int steps) {
  for (int k = 0; k < 3; ++k)
    opt.step();
  std::vector<double> t;
  for (int k = 0; k < steps; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.step();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

} // namespace

int main() {
  const auto rule = my_rule(1.0, 0.8);

  // 2. What the compiler made of it, and the norm the theory says it maximizes.
  {
    steep::param_store<double> probe(
      { { "W1", { 16, 20 } }, { "head", { 1, 16 }, steep::block_role::head } });
    steep::optimizer opt(rule, probe);
    std::printf("the rule, compiled:\n%s", opt.describe().c_str());
  }
  std::vector<tr::model_norm> norms = { tr::model_norm::l2(), tr::model_norm::linf(),
                                        tr::model_norm::spectral_max() };
  std::string implied = "none";
  try {
    const auto own = tr::implied_norm_of(rule);
    implied = own.name;
    if (std::none_of(norms.begin(), norms.end(), [&](const auto& n) { return n.name == own.name; }))
      norms.push_back(own);
  } catch (const steep::usage_error& e) {
    std::printf("its type implies no norm: %s\n", e.what());
  }
  std::printf("implied norm (from its type): %s\n\n", implied.c_str());

  // 3. Its trajectory on the main job's default data: log10 of the summed loss, misclassified
  // points, and the normalized margin gamma_N = min_i y_i f(x_i) / N(theta)^3 in each norm.
  using net_t = md::mlp_t<2, md::relu_pow<2>>;
  auto data = tr::synthetic_separable<double>({ .samples = 100, .dim = 20, .gap = 0.1, .seed = 1 });
  tr::normalize_rows(data);
  md::network<net_t, double> net({ 20, 16, 1 }, data.size());
  net.init_gaussian(0.1, /*seed=*/1);
  tr::full_batch<net_t, double> task(net, data, md::loss_fn{ md::loss_kind::logistic });
  steep::optimizer opt(rule, net.store(), { .threads = 1 });
  const auto h = tr::fit(task, opt, { .steps = 20000, .records = 6, .norms = norms });
  std::printf("%8s %10s %7s", "step", "log10 L", "errors");
  for (const auto& n : norms)
    std::printf(" %16s", ("gamma " + n.name).c_str());
  std::printf("\n");
  for (const auto& r : h.records) {
    std::printf("%8lld %10.2f %7zu", static_cast<long long>(r.step), r.margins.log_loss / 2.302585092994046,
                r.margins.errors);
    for (const auto& n : norms)
      std::printf(" %16.4e", r.margins.at(n.name).gamma);
    std::printf("\n");
  }
  std::printf("(the theory: trained long enough, this rule's direction is a KKT point of the %s margin;\n"
              "compare the columns with the main job's table, README \"The main job\")\n\n",
              implied.c_str());

  // 4. Its speed against Adam: one step on a 1024 x 1024 float32 matrix, one thread.
  steep::param_store<float> big({ { "W", { 1024, 1024 } } });
  std::fill(big.grad("W").begin(), big.grad("W").end(), 0.5f);
  steep::optimizer mine(my_rule(1.0, 0.8), big, { .threads = 1 });
  steep::optimizer adam(steep::rules::adam(1e-3), big, { .threads = 1 });
  const double t_mine = seconds_per_step(mine, 20), t_adam = seconds_per_step(adam, 20);
  std::printf("one step, 1M parameters, float32, 1 thread: %.3f ms (Adam: %.3f ms, ratio %.2f)\n",
              1e3 * t_mine, 1e3 * t_adam, t_mine / t_adam);
  std::printf("my first rule done\n");
}
