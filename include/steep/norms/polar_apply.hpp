#pragma once
// The definitions of exact_polar::apply and singular_values (polar.hpp): LAPACK's gesdd through
// xtensor-blas, then one GEMM. The engine includes it; a rule that only names the map does not.
//
//   #include <steep/norms/polar_apply.hpp>
//   steep::norms::exact_polar{}.apply(x, rows, cols);

#include "steep/core/xsimd_fence.hpp" // first: xtensor below pulls in <immintrin.h>
#include "steep/kernel/blas.hpp"
#include "steep/norms/polar.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <limits>
#include <vector>
#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>

namespace steep::norms {

template <class T>
void exact_polar::apply(T* x, std::size_t rows, std::size_t cols) const {
  if (rows == 0 || cols == 0)
    return;
  const std::size_t k = std::min(rows, cols);
  xt::xtensor<T, 2> g =
    xt::adapt(x, rows * cols, xt::no_ownership(), std::array<std::size_t, 2>{ rows, cols });
  auto [u, s, vt] = xt::linalg::svd(g, /*full_matrices=*/false, /*compute_uv=*/true);
  const double tol =
    (rcond < 0 ? static_cast<double>(std::max(rows, cols)) * std::numeric_limits<T>::epsilon() : rcond) *
    (k ? static_cast<double>(s(0)) : 0.0);
  // Drop the null directions, then x = U V^T as one GEMM.
  for (std::size_t r = 0; r < k; ++r)
    if (!(static_cast<double>(s(r)) > tol))
      for (std::size_t i = 0; i < rows; ++i)
        u(i, r) = T(0);
  // U and V^T come back column-major: as row-major buffers they hold U^T and V.
  kernel::blas::gemm<T>(true, true, rows, cols, k, T(1), u.data(), rows, vt.data(), k, T(0), x, cols);
}

// The singular values of a row-major rows x cols block, descending (LAPACK gesdd, no vectors).
template <class T>
std::vector<double> singular_values(const T* x, std::size_t rows, std::size_t cols) {
  if (rows == 0 || cols == 0)
    return {};
  xt::xtensor<T, 2> g =
    xt::adapt(x, rows * cols, xt::no_ownership(), std::array<std::size_t, 2>{ rows, cols });
  auto [u, s, vt] = xt::linalg::svd(g, /*full_matrices=*/false, /*compute_uv=*/false);
  return std::vector<double>(s.begin(), s.end());
}

} // namespace steep::norms
