#pragma once
// The polar factor of a block: the one place the spectral norm's dual map gets U V^T from.
//
//   template <class T> constexpr void polar_factor(matrix_ref<const T> g, matrix_ref<T> out);
//
//   g = U S V^T (thin SVD, numerically zero singular values dropped)  ->  out = U V^T
//
// <g, U V^T> = tr S = ||g||_nuclear and ||U V^T||_spectral = 1 (or 0 when g = 0): the maximizer of
// <g, d> over the spectral unit ball (Bernstein & Newhouse 2024, modular duality; Muon computes it
// approximately with Newton-Schulz). Dropping the directions of zero singular values makes the map
// exact and finite on zero and rank-deficient blocks (issue #3).
//
// Why a separate function: today both the compile-time and the run-time path use the one-sided
// Jacobi SVD (jacobi_svd.hpp), which is exact but O(p q^2) per sweep. This is the seam where a
// run-time LAPACK (or Newton-Schulz) path can be swapped in behind `if !consteval` without touching
// the norms. `out` may alias `g` (the SVD works on a copy).

#include "steep/norms/block_ref.hpp"
#include "steep/norms/detail/jacobi_svd.hpp"

#include <cstddef>

namespace steep::norms::detail {

template <class T>
constexpr void polar_factor(matrix_ref<const T> g, matrix_ref<T> out) {
  const svd_result r = jacobi_svd(g, true);
  for (std::size_t i = 0; i < r.rows; ++i)
    for (std::size_t j = 0; j < r.cols; ++j) {
      double x = 0;
      for (std::size_t l = 0; l < r.k && r.s[l] > 0; ++l)
        x += r.u_at(i, l) * r.v_at(j, l);
      out(i, j) = static_cast<T>(x);
    }
}

} // namespace steep::norms::detail
