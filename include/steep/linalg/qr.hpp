#pragma once
// qr_orthonormal: the thin QR factorization with R's diagonal nonnegative (LAPACK geqrf + orgqr),
// float or double.
//
//   template <class T> qr_result<T> qr_orthonormal(const T* a, std::size_t m, std::size_t n);
//
//   A = Q R,   A and Q: m x n (m >= n),   Q^T Q = I,   R: n x n upper triangular, R_jj >= 0
//
//   std::vector<double> a = { 3, 1,
//                             4, 2,
//                             0, 5 };
//   auto [q, r] = steep::linalg::qr_orthonormal(a.data(), 3, 2);
//   // q: row-major 3 x 2, its columns orthonormal; r = { 5, 2.2, 0, 5.016 }, row-major 2 x 2
//   // (r[0] = ||column 0 of A|| = 5)
//
// Householder QR leaves each R_jj with either sign; flipping column j of Q and row j of R where
// R_jj < 0 changes neither A = Q R nor Q^T Q = I and makes the factorization unique for a full-rank
// A (the Gram-Schmidt one), so Q does not jump between sign patterns from one step to the next (an
// orthonormal basis kept as optimizer state: SOAP's, Dion's). A rank-deficient A still gives
// Q^T Q = I and A = Q R, with R_jj = 0 where a column depends on the ones before it, and there Q's
// column is not unique.

#include "steep/kernel/lapack.hpp"

#include <cstddef>
#include <vector>

namespace steep::linalg {

template <class T>
struct qr_result {
  std::vector<T> q; // row-major m x n, orthonormal columns
  std::vector<T> r; // row-major n x n, upper triangular (zeros below), nonnegative diagonal
};

template <class T>
qr_result<T> qr_orthonormal(const T* a, std::size_t m, std::size_t n) {
  qr_result<T> out{ std::vector<T>(m * n), std::vector<T>(n * n) };
  kernel::lapack::geqrf_orgqr(m, n, a, out.q.data(), out.r.data()); // refuses m < n
  for (std::size_t j = 0; j < n; ++j) {
    if (!(out.r[j * n + j] < T(0)))
      continue;
    for (std::size_t k = j; k < n; ++k) // row j of R (zeros left of the diagonal)
      out.r[j * n + k] = -out.r[j * n + k];
    for (std::size_t i = 0; i < m; ++i) // column j of Q
      out.q[i * n + j] = -out.q[i * n + j];
  }
  return out;
}

} // namespace steep::linalg
