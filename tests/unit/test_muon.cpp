// Matrix stages and hybrids: Newton-Schulz and exact polar as maps, the matrix phase
// of the optimizer, the Muon family, and route(...) by block role.

#include "bits.hpp"
#include "matrix_state.hpp"
#include "variants.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <steep/steep.hpp>
#include <steep/xtensor.hpp>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>
#include <xtensor/xview.hpp>

using namespace steep::expr;
namespace rules = steep::rules;
namespace norms = steep::norms;
using steep::block_role;
using steep_test::variant_error;

namespace {

template <class T>
std::vector<T> random_matrix(std::size_t n, unsigned seed, double scale = 1.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> d;
  std::vector<T> v(n);
  for (auto& x : v)
    x = static_cast<T>(scale * d(gen));
  return v;
}

using steep_test::gram; // M M^T (rows x rows) for a row-major rows x cols matrix (variants.hpp)

std::vector<double> transpose(const std::vector<double>& m, std::size_t rows, std::size_t cols) {
  std::vector<double> t(m.size());
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j)
      t[j * rows + i] = m[i * cols + j];
  return t;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

const std::string golden_dir = STEEP_GOLDEN_DIR;

xt::xarray<double> load(const std::string& rel) { return xt::load_npy<double>(golden_dir + "/" + rel); }

} // namespace

TEST_CASE("Newton-Schulz: the SYRK/SYMM form equals the plain GEMM form, wide and tall") {
  for (auto [r, c] : std::vector<std::pair<std::size_t, std::size_t>>{
         { 48, 32 }, { 16, 40 }, { 8, 8 }, { 1, 7 }, { 7, 1 }, { 65, 3 }, { 3, 65 } }) {
    auto x = random_matrix<double>(r * c, 7 + static_cast<unsigned>(r));
    auto y = x;
    norms::newton_schulz{}.apply(x.data(), r, c);
    norms::newton_schulz{ .symmetric = false }.apply(y.data(), r, c);
    INFO(r << "x" << c);
    CHECK(max_abs_diff(x, y) < 1e-13);
  }
}

TEST_CASE("Newton-Schulz pushes singular values near 1; more steps of a convergent schedule reach the polar "
          "factor") {
  const std::size_t r = 12, c = 20;
  auto g = random_matrix<double>(r * c, 3);
  auto ns = g;
  norms::newton_schulz{}.apply(ns.data(), r, c);
  // The quintic's fixed band: every singular value of NS(G) within about [0.68, 1.2].
  auto gg = gram(ns, r, c);
  for (std::size_t i = 0; i < r; ++i)
    CHECK(gg[i * r + i] > 0.3); // diagonal of (U S^2 U^T) stays well away from 0
  // The cubic Newton-Schulz (1.5, -0.5, 0) converges to the exact polar factor.
  auto cubic = g;
  norms::newton_schulz{ .steps = 60, .coefficients = { 1.5, -0.5, 0.0 } }.apply(cubic.data(), r, c);
  auto exact = g;
  norms::exact_polar{}.apply(exact.data(), r, c);
  CHECK(max_abs_diff(cubic, exact) < 1e-10);
  // A schedule is one triple per step.
  auto sched = g;
  norms::newton_schulz{ .schedule = norms::ns_schedule(60, { 1.5, -0.5, 0.0 }) }.apply(sched.data(), r, c);
  CHECK(max_abs_diff(sched, cubic) == 0.0);
  // A schedule holds its steps in place (so a Muon rule is copied as plain memory), up to a
  // capacity; one more step is refused, saying how to run a longer constant schedule.
  static_assert(std::is_trivially_copyable_v<norms::newton_schulz>);
  static_assert(std::is_trivially_copyable_v<decltype(rules::muon(0.02, 0.1, 0.95, norms::polar_express()))>);
  CHECK(norms::polar_express(9).schedule.size() == 9);
  CHECK(norms::ns_schedule(norms::ns_schedule::capacity, { 1.5, -0.5, 0.0 }).size() ==
        norms::ns_schedule::capacity);
  REQUIRE_THROWS_WITH(norms::ns_schedule(norms::ns_schedule::capacity + 1, { 1.5, -0.5, 0.0 }),
                      Catch::Contains("at most 64 steps") && Catch::Contains("`steps` and `coefficients`"));
  CHECK(norms::newton_schulz{ .schedule = { { 4, -5, 2 }, { 3.4, -4.7, 2 } } }.step_count() == 2);
}

TEST_CASE("exact polar: orthonormal, <G, UV^T> = nuclear norm, zero and rank-deficient blocks") {
  const std::size_t r = 9, c = 5;
  auto g = random_matrix<double>(r * c, 11);
  auto p = g;
  norms::exact_polar{}.apply(p.data(), r, c);
  // Tall: P^T P = I (c x c).
  auto ptp = gram(transpose(p, r, c), c, r);
  for (std::size_t i = 0; i < c; ++i)
    for (std::size_t j = 0; j < c; ++j)
      CHECK(std::abs(ptp[i * c + j] - (i == j ? 1.0 : 0.0)) < 1e-13);
  // Zero in, zero out (never NaN, never an arbitrary rotation).
  std::vector<double> z(r * c, 0.0);
  norms::exact_polar{}.apply(z.data(), r, c);
  CHECK(std::all_of(z.begin(), z.end(), [](double v) { return v == 0.0; }));
  std::vector<double> zn(r * c, 0.0);
  norms::newton_schulz{}.apply(zn.data(), r, c);
  CHECK(std::all_of(zn.begin(), zn.end(), [](double v) { return v == 0.0; }));
  // Rank one: u v^T / (|u||v|).
  std::vector<double> u = { 1, 2, 0, -1 }, v = { 3, 0, 4 };
  std::vector<double> rank1(12);
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      rank1[i * 3 + j] = u[i] * v[j];
  norms::exact_polar{}.apply(rank1.data(), 4, 3);
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      CHECK(rank1[i * 3 + j] == Approx(u[i] * v[j] / (std::sqrt(6.0) * 5.0)).margin(1e-14));
}

TEST_CASE("the compiler sees a matrix stage: one more pass, a scratch arena, a per-block lr scale") {
  using P = program<decltype(rules::muon(0.02))>;
  STATIC_REQUIRE(P::n_matrices == 1);
  STATIC_REQUIRE(P::n_slots == 1);
  STATIC_REQUIRE(P::passes == 2);
  STATIC_REQUIRE(P::n_block_scalars >= 1);
  STATIC_REQUIRE(program<decltype(rules::adam(1e-3))>::n_matrices == 0);
  steep::param_store<float> store({ { "W", { 4, 6 } } });
  steep::optimizer opt(rules::muon(0.02), store);
  // describe() counts the passes over memory it lists; the matrix phase runs between them.
  CHECK_THAT(
    opt.describe(),
    Catch::Contains("passes: 2 (matrix pre-pass, update), and the matrix phase after the matrix pre-pass") &&
      Catch::Contains("matrix stages: 1 (each block)"));
  // A sliced stage says so, with its slices' shape.
  steep::param_store<float> experts({ { "E", { 8, 6 } } });
  CHECK_THAT(steep::optimizer(rules::muon_stacked(0.02, 4, 6), experts).describe(),
             Catch::Contains("matrix stages: 1 (each 4 x 6 slice)"));
  CHECK(opt.slots().at(0).name == "momentum_buffer");
}

TEST_CASE("Muon on a vector or an embedding is refused at construction, naming the block") {
  steep::param_store<double> store({ { "W", { 4, 6 } }, { "v", { 5 } } });
  store.param("W").fill(1.0);
  REQUIRE_THROWS_WITH(steep::optimizer(rules::muon(0.02), store),
                      Catch::Contains("block 'v'") && Catch::Contains("not a matrix"));
  steep::param_store<double> emb({ { "E", { 10, 4 }, block_role::embedding } });
  REQUIRE_THROWS_WITH(steep::optimizer(rules::muon(0.02), emb), Catch::Contains("block 'E'") &&
                                                                  Catch::Contains("embedding") &&
                                                                  Catch::Contains("explicitly"));
  CHECK(store.param("W")(0, 0) == 1.0); // nothing touched
}

TEST_CASE("route: Muon-Adam over one store equals the golden muon_adam trajectory") {
  const auto& names = std::vector<std::string>{ "W1", "W2", "W3", "v" };
  std::vector<steep::block_spec<double>> specs;
  for (auto& n : names) {
    auto init = load("inputs/init_" + n + ".npy");
    specs.emplace_back(n, steep::shape_t(init.shape().begin(), init.shape().end()));
  }
  steep::param_store<double> store(specs);
  for (auto& n : names)
    steep::as_xtensor(store.param(n)) = load("inputs/init_" + n + ".npy");
  // Manifest: muon lr 0.02, wd 0.1, momentum 0.95 on W*; Adam lr 0.01 (0.9, 0.999, 1e-8) on v.
  steep::optimizer opt(rules::muon_adam(0.02, 0.01), store, { .threads = 2 });
  CHECK(opt.arm_of("W1") == 0);
  CHECK(opt.arm_of("v") == 1);
  double worst = 0;
  for (std::size_t t = 0; t < 12; ++t) {
    for (auto& n : names)
      steep::as_xtensor(store.grad(n)) = xt::view(load("inputs/grads_" + n + ".npy"), t);
    opt.step();
    for (auto& n : names) {
      xt::xarray<double> want = xt::view(load("cases/muon_adam/" + n + ".npy"), t);
      xt::xarray<double> got = steep::as_xtensor(store.param(n));
      const double rel =
        std::sqrt(xt::sum(xt::square(got - want))()) / std::sqrt(xt::sum(xt::square(want))());
      worst = std::max(worst, rel);
    }
  }
  CHECK(worst < 1e-12);
  CHECK(opt.steps() == 12);
  // The Adam arm's state lives under the Adam arm; Muon's under Muon's.
  CHECK(opt.state("v", "exp_avg").size() == 40);
  CHECK(opt.state("W2", "momentum_buffer").shape(0) == 16);
  CHECK_THROWS_WITH(opt.state("W2", "exp_avg"), Catch::Contains("block 'W2'"));
}

TEST_CASE("route: arms get the roles they claim; explicit opt-in runs Muon on an embedding") {
  steep::param_store<double> store({ { "E", { 6, 4 }, block_role::embedding },
                                     { "W", { 4, 4 } },
                                     { "H", { 3, 4 }, block_role::head },
                                     { "b", { 4 } } });
  for (auto& b : store.blocks()) {
    auto g = random_matrix<double>(b.size, static_cast<unsigned>(b.size));
    std::copy(g.begin(), g.end(), b.grad);
  }
  auto rule = steep::route(steep::on<block_role::hidden_matrix, block_role::embedding>.explicitly() >>
                             rules::muon(0.02),
                           steep::otherwise >> rules::signum(0.01));
  steep::optimizer opt(rule, store);
  CHECK(opt.arm_of("E") == 0);
  CHECK(opt.arm_of("W") == 0);
  CHECK(opt.arm_of("H") == 1);
  CHECK(opt.arm_of("b") == 1);
  opt.step();
  // Signum moved H and b by exactly lr in every coordinate with a nonzero gradient.
  CHECK(std::abs(store.param("b")(0)) == Approx(0.01));
  // A route that leaves a role unclaimed says so, naming the block.
  auto partial = steep::route(steep::on<block_role::hidden_matrix> >> rules::muon(0.02));
  CHECK_THROWS_WITH(steep::optimizer(partial, store),
                    Catch::Contains("block 'E'") && Catch::Contains("no arm"));
}

TEST_CASE("matrix phase: 1 and 2 threads, batched and one-by-one, agree") {
  auto run = [](int threads) {
    std::vector<steep::block_spec<double>> specs;
    for (int i = 0; i < 5; ++i)
      specs.emplace_back("W" + std::to_string(i), steep::shape_t{ 24, 40 });
    steep::param_store<double> store(specs);
    for (std::size_t b = 0; b < store.size(); ++b) {
      auto g = random_matrix<double>(24 * 40, static_cast<unsigned>(b + 1));
      std::copy(g.begin(), g.end(), store.block_at(b).grad);
    }
    steep::optimizer opt(rules::muon(0.02), store, { .threads = threads });
    for (int t = 0; t < 3; ++t)
      opt.step();
    std::vector<double> out;
    for (auto& b : store.blocks())
      out.insert(out.end(), b.param, b.param + b.size);
    return out;
  };
  const auto one = run(1), two = run(2), eight = run(8);
  CHECK(max_abs_diff(one, two) < 1e-13);
  CHECK(max_abs_diff(one, eight) < 1e-13);
}

// ---- dual<N>(x): any steep norm's dual map as a stage ------------------------------------------

namespace {
steep::param_store<double> grads_store(std::vector<steep::block_spec<double>> specs, unsigned seed) {
  steep::param_store<double> s(std::move(specs));
  for (auto& b : s.blocks()) {
    auto g = random_matrix<double>(b.size, seed++);
    std::copy(g.begin(), g.end(), b.grad);
  }
  return s;
}
std::vector<double> moved(const steep::param_store<double>& s, std::size_t b) {
  return { s.block_at(b).param, s.block_at(b).param + s.block_at(b).size };
}
} // namespace

TEST_CASE("dual<linf> is sign, dual<l2> is per-block normalization; zero blocks stay zero") {
  auto s = grads_store({ { "W", { 6, 5 } }, { "v", { 9 } }, { "z", { 4 } } }, 5);
  std::fill(s.block_at(2).grad, s.block_at(2).grad + 4, 0.0);
  steep::optimizer opt(-1.0 * dual<norms::l2>(grad) + 0.0 * dual<norms::linf>(grad), s);
  STATIC_REQUIRE(decltype(opt)::program_type::n_matrices == 0); // both fuse: a reduction, no matrix phase
  opt.step();
  for (std::size_t b = 0; b < 2; ++b) {
    double nrm = 0;
    for (std::size_t i = 0; i < s.block_at(b).size; ++i)
      nrm += s.block_at(b).param[i] * s.block_at(b).param[i];
    CHECK(std::sqrt(nrm) == Approx(1.0).epsilon(1e-14));
  }
  for (double x : moved(s, 2))
    CHECK(x == 0.0);
}

TEST_CASE("dual<spectral> runs the exact polar factor: <g, d> = ||g||_nuclear, ||d||_spectral = 1") {
  auto s = grads_store({ { "A", { 7, 4 } }, { "B", { 3, 8 } } }, 21);
  std::vector<std::vector<double>> g;
  for (auto& b : s.blocks())
    g.emplace_back(b.grad, b.grad + b.size);
  steep::optimizer opt(-1.0 * dual<norms::spectral>(grad), s);
  opt.step();
  for (std::size_t b = 0; b < 2; ++b) {
    const auto& blk = s.block_at(b);
    auto d = moved(s, b);
    for (auto& x : d)
      x = -x;
    norms::matrix_ref<const double> gr{ g[b].data(), blk.shape[0], blk.shape[1] };
    norms::matrix_ref<const double> dr{ d.data(), blk.shape[0], blk.shape[1] };
    CHECK(norms::inner(gr, dr) == Approx(norms::value<norms::nuclear>(gr)).epsilon(1e-12));
    CHECK(norms::value<norms::spectral>(dr) == Approx(1.0).epsilon(1e-12));
  }
  // A matrix-only norm on a vector block is refused when the optimizer is built.
  auto v = grads_store({ { "v", { 9 } } }, 3);
  CHECK_THROWS_WITH(steep::optimizer(-1.0 * dual<norms::spectral>(grad), v), Catch::Contains("block 'v'"));
}

TEST_CASE("dual<N> for the other norms runs the norm's own dual map per block") {
  auto s = grads_store({ { "W", { 5, 6 } } }, 8);
  std::vector<double> g(s.block_at(0).grad, s.block_at(0).grad + 30);
  SECTION("l2_to_linf (Scion's row norm): every row of the step has unit l2 norm") {
    steep::optimizer opt(-1.0 * dual<norms::l2_to_linf>(grad), s);
    opt.step();
    auto d = moved(s, 0);
    for (std::size_t i = 0; i < 5; ++i) {
      double r = 0;
      for (std::size_t j = 0; j < 6; ++j)
        r += d[i * 6 + j] * d[i * 6 + j];
      CHECK(std::sqrt(r) == Approx(1.0).epsilon(1e-14));
    }
  }
  SECTION("l1 (coordinate descent): one coordinate, at argmax |g|, moves by 1") {
    steep::optimizer opt(-1.0 * dual<norms::l1>(grad), s);
    opt.step();
    auto d = moved(s, 0);
    const auto k = static_cast<std::size_t>(
      std::max_element(g.begin(), g.end(), [](double a, double b) { return std::abs(a) < std::abs(b); }) -
      g.begin());
    for (std::size_t i = 0; i < 30; ++i)
      CHECK(d[i] == (i == k ? -(g[k] > 0 ? 1.0 : -1.0) : 0.0));
  }
}

TEST_CASE("fan axes: Muon on a JAX-layout (in, out) weight is Muon on its torch-layout transpose") {
  const std::size_t out = 6, in = 10;
  auto g = random_matrix<double>(out * in, 31);
  steep::param_store<double> torch_like({ { "W", { out, in } } });
  steep::param_store<double> jax_like(
    { steep::block_spec<double>("W", { in, out }).with_layout(steep::weight_layout::in_out) });
  std::copy(g.begin(), g.end(), torch_like.block_at(0).grad);
  auto gt = transpose(g, out, in);
  std::copy(gt.begin(), gt.end(), jax_like.block_at(0).grad);
  steep::optimizer a(rules::muon(0.02), torch_like);
  steep::optimizer b(rules::muon(0.02), jax_like);
  a.step();
  b.step();
  // The lr factor sqrt(max(1, fan_out/fan_in)) is 1 for both; the maps are transposes.
  auto pa = moved(torch_like, 0);
  auto pb = transpose(moved(jax_like, 0), in, out);
  CHECK(max_abs_diff(pa, pb) < 1e-15);
  // A wide torch weight (out > in) gets sqrt(out/in) whichever way it is stored.
  CHECK(steep::expr::lr_scale(lr_adjust::original, steep::expr::dims_of({ 12, 3 })) == Approx(2.0));
  CHECK(steep::expr::lr_scale(lr_adjust::original,
                              steep::expr::dims_of({ 3, 12 }, steep::weight_layout::in_out)) == Approx(2.0));
}

TEST_CASE("a NaN gradient in a Muon block refuses the step, naming the block; nothing changes") {
  auto s = grads_store({ { "W1", { 4, 6 } }, { "W2", { 6, 4 } } }, 40);
  steep::optimizer opt(rules::muon(0.02), s, { .threads = 2 });
  opt.step();
  const auto p1 = moved(s, 0), p2 = moved(s, 1);
  const std::vector<double> m1(opt.state("W1", "momentum_buffer").begin(),
                               opt.state("W1", "momentum_buffer").end());
  s.block_at(1).grad[5] = std::nan("");
  CHECK_THROWS_WITH(opt.step(), Catch::Contains("block 'W2'") && Catch::Contains("non-finite") &&
                                  Catch::Contains("flat index 5"));
  CHECK(moved(s, 0) == p1);
  CHECK(moved(s, 1) == p2);
  CHECK(std::vector<double>(opt.state("W1", "momentum_buffer").begin(),
                            opt.state("W1", "momentum_buffer").end()) == m1);
  CHECK(opt.steps() == 1);
  s.block_at(1).grad[5] = 0.5; // fixed: the next step goes through
  opt.step();
  CHECK(opt.steps() == 2);
}

TEST_CASE("a routed rule works behind any_optimizer too") {
  auto s = grads_store({ { "W", { 4, 6 } }, { "b", { 4 } } }, 50);
  auto opt = steep::make_any_optimizer(rules::muon_signum(0.02, 0.01), s);
  opt->step();
  CHECK(opt->steps() == 1);
  CHECK(opt->describe().find("arm 0: blocks W") != std::string::npos);
  REQUIRE(opt->slots().size() == 1); // both arms call their buffer momentum_buffer (torch's name)
  CHECK(opt->slots()[0].name == "momentum_buffer");
}

TEST_CASE("route: a named hyperparameter is set in every arm that has it, and unknown names are refused") {
  auto s = grads_store({ { "W", { 4, 6 } }, { "b", { 4 } } }, 60);
  auto rule = steep::route(steep::on<block_role::hidden_matrix> >> rules::muon(hyper<"lr">(0.02)),
                           steep::otherwise >> rules::signum(hyper<"lr">(0.01), 0.9));
  steep::optimizer opt(rule, s);
  // The arms disagree: a plain read is ambiguous, an arm's own is not.
  CHECK_THROWS_WITH(opt.get("lr"), Catch::Contains("differs between the route's arms"));
  CHECK(opt.get("arm0/lr") == 0.02);
  CHECK(opt.get("arm1/lr") == 0.01);
  opt.set("lr", 0.005); // every arm
  CHECK(opt.get("lr") == 0.005);
  opt.step();
  CHECK(std::abs(s.param("b")(0)) == Approx(0.005)); // Signum's arm took the new lr too
  CHECK_THROWS_WITH(opt.set("gamma", 0.9), Catch::Contains("no arm of the route has a hyperparameter"));
  CHECK_THROWS_WITH(opt.get("delta"), Catch::Contains("'delta'"));
}

TEST_CASE("route by name (glob), by index and by predicate: Scion's ColNorm / spectral / sign recipe") {
  // Scion (Pethick et al. 2025): ColNorm (the l1->l2 operator norm's dual map) on the input layer,
  // spectral on hidden matrices, sign on the output layer -- the input layer is a hidden matrix by
  // role, so only its name can single it out.
  steep::param_store<double> store({ { "layers.0.weight", { 5, 4 } },
                                     { "layers.1.weight", { 5, 5 } },
                                     { "layers.2.weight", { 3, 5 }, block_role::head },
                                     { "bias", { 5 } } });
  for (auto& b : store.blocks()) {
    auto g = random_matrix<double>(b.size, static_cast<unsigned>(b.size + 7));
    std::copy(g.begin(), g.end(), b.grad);
  }
  auto scion = steep::route(steep::on_name("layers.0.*") >> -0.1 * dual<norms::l1_to_l2>(grad),
                            steep::on<block_role::hidden_matrix> >> -0.1 * dual<norms::spectral>(grad),
                            steep::otherwise >> -0.01 * sign(grad));
  steep::optimizer opt(scion, store);
  CHECK(opt.arm_of("layers.0.weight") == 0);
  CHECK(opt.arm_of("layers.1.weight") == 1);
  CHECK(opt.arm_of("layers.2.weight") == 2);
  CHECK(opt.arm_of("bias") == 2);
  opt.step();
  // ColNorm: every column of the update has l2 norm 0.1.
  const auto w0 = store.param("layers.0.weight");
  for (std::size_t c = 0; c < 4; ++c) {
    double n = 0;
    for (std::size_t r = 0; r < 5; ++r)
      n += w0(r, c) * w0(r, c);
    CHECK(std::sqrt(n) == Approx(0.1));
  }
  CHECK(std::abs(store.param("bias")(2)) == Approx(0.01));

  // By position and by predicate.
  steep::param_store<double> s2({ { "a", { 4, 4 } }, { "b", { 4, 4 } }, { "c", { 8, 4 } } });
  auto by_index = steep::route(steep::on_index({ 1 }) >> -0.1 * sign(grad), steep::otherwise >> -0.1 * grad);
  CHECK(steep::optimizer(by_index, s2).arm_of("b") == 0);
  CHECK(steep::optimizer(by_index, s2).arm_of("a") == 1);
  auto wide =
    steep::route(steep::on_if([](const steep::block_info& b) { return b.shape[0] > 4; }) >> -0.1 * grad,
                 steep::otherwise >> -0.1 * sign(grad));
  CHECK(steep::optimizer(wide, s2).arm_of("c") == 0);
  CHECK(steep::optimizer(wide, s2).arm_of("a") == 1);

  // The opt-in holds for run-time arms: Muon on a head selected by name needs .explicitly(), and
  // the refusal names the block; a vector is refused even then.
  auto head_muon =
    steep::route(steep::on_name("layers.2.*") >> rules::muon(0.02), steep::otherwise >> rules::signum(0.01));
  // The refusal says which arm caught which block, and what to change in the route.
  CHECK_THROWS_WITH(steep::optimizer(head_muon, store),
                    Catch::Contains("block 'layers.2.weight'") && Catch::Contains("arm 0 of the route") &&
                      Catch::Contains("add .explicitly() to arm 0's selector"));
  auto head_ok = steep::route(steep::on_name("layers.2.*").explicitly() >> rules::muon(0.02),
                              steep::otherwise >> rules::signum(0.01));
  CHECK_NOTHROW(steep::optimizer(head_ok, store));
  auto vec = steep::route(steep::on_name("bias").explicitly() >> rules::muon(0.02),
                          steep::otherwise >> rules::signum(0.01));
  CHECK_THROWS_WITH(steep::optimizer(vec, store),
                    Catch::Contains("block 'bias'") && Catch::Contains("arm 0 of the route") &&
                      Catch::Contains("not a matrix") && Catch::Contains("Narrow arm 0's selector") &&
                      !Catch::Contains("with steep::route(...)"));
  // Outside a route the advice is to route the block.
  steep::param_store<float> plain({ { "bias", { 4 } } });
  CHECK_THROWS_WITH(steep::optimizer(rules::muon(0.02), plain),
                    Catch::Contains("block 'bias'") && Catch::Contains("route it to an elementwise rule"));
}

TEST_CASE("Polar Express: the published coefficient table, against a float64 NumPy reference") {
  // tests/data/polar_express is written by scripts/reference-variants.py (Algorithm 1 of
  // Amsel et al. 2025 in float64).
  for (const std::string shape : { "wide", "tall" }) {
    const auto g = xt::load_npy<double>(golden_dir + "/../polar_express/" + shape + "_input.npy");
    const std::size_t rows = g.shape()[0], cols = g.shape()[1];
    for (int steps : { 5, 10 }) {
      const auto ref = xt::load_npy<double>(golden_dir + "/../polar_express/" + shape + "_steps" +
                                            std::to_string(steps) + ".npy");
      for (bool symmetric : { true, false }) {
        std::vector<double> x(g.begin(), g.end());
        auto pe = norms::polar_express(steps);
        pe.symmetric = symmetric;
        pe.apply(x.data(), rows, cols);
        double err = 0;
        for (std::size_t i = 0; i < x.size(); ++i)
          err = std::max(err, std::abs(x[i] - ref.flat(i)));
        INFO(shape << ", " << steps << " steps, symmetric " << symmetric);
        CHECK(err < 1e-13);
      }
    }
    // Unlike Muon's quintic, it converges: after 10 steps every singular value is 1 to 1e-6, and after 5
    // it is closer to the polar factor than the quintic's 5 steps.
    auto dist_to_polar = [&](const norms::newton_schulz& ns) {
      std::vector<double> x(g.begin(), g.end()), p(g.begin(), g.end());
      ns.apply(x.data(), rows, cols);
      norms::exact_polar{}.apply(p.data(), rows, cols);
      double d = 0;
      for (std::size_t i = 0; i < x.size(); ++i)
        d += (x[i] - p[i]) * (x[i] - p[i]);
      return std::sqrt(d);
    };
    std::vector<double> x(g.begin(), g.end());
    norms::polar_express(10).apply(x.data(), rows, cols);
    for (double s : norms::singular_values(x.data(), rows, cols))
      CHECK(s == Approx(1).margin(1e-6));
    CHECK(dist_to_polar(norms::polar_express(5)) < dist_to_polar(norms::newton_schulz{}));
  }
  // A Muon with it is one argument: rules::muon(lr, wd, momentum, norms::polar_express(5)).
  steep::param_store<double> store({ { "W", { 6, 10 } } });
  steep::optimizer opt(rules::muon(0.02, 0.0, 0.95, norms::polar_express(5)), store);
  std::fill(store.block_at(0).grad, store.block_at(0).grad + 60, 1.0);
  CHECK_NOTHROW(opt.step());
}

TEST_CASE("AdaMuon: a norm after the matrix phase, against the authors' algorithm in float64") {
  const auto rule = rules::adamuon(0.02);
  for (int threads : { 1, 2 })
    CHECK(variant_error(rule, "adamuon", threads) < 1e-12);
  // The comparison can fail: Muon itself, or AdaMuon without its second moment, is far off.
  CHECK(variant_error(rules::muon(0.02, 0.01), "adamuon") > 1e-3);
  CHECK(variant_error(rules::adamuon(0.02, 0.01, 0.95, 0.0), "adamuon") > 1e-6);
  steep::param_store<double> store({ { "W", { 6, 10 } } });
  steep::optimizer opt(rule, store);
  CHECK_THAT(
    opt.describe(),
    Catch::Contains("passes: 3 (matrix pre-pass, reduction (depth 1), update), and the matrix phase") &&
      Catch::Contains("v_buffer"));
  CHECK(opt.has_slot("W", "v_buffer"));
}

TEST_CASE("Muon with Polar Express coefficients: the whole step against a float64 reference trajectory") {
  CHECK(variant_error(rules::muon(0.02, 0.1, 0.95, norms::polar_express(5)), "muon_polar") < 1e-12);
}

TEST_CASE("Adam-mini: one second moment per block, stored per block, against the authors' step in float64") {
  const auto rule = rules::adam_mini(1e-2, 0.9, 0.999, 1e-8, 0.1);
  for (int threads : { 1, 2 })
    CHECK(variant_error(rule, "adam_mini", threads) < 1e-12);
  CHECK(variant_error(rules::adamw(1e-2, 0.9, 0.999, 1e-8, 0.1), "adam_mini") > 1e-3); // Adam is not it
  steep::param_store<float> store({ { "W", { 64, 32 } }, { "b", { 64 } } });
  steep::optimizer opt(rule, store);
  CHECK(decltype(opt)::bytes_per_param() == 20); // p r/w, g, m r/w (Adam: 28): v is one float per block
  CHECK(opt.slots()[1].granularity == "block");
  CHECK_THAT(opt.describe(), Catch::Contains("v:float32 (one per block)"));
  store.grad("W").fill(2.f);
  store.grad("b").fill(-1.f);
  opt.step();
  const auto v = opt.state("W", "v");
  REQUIRE(v.size() == 1);
  CHECK(v(0) == Approx(0.001 * 4.0));
  CHECK(opt.state("b", "v")(0) == Approx(0.001 * 1.0));
}

TEST_CASE("NorMuon: a per-row second moment of the polar factor, against the authors' update in float64") {
  const auto rule = rules::normuon(0.02, 0.1);
  for (int threads : { 1, 2 })
    CHECK(variant_error(rule, "normuon", threads) < 1e-12);
  CHECK(variant_error(rules::muon(0.02, 0.1), "normuon") > 1e-3);
  // Another published setting, by the rule's own settings: eps 1e-8, no shape factor.
  const auto eps8 = rules::normuon(0.02, 0.1, 0.95, 0.95, 1e-8, steep::expr::lr_adjust::none);
  CHECK(variant_error(eps8, "normuon_eps8") < 1e-12);
  CHECK(variant_error(rule, "normuon_eps8") > 1e-3);
  // The plan: the row mean square and ||O|| after the matrix phase, ||O'|| one pass later.
  steep::param_store<float> store({ { "W", { 8, 12 } } });
  steep::optimizer opt(rule, store);
  CHECK_THAT(opt.describe(),
             Catch::Contains("passes: 5 (matrix pre-pass, reduction (depth 1), line reduction (depth 1), "
                             "reduction (depth 2), update), and the matrix phase") &&
               Catch::Contains("second_momentum_buffer:float32 (one per row)"));
  CHECK(decltype(opt)::bytes_per_param() == 4 + 4 + 4 + 8); // p, g, momentum: the second moment is per row
  store.grad("W").fill(1.f);
  opt.step();
  const auto v = opt.state("W", "second_momentum_buffer");
  REQUIRE(v.size() == 8);
  CHECK(v(0) > 0);
}

TEST_CASE("Scion: ColNorm on the first block, Spectral on hidden matrices, Sign on the head, against the "
          "authors' step") {
  const std::vector<block_role> roles = { block_role::hidden_matrix, block_role::hidden_matrix,
                                          block_role::head };
  const auto rule = rules::scion(2e-3, 0.1, 50.0, 3000.0);
  for (int threads : { 1, 2 })
    CHECK(variant_error(rule, "scion", threads, roles) < 1e-12);
  // RowNorm, and the column lines of ColNorm are what is tested: a per-row version is far off.
  CHECK(variant_error(rules::scion_rownorm(2e-3, 0.1, 50.0), "scion_rownorm", 1,
                      { block_role::hidden_matrix }) < 1e-12);
  CHECK(variant_error(rules::scion_rownorm(2e-3, 0.1, 50.0), "scion", 1, { block_role::hidden_matrix }) >
        1e-3);
}

namespace {
// The worst relative error over the trajectory of a route that gives "experts" (3, 4, 6) rule_e
// and "wq" (12, 5) rule_q, against the float64 reference `name_of_case`.
template <class RuleE, class RuleQ>
double stacked_error(const RuleE& rule_e, const RuleQ& rule_q, const std::string& name_of_case, int threads) {
  const std::string dir = golden_dir + "/../variants/";
  const auto e0 = xt::load_npy<double>(dir + "E_p0.npy"), q0 = xt::load_npy<double>(dir + "Q_p0.npy");
  const auto eg = xt::load_npy<double>(dir + "E_grads.npy"), qg = xt::load_npy<double>(dir + "Q_grads.npy");
  const auto er = xt::load_npy<double>(dir + name_of_case + "_E.npy"),
             qr = xt::load_npy<double>(dir + name_of_case + "_Q.npy");
  steep::param_store<double> store({ { "experts", { 3, 4, 6 } }, { "wq", { 12, 5 } } });
  std::copy(e0.begin(), e0.end(), store.block_at(0).param);
  std::copy(q0.begin(), q0.end(), store.block_at(1).param);
  steep::optimizer opt(steep::route(steep::on_name("experts") >> rule_e, steep::on_name("wq") >> rule_q),
                       store, { .threads = threads });
  double worst = 0;
  steep_test::bits fingerprint;
  for (std::size_t t = 0; t < eg.shape()[0]; ++t) {
    auto ge = xt::view(eg, t), gq = xt::view(qg, t);
    std::copy(ge.begin(), ge.end(), store.block_at(0).grad);
    std::copy(gq.begin(), gq.end(), store.block_at(1).grad);
    opt.step();
    for (auto [k, ref] : { std::pair{ 0, xt::xarray<double>(xt::view(er, t)) },
                           std::pair{ 1, xt::xarray<double>(xt::view(qr, t)) } }) {
      worst = std::max(worst, steep_test::relative_error(store.block_at(k).param, ref));
      fingerprint.add(store.block_at(k).param, store.block_at(k).size * sizeof(double));
    }
  }
  steep_test::print_bits(fingerprint, opt, name_of_case, threads);
  return worst;
}
} // namespace

TEST_CASE("Muon on stacked matrices: experts and heads, each slice its own polar factor, against float64") {
  for (int threads : { 1, 2 })
    CHECK(stacked_error(rules::muon_stacked(0.02, 4, 6), rules::muon_stacked(0.02, 4, 5), "muon_stacked",
                        threads) < 1e-12);
  // A block that does not split into whole slices is refused by name, before any step.
  steep::param_store<double> store({ { "experts", { 3, 4, 6 } } });
  CHECK_THROWS_WITH(steep::optimizer(rules::muon_stacked(0.02, 4, 7), store),
                    Catch::Contains("block 'experts'") && Catch::Contains("do not split into 4 x 7 slices"));
}

TEST_CASE("NorMuon on stacked matrices: per-row state of each slice, per-slice rescaling, against float64") {
  for (int threads : { 1, 2 })
    CHECK(stacked_error(rules::normuon_stacked(0.02, 4, 6, 0.1), rules::normuon_stacked(0.02, 4, 5, 0.1),
                        "normuon_stacked", threads) < 1e-12);
  // The comparison can fail: Muon on the same slices is far off.
  CHECK(stacked_error(rules::muon_stacked(0.02, 4, 6), rules::muon_stacked(0.02, 4, 5), "normuon_stacked",
                      1) > 1e-3);
  steep::param_store<float> store({ { "experts", { 3, 4, 6 } } });
  steep::optimizer opt(rules::normuon_stacked(0.02, 4, 6), store);
  CHECK_THAT(opt.describe(), Catch::Contains("second_momentum_buffer:float32 (one per slice)"));
  CHECK(decltype(opt)::bytes_per_param() == 4 + 4 + 4 + 8); // p, g, momentum: V is one per row of a slice
  CHECK(opt.state("experts", "second_momentum_buffer").size() == 12); // 3 experts x 4 rows
}

TEST_CASE("Adam-mini per slice: one second moment per head or expert, stored per slice, against float64") {
  for (int threads : { 1, 2 })
    CHECK(stacked_error(rules::adam_mini_sliced(1e-2, 4, 6, 0.9, 0.999, 1e-8, 0.1),
                        rules::adam_mini_sliced(1e-2, 4, 5, 0.9, 0.999, 1e-8, 0.1), "adam_mini_sliced",
                        threads) < 1e-12);
  // One v per block is not it.
  CHECK(stacked_error(rules::adam_mini(1e-2, 0.9, 0.999, 1e-8, 0.1),
                      rules::adam_mini(1e-2, 0.9, 0.999, 1e-8, 0.1), "adam_mini_sliced", 1) > 1e-4);
  steep::param_store<float> store({ { "wq", { 12, 5 } } });
  steep::optimizer opt(rules::adam_mini_sliced(1e-2, 4, 5), store);
  CHECK(decltype(opt)::bytes_per_param() == 20); // as Adam-mini: v is one float per slice
  CHECK(opt.slots()[1].granularity == "slice");
  CHECK_THAT(opt.describe(), Catch::Contains("v:float32 (one per slice)"));
  for (std::size_t i = 0; i < 60; ++i)
    store.grad("wq")[i] = static_cast<float>(i / 20 + 1); // heads of 1s, 2s, 3s
  opt.step();
  const auto v = opt.state("wq", "v");
  REQUIRE(v.size() == 3);
  for (std::size_t h = 0; h < 3; ++h)
    CHECK(v(h) == Approx(0.001 * static_cast<double>((h + 1) * (h + 1))));
  // A block that does not split into whole slices is refused by name; so is a rule that puts
  // values of different slice lengths in one expression.
  steep::param_store<float> odd({ { "wq", { 13, 5 } } });
  CHECK_THROWS_WITH(steep::optimizer(rules::adam_mini_sliced(1e-2, 4, 5), odd),
                    Catch::Contains("block 'wq'") &&
                      Catch::Contains("65 entries do not split into slices of 20"));
  using namespace steep::expr;
  CHECK_THROWS_WITH(steep::optimizer(-0.1 * grad * (slice_sum(grad, 4, 5) + slice_sum(grad, 1, 5)), store),
                    Catch::Contains("different slice lengths"));
}

TEST_CASE("A line reduction reads the lines in its operand (a per-row norm of g / sqrt(V), V per row)") {
  using namespace steep::expr;
  auto v = ema<"v">(row_mean(square(grad)), 0.9);
  auto gh = grad / (sqrt(v) + 1e-10);
  for (int which = 0; which < 3; ++which) {
    steep::param_store<double> store({ { "W", { 6, 10 } } });
    double* g = store.block_at(0).grad;
    for (std::size_t i = 0; i < 60; ++i)
      g[i] = std::sin(0.7 * static_cast<double>(i)) + 0.1;
    if (which == 0)
      steep::optimizer(-0.1 * gh * row_norm2(gh), store).step();
    else if (which == 1)
      steep::optimizer(-0.1 * gh * slice_norm2(gh, 1, 10), store).step(); // a row is a slice
    else
      steep::optimizer(-0.1 * gh * slice_norm2(gh, 6, 10), store).step(); // the whole block
    double total = 0, row_sq[6], vr[6];
    for (std::size_t r = 0; r < 6; ++r) {
      double a = 0, b = 0;
      for (std::size_t c = 0; c < 10; ++c)
        a += g[r * 10 + c] * g[r * 10 + c];
      vr[r] = 0.1 * a / 10;
      for (std::size_t c = 0; c < 10; ++c)
        b += std::pow(g[r * 10 + c] / (std::sqrt(vr[r]) + 1e-10), 2);
      row_sq[r] = b, total += b;
    }
    for (std::size_t i = 0; i < 60; ++i) {
      const std::size_t r = i / 10;
      const double scale = which < 2 ? std::sqrt(row_sq[r]) : std::sqrt(total);
      CHECK(store.block_at(0).param[i] ==
            Approx(-0.1 * g[i] / (std::sqrt(vr[r]) + 1e-10) * scale).epsilon(1e-12));
    }
  }
}

TEST_CASE(
  "Line reductions split a big block into parts, bitwise the same for any thread count and part size") {
  using namespace steep::expr;
  auto v = ema<"v">(row_mean(square(grad)), 0.9);
  auto gh = grad / (sqrt(v) + 1e-8);
  const auto rule = -0.01 * gh + 0.001 * col_mean(grad) - 0.001 * gh * slice_norm2(gh, 4, 96) * 0.01;
  auto run = [&](int threads, std::size_t chunk) {
    steep::param_store<float> store({ { "W", { 256, 96 } }, { "U", { 12, 32 } } });
    steep::optimizer opt(rule, store, { .threads = threads, .chunk_elements = chunk });
    std::vector<std::byte> out;
    for (int t = 0; t < 3; ++t) {
      for (const auto& b : store.blocks())
        for (std::size_t i = 0; i < b.size; ++i)
          b.grad[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i) + 1.3 * t));
      REQUIRE(opt.step());
    }
    for (const auto& b : store.blocks()) {
      const auto* p = reinterpret_cast<const std::byte*>(b.param);
      out.insert(out.end(), p, p + b.size * sizeof(float));
      const auto s = opt.state(b.name, "v");
      const auto* q = reinterpret_cast<const std::byte*>(s.data());
      out.insert(out.end(), q, q + s.size() * sizeof(float));
    }
    return out;
  };
  // 64-entry chunks cut W into 384 parts of its line passes; 16384 leaves it whole.
  const auto whole = run(1, 16384);
  CHECK(run(2, 64) == whole);
  CHECK(run(1, 64) == whole);
  CHECK(run(2, 16384) == whole);
}

TEST_CASE("Newton-Schulz settings that make no map are refused when the optimizer is built") {
  steep::param_store<double> store({ { "W", { 4, 6 } } });
  CHECK_THROWS_WITH(
    steep::optimizer(rules::muon(0.02, 0.1, 0.95, norms::newton_schulz{ .steps = -3 }), store),
    Catch::Contains("at least one step"));
  CHECK_THROWS_WITH(steep::optimizer(rules::muon(0.02, 0.1, 0.95, norms::newton_schulz{ .eps = 0 }), store),
                    Catch::Contains("eps must be finite and > 0"));
  CHECK_THROWS_WITH(
    steep::optimizer(rules::muon_stacked(0.02, 2, 6, 0.1, 0.95, norms::newton_schulz{ .steps = 0 }), store),
    Catch::Contains("at least one step"));
  CHECK_THROWS_WITH(steep::optimizer(rules::muon(0.02), store, { .threads = -2 }),
                    Catch::Contains("optimizer_options.threads is -2"));
}

namespace {
// Parameters and every slot byte after five steps of `rule` at `threads` threads.
template <class T, class Rule>
std::vector<std::byte> five_steps(const Rule& rule, int threads) {
  // Two big matrices (OpenBLAS would thread their products), a stack of three, a vector.
  steep::param_store<T> store({ { "W1", { 96, 160 } },
                                { "W2", { 160, 96 } },
                                steep::block_spec<T>("heads", { 3 * 32, 64 }, block_role::hidden_matrix),
                                { "b", { 96 } } });
  steep::optimizer opt(rule, store, { .threads = threads });
  std::vector<std::byte> out;
  for (int t = 0; t < 5; ++t) {
    for (const auto& b : store.blocks())
      for (std::size_t i = 0; i < b.size; ++i)
        b.grad[i] =
          static_cast<T>(std::sin(0.37 * static_cast<double>(i) + 1.3 * t + static_cast<double>(b.size)));
    REQUIRE(opt.step());
  }
  for (const auto& b : store.blocks()) {
    const auto* p = reinterpret_cast<const std::byte*>(b.param);
    out.insert(out.end(), p, p + b.size * sizeof(T));
  }
  opt.visit_slots(
    [&](const steep::engine::slot_bytes& s) { out.insert(out.end(), s.bytes.begin(), s.bytes.end()); });
  return out;
}

template <class T, class Rule>
void same_for_any_thread_count(const Rule& rule) {
  const auto one = five_steps<T>(rule, 1);
  CHECK(five_steps<T>(rule, 1) == one); // across runs
  CHECK(five_steps<T>(rule, 2) == one);
  CHECK(five_steps<T>(rule, 8) == one);
}
} // namespace

TEMPLATE_TEST_CASE("matrix rules give bitwise the same parameters and state for 1, 2 and 8 threads", "",
                   float, double) {
  using T = TestType;
  auto matrices_then = [](auto rule) {
    return steep::route(steep::on<block_role::hidden_matrix> >> rule,
                        steep::otherwise >> rules::adam(T(1e-3)));
  };
  same_for_any_thread_count<T>(matrices_then(rules::muon(T(0.02))));
  same_for_any_thread_count<T>(matrices_then(rules::muon_exact(T(0.02))));
  same_for_any_thread_count<T>(matrices_then(rules::normuon(T(0.02))));
  same_for_any_thread_count<T>(matrices_then(rules::adamuon(T(0.02))));
  same_for_any_thread_count<T>(steep::route(steep::on_name("heads") >> rules::muon_stacked(T(0.02), 32, 64),
                                            steep::on<block_role::hidden_matrix> >> rules::muon(T(0.02)),
                                            steep::otherwise >> rules::adam(T(1e-3))));
  same_for_any_thread_count<T>(
    steep::route(steep::on_name("heads") >> rules::normuon_stacked(T(0.02), 32, 64),
                 steep::otherwise >> rules::adam(T(1e-3))));
  same_for_any_thread_count<T>(rules::muon_adam());
  same_for_any_thread_count<T>(rules::scion(0.02));
}
