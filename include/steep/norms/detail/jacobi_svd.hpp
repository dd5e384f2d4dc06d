#pragma once
// One-sided Jacobi (Hestenes) SVD, usable in constant expressions.
//
//   template <class T> constexpr svd_result jacobi_svd(matrix_ref<const T> a, bool want_vectors = true);
//   struct svd_result { rows, cols, k = min(rows, cols); u (rows x k), s (k, descending), v (cols x k) };
//
//   a = U diag(s) V^T,  U^T U = V^T V = I on the numerical range.
//
//   constexpr fixed_matrix<double, 2, 2> a{{3, 0, 0, -2}};
//   static_assert(jacobi_svd(a.ref()).s[0] == 3.0);      // (inside a constexpr function)
//
// Why one-sided Jacobi: it is short, needs no bidiagonalization or shifts, works for any shape, and
// is accurate in the relative sense, so the spectral and nuclear norms and the polar factor can be
// evaluated inside static_asserts. Scratch space is std::vector, which is constexpr in
// C++20 (libstdc++ 12). Sweeps run in double whatever T is, on the input scaled by its largest
// entry (no overflow in the squared column norms), until every pair of columns is orthogonal to
// p * eps relative (p = max(rows, cols); about 1e-15 for small blocks).
//
// Numerically zero singular values (<= max(rows, cols) * eps(T) * s_max, the threshold of
// norms/polar.hpp's LAPACK path, so both paths drop the same directions) are reported as exactly 0
// and their columns of U are zero: callers that form U V^T then drop those directions, so a zero or
// rank-deficient block gives a finite, exact partial isometry and never NaN ("zero input
// gives zero output"). For a float block, eps(T) is float's: its rounding noise is not a direction.
//
// This is the reference path. The polar factor is reached only through detail::polar_factor
// (polar_factor.hpp), so a faster run-time path (LAPACK, Newton-Schulz) can replace it there.

#include "steep/norms/block_ref.hpp"
#include "steep/norms/constexpr_math.hpp"

#include <cstddef>
#include <limits>
#include <vector>

namespace steep::norms::detail {

struct svd_result {
  std::size_t rows = 0, cols = 0, k = 0;
  std::vector<double> u; // rows x k, row-major: u[i * k + j] is entry i of the j-th left vector
  std::vector<double> s; // k singular values, descending; numerically zero ones are 0
  std::vector<double> v; // cols x k, row-major: v[i * k + j] is entry i of the j-th right vector

  constexpr double u_at(std::size_t i, std::size_t j) const { return u[i * k + j]; }
  constexpr double v_at(std::size_t i, std::size_t j) const { return v[i * k + j]; }
};

// n copies of x, built element by element: libstdc++ 12 fills a sized std::vector of a trivial type
// through memory it has not constructed yet, which GCC accepts in constant expressions and Clang
// rejects; push_back is portable.
template <class V>
constexpr std::vector<V> filled(std::size_t n, V x) {
  std::vector<V> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(x);
  return out;
}

// Singular values at or below this fraction of the largest are treated as zero.
template <class T>
constexpr double svd_rank_tolerance(std::size_t rows, std::size_t cols) {
  return static_cast<double>(rows > cols ? rows : cols) *
         static_cast<double>(std::numeric_limits<T>::epsilon());
}

template <class T>
constexpr svd_result jacobi_svd(matrix_ref<const T> a, bool want_vectors = true) {
  const std::size_t m = a.rows, n = a.cols;
  const bool transposed = m < n; // orthogonalize the columns of the tall one of A, A^T
  const std::size_t p = transposed ? n : m, q = transposed ? m : n;

  svd_result r;
  r.rows = m;
  r.cols = n;
  r.k = q;
  r.s = filled(q, 0.0);
  if (want_vectors) {
    r.u = filled(m * q, 0.0);
    r.v = filled(n * q, 0.0);
  }
  if (q == 0)
    return r;

  double amax = 0;
  for (std::size_t i = 0; i < m * n; ++i)
    amax =
      math::abs(static_cast<double>(a.data[i])) > amax ? math::abs(static_cast<double>(a.data[i])) : amax;
  if (amax == 0) // zero block: s = 0, U = 0; V is any orthonormal basis, the identity
  {
    if (want_vectors)
      for (std::size_t j = 0; j < q; ++j)
        (transposed ? r.u[j * q + j] : r.v[j * q + j]) = 1.0;
    return r;
  }

  // W: q columns of length p, column-major so that a column is contiguous. V: q x q, column-major.
  std::vector<double> w = filled(p * q, 0.0), vv = filled(want_vectors ? q * q : 0, 0.0);
  for (std::size_t j = 0; j < q; ++j)
    for (std::size_t i = 0; i < p; ++i)
      w[j * p + i] = static_cast<double>(transposed ? a.data[j * n + i] : a.data[i * n + j]) / amax;
  for (std::size_t j = 0; j < q && want_vectors; ++j)
    vv[j * q + j] = 1.0;

  const double tol = static_cast<double>(p) * 2.220446049250313e-16;
  for (int sweep = 0; sweep < 80; ++sweep) {
    bool rotated = false;
    for (std::size_t i = 0; i + 1 < q; ++i) {
      for (std::size_t j = i + 1; j < q; ++j) {
        double alpha = 0, beta = 0, gamma = 0;
        for (std::size_t l = 0; l < p; ++l) {
          const double wi = w[i * p + l], wj = w[j * p + l];
          alpha += wi * wi;
          beta += wj * wj;
          gamma += wi * wj;
        }
        if (gamma == 0 || math::abs(gamma) <= tol * math::sqrt(alpha) * math::sqrt(beta))
          continue;
        rotated = true;
        // Rotate (w_i, w_j) by the angle that makes them orthogonal: t = tan(theta) is the smaller
        // root of t^2 + 2 zeta t - 1 = 0 (Golub & Van Loan, Algorithm 8.5.2 / Hestenes 1958).
        const double zeta = (beta - alpha) / (2.0 * gamma);
        const double t = math::abs(zeta) > 1e150
                           ? 0.5 / zeta
                           : (zeta >= 0 ? 1.0 : -1.0) / (math::abs(zeta) + math::sqrt(1.0 + zeta * zeta));
        const double c = 1.0 / math::sqrt(1.0 + t * t), s = c * t;
        for (std::size_t l = 0; l < p; ++l) {
          const double wi = w[i * p + l], wj = w[j * p + l];
          w[i * p + l] = c * wi - s * wj;
          w[j * p + l] = s * wi + c * wj;
        }
        for (std::size_t l = 0; l < q && want_vectors; ++l) {
          const double vi = vv[i * q + l], vj = vv[j * q + l];
          vv[i * q + l] = c * vi - s * vj;
          vv[j * q + l] = s * vi + c * vj;
        }
      }
    }
    if (!rotated)
      break;
  }

  // Column norms are the singular values; order them descending (selection sort: q is small).
  std::vector<double> norms = filled(q, 0.0);
  std::vector<std::size_t> order = filled(q, std::size_t{ 0 });
  for (std::size_t j = 0; j < q; ++j) {
    double ss = 0;
    for (std::size_t l = 0; l < p; ++l)
      ss += w[j * p + l] * w[j * p + l];
    norms[j] = math::sqrt(ss);
    order[j] = j;
  }
  for (std::size_t i = 0; i < q; ++i) {
    std::size_t best = i;
    for (std::size_t j = i + 1; j < q; ++j)
      if (norms[order[j]] > norms[order[best]])
        best = j;
    const std::size_t tmp = order[i];
    order[i] = order[best];
    order[best] = tmp;
  }
  const double smax = norms[order[0]], drop = svd_rank_tolerance<T>(m, n) * smax;
  for (std::size_t jj = 0; jj < q; ++jj) {
    const std::size_t j = order[jj];
    const bool kept = norms[j] > drop;
    r.s[jj] = kept ? norms[j] * amax : 0.0;
    if (!want_vectors)
      continue;
    // Tall case: A = W V^T, so U = W / s, V = V. Wide case: A^T = W V^T, so U = V, V = W / s.
    for (std::size_t l = 0; l < p; ++l) {
      const double x = kept ? w[j * p + l] / norms[j] : 0.0;
      (transposed ? r.v[l * q + jj] : r.u[l * q + jj]) = x;
    }
    for (std::size_t l = 0; l < q; ++l)
      (transposed ? r.u[l * q + jj] : r.v[l * q + jj]) = vv[j * q + l];
  }
  return r;
}

} // namespace steep::norms::detail
