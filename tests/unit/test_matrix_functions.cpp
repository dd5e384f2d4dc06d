// steep's matrix functions (steep/linalg/): a law kit on random symmetric positive definite
// matrices of sizes 1, 2, 7, 64 and 200, float and double, and the float64 results against NumPy's
// (tests/data/matrix_functions, written by scripts/reference-matrix-functions.py).
//
// The laws are checked with products computed here, in double and by plain loops, so a wrong
// BLAS or LAPACK call in steep cannot cancel itself out. Eigenvectors are compared
// sign-invariantly; everything else (A^(-1/p), Q and R with R_jj >= 0, L) is unique.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <steep/core/error.hpp>
#include <steep/linalg.hpp>
#include <string>
#include <type_traits>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>

namespace linalg = steep::linalg;

namespace {

using dmat = std::vector<double>; // row-major, double

// Tolerances by dtype: reconstructions and orthogonality, and the root identity X^p (A + eps I) =
// I, which loses a factor of about p times A's condition number (16 here). Measured with
// OpenBLAS: float at most 1.1e-6 and 5.5e-6 (n = 200), double below 1e-14; the margin is for
// other LAPACKs.
template <class T>
constexpr double tol_law = std::is_same_v<T, float> ? 1e-5 : 1e-13;
template <class T>
constexpr double tol_root = std::is_same_v<T, float> ? 5e-5 : 1e-12;

template <class T>
dmat to_double(const std::vector<T>& v) {
  return dmat(v.begin(), v.end());
}

template <class T>
std::vector<T> cast(const dmat& v) {
  std::vector<T> out(v.size());
  std::transform(v.begin(), v.end(), out.begin(), [](double x) { return static_cast<T>(x); });
  return out;
}

// C = op(A) op(B), op(A) m x k, op(B) k x n.
dmat matmul(const dmat& a, const dmat& b, std::size_t m, std::size_t k, std::size_t n, bool ta = false,
            bool tb = false) {
  dmat c(m * n, 0.0);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t l = 0; l < k; ++l) {
      const double x = ta ? a[l * m + i] : a[i * k + l];
      for (std::size_t j = 0; j < n; ++j)
        c[i * n + j] += x * (tb ? b[j * k + l] : b[l * n + j]);
    }
  return c;
}

dmat identity(std::size_t n, double scale = 1.0) {
  dmat e(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    e[i * n + i] = scale;
  return e;
}

double frobenius(const dmat& a) {
  double s = 0;
  for (double x : a)
    s += x * x;
  return std::sqrt(s);
}

double distance(const dmat& a, const dmat& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s);
}

double relative(const dmat& got, const dmat& want) { return distance(got, want) / frobenius(want); }

// ||M - I||_F / sqrt(n): the RMS of the singular values' distance from 1, about.
double from_identity(const dmat& m, std::size_t n) {
  return distance(m, identity(n)) / std::sqrt(static_cast<double>(n));
}

dmat gaussian(std::size_t rows, std::size_t cols, unsigned seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> d;
  dmat g(rows * cols);
  for (auto& x : g)
    x = d(gen);
  return g;
}

// G G^T / (2 n) + 0.1 I with G n x 2n Gaussian: eigenvalues in about [0.19, 3.0] (condition
// number about 16), exactly symmetric.
dmat random_spd(std::size_t n, unsigned seed) {
  const dmat g = gaussian(n, 2 * n, seed);
  dmat a = matmul(g, g, n, 2 * n, n, false, true);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j)
      a[i * n + j] = i <= j ? a[i * n + j] / static_cast<double>(2 * n) + (i == j ? 0.1 : 0.0) : 0.0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < i; ++j)
      a[i * n + j] = a[j * n + i];
  return a;
}

dmat add_identity(dmat a, std::size_t n, double eps) {
  for (std::size_t i = 0; i < n; ++i)
    a[i * n + i] += eps;
  return a;
}

bool exactly_symmetric(const dmat& x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (x[i * n + j] != x[j * n + i])
        return false;
  return true;
}

// Zeros strictly below the diagonal (upper) or strictly above it (lower), exactly.
template <class T>
bool triangular(const std::vector<T>& x, std::size_t n, bool upper) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j)
      if ((upper ? j < i : j > i) && x[i * n + j] != T(0))
        return false;
  return true;
}

template <class T>
T least_diagonal(const std::vector<T>& x, std::size_t n) {
  T least = x[0];
  for (std::size_t i = 1; i < n; ++i)
    least = std::min(least, x[i * n + i]);
  return least;
}

const std::size_t sizes[] = { 1, 2, 7, 64, 200 };

// check(n, A) for each size, A a random symmetric positive definite matrix rounded to T.
template <class T, class F>
void for_each_spd(unsigned seed, F check) {
  for (std::size_t n : sizes) {
    CAPTURE(n);
    check(n, cast<T>(random_spd(n, seed + static_cast<unsigned>(n))));
  }
}

} // namespace

TEMPLATE_TEST_CASE("sym_eigh: V diag(w) V^T = A, V^T V = I, w ascending", "[linalg][eigh]", float, double) {
  using T = TestType;
  for_each_spd<T>(100, [&](std::size_t n, const std::vector<T>& at) {
    const auto [w, v] = linalg::sym_eigh(at.data(), n);
    REQUIRE(w.size() == n);
    REQUIRE(v.size() == n * n);
    REQUIRE(std::is_sorted(w.begin(), w.end()));
    const dmat vd = to_double(v);
    dmat vw = vd; // V diag(w): column j scaled
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        vw[i * n + j] *= static_cast<double>(w[j]);
    CHECK(relative(matmul(vw, vd, n, n, n, false, true), to_double(at)) < tol_law<T>);
    CHECK(from_identity(matmul(vd, vd, n, n, n, true, false), n) < tol_law<T>);
    // A v_j = w_j v_j for the extreme pair: column j of V, not row j, holds the eigenvector.
    for (std::size_t j : { std::size_t(0), n - 1 }) {
      double r = 0;
      for (std::size_t i = 0; i < n; ++i) {
        double av = 0;
        for (std::size_t k = 0; k < n; ++k)
          av += static_cast<double>(at[i * n + k]) * vd[k * n + j];
        r = std::max(r, std::abs(av - static_cast<double>(w[j]) * vd[i * n + j]));
      }
      CHECK(r < 10 * tol_law<T> * static_cast<double>(w[n - 1]));
    }
  });
}

TEMPLATE_TEST_CASE("sym_eigh reads only the upper triangle", "[linalg][eigh]", float, double) {
  using T = TestType;
  const std::size_t n = 7;
  const dmat a = random_spd(n, 7);
  std::vector<T> upper = cast<T>(a);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < i; ++j)
      upper[i * n + j] = T(1e6); // garbage below the diagonal
  const std::vector<T> full = cast<T>(a);
  CHECK(linalg::sym_eigh(upper.data(), n).values == linalg::sym_eigh(full.data(), n).values);
  CHECK(linalg::inverse_root(upper.data(), n, 2, 0.0) == linalg::inverse_root(full.data(), n, 2, 0.0));
}

TEMPLATE_TEST_CASE("inverse_root: X^p (A + eps I) = I, X symmetric", "[linalg][inverse_root]", float,
                   double) {
  using T = TestType;
  const double eps = 1e-3;
  for_each_spd<T>(200, [&](std::size_t n, const std::vector<T>& at) {
    const dmat a_eps = add_identity(to_double(at), n, eps);
    for (int p : { 1, 2, 4 }) {
      CAPTURE(p);
      const dmat x = to_double(linalg::inverse_root(at.data(), n, p, eps));
      REQUIRE(x.size() == n * n);
      CHECK(exactly_symmetric(x, n));
      dmat m = a_eps;
      for (int k = 0; k < p; ++k)
        m = matmul(x, m, n, n, n);
      CHECK(from_identity(m, n) < tol_root<T>);
    }
  });
}

TEMPLATE_TEST_CASE("matrix_power_sym: real powers compose", "[linalg][inverse_root]", float, double) {
  using T = TestType;
  const double eps = 1e-3;
  for_each_spd<T>(300, [&](std::size_t n, const std::vector<T>& at) {
    const dmat ad = to_double(at), a_eps = add_identity(ad, n, eps);
    // A^(1/2) A^(1/2) = A; A^1 (eps) = A + eps I; A^(-1.3) A^(1.3) = I; A^0 = I.
    const dmat half = to_double(linalg::matrix_power_sym(at.data(), n, 0.5, 0.0));
    CHECK(relative(matmul(half, half, n, n, n), ad) < tol_root<T>);
    CHECK(relative(to_double(linalg::matrix_power_sym(at.data(), n, 1.0, eps)), a_eps) < tol_root<T>);
    const dmat neg = to_double(linalg::matrix_power_sym(at.data(), n, -1.3, eps));
    const dmat pos = to_double(linalg::matrix_power_sym(at.data(), n, 1.3, eps));
    CHECK(from_identity(matmul(neg, pos, n, n, n), n) < tol_root<T>);
    CHECK(from_identity(to_double(linalg::matrix_power_sym(at.data(), n, 0.0, eps)), n) < tol_law<T>);
    // inverse_root is matrix_power_sym at -1/p, for a p that is not an integer too.
    CHECK(linalg::inverse_root(at.data(), n, 2.5, eps) == linalg::matrix_power_sym(at.data(), n, -0.4, eps));
  });
}

TEMPLATE_TEST_CASE("matrix_power_sym: Shampoo's shift, not a clamp, and its refusals",
                   "[linalg][inverse_root]", float, double) {
  using T = TestType;
  // Eigenvalues -1 and 3 in a rotated basis: shifted by 1 they are 0 and 4, plus eps 0.5: 0.5, 4.5.
  // A clamp at 0 would give 0.5 and 3.5 instead.
  const double c = std::cos(0.3), s = std::sin(0.3);
  const dmat q = { c, -s, s, c };
  dmat d = { -1, 0, 0, 3 };
  const dmat a = matmul(matmul(q, d, 2, 2, 2), q, 2, 2, 2, false, true);
  dmat sym = a;
  sym[2] = sym[1];
  const std::vector<T> at = cast<T>(sym);
  const dmat x = to_double(linalg::inverse_root(at.data(), 2, 2, 0.5));
  d = { 1 / std::sqrt(0.5), 0, 0, 1 / std::sqrt(4.5) };
  const dmat want = matmul(matmul(q, d, 2, 2, 2), q, 2, 2, 2, false, true);
  CHECK(relative(x, want) < tol_root<T>);
  d = { 1 / std::sqrt(0.5), 0, 0, 1 / std::sqrt(3.5) };
  CHECK(relative(x, matmul(matmul(q, d, 2, 2, 2), q, 2, 2, 2, false, true)) > 0.01);

  // The shift makes the least eigenvalue exactly 0: a negative power needs eps > 0.
  CHECK_THROWS_WITH(linalg::inverse_root(at.data(), 2, 2, 0.0), Catch::Contains("pass eps > 0"));
  const std::vector<T> zero(4, T(0));
  CHECK_THROWS_AS(linalg::inverse_root(zero.data(), 2, 4, 0.0), steep::usage_error);
  CHECK(linalg::matrix_power_sym(zero.data(), 2, 0.5, 0.0) == std::vector<T>(4, T(0)));
  CHECK_THROWS_WITH(linalg::inverse_root(at.data(), 2, 0, 1e-3), Catch::Contains("must be finite and > 0"));
  CHECK_THROWS_WITH(linalg::inverse_root(at.data(), 2, -2, 1e-3), Catch::Contains("must be finite and > 0"));
  CHECK_THROWS_WITH(linalg::matrix_power_sym(at.data(), 2, 0.5, -1e-3), Catch::Contains("eps must be"));
  CHECK(linalg::inverse_root(at.data(), 0, 2, 1e-3).empty());
}

TEMPLATE_TEST_CASE("matrix_power_sym with eps relative to the largest eigenvalue: eps w_max, and scale-free",
                   "[linalg][inverse_root]", float, double) {
  using T = TestType;
  const double eps = 0.05; // large enough that an absolute eps's dependence on scale shows in float
  for_each_spd<T>(200, [&](std::size_t n, const std::vector<T>& at) {
    // The ridge is eps times the top eigenvalue (syevd's own, the same call): the same bits as an
    // absolute eps of that size.
    const double top = static_cast<double>(linalg::sym_eigh(at.data(), n).values.back());
    CHECK(linalg::inverse_root(at.data(), n, 4, eps, linalg::eps_mode::relative) ==
          linalg::inverse_root(at.data(), n, 4, eps * top));
    // Scale-free, which an absolute eps is not: (c A + eps c w_max I)^(-1/4) = c^(-1/4) (A + eps w_max
    // I)^(-1/4).
    const double c = 1024; // a power of two: c A is exact
    std::vector<T> scaled(at);
    for (T& v : scaled)
      v *= T(c);
    dmat x = to_double(linalg::inverse_root(scaled.data(), n, 4, eps, linalg::eps_mode::relative));
    for (double& v : x)
      v *= std::pow(c, 0.25);
    const dmat want = to_double(linalg::inverse_root(at.data(), n, 4, eps, linalg::eps_mode::relative));
    CHECK(relative(x, want) < tol_root<T>);
    dmat absolute = to_double(linalg::inverse_root(scaled.data(), n, 4, eps));
    for (double& v : absolute)
      v *= std::pow(c, 0.25);
    CHECK(relative(absolute, to_double(linalg::inverse_root(at.data(), n, 4, eps))) > 10 * tol_root<T>);
  });
  // A zero matrix: the ridge is eps 1e-16 (Anil et al.'s floor), the power finite.
  const std::vector<T> zero(9, T(0));
  for (T v : linalg::inverse_root(zero.data(), 3, 4, eps, linalg::eps_mode::relative))
    CHECK(std::isfinite(v));
}

TEMPLATE_TEST_CASE("pinv_root: X^p is the pseudo-inverse (Penrose's laws), the inverse root where A is "
                   "invertible",
                   "[linalg][pinv_root]", float, double) {
  using T = TestType;
  // Invertible: (A^+)^(1/p) = A^(-1/p), the eps = 0 inverse root.
  for_each_spd<T>(400, [&](std::size_t n, const std::vector<T>& at) {
    for (int p : { 1, 2, 4 }) {
      CAPTURE(n, p);
      const dmat x = to_double(linalg::pinv_root(at.data(), n, p));
      CHECK(exactly_symmetric(x, n));
      CHECK(relative(x, to_double(linalg::inverse_root(at.data(), n, p, 0.0))) < tol_root<T>);
    }
  });
  // Rank r < n: A = B B^T. With Y = X^p: A Y A = A, Y A Y = Y, A Y symmetric (Penrose), and A Y is
  // the projection on A's range: B's columns are kept, A Y B = B.
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal;
  for (const auto& [n, r] : { std::pair<std::size_t, std::size_t>{ 2, 1 }, { 7, 3 }, { 40, 11 } }) {
    dmat b(n * r);
    for (double& v : b)
      v = normal(rng);
    const std::vector<T> at = cast<T>(matmul(b, b, n, r, n, false, true));
    const dmat a = to_double(at);
    for (int p : { 1, 2, 4 }) {
      CAPTURE(n, r, p);
      const dmat x = to_double(linalg::pinv_root(at.data(), n, p));
      CHECK(exactly_symmetric(x, n));
      dmat y = x;
      for (int k = 1; k < p; ++k)
        y = matmul(y, x, n, n, n);
      const dmat ay = matmul(a, y, n, n, n);
      CHECK(relative(matmul(ay, a, n, n, n), a) < tol_root<T>);
      CHECK(relative(matmul(y, matmul(a, y, n, n, n), n, n, n), y) < tol_root<T>);
      CHECK(relative(matmul(ay, to_double(cast<T>(b)), n, n, r), to_double(cast<T>(b))) < tol_root<T>);
    }
  }
  // A zero matrix maps to zero (every eigenvalue is at the cutoff), and p must be positive.
  const std::vector<T> zero(9, T(0));
  CHECK(linalg::pinv_root(zero.data(), 3, 4) == zero);
  CHECK_THROWS_WITH(linalg::pinv_root(zero.data(), 3, 0), Catch::Contains("must be finite and > 0"));
  CHECK(linalg::pinv_root(zero.data(), 0, 2).empty());
}

TEMPLATE_TEST_CASE("A NaN or an infinity in a LAPACK call's input is refused before the call, by entry",
                   "[linalg][nonfinite]", float, double) {
  using T = TestType;
  const T bad = GENERATE(std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity());
  std::vector<T> a = cast<T>(random_spd(4, 7));
  a[1 * 4 + 2] = bad; // row 1, column 2: in the upper triangle
  CHECK_THROWS_WITH(linalg::sym_eigh(a.data(), 4),
                    Catch::Contains("syevd: the 4 x 4 matrix has a non-finite entry") &&
                      Catch::Contains("at row 1, column 2"));
  CHECK_THROWS_WITH(linalg::inverse_root(a.data(), 4, 4, 1e-3), Catch::Contains("non-finite entry"));
  CHECK_THROWS_WITH(linalg::qr_orthonormal(a.data(), 4, 4), Catch::Contains("geqrf: the 4 x 4 matrix"));
  std::vector<T> s, u, vt, copy(a);
  CHECK_THROWS_WITH(steep::kernel::lapack::gesdd('S', 4, 4, copy.data(), s, u, vt),
                    Catch::Contains("gesdd: the 4 x 4 matrix has a non-finite entry") &&
                      Catch::Contains("did the run diverge?"));
  // Only the triangle a routine reads counts: the same entry below the diagonal is never read
  // by an upper-triangle eigendecomposition, nor above it by a lower-triangle Cholesky.
  std::vector<T> lower = cast<T>(random_spd(4, 7));
  lower[2 * 4 + 1] = bad;
  CHECK_NOTHROW(linalg::sym_eigh(lower.data(), 4));
  std::vector<T> upper = cast<T>(random_spd(4, 7));
  upper[1 * 4 + 2] = bad;
  CHECK_NOTHROW(linalg::cholesky(upper.data(), 4));
  CHECK_THROWS_WITH(linalg::cholesky(lower.data(), 4), Catch::Contains("potrf: the 4 x 4 matrix"));
}

TEMPLATE_TEST_CASE("qr_orthonormal: Q^T Q = I, Q R = A, R upper with R_jj >= 0", "[linalg][qr]", float,
                   double) {
  using T = TestType;
  for (std::size_t n : sizes) {
    CAPTURE(n);
    // Square (the SPD matrix) and tall (2n x n Gaussian).
    const dmat spd = random_spd(n, 400 + static_cast<unsigned>(n));
    const dmat tall = gaussian(2 * n, n, 500 + static_cast<unsigned>(n));
    for (const auto& [a, m] : { std::pair{ spd, n }, std::pair{ tall, 2 * n } }) {
      CAPTURE(m);
      const std::vector<T> at = cast<T>(a);
      const auto [q, r] = linalg::qr_orthonormal(at.data(), m, n);
      REQUIRE(q.size() == m * n);
      REQUIRE(r.size() == n * n);
      const dmat qd = to_double(q), rd = to_double(r);
      CHECK(from_identity(matmul(qd, qd, n, m, n, true, false), n) < tol_law<T>);
      CHECK(relative(matmul(qd, rd, m, n, n), to_double(at)) < tol_law<T>);
      CHECK(triangular(r, n, /*upper=*/true));
      CHECK(least_diagonal(r, n) >= T(0));
    }
  }
}

TEST_CASE("qr_orthonormal: refusals and a rank-deficient input", "[linalg][qr]") {
  const std::vector<double> wide(6, 1.0);
  CHECK_THROWS_WITH(linalg::qr_orthonormal(wide.data(), 2, 3), Catch::Contains("rows >= columns"));
  // Columns 0 and 1 equal: R_11 = 0, and still Q^T Q = I and Q R = A.
  const dmat a = { 1, 1, 2, 2, 3, 3 };
  const auto [q, r] = linalg::qr_orthonormal(a.data(), 3, 2);
  CHECK(std::abs(r[3]) < 1e-14);
  CHECK(from_identity(matmul(q, q, 2, 3, 2, true, false), 2) < 1e-14);
  CHECK(relative(matmul(q, r, 3, 2, 2), a) < 1e-14);
}

TEMPLATE_TEST_CASE("cholesky: L L^T = A, L lower with a positive diagonal", "[linalg][cholesky]", float,
                   double) {
  using T = TestType;
  for_each_spd<T>(600, [&](std::size_t n, const std::vector<T>& at) {
    const std::vector<T> l = linalg::cholesky(at.data(), n);
    REQUIRE(l.size() == n * n);
    const dmat ld = to_double(l);
    CHECK(relative(matmul(ld, ld, n, n, n, false, true), to_double(at)) < tol_law<T>);
    CHECK(triangular(l, n, /*upper=*/false));
    CHECK(least_diagonal(l, n) > T(0));
  });
}

TEMPLATE_TEST_CASE("cholesky refuses a matrix that is not positive definite", "[linalg][cholesky]", float,
                   double) {
  using T = TestType;
  const std::string routine = std::is_same_v<T, float> ? "spotrf" : "dpotrf";
  for (std::size_t n : sizes) {
    CAPTURE(n);
    // Make the leading minor of order k = min(n, 2) singular-and-then-some: for n = 1, a = -1;
    // otherwise a_11 := a_01^2 / a_00 - 1, so that minor's determinant is -a_00 < 0.
    dmat a = random_spd(n, 700 + static_cast<unsigned>(n));
    const int k = n == 1 ? 1 : 2;
    if (n == 1)
      a[0] = -1;
    else
      a[n + 1] = a[1] * a[1] / a[0] - 1;
    const std::vector<T> at = cast<T>(a);
    try {
      (void)linalg::cholesky(at.data(), n);
      FAIL("cholesky accepted a matrix that is not positive definite");
    } catch (const steep::lapack_error& e) {
      CHECK(e.routine() == routine);
      CHECK(e.info() == k);
      const std::string what = e.what();
      CHECK_THAT(what, Catch::Contains(routine) && Catch::Contains("is not positive definite") &&
                         Catch::Contains("leading minor of order " + std::to_string(k)) &&
                         Catch::Contains(std::to_string(n) + " x " + std::to_string(n)));
    }
  }
  // Positive semidefinite is not enough: the all-ones 3 x 3 (rank 1) fails at order 2.
  const std::vector<T> ones(9, T(1));
  CHECK_THROWS_WITH(linalg::cholesky(ones.data(), 3), Catch::Contains("order 2"));
}

namespace {

const std::string data_dir = STEEP_MATRIX_FUNCTIONS_DIR;

dmat load(const std::string& name) {
  const xt::xarray<double> x = xt::load_npy<double>(data_dir + "/" + name + ".npy");
  return dmat(x.begin(), x.end());
}

// Column j of `got` negated where it points away from column j of `want` (eigenvectors are
// determined up to sign).
dmat align_columns(dmat got, const dmat& want, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) {
    double dot = 0;
    for (std::size_t i = 0; i < n; ++i)
      dot += got[i * n + j] * want[i * n + j];
    if (dot < 0)
      for (std::size_t i = 0; i < n; ++i)
        got[i * n + j] = -got[i * n + j];
  }
  return got;
}

// The largest relative error seen per function, printed once per dtype (for the record).
struct worst {
  std::map<std::string, double> by_function;
  void note(const std::string& f, double e) { by_function[f] = std::max(by_function[f], e); }
  void print(const char* dtype) const {
    for (const auto& [f, e] : by_function)
      std::printf("matrix functions vs NumPy, %s: %-22s max relative error %.2e\n", dtype, f.c_str(), e);
  }
};

} // namespace

TEMPLATE_TEST_CASE("matrix functions agree with NumPy (float64 references)", "[linalg][reference]", float,
                   double) {
  using T = TestType;
  // float64: to 1e-12 relative (Frobenius). float: the input's rounding alone moves the results by
  // about the condition number (20) times 6e-8.
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  const double eps = 1e-3;
  worst w;
  for (std::size_t n : { 1, 2, 7, 64 }) {
    CAPTURE(n);
    const std::string base = "spd_" + std::to_string(n) + "_";
    const std::vector<T> a = cast<T>(load(base + "a"));
    REQUIRE(a.size() == n * n);

    const auto [values, vectors] = linalg::sym_eigh(a.data(), n);
    const dmat w_ref = load(base + "w"), v_ref = load(base + "v");
    const double ew = relative(to_double(values), w_ref);
    const double ev = relative(align_columns(to_double(vectors), v_ref, n), v_ref);
    w.note("sym_eigh values", ew);
    w.note("sym_eigh vectors", ev);
    CHECK(ew < tol);
    CHECK(ev < tol);

    const std::pair<const char*, dmat> powers[] = {
      { "inv_root_p2", to_double(linalg::inverse_root(a.data(), n, 2, eps)) },
      { "inv_root_p4", to_double(linalg::inverse_root(a.data(), n, 4, eps)) },
      { "pow_half", to_double(linalg::matrix_power_sym(a.data(), n, 0.5, 0.0)) },
      { "pow_m1p3", to_double(linalg::matrix_power_sym(a.data(), n, -1.3, eps)) },
    };
    for (const auto& [name, got] : powers) {
      CAPTURE(name);
      const double e = relative(got, load(base + name));
      w.note(std::string(name), e);
      CHECK(e < tol);
    }

    const double ec = relative(to_double(linalg::cholesky(a.data(), n)), load(base + "chol"));
    w.note("cholesky", ec);
    CHECK(ec < tol);
  }
  {
    const std::vector<T> b = cast<T>(load("indef_5_a"));
    const double e =
      relative(to_double(linalg::inverse_root(b.data(), 5, 2, 1e-2)), load("indef_5_inv_root_p2"));
    w.note("inv_root_p2 indefinite", e);
    CHECK(e < tol);
  }
  {
    // A rank-3 Gram matrix: its four zero eigenvalues come out of syevd as +-1e-16 or so, below
    // the cutoff, so the result is A^+'s root on A's range. float: the rounding of A's entries
    // moves the nonzero eigenvalues by their condition number times 6e-8.
    const std::vector<T> g = cast<T>(load("psd_7r3_a"));
    for (int k : { 1, 2, 4 }) {
      CAPTURE(k);
      const double e = relative(to_double(linalg::pinv_root(g.data(), 7, k)),
                                load("psd_7r3_pinv_root_p" + std::to_string(k)));
      w.note("pinv_root rank 3", e);
      CHECK(e < (std::is_same_v<T, float> ? 1e-4 : 1e-12));
    }
  }
  for (const auto& [m, n] :
       { std::pair<std::size_t, std::size_t>{ 1, 1 }, { 7, 3 }, { 64, 16 }, { 64, 64 } }) {
    CAPTURE(m, n);
    const std::string base = "qr_" + std::to_string(m) + "x" + std::to_string(n) + "_";
    const std::vector<T> a = cast<T>(load(base + "a"));
    const auto [q, r] = linalg::qr_orthonormal(a.data(), m, n);
    const double eq = relative(to_double(q), load(base + "q")), er = relative(to_double(r), load(base + "r"));
    w.note("qr_orthonormal Q", eq);
    w.note("qr_orthonormal R", er);
    CHECK(eq < tol);
    CHECK(er < tol);
  }
  w.print(std::is_same_v<T, float> ? "float32" : "float64");
}
