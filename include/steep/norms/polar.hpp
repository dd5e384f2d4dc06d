#pragma once
// The exact spectral dual map: the polar factor U V^T of a block G = U S V^T, in place.
//
//   steep::norms::exact_polar polar;           // drop singular values <= max(r, c) * eps * s_max
//   polar.apply(x, rows, cols);                // x (row-major rows x cols) <- U V^T
//
// The math: argmax_{||D||_2 <= 1} <G, D> = U V^T, with <G, U V^T> = sum_i s_i = ||G||_* (the
// nuclear norm, the spectral norm's dual). When G is rank deficient the maximizer is not unique;
// steep drops the directions of (numerically) zero singular values, so the result is the
// partial isometry of G's range and a zero block maps to zero, never to an arbitrary rotation.
// Computed by LAPACK's gesdd (through xtensor-blas), as torch.linalg.svd does on the CPU: this
// is what the golden `muon_exact` case uses in place of Newton–Schulz.

#include "steep/core/xsimd_fence.hpp" // first: xtensor below pulls in <immintrin.h>
#include "steep/kernel/blas.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>
#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>

namespace steep::norms {

struct exact_polar {
  // Singular values at or below rcond * s_max count as zero; negative: max(rows, cols) * epsilon.
  double rcond = -1;

  bool operator==(const exact_polar&) const = default;

  template <class T>
  void apply(T* x, std::size_t rows, std::size_t cols) const {
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
};

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
