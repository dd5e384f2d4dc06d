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
// exact and finite on zero and rank-deficient blocks.
//
// Two paths, one rule for dropping null directions (s <= max(r, c) eps(T) s_max): in constant
// evaluation the one-sided Jacobi SVD (jacobi_svd.hpp: exact, O(p q^2) per sweep, what the
// static_asserts check); at run time LAPACK's gesdd (polar.hpp), fast on large blocks and what
// the run-time law kits check. `out` may alias `g`.

#include "steep/norms/block_ref.hpp"
#include "steep/norms/detail/jacobi_svd.hpp"
#include "steep/norms/polar.hpp"

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

namespace steep::norms::detail {

template <class T>
constexpr void polar_factor(matrix_ref<const T> g, matrix_ref<T> out) {
  if (!std::is_constant_evaluated()) {
    if (out.data != g.data)
      std::copy(g.data, g.data + g.rows * g.cols, out.data);
    exact_polar{}.apply(out.data, g.rows, g.cols);
    return;
  }
  const svd_result r = jacobi_svd(g, true);
  for (std::size_t i = 0; i < r.rows; ++i)
    for (std::size_t j = 0; j < r.cols; ++j) {
      double x = 0;
      for (std::size_t l = 0; l < r.k && r.s[l] > 0; ++l)
        x += r.u_at(i, l) * r.v_at(j, l);
      out(i, j) = static_cast<T>(x);
    }
}

// The singular values of g, descending: Jacobi in constant evaluation, LAPACK at run time.
template <class T>
constexpr std::vector<double> singular_values(matrix_ref<const T> g) {
  if (!std::is_constant_evaluated())
    return norms::singular_values(g.data, g.rows, g.cols);
  const svd_result r = jacobi_svd(g, false);
  std::vector<double> s;
  for (std::size_t i = 0; i < r.k; ++i)
    s.push_back(r.s[i]);
  return s;
}

} // namespace steep::norms::detail
