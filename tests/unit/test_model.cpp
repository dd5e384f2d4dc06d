// The homogeneous layer graph, losses, data and margin analysis (README, "The main job"):
// compile-time degrees, Euler's identity, finite-difference gradients, losses down to 1e-300,
// IDX files, datasets, model norms, the KKT certificate and implied norms at run time.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <steep/rules/catalogue.hpp>
#include <steep/steep.hpp>
#include <steep/train/data.hpp>
#include <steep/train/implied_norm.hpp>
#include <steep/train/implied_norm_of.hpp>
#include <steep/train/trainer.hpp>
#include <string>
#include <vector>
#include <zlib.h>

namespace md = steep::model;
namespace tr = steep::train;
namespace rl = steep::rules;

// ---- degrees at compile time (docs/implicit-bias.md §1) -------------------------------
static_assert(steep::degree_v<md::sequential<md::linear, md::relu_pow<2>, md::linear>> == 3);
static_assert(steep::degree_v<md::mlp_t<2, md::relu>> == 2);
static_assert(steep::degree_v<md::mlp_t<3, md::relu_pow<2>>> == 7);
static_assert(steep::degree_v<md::mlp_t<4, md::relu_pow<2>>> == 15);
static_assert(steep::degree_v<md::mlp_t<3, md::identity>> == 3);
static_assert(steep::degree_v<md::mlp_t<1, md::relu>> == 1);
static_assert(steep::degree_v<md::sequential<md::linear, md::power<3>, md::linear>> == 4);
static_assert(!md::sequential<md::linear, md::tanh_act, md::linear>::homogeneous);
static_assert(!md::homogeneous_graph<md::sequential<md::affine, md::relu, md::linear>>);
static_assert(md::homogeneous_graph<md::mlp_t<2, md::relu_pow<2>>>);

namespace {

template <class Net, class T>
void random_init(md::network<Net, T>& net, std::uint64_t seed, double scale = 1.0) {
  net.init_gaussian(scale, seed);
}

std::vector<double> gaussian_data(std::size_t n, std::size_t d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n01;
  std::vector<double> x(n * d);
  for (auto& v : x)
    v = n01(rng);
  return x;
}

// <theta, grad f(x_i)> for sample i, by backward with a one-hot output weight.
template <class Net, class T>
double theta_dot_grad(md::network<Net, T>& net, const std::vector<T>& x, std::size_t n, std::size_t i) {
  net.forward(x.data(), n);
  std::vector<T> dout(n * net.output_dim(), T(0));
  dout[i * net.output_dim()] = T(1);
  net.backward(dout.data());
  double s = 0;
  for (const auto& b : net.store().blocks())
    for (std::size_t k = 0; k < b.size; ++k)
      s += double(b.param[k]) * double(b.grad[k]);
  return s;
}

template <class Net>
void check_euler() {
  constexpr int L = steep::degree_v<Net>;
  const std::size_t n = 7, d = 5;
  std::vector<std::size_t> widths{ d };
  for (std::size_t k = 1; k < Net::n_linear; ++k)
    widths.push_back(6);
  widths.push_back(1);
  md::network<Net, double> net(widths, n);
  random_init(net, 3);
  const auto x = gaussian_data(n, d, 4);
  const double* f = net.forward(x.data(), n);
  std::vector<double> fx(f, f + n);
  for (std::size_t i = 0; i < n; ++i) {
    const double lhs = theta_dot_grad(net, x, n, i);
    CHECK(lhs == Approx(L * fx[i]).epsilon(1e-12).margin(1e-300));
  }
  // Homogeneity itself: f(x; c theta) = c^L f(x; theta).
  for (auto& b : net.store().blocks())
    for (std::size_t k = 0; k < b.size; ++k)
      b.param[k] *= 1.7;
  const double* g = net.forward(x.data(), n);
  for (std::size_t i = 0; i < n; ++i)
    CHECK(g[i] == Approx(std::pow(1.7, L) * fx[i]).epsilon(1e-12));
}

// Backward's gradient (in the store) against central differences of value(), every `stride`-th entry.
template <class Net, class F>
void check_gradient_fd(md::network<Net, double>& net, F value, std::size_t stride) {
  std::vector<std::vector<double>> analytic;
  for (const auto& b : net.store().blocks())
    analytic.emplace_back(b.grad, b.grad + b.size);
  std::size_t bi = 0;
  for (const auto& b : net.store().blocks()) {
    for (std::size_t k = 0; k < b.size; k += stride) {
      const double h = 1e-5, keep = b.param[k];
      b.param[k] = keep + h;
      const double up = value();
      b.param[k] = keep - h;
      const double down = value();
      b.param[k] = keep;
      CHECK(analytic[bi][k] == Approx((up - down) / (2 * h)).epsilon(1e-5).margin(1e-8));
    }
    ++bi;
  }
}

} // namespace

TEST_CASE("Euler's identity <theta, grad f> = L f holds to 1e-12 for every activation and depth", "[model]") {
  check_euler<md::mlp_t<2, md::relu_pow<2>>>();
  check_euler<md::mlp_t<2, md::relu>>();
  check_euler<md::mlp_t<3, md::relu_pow<2>>>();
  check_euler<md::mlp_t<3, md::power<2>>>();
  check_euler<md::mlp_t<4, md::identity>>();
  check_euler<md::mlp_t<2, md::relu_pow<3>>>();
}

TEST_CASE("backward matches central finite differences of the loss", "[model]") {
  using net_t = md::mlp_t<3, md::relu_pow<2>>;
  const std::size_t n = 9, d = 4;
  for (auto kind : { md::loss_kind::logistic, md::loss_kind::exponential }) {
    md::network<net_t, double> net({ d, 5, 3, 1 }, n);
    random_init(net, 11);
    const auto x = gaussian_data(n, d, 12);
    std::vector<int> y(n);
    for (std::size_t i = 0; i < n; ++i)
      y[i] = i % 2 ? 1 : -1;
    const md::loss_fn loss{ kind };
    std::vector<double> dout(n);
    md::sample_terms work;
    auto value = [&] {
      return std::exp(
        loss.evaluate(net.forward(x.data(), n), y.data(), n, 1, static_cast<double*>(nullptr), work)
          .log_loss);
    };
    loss.evaluate(net.forward(x.data(), n), y.data(), n, 1, dout.data(), work);
    net.backward(dout.data());
    check_gradient_fd(net, value, 3);
  }
}

TEST_CASE("multiclass outputs: backward matches finite differences of cross-entropy", "[model]") {
  using net_t = md::mlp_t<2, md::relu_pow<2>>;
  const std::size_t n = 6, d = 3, c = 4;
  md::network<net_t, double> net({ d, 5, c }, n);
  random_init(net, 21);
  const auto x = gaussian_data(n, d, 22);
  std::vector<int> y{ 0, 1, 2, 3, 1, 2 };
  const md::loss_fn loss{ md::loss_kind::logistic };
  std::vector<double> dout(n * c);
  md::sample_terms work;
  auto value = [&] {
    return std::exp(
      loss.evaluate(net.forward(x.data(), n), y.data(), n, c, static_cast<double*>(nullptr), work).log_loss);
  };
  // Cross-entropy by its textbook formula.
  const double* o = net.forward(x.data(), n);
  double ce = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double z = 0;
    for (std::size_t j = 0; j < c; ++j)
      z += std::exp(o[i * c + j]);
    ce += std::log(z) - o[i * c + y[i]];
  }
  CHECK(value() == Approx(ce).epsilon(1e-12));
  loss.evaluate(net.forward(x.data(), n), y.data(), n, c, dout.data(), work);
  net.backward(dout.data());
  check_gradient_fd(net, value, 1);
}

TEST_CASE("float32 networks agree with float64 to float precision", "[model]") {
  using net_t = md::mlp_t<2, md::relu_pow<2>>;
  const std::size_t n = 8, d = 6;
  md::network<net_t, double> n64({ d, 7, 1 }, n);
  md::network<net_t, float> n32({ d, 7, 1 }, n);
  n64.init_gaussian(1.0, 5);
  n32.init_gaussian(1.0, 5);
  const auto x = gaussian_data(n, d, 6);
  std::vector<float> xf(x.begin(), x.end());
  const double* f64 = n64.forward(x.data(), n);
  const float* f32 = n32.forward(xf.data(), n);
  for (std::size_t i = 0; i < n; ++i)
    CHECK(f32[i] == Approx(f64[i]).epsilon(1e-5).margin(1e-5));
}

TEST_CASE("the graph names its blocks with roles and torch's (out, in) layout", "[model]") {
  md::network<md::mlp_t<3, md::relu>, double> net({ 10, 8, 6, 1 }, 4);
  const auto& s = net.store();
  REQUIRE(s.size() == 3);
  CHECK(s.block_at(0).name == "W1");
  CHECK(s.block_at(0).shape == steep::shape_t{ 8, 10 });
  CHECK(s.block_at(0).role == steep::block_role::hidden_matrix);
  CHECK(s.block_at(1).role == steep::block_role::hidden_matrix);
  CHECK(s.block_at(2).name == "W3");
  CHECK(s.block_at(2).role == steep::block_role::head);
  CHECK(s.block_at(2).shape == steep::shape_t{ 1, 6 });
  CHECK(net.parameter_count() == 80 + 48 + 6);
  CHECK_THROWS_WITH((md::network<md::mlp_t<2, md::relu>, double>({ 10, 1 }, 4)),
                    Catch::Contains("needs 3 widths"));
  CHECK_THROWS_WITH(net.forward(std::vector<double>(50).data(), 5), Catch::Contains("exceeds the capacity"));
}

TEST_CASE("losses stay exact in log-space down to 1e-300 and below", "[loss]") {
  for (auto kind : { md::loss_kind::logistic, md::loss_kind::exponential }) {
    const md::loss_fn loss{ kind };
    std::vector<double> dout(3);
    md::sample_terms work;
    const std::vector<int> y{ 1, -1, 1 };
    for (double q : { 50.0, 300.0, 690.0, 800.0, 5000.0 }) {
      const std::vector<double> out{ q, -(q + 1), q + 2 }; // margins q, q + 1, q + 2
      const auto r = loss.evaluate(out.data(), y.data(), 3, 1, dout.data(), work);
      // log L = log(e^-q + e^-(q+1) + e^-(q+2)) for both losses once e^-q << 1.
      const double expect = -q + std::log(1 + std::exp(-1.0) + std::exp(-2.0));
      CHECK(r.log_loss == Approx(expect).epsilon(1e-12));
      CHECK(r.q_min == q);
      CHECK(std::isfinite(dout[0]));
      CHECK(dout[0] <= 0);
    }
    // A loss of about 1e-300 is representable, and its value is right.
    const std::vector<double> out{ 690.0 };
    const auto r = loss.evaluate(out.data(), y.data(), 1, 1, dout.data(), work);
    CHECK(r.loss() == Approx(std::exp(-690.0)).epsilon(1e-10));
    CHECK(-dout[0] == Approx(std::exp(-690.0)).epsilon(1e-10));
  }
  CHECK(md::softplus(-800) == 0.0);
  CHECK(md::log_softplus(-800) == Approx(-800));
  CHECK(md::log_softplus(800) == Approx(std::log(800.0)));
  const std::vector<int> bad{ 2 };
  md::sample_terms work;
  const std::vector<double> out{ 1.0 };
  CHECK_THROWS_WITH(md::loss_fn{}.evaluate(out.data(), bad.data(), 1, 1, static_cast<double*>(nullptr), work),
                    Catch::Contains("labels +1 or -1"));
}

TEST_CASE("IDX files: gzip and plain round trips, bad files refused", "[data]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "steep_idx_test";
  fs::create_directories(dir);
  auto write = [&](const std::string& name, const std::vector<unsigned char>& bytes, const char* mode) {
    const std::string p = (dir / name).string();
    gzFile f = gzopen(p.c_str(), mode);
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return p;
  };
  // 3 images of 2 x 2 and their labels.
  std::vector<unsigned char> images{ 0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2 };
  for (int i = 0; i < 12; ++i)
    images.push_back(static_cast<unsigned char>(i * 20));
  std::vector<unsigned char> labels{ 0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 9 };
  const auto ip = write("img.gz", images, "wb");
  const auto lp = write("lab", labels, "wT"); // plain, uncompressed
  const auto d = tr::load_idx<double>(ip, lp);
  CHECK(d.size() == 3);
  CHECK(d.dim == 4);
  CHECK(d.classes == 10);
  CHECK(d.x[5] == Approx(100 / 255.0));
  CHECK(d.labels == std::vector<int>{ 7, 2, 9 });
  auto truncated = images;
  truncated.resize(20);
  CHECK_THROWS_WITH(steep::io::read_idx(write("short.gz", truncated, "wb")), Catch::Contains("ends early"));
  auto magic = images;
  magic[0] = 1;
  CHECK_THROWS_WITH(steep::io::read_idx(write("magic.gz", magic, "wb")), Catch::Contains("not an IDX file"));
  auto extra = images;
  extra.push_back(1);
  CHECK_THROWS_WITH(steep::io::read_idx(write("extra.gz", extra, "wb")), Catch::Contains("bytes after"));
  CHECK_THROWS_WITH(steep::io::read_idx((dir / "missing").string()), Catch::Contains("cannot open"));
  fs::remove_all(dir);
}

TEST_CASE("datasets: synthetic separable, parity, balanced subsets, unit rows", "[data]") {
  const auto s = tr::synthetic_separable<double>({ .samples = 100, .dim = 20, .gap = 0.2, .seed = 3 });
  CHECK(s.size() == 100);
  CHECK(s.dim == 20);
  CHECK_THROWS_WITH(tr::synthetic_separable<double>({ .samples = 10, .dim = 784, .gap = 0.45, .seed = 3 }),
                    Catch::Contains("use a smaller gap"));
  auto again = tr::synthetic_separable<double>({ .samples = 100, .dim = 20, .gap = 0.2, .seed = 3 });
  CHECK(again.x == s.x);
  tr::dataset<double> mc;
  mc.dim = 1;
  mc.classes = 10;
  for (int i = 0; i < 40; ++i)
    mc.x.push_back(i + 1), mc.labels.push_back(i % 10);
  const auto par = tr::parity_task(mc);
  CHECK(par.classes == 1);
  CHECK(par.labels[2] == 1);
  CHECK(par.labels[3] == -1);
  auto sub = tr::balanced_subset(par, 7, 9);
  CHECK(sub.size() == 14);
  int pos = 0;
  for (int y : sub.labels)
    pos += y > 0;
  CHECK(pos == 7);
  CHECK(tr::balanced_subset(par, 7, 9).x == sub.x);
  CHECK_THROWS_WITH(tr::balanced_subset(par, 21, 9), Catch::Contains("asked for 21 per class"));
  tr::normalize_rows(sub);
  for (std::size_t i = 0; i < sub.size(); ++i)
    CHECK(std::abs(sub.x[i]) == Approx(1.0));
}

TEST_CASE("Fashion-MNIST from Debian's package: the paper's binary task", "[data]") {
  if (!std::filesystem::exists(std::string(tr::fashion_mnist_dir) + "/train-images-idx3-ubyte.gz")) {
    WARN("dataset-fashion-mnist is not installed (scripts/install-deps.sh installs it)");
    return;
  }
  const auto f = tr::load_fashion_mnist<float>(false);
  CHECK(f.size() == 10000);
  CHECK(f.dim == 784);
  CHECK(f.classes == 10);
  auto b = tr::balanced_subset(tr::parity_task(f), 50, 1);
  tr::normalize_rows(b);
  CHECK(b.size() == 100);
}

TEST_CASE("model norms: values and duals from steep's block norms", "[margins]") {
  steep::param_store<double> s(
    { { "W1", { 2, 2 } }, steep::block_spec<double>("W2", { 1, 2 }, steep::block_role::head) });
  auto* w = s.block_named("W1").param; // [[3, 0], [0, -4]]
  w[0] = 3, w[3] = -4;
  auto* a = s.block_named("W2").param; // [1, -2]
  a[0] = 1, a[1] = -2;
  CHECK(tr::model_norm::l2().value(s) == Approx(std::sqrt(9.0 + 16 + 1 + 4)));
  CHECK(tr::model_norm::linf().value(s) == Approx(4));
  CHECK(tr::model_norm::l1().value(s) == Approx(10));
  CHECK(tr::model_norm::spectral_max().value(s) == Approx(4));                 // max(4, ||a||_2 = sqrt 5)
  CHECK(tr::model_norm::hybrid(0.25).value(s) == Approx(2));                   // max(0.25 * 4, ||a||_inf = 2)
  CHECK(tr::model_norm::hybrid(0.25).dual().value(s) == Approx(7 / 0.25 + 3)); // nuclear / c + l1
  CHECK(tr::model_norm::l2().dual().value(s) == Approx(tr::model_norm::l2().value(s)));
  CHECK(tr::model_norm::linf().dual().value(s) == Approx(10));
  CHECK_THROWS_WITH(tr::model_norm::hybrid(-1), Catch::Contains("positive"));
}

TEST_CASE("KKT certificate: rho = 1 at the max-margin direction, < 1 away from it", "[margins]") {
  // A linear model (degree 1) on two points: x1 = (1, 0) labelled +1, x2 = (0, 1) labelled -1.
  // The l2 (and l_inf) max-margin direction is (1, -1).
  using net_t = md::mlp_t<1, md::identity>;
  md::network<net_t, double> net({ 2, 1 }, 2);
  tr::dataset<double> d;
  d.dim = 2;
  d.x = { 1, 0, 0, 1 };
  d.labels = { 1, -1 };
  tr::margin_meter<net_t, double> meter(net, d, md::loss_fn{ md::loss_kind::exponential });
  auto* w = net.store().block_at(0).param;
  w[0] = 40, w[1] = -40;
  auto r = meter.measure({ tr::model_norm::l2(), tr::model_norm::linf() });
  CHECK(r.at("l2").rho == Approx(1).epsilon(1e-12));
  CHECK(r.at("l2").gamma == Approx(40 / std::sqrt(3200.0)));
  CHECK(r.at("linf").rho == Approx(1).epsilon(1e-12));
  CHECK(r.at("l2").kkt_delta == Approx(0).margin(1e-12));
  w[0] = 40, w[1] = -20; // margins 40 and 20: the weight sits on x2, v ~ (0, -1)
  r = meter.measure({ tr::model_norm::l2() });
  CHECK(r.at("l2").rho == Approx(20 / std::sqrt(2000.0)).epsilon(1e-6));
  CHECK(r.at("l2").kkt_eps > 0.8);
  CHECK(r.q_min == Approx(20));
}

TEST_CASE("linear sanity (E1): MomentumGD wins l2, Signum wins l_inf, each certified", "[margins]") {
  using net_t = md::mlp_t<1, md::identity>;
  auto d = tr::synthetic_separable<double>({ .samples = 40, .dim = 10, .gap = 0.15, .seed = 5 });
  md::network<net_t, double> net({ 10, 1 }, d.size());
  tr::full_batch<net_t, double> task(net, d, md::loss_fn{ md::loss_kind::exponential });
  const std::vector<tr::model_norm> norms{ tr::model_norm::l2(), tr::model_norm::linf() };
  auto run = [&](auto rule) {
    net.init_gaussian(0.01, 1);
    steep::optimizer opt(rule, net.store(), { .threads = 1 });
    return tr::fit(task, opt, { .steps = 4000, .records = 5, .norms = norms }).records.back().margins;
  };
  using steep::expr::inv_power;
  const auto gd = run(steep::rules::momentum_gd(inv_power(0.5, 0.5), 0.9));
  const auto sg = run(steep::rules::signum(inv_power(0.05, 0.5), 0.9));
  CHECK(gd.at("l2").gamma > sg.at("l2").gamma);
  CHECK(sg.at("linf").gamma > gd.at("linf").gamma);
  CHECK(1 - gd.at("l2").rho < 1e-2);
  CHECK(1 - sg.at("linf").rho < 1e-2);
  CHECK(1 - gd.at("linf").rho > 1e-2); // the mismatched norm stays uncertified
}

TEST_CASE("implied_norm_of: a route's hybrid weight is its learning-rate ratio", "[implied]") {
  using steep::expr::inv_power;

  const auto h = tr::implied_norm_of(rl::muon_adam_paper(inv_power(0.02, 0.8), inv_power(0.002, 0.8)));
  CHECK(h.name == "hybrid");
  CHECK(h.hidden.weight == Approx(0.1));
  CHECK(h.other.weight == 1);
  CHECK(h.hidden.norm == steep::norms::block_norm_of<steep::norms::spectral>);
  CHECK(h.other.norm == steep::norms::block_norm_of<steep::norms::linf>);
  CHECK(tr::implied_norm_of(rl::muon_signum_paper(0.1, 0.1)).hidden.weight == Approx(1));
  CHECK(tr::implied_norm_of(rl::momentum_gd(0.1)).name == "l2");
  CHECK(tr::implied_norm_of(rl::adam_paper(0.1)).name == "linf");
  CHECK(tr::implied_norm_of(rl::muon_paper(0.1)).name == "spectral");
  CHECK_THROWS_WITH(tr::implied_norm_of(rl::muon_adam_paper(inv_power(0.02, 0.8), inv_power(0.002, 0.5))),
                    Catch::Contains("fixed ratio"));
  CHECK_THROWS_WITH(tr::implied_norm_of(rl::adam(0.1)), Catch::Contains("eps"));
}

TEST_CASE("fit records log-spaced steps and cosines to the final iterate", "[train]") {
  const auto s = tr::record_steps(1000, 10);
  CHECK(s.front() == 0);
  CHECK(s.back() == 1000);
  CHECK(std::is_sorted(s.begin(), s.end()));
  CHECK(s.size() >= 8);
}

TEST_CASE("gradient rescaling is exact: the same trajectory as raw gradients, and it goes on past 1e-300",
          "[train]") {
  using net_t = md::mlp_t<2, md::relu_pow<2>>;
  auto d = tr::synthetic_separable<double>({ .samples = 30, .dim = 6, .gap = 0.2, .seed = 2 });
  md::network<net_t, double> net({ 6, 5, 1 }, d.size());
  tr::full_batch<net_t, double> task(net, d, md::loss_fn{ md::loss_kind::exponential });
  using steep::expr::inv_power;

  auto run = [&](auto rule, bool rescale, std::int64_t steps, int* rescales = nullptr) {
    net.init_gaussian(0.5, 3);
    steep::optimizer opt(rule, net.store(), { .threads = 1 });
    const auto h = tr::fit(
      task, opt, { .steps = steps, .records = 3, .norms = { tr::model_norm::l2() }, .rescale = rescale });
    if (rescales)
      *rescales = h.rescales;
    return std::make_pair(h.theta, h.records.back().margins.log_loss);
  };
  auto check_same = [&](auto rule, int min_rescales) {
    int n = 0;
    const auto a = run(rule, true, 600, &n);
    const auto b = run(rule, false, 600);
    INFO("final log loss " << a.second << ", rescales " << n);
    CHECK(n >= min_rescales); // the scale moved during the run
    double diff = 0, norm = 0;
    for (std::size_t i = 0; i < a.first.size(); ++i)
      diff = std::max(diff, std::abs(a.first[i] - b.first[i])), norm = std::max(norm, std::abs(b.first[i]));
    CHECK(diff <= 1e-9 * norm);
  };
  check_same(rl::momentum_gd(2.0), 2);
  check_same(rl::signum(0.05), 2);
  check_same(rl::muon_paper(0.3), 2);
  check_same(rl::muon_signum_paper(0.3, 0.05), 2);
  // Adam's v remembers old, larger gradients (beta2 = 0.999): its scale holds the shift, and the
  // run must still match.
  check_same(rl::adam_paper(0.05), 0);
  // Scale-dependent rules are left alone. (Constant learning rates: the loss falls fast, which is
  // all this test needs.)
  int n = 0;
  run(rl::adam(0.05), true, 50, &n);
  CHECK(n == 0);
  steep::param_store<double> small({ { "W", { 2, 2 } } });
  CHECK_FALSE(tr::gradient_scale(steep::optimizer(rl::adam(0.1), small)).available());
  CHECK(tr::gradient_scale(steep::optimizer(rl::signum(0.1), small)).available());
  // The type-erased optimizer rescales as its typed one: no rule type is read.
  steep::any_optimizer<double> erased = steep::optimizer(rl::muon_signum_paper(0.3, 0.05), small);
  CHECK(tr::gradient_scale(erased).enabled());
  // fit takes any optimizer: behind any_optimizer, the same rescales and the same bits.
  {
    net.init_gaussian(0.5, 3);
    steep::any_optimizer<double> any(rl::muon_signum_paper(0.3, 0.05), net.store(), { .threads = 1 });
    const auto h = tr::fit(task, any, { .steps = 600, .records = 3, .norms = { tr::model_norm::l2() } });
    int typed_rescales = 0;
    const auto typed = run(rl::muon_signum_paper(0.3, 0.05), true, 600, &typed_rescales);
    CHECK(h.rescales == typed_rescales);
    CHECK(h.theta == typed.first);
  }
  // Far into the margin regime: training goes on where raw gradients underflow.
  const auto deep = run(rl::muon_signum_paper(0.3, 0.05), true, 3000);
  INFO("deep log loss " << deep.second);
  CHECK(deep.second < std::log(1e-300));
  CHECK(std::isfinite(deep.second));
}

namespace {
// What the implied-norm analysis calls a slot (momentum: 1, second moment: 2), as a degree.
template <class S>
double implied_degree() {
  using C = tr::implied::classify_t<S>;
  return std::is_same_v<C, tr::implied::momentum> ? 1.0 : std::is_same_v<C, tr::implied::second> ? 2.0 : -1.0;
}
template <class R>
struct degree_check {
  static void run(std::string_view name) {
    using P = steep::expr::program<R>;
    INFO(name);
    // A rule the theory calls scale invariant is of degree 0 to the engine, so gradient rescaling
    // (train/rescale.hpp) still takes it, and its slots have the degrees the analysis gives them.
    if (tr::implied_norm<R>::scale_invariant)
      CHECK(steep::expr::gradient_degree<R>.or_nan() == 0);
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (
        [&] {
          using S = typename P::template slot_t<K>;
          INFO(P::slot_name(K));
          if (implied_degree<S>() > 0)
            CHECK(steep::expr::gradient_degree<S>.or_nan() == implied_degree<S>());
        }(),
        ...);
    }
    (std::make_index_sequence<P::n_slots>{});
  }
};
template <class... Arms>
struct degree_check<steep::expr::routed<Arms...>> {
  static void run(std::string_view name) { (degree_check<typename Arms::rule_type>::run(name), ...); }
};
} // namespace

TEST_CASE("degrees in the gradient: what rescaling reads agrees with the implied-norm analysis", "[train]") {
  using steep::expr::gradient_degree;
  static_assert(gradient_degree<decltype(rl::adam_eps0(1e-3))>.or_nan() == 0);
  static_assert(gradient_degree<decltype(rl::signum(1e-3))>.or_nan() == 0);
  static_assert(gradient_degree<decltype(rl::muon_exact(0.02))>.or_nan() == 0);
  // A route's degree is its arms' common one (muon_paper routes the head to its own arm).
  static_assert(steep::optimizer<decltype(rl::muon_paper(0.02)), double>::gradient_degree() == 0);
  static_assert(gradient_degree<decltype(rl::sgd(0.1))>.or_nan() == 1);
  static_assert(!gradient_degree<decltype(rl::adam(1e-3))>.homogeneous(), "sqrt(v) + eps: no degree");
  static_assert(!gradient_degree<decltype(rl::adam_mini(1e-3))>.homogeneous());
  std::size_t n = 0;
  steep::rules::for_each_catalogue_rule([&](std::string_view name, const auto& rule, steep::rules::takes) {
    degree_check<std::remove_cvref_t<decltype(rule)>>::run(name);
    ++n;
  });
  CHECK(n >= 40);
  // The optimizer reports them: Adam's moments are of degree 1 and 2.
  steep::param_store<float> s({ { "b", { 3 } } });
  steep::optimizer opt(rl::adam_eps0(1e-3), s);
  CHECK(opt.gradient_degree() == 0);
  CHECK(opt.slots().at(0).degree == 1);
  CHECK(opt.slots().at(1).degree == 2);
}
