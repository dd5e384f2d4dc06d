// steep's BLAS products (kernel/blas.hpp) against xtensor-blas's, in one translation unit: both
// declare CBLAS symbols (steep under its own names), so this unit also shows they coexist.

#include <catch2/catch.hpp>
#include <cstddef>
#include <steep/kernel/blas.hpp>
#include <type_traits>
#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xrandom.hpp>
#include <xtensor/xtensor.hpp>

namespace blas = steep::kernel::blas;

namespace {

template <class T>
xt::xtensor<T, 2> random(std::size_t rows, std::size_t cols, unsigned seed) {
  xt::random::seed(seed);
  return xt::cast<T>(xt::random::randn<double>({ rows, cols }));
}

template <class T>
constexpr double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;

template <class T>
void require_close(const xt::xtensor<T, 2>& got, const xt::xtensor<T, 2>& want) {
  REQUIRE(got.shape() == want.shape());
  for (std::size_t i = 0; i < got.size(); ++i)
    REQUIRE(got.data()[i] == Approx(want.data()[i]).margin(tol<T>).epsilon(tol<T>));
}

} // namespace

TEMPLATE_TEST_CASE("BLAS products agree with xtensor-blas's", "[blas]", float, double) {
  using T = TestType;
  const auto a = random<T>(5, 3, 1), b = random<T>(3, 4, 2), at = random<T>(3, 5, 3), bt = random<T>(4, 3, 4);
  const T alpha = T(1.5), beta = T(-0.5);

  SECTION("gemm, every transpose, with beta") {
    const auto c0 = random<T>(5, 4, 5);
    for (bool ta : { false, true })
      for (bool tb : { false, true }) {
        const auto& A = ta ? at : a;
        const auto& B = tb ? bt : b;
        xt::xtensor<T, 2> c = c0;
        blas::gemm(ta, tb, 5, 4, 3, alpha, A.data(), A.shape(1), B.data(), B.shape(1), beta, c.data(), 4);
        const xt::xtensor<T, 2> opa = ta ? xt::xtensor<T, 2>(xt::transpose(A)) : A;
        const xt::xtensor<T, 2> opb = tb ? xt::xtensor<T, 2>(xt::transpose(B)) : B;
        require_close(c, xt::xtensor<T, 2>(alpha * xt::linalg::dot(opa, opb) + beta * c0));
      }
  }

  SECTION("syrk writes the upper triangle of a A A^T + b C, and of a A^T A") {
    const auto c0 = random<T>(5, 5, 6);
    xt::xtensor<T, 2> c = c0;
    blas::syrk(5, 3, alpha, a.data(), 3, beta, c.data(), 5);
    const xt::xtensor<T, 2> want = alpha * xt::linalg::dot(a, xt::transpose(a)) + beta * c0;
    for (std::size_t i = 0; i < 5; ++i)
      for (std::size_t j = 0; j < 5; ++j)
        if (j >= i)
          REQUIRE(c(i, j) == Approx(want(i, j)).margin(tol<T>).epsilon(tol<T>));
        else
          REQUIRE(c(i, j) == c0(i, j)); // the lower triangle is left as it was
    xt::xtensor<T, 2> ct = xt::zeros<T>({ 5, 5 });
    blas::syrk(5, 3, T(1), at.data(), 5, T(0), ct.data(), 5, /*transpose_a=*/true);
    require_close(ct, xt::xtensor<T, 2>(xt::triu(xt::linalg::dot(xt::transpose(at), at))));
  }

  SECTION("symm reads only the upper triangle, from the left and from the right") {
    const auto r = random<T>(3, 3, 7);
    const xt::xtensor<T, 2> s = r + xt::transpose(r);
    // Only the upper triangle is passed, zeros below: a product that read the lower would differ.
    const xt::xtensor<T, 2> s_upper = xt::triu(s);
    const auto c0 = random<T>(3, 4, 8), d0 = random<T>(4, 3, 9);
    xt::xtensor<T, 2> c = c0, d = d0;
    blas::symm_left(3, 4, alpha, s_upper.data(), 3, b.data(), 4, beta, c.data(), 4);
    require_close(c, xt::xtensor<T, 2>(alpha * xt::linalg::dot(s, b) + beta * c0));
    blas::symm_right(4, 3, alpha, s_upper.data(), 3, bt.data(), 3, beta, d.data(), 3);
    require_close(d, xt::xtensor<T, 2>(alpha * xt::linalg::dot(bt, s) + beta * d0));
  }
}
