// Run-time law kits for steep::norms: one generic check of the duality laws, applied to
// every norm on random, zero, sparse, tied and rank-deficient blocks of several shapes, in float32 and
// float64; then what is specific to the spectral family (the polar factor is a partial isometry on
// g's range; nuclear = sum and spectral = max of the singular values), the composites, and errors.
//
// For a norm N with dual N* and d = dual_map<N>(g), the laws are:
//   <g, d> = ||g||_{N*} and ||d||_N = 1 (g != 0), d = 0 (g = 0), finite always;
//   Hoelder: <g, x> <= ||g||_{N*} ||x||_N for other x (so d is a maximizer);
//   steepest<N>(g) = ||g||_{N*} d;  dual_map in place (out aliasing g) gives the same d;
//   ||c x|| = |c| ||x|| and ||x + y|| <= ||x|| + ||y|| (N is a norm).
// Tolerances: relative 1e-11 in float64 (the Jacobi SVD converges to ~1e-15 per rotation) and 2e-5 in
// float32 (maps are computed in double and rounded once to float).

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <steep/norms.hpp>
#include <string>
#include <tuple>
#include <vector>

using namespace steep::norms;

namespace {

template <class T>
constexpr double rel_tol = std::is_same_v<T, float> ? 2e-5 : 1e-11;

// Owning run-time blocks with the same ref() interface as fixed_vector / fixed_matrix.
template <class T>
struct vec {
  std::vector<T> v;
  vector_ref<T> ref() { return { v.data(), v.size() }; }
  vector_ref<const T> ref() const { return { v.data(), v.size() }; }
  vec like(T fill) const { return { std::vector<T>(v.size(), fill) }; }
  std::string shape() const { return std::to_string(v.size()); }
};

template <class T>
struct mat {
  std::vector<T> v;
  std::size_t r = 0, c = 0;
  matrix_ref<T> ref() { return { v.data(), r, c }; }
  matrix_ref<const T> ref() const { return { v.data(), r, c }; }
  mat like(T fill) const { return { std::vector<T>(v.size(), fill), r, c }; }
  T& operator()(std::size_t i, std::size_t j) { return v[i * c + j]; }
  T operator()(std::size_t i, std::size_t j) const { return v[i * c + j]; }
  std::string shape() const { return std::to_string(r) + "x" + std::to_string(c); }
};

std::mt19937_64& rng() {
  static std::mt19937_64 gen(20260303);
  return gen;
}

template <class T>
vec<T> random_vec(std::size_t n, double scale = 1.0) {
  std::normal_distribution<double> dist(0.0, scale);
  vec<T> x{ std::vector<T>(n) };
  for (auto& e : x.v)
    e = static_cast<T>(dist(rng()));
  return x;
}

template <class T>
mat<T> random_mat(std::size_t r, std::size_t c, double scale = 1.0) {
  std::normal_distribution<double> dist(0.0, scale);
  mat<T> x{ std::vector<T>(r * c), r, c };
  for (auto& e : x.v)
    e = static_cast<T>(dist(rng()));
  return x;
}

// A random r x c matrix of rank k (a product of r x k and k x c Gaussian factors, in double).
template <class T>
mat<T> random_rank(std::size_t r, std::size_t c, std::size_t k) {
  const auto a = random_mat<double>(r, k), b = random_mat<double>(k, c);
  mat<T> x{ std::vector<T>(r * c), r, c };
  for (std::size_t i = 0; i < r; ++i)
    for (std::size_t j = 0; j < c; ++j) {
      double s = 0;
      for (std::size_t l = 0; l < k; ++l)
        s += a(i, l) * b(l, j);
      x(i, j) = static_cast<T>(s);
    }
  return x;
}

template <class B>
B scaled(B x, double c) {
  for (auto& e : x.v)
    e = static_cast<typename decltype(x.v)::value_type>(e * c);
  return x;
}

template <class B>
B plus(B x, const B& y) {
  for (std::size_t i = 0; i < x.v.size(); ++i)
    x.v[i] += y.v[i];
  return x;
}

// The law kit: every law of the header comment, for norm N at gradient g, against the blocks in `others`.
template <class N, class B>
void check_laws(const B& g, const std::vector<B>& others) {
  using T = typename decltype(g.v)::value_type;
  const double rel = rel_tol<T>;
  INFO("norm " << N::name << ", block " << g.shape() << (std::is_same_v<T, float> ? " float" : " double"));

  B d = g.like(std::numeric_limits<T>::quiet_NaN()); // every entry must be written
  dual_map<N>(g.ref(), d.ref());
  CHECK(std::all_of(d.v.begin(), d.v.end(), [](T x) { return std::isfinite(x); }));

  const double gstar = static_cast<double>(value<dual_norm_t<N>>(g.ref()));
  CHECK(gstar >= 0);
  if (gstar == 0) {
    CHECK(std::all_of(d.v.begin(), d.v.end(), [](T x) { return x == T(0); }));
  } else {
    CHECK(inner(g.ref(), d.ref()) == Approx(gstar).epsilon(rel));
    CHECK(static_cast<double>(value<N>(d.ref())) == Approx(1.0).epsilon(rel));
  }

  for (const auto& x : others) {
    const double nx = static_cast<double>(value<N>(x.ref()));
    CHECK(inner(g.ref(), x.ref()) <= gstar * nx * (1 + rel) + 1e-300);
    // Homogeneity and the triangle inequality: N is a norm.
    CHECK(static_cast<double>(value<N>(scaled(x, -2.5).ref())) == Approx(2.5 * nx).epsilon(rel));
    const double ng = static_cast<double>(value<N>(g.ref()));
    CHECK(static_cast<double>(value<N>(plus(x, g).ref())) <= (nx + ng) * (1 + rel) + 1e-300);
  }

  // steepest = ||g||_* d, computed the same way: equal up to one rounding.
  B s = g.like(std::numeric_limits<T>::quiet_NaN());
  steepest<N>(g.ref(), s.ref());
  double worst = 0;
  for (std::size_t i = 0; i < s.v.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(s.v[i]) - gstar * static_cast<double>(d.v[i])));
  CHECK(worst <= rel * (gstar + 1e-300));

  // In place: out aliasing g gives the same direction, bit for bit.
  B h = g;
  dual_map<N>(h.ref(), h.ref());
  CHECK(h.v == d.v);
}

template <class T>
std::vector<vec<T>> vector_inputs() {
  std::vector<vec<T>> in;
  for (std::size_t n : { 1, 7, 64, 1000 })
    in.push_back(random_vec<T>(n));
  in.push_back(random_vec<T>(64, 1e-3));
  in.push_back(random_vec<T>(64, 1e3));
  in.push_back(vec<T>{ std::vector<T>(7, T(0)) });                       // zero
  in.push_back(vec<T>{ { T(0), T(-3), T(0), T(0), T(3), T(0), T(1) } }); // sparse, tied |g|
  in.push_back(vec<T>{ std::vector<T>(5, T(-2)) });                      // all tied
  return in;
}

template <class T>
std::vector<mat<T>> matrix_inputs() {
  std::vector<mat<T>> in;
  for (auto [r, c] : { std::pair{ 1, 1 }, { 5, 3 }, { 3, 5 }, { 16, 16 }, { 40, 24 } })
    in.push_back(random_mat<T>(r, c));
  in.push_back(random_mat<T>(5, 3, 1e-3));
  in.push_back(random_mat<T>(3, 5, 1e3));
  in.push_back(mat<T>{ std::vector<T>(15, T(0)), 5, 3 }); // zero
  in.push_back(random_rank<T>(16, 16, 1));
  in.push_back(random_rank<T>(40, 24, 2));
  in.push_back(random_rank<T>(5, 8, 3));
  auto holes = random_mat<T>(6, 4); // a zero row and a zero column
  for (std::size_t j = 0; j < 4; ++j)
    holes(2, j) = 0;
  for (std::size_t i = 0; i < 6; ++i)
    holes(i, 1) = 0;
  in.push_back(holes);
  return in;
}

// Blocks of g's shape to test Hoelder against: random ones, -g, and a sparse one.
template <class B>
std::vector<B> others_like(const B& g) {
  std::vector<B> out;
  for (int k = 0; k < 3; ++k) {
    B x = g.like(0);
    std::normal_distribution<double> dist(0.0, 1.0 + k);
    for (auto& e : x.v)
      e = static_cast<typename decltype(x.v)::value_type>(dist(rng()));
    out.push_back(x);
  }
  out.push_back(scaled(g, -1.0));
  B e = g.like(0);
  e.v[e.v.size() / 2] = 1;
  out.push_back(e);
  return out;
}

template <class N, class T>
void check_norm_on_all_inputs() {
  if constexpr (!N::matrix_only)
    for (const auto& g : vector_inputs<T>())
      check_laws<N>(g, others_like(g));
  for (const auto& g : matrix_inputs<T>())
    check_laws<N>(g, others_like(g));
}

using all_norms = std::tuple<l1, linf, l2, frobenius, lp<3>, lp<1.5>, lp<4>, spectral, nuclear, l1_to_l2,
                             sum_col_l2, l2_to_linf, sum_row_l2, linf_to_linf, sum_row_linf>;

template <class T, class... Ns>
void check_every_norm(std::tuple<Ns...>*) {
  (check_norm_on_all_inputs<Ns, T>(), ...);
}

// Largest singular value by power iteration on g^T g, in double: independent of the Jacobi SVD.
template <class T>
double power_sigma_max(const mat<T>& g) {
  std::vector<double> x(g.c, 1.0), y(g.r);
  for (std::size_t j = 0; j < g.c; ++j)
    x[j] = 1.0 + 0.01 * static_cast<double>(j);
  double lambda = 0;
  for (int it = 0; it < 5000; ++it) {
    for (std::size_t i = 0; i < g.r; ++i) {
      y[i] = 0;
      for (std::size_t j = 0; j < g.c; ++j)
        y[i] += g(i, j) * x[j];
    }
    double nrm = 0;
    for (std::size_t j = 0; j < g.c; ++j) {
      double s = 0;
      for (std::size_t i = 0; i < g.r; ++i)
        s += g(i, j) * y[i];
      x[j] = s;
      nrm += s * s;
    }
    nrm = std::sqrt(nrm);
    if (nrm == 0)
      return 0;
    for (auto& e : x)
      e /= nrm;
    if (std::abs(nrm - lambda) <= 1e-15 * nrm)
      break;
    lambda = nrm;
  }
  return std::sqrt(lambda);
}

} // namespace

TEMPLATE_TEST_CASE("every norm obeys the duality laws on random, zero and rank-deficient blocks", "[norms]",
                   float, double) {
  check_every_norm<TestType>(static_cast<all_norms*>(nullptr));
}

TEMPLATE_TEST_CASE("the spectral dual map is the polar factor: a partial isometry on g's range", "[norms]",
                   float, double) {
  using T = TestType;
  const double rel = rel_tol<T>;
  struct input {
    mat<T> g;
    std::size_t rank;
  };
  std::vector<input> inputs;
  for (auto [r, c] : { std::pair{ 1, 1 }, { 5, 3 }, { 3, 5 }, { 16, 16 }, { 40, 24 }, { 24, 40 } })
    inputs.push_back({ random_mat<T>(r, c), static_cast<std::size_t>(std::min(r, c)) });
  inputs.push_back({ random_rank<T>(16, 16, 1), 1 });
  inputs.push_back({ random_rank<T>(40, 24, 2), 2 });
  inputs.push_back({ random_rank<T>(8, 12, 5), 5 });
  for (const auto& [g, rank] : inputs) {
    INFO("block " << g.shape() << " of rank " << rank);
    const std::size_t m = g.r, n = g.c;
    mat<T> p = g.like(0);
    dual_map<spectral>(g.ref(), p.ref());
    // P^T P (n x n) is the projector onto g's row space: trace = rank, P P^T P = P.
    std::vector<double> ptp(n * n, 0.0);
    for (std::size_t a = 0; a < n; ++a)
      for (std::size_t b = 0; b < n; ++b)
        for (std::size_t i = 0; i < m; ++i)
          ptp[a * n + b] += static_cast<double>(p(i, a)) * static_cast<double>(p(i, b));
    double trace = 0;
    for (std::size_t a = 0; a < n; ++a)
      trace += ptp[a * n + a];
    CHECK(trace == Approx(static_cast<double>(rank)).epsilon(rel));
    double isometry_err = 0, range_err = 0, gnorm = static_cast<double>(value<frobenius>(g.ref()));
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t b = 0; b < n; ++b) {
        double ppp = 0;
        for (std::size_t a = 0; a < n; ++a)
          ppp += static_cast<double>(p(i, a)) * ptp[a * n + b];
        isometry_err = std::max(isometry_err, std::abs(ppp - static_cast<double>(p(i, b))));
        // (P P^T) g = g: P P^T is the identity on g's range. Computed as P (P^T g).
      }
    std::vector<double> ptg(n * n, 0.0); // P^T g, n x n
    for (std::size_t a = 0; a < n; ++a)
      for (std::size_t b = 0; b < n; ++b)
        for (std::size_t i = 0; i < m; ++i)
          ptg[a * n + b] += static_cast<double>(p(i, a)) * static_cast<double>(g(i, b));
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t b = 0; b < n; ++b) {
        double ppg = 0;
        for (std::size_t a = 0; a < n; ++a)
          ppg += static_cast<double>(p(i, a)) * ptg[a * n + b];
        range_err = std::max(range_err, std::abs(ppg - static_cast<double>(g(i, b))));
      }
    CHECK(isometry_err <= 10 * rel);
    CHECK(range_err <= 10 * rel * gnorm);
    // Full rank: orthonormal columns (tall) or rows (wide).
    if (rank == std::min(m, n)) {
      double orth_err = 0;
      if (m >= n) {
        for (std::size_t a = 0; a < n; ++a)
          for (std::size_t b = 0; b < n; ++b)
            orth_err = std::max(orth_err, std::abs(ptp[a * n + b] - (a == b ? 1.0 : 0.0)));
      } else {
        for (std::size_t i = 0; i < m; ++i)
          for (std::size_t k = 0; k < m; ++k) {
            double s = 0;
            for (std::size_t a = 0; a < n; ++a)
              s += static_cast<double>(p(i, a)) * static_cast<double>(p(k, a));
            orth_err = std::max(orth_err, std::abs(s - (i == k ? 1.0 : 0.0)));
          }
      }
      CHECK(orth_err <= 10 * rel);
    }
  }
}

TEMPLATE_TEST_CASE("nuclear is the sum and spectral the max of the singular values", "[norms]", float,
                   double) {
  using T = TestType;
  const double rel = rel_tol<T>;
  for (auto [r, c] : { std::pair{ 1, 1 }, { 1, 9 }, { 9, 1 }, { 5, 3 }, { 3, 5 }, { 16, 16 }, { 40, 24 } }) {
    const auto g = random_mat<T>(r, c);
    INFO("block " << g.shape());
    const auto svd = detail::jacobi_svd(g.ref());
    double sum = 0, sum_sq = 0;
    for (std::size_t i = 0; i < svd.k; ++i) {
      sum += svd.s[i];
      sum_sq += svd.s[i] * svd.s[i];
      if (i > 0)
        CHECK(svd.s[i] <= svd.s[i - 1]);
    }
    CHECK(static_cast<double>(value<nuclear>(g.ref())) == Approx(sum).epsilon(rel));
    CHECK(static_cast<double>(value<spectral>(g.ref())) == Approx(svd.s[0]).epsilon(rel));
    // Independent checks: sum s_i^2 = ||g||_F^2, power iteration for s_max, and the norm ordering.
    const double f = static_cast<double>(value<frobenius>(g.ref()));
    CHECK(sum_sq == Approx(f * f).epsilon(rel));
    CHECK(static_cast<double>(value<spectral>(g.ref())) == Approx(power_sigma_max(g)).epsilon(1e-6));
    CHECK(static_cast<double>(value<spectral>(g.ref())) <= f * (1 + rel));
    CHECK(f <= static_cast<double>(value<nuclear>(g.ref())) * (1 + rel));
    CHECK(static_cast<double>(value<nuclear>(g.ref())) <=
          std::sqrt(static_cast<double>(std::min(r, c))) * f * (1 + rel));
    // A vector as a 1 x n or n x 1 matrix: spectral = nuclear = l2.
    if (r == 1 || c == 1) {
      CHECK(static_cast<double>(value<spectral>(g.ref())) == Approx(f).epsilon(rel));
      CHECK(static_cast<double>(value<nuclear>(g.ref())) == Approx(f).epsilon(rel));
    }
    // The SVD reconstructs g: U diag(s) V^T = g.
    double err = 0;
    for (std::size_t i = 0; i < g.r; ++i)
      for (std::size_t j = 0; j < g.c; ++j) {
        double s = 0;
        for (std::size_t l = 0; l < svd.k; ++l)
          s += svd.u_at(i, l) * svd.s[l] * svd.v_at(j, l);
        err = std::max(err, std::abs(s - static_cast<double>(g(i, j))));
      }
    CHECK(err <= rel * svd.s[0]);
  }
}

TEST_CASE("2 x 2 singular values match their closed form", "[norms]") {
  for (int k = 0; k < 50; ++k) {
    const auto g = random_mat<double>(2, 2);
    const double a = g(0, 0), b = g(0, 1), c = g(1, 0), d = g(1, 1);
    const double p = std::hypot(a + d, b - c), q = std::hypot(a - d, b + c);
    CHECK(value<spectral>(g.ref()) == Approx((p + q) / 2).epsilon(1e-13));
    CHECK(value<nuclear>(g.ref()) == Approx(std::max(p, q)).epsilon(1e-13));
  }
}

TEMPLATE_TEST_CASE("max and sum composites are dual, with block-wise dual maps", "[norms]", float, double) {
  using T = TestType;
  const double rel = rel_tol<T>;
  using hybrid = max_composite<spectral, linf, l2, l1_to_l2>;
  static_assert(std::is_same_v<dual_norm_t<hybrid>, sum_composite<nuclear, l1, l2, sum_col_l2>>);
  const hybrid c{ { 1.0, 3.0, 0.5, 2.0 } };
  const auto cd = c.dual();

  struct case_t {
    mat<T> w;
    vec<T> b, v;
    mat<T> e;
  };
  std::vector<case_t> cases;
  cases.push_back({ random_mat<T>(16, 8), random_vec<T>(7), random_vec<T>(64), random_mat<T>(5, 3) });
  cases.push_back({ random_rank<T>(16, 8, 1), vec<T>{ std::vector<T>(7, T(0)) }, random_vec<T>(64, 1e-3),
                    random_mat<T>(5, 3, 1e3) });
  cases.push_back({ mat<T>{ std::vector<T>(128, T(0)), 16, 8 }, vec<T>{ std::vector<T>(7, T(0)) },
                    vec<T>{ std::vector<T>(64, T(0)) }, mat<T>{ std::vector<T>(15, T(0)), 5, 3 } });

  for (auto& [w, b, v, e] : cases) {
    const auto g = std::tuple{ w.ref(), b.ref(), v.ref(), e.ref() };
    auto dw = w.like(T(0));
    auto db = b.like(T(0));
    auto dv = v.like(T(0));
    auto de = e.like(T(0));
    const auto d = std::tuple{ dw.ref(), db.ref(), dv.ref(), de.ref() };
    auto ip = [&] {
      return inner(w.ref(), dw.ref()) + inner(b.ref(), db.ref()) + inner(v.ref(), dv.ref()) +
             inner(e.ref(), de.ref());
    };

    // Max composite: <g, d> = sum_b ||g_b||_* / c_b and ||d|| = 1; every nonzero block takes a unit step.
    c.dual_map(g, d);
    const double gstar = cd.value(g);
    CHECK(ip() == Approx(gstar).epsilon(rel));
    if (gstar > 0) {
      CHECK(c.value(d) == Approx(1.0).epsilon(rel));
      if (value<l2>(b.ref()) > 0)
        CHECK(3.0 * static_cast<double>(value<linf>(db.ref())) == Approx(1.0).epsilon(rel));
    } else {
      CHECK(c.value(d) == 0);
    }
    // Unnormalized: steepest = ||g||_* d, block by block.
    auto sw = w.like(T(0));
    auto sb = b.like(T(0));
    auto sv = v.like(T(0));
    auto se = e.like(T(0));
    steepest(c, g, std::tuple{ sw.ref(), sb.ref(), sv.ref(), se.ref() });
    CHECK(static_cast<double>(value<l2>(sv.ref())) ==
          Approx(gstar * static_cast<double>(value<l2>(dv.ref()))).epsilon(rel).margin(1e-30));

    // Sum composite (the dual): all mass on the block maximizing ||g_b||_{N_b*} / w_b = c_b ||g_b||_{N_b}.
    cd.dual_map(g, d);
    const double hstar = c.value(g);
    CHECK(ip() == Approx(hstar).epsilon(rel));
    const int nonzero = (value<l2>(dw.ref()) > 0) + (value<l2>(db.ref()) > 0) + (value<l2>(dv.ref()) > 0) +
                        (value<l2>(de.ref()) > 0);
    CHECK(nonzero == (hstar > 0 ? 1 : 0));
    CHECK(cd.value(d) == Approx(hstar > 0 ? 1.0 : 0.0).epsilon(rel));

    // Hoelder for the pair: <g, x> <= ||g||_{max*} ||x||_max for random x.
    for (int k = 0; k < 3; ++k) {
      auto xw = random_mat<T>(w.r, w.c);
      auto xb = random_vec<T>(b.v.size());
      auto xv = random_vec<T>(v.v.size());
      auto xe = random_mat<T>(e.r, e.c);
      const double gx = inner(w.ref(), xw.ref()) + inner(b.ref(), xb.ref()) + inner(v.ref(), xv.ref()) +
                        inner(e.ref(), xe.ref());
      const auto x = std::tuple{ xw.ref(), xb.ref(), xv.ref(), xe.ref() };
      CHECK(gx <= gstar * c.value(x) * (1 + rel) + 1e-300);
      CHECK(gx <= hstar * cd.value(x) * (1 + rel) + 1e-300);
    }
  }
}

TEST_CASE("bad input is refused with a clear error", "[norms]") {
  using hybrid = max_composite<spectral, linf>;
  CHECK_THROWS_AS(hybrid({ 1.0, 0.0 }), steep::usage_error);
  CHECK_THROWS_WITH(hybrid({ 1.0, -2.0 }), Catch::Contains("block weights must be positive and finite"));
  CHECK_THROWS_WITH(sum_composite<l1>({ std::numeric_limits<double>::infinity() }),
                    Catch::Contains("weight of block 0"));
  auto g = random_mat<double>(3, 2);
  auto out = random_mat<double>(2, 3);
  CHECK_THROWS_WITH(dual_map<spectral>(g.ref(), out.ref()),
                    Catch::Contains("different shapes (3 x 2 and 2 x 3)"));
  auto v = random_vec<double>(4), w = random_vec<double>(5);
  CHECK_THROWS_AS(dual_map<l2>(v.ref(), w.ref()), steep::usage_error);
  CHECK_THROWS_AS(inner(v.ref(), w.ref()), steep::usage_error);
}

TEST_CASE("norm names and the run-time math agree with the compile-time math", "[norms]") {
  CHECK(l1::name == "l1");
  CHECK(spectral::name == "spectral");
  CHECK(lp<4>::name == "l4");
  CHECK(dual_norm_t<lp<4>>::name == "l1.333333");
  for (double x : { 1e-300, 1e-5, 0.3, 1.0, 2.0, 7.5, 1e5, 1e300 }) {
    CHECK(math::detail::sqrt_ce(x) == Approx(std::sqrt(x)).epsilon(1e-15));
    CHECK(math::detail::log_ce(x) == Approx(std::log(x)).epsilon(1e-15).margin(1e-16));
    CHECK(math::detail::pow_ce(x, 1.5) == Approx(std::pow(x, 1.5)).epsilon(1e-13));
    CHECK(math::detail::pow_ce(x, -0.25) == Approx(std::pow(x, -0.25)).epsilon(1e-14));
  }
  for (double x : { -700.0, -20.0, -1.0, 0.0, 0.5, 1.0, 10.0, 700.0 })
    CHECK(math::detail::exp_ce(x) == Approx(std::exp(x)).epsilon(2e-15));
}
