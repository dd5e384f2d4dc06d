#pragma once
// The definitions of exact_polar::apply and singular_values (polar.hpp): LAPACK's gesdd, then one
// GEMM. The engine includes it; a rule that only names the map does not.
//
//   #include <steep/norms/polar_apply.hpp>
//   steep::norms::exact_polar{}.apply(x, rows, cols);
//
// The math: a row-major rows x cols buffer X is, read column-major, the cols x rows matrix X^T.
// gesdd gives X^T = U S V^T (U: cols x k, V^T: k x rows, both column-major), so X = V S U^T and
// polar(X) = V U^T. As row-major buffers, gesdd's V^T holds V (rows x k) and its U holds U^T
// (k x cols): polar(X) = (buffer vt) (buffer u), one row-major GEMM with no transposes, and
// dropping the direction of singular value r zeroes row r of the u buffer.
//
// gesdd is declared here, under its Fortran symbol, instead of through xtensor-blas's linalg
// (xt::linalg::svd): that header adds about a second to every translation unit that includes
// the engine (docs/compile-time.md). The declaration's C++ name is steep's own (an
// asm label picks the symbol), so it cannot clash with FLENS's or LAPACKE's declarations of the
// same routine in a translation unit that includes those too. It passes the hidden length of
// the character argument, as gfortran-compiled LAPACK expects.

#include "steep/kernel/blas.hpp"
#include "steep/norms/polar.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace steep::norms {
namespace detail::lapack {
void sgesdd(const char* jobz, const int* m, const int* n, float* a, const int* lda, float* s, float* u,
            const int* ldu, float* vt, const int* ldvt, float* work, const int* lwork, int* iwork, int* info,
            std::size_t jobz_len) __asm__("sgesdd_");
void dgesdd(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s, double* u,
            const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork, int* iwork,
            int* info, std::size_t jobz_len) __asm__("dgesdd_");

// Thin SVD of the column-major m x n matrix in `a` (overwritten): s (k values, descending) and,
// with vectors, u (m x k) and vt (k x n), column-major. jobz 'S' (vectors) or 'N'.
template <class T>
void gesdd(char jobz, std::size_t m, std::size_t n, std::vector<T>& a, std::vector<T>& s, std::vector<T>& u,
           std::vector<T>& vt) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "LAPACK's gesdd takes float or double");
  const std::size_t k = std::min(m, n);
  const int im = static_cast<int>(m), in = static_cast<int>(n), ik = static_cast<int>(k);
  const int lda = std::max(im, 1), ldu = std::max(im, 1), ldvt = std::max(ik, 1);
  s.assign(k, T(0));
  if (jobz == 'S') {
    u.assign(m * k, T(0));
    vt.assign(k * n, T(0));
  } else {
    u.assign(1, T(0));
    vt.assign(1, T(0));
  }
  std::vector<int> iwork(8 * k);
  auto call = [&](T* work, int lwork) {
    int info = 0;
    if constexpr (std::is_same_v<T, float>)
      sgesdd(&jobz, &im, &in, a.data(), &lda, s.data(), u.data(), &ldu, vt.data(), &ldvt, work, &lwork,
             iwork.data(), &info, 1);
    else
      dgesdd(&jobz, &im, &in, a.data(), &lda, s.data(), u.data(), &ldu, vt.data(), &ldvt, work, &lwork,
             iwork.data(), &info, 1);
    return info;
  };
  T query = 0;
  int info = call(&query, -1);
  if (info == 0) {
    // The size comes back as a T: above 2^24 a float may round it down, so round it up again.
    const double size =
      static_cast<double>(query) * (1 + 4 * static_cast<double>(std::numeric_limits<T>::epsilon()));
    std::vector<T> work(std::max<std::size_t>(1, static_cast<std::size_t>(size) + 1));
    info = call(work.data(), static_cast<int>(work.size()));
  }
  if (info != 0)
    throw std::runtime_error("steep: LAPACK gesdd failed on a " + std::to_string(n) + " x " +
                             std::to_string(m) + " block (info " + std::to_string(info) + ')');
}
} // namespace detail::lapack

template <class T>
void exact_polar::apply(T* x, std::size_t rows, std::size_t cols) const {
  if (rows == 0 || cols == 0)
    return;
  const std::size_t k = std::min(rows, cols);
  std::vector<T> a(x, x + rows * cols), s, u, vt;
  detail::lapack::gesdd('S', cols, rows, a, s, u, vt); // X^T, column-major
  const double tol =
    (rcond < 0 ? static_cast<double>(std::max(rows, cols)) * std::numeric_limits<T>::epsilon() : rcond) *
    static_cast<double>(s[0]);
  for (std::size_t r = 0; r < k; ++r)
    if (!(static_cast<double>(s[r]) > tol))
      std::fill(u.begin() + static_cast<std::ptrdiff_t>(r * cols),
                u.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols), T(0));
  kernel::blas::gemm<T>(false, false, rows, cols, k, T(1), vt.data(), k, u.data(), cols, T(0), x, cols);
}

// The singular values of a row-major rows x cols block, descending (LAPACK gesdd, no vectors).
template <class T>
std::vector<double> singular_values(const T* x, std::size_t rows, std::size_t cols) {
  if (rows == 0 || cols == 0)
    return {};
  std::vector<T> a(x, x + rows * cols), s, u, vt;
  detail::lapack::gesdd('N', cols, rows, a, s, u, vt); // the singular values of X^T are X's
  return std::vector<double>(s.begin(), s.end());
}

} // namespace steep::norms
