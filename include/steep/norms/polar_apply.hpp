#pragma once
// The definitions of exact_polar::apply and singular_values (polar.hpp): LAPACK's gesdd, then one
// GEMM. The engine includes it; a rule that only names the map does not.
//
//   #include <steep/norms/polar_apply.hpp>
//   steep::norms::exact_polar{}.apply(x, rows, cols);
//
// The math: kernel::lapack::gesdd factors the row-major rows x cols buffer X as X = U S V^T with
// U (rows x k) and V^T (k x cols) row-major (it calls LAPACK on X^T and swaps the outputs, no
// copy), so polar(X) = U V^T is one row-major GEMM with no transposes, and dropping the direction
// of singular value r zeroes row r of V^T.
//
// gesdd is declared once, with the other LAPACK routines steep calls, in kernel/lapack.hpp.

#include "steep/kernel/blas.hpp"
#include "steep/kernel/lapack.hpp"
#include "steep/norms/polar.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>

namespace steep::norms {

template <class T>
void exact_polar::apply(T* x, std::size_t rows, std::size_t cols) const {
  if (rows == 0 || cols == 0)
    return;
  const std::size_t k = std::min(rows, cols);
  std::vector<T> a(x, x + rows * cols), s, u, vt;
  kernel::lapack::gesdd('S', rows, cols, a.data(), s, u, vt); // X = U S V^T
  const double tol =
    (rcond < 0 ? static_cast<double>(std::max(rows, cols)) * std::numeric_limits<T>::epsilon() : rcond) *
    static_cast<double>(s[0]);
  for (std::size_t r = 0; r < k; ++r)
    if (!(static_cast<double>(s[r]) > tol))
      std::fill(vt.begin() + static_cast<std::ptrdiff_t>(r * cols),
                vt.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols), T(0));
  kernel::blas::gemm<T>(false, false, rows, cols, k, T(1), u.data(), k, vt.data(), cols, T(0), x, cols);
}

// The singular values of a row-major rows x cols block, descending (LAPACK gesdd, no vectors).
template <class T>
std::vector<double> singular_values(const T* x, std::size_t rows, std::size_t cols) {
  if (rows == 0 || cols == 0)
    return {};
  std::vector<T> a(x, x + rows * cols), s, u, vt;
  kernel::lapack::gesdd('N', rows, cols, a.data(), s, u, vt);
  return std::vector<double>(s.begin(), s.end());
}

} // namespace steep::norms
