#pragma once
// sym_eigh: the eigendecomposition of a symmetric matrix (LAPACK syevd), float or double.
//
//   template <class T> eigh_result<T> sym_eigh(const T* a, std::size_t n);
//
//   A = V diag(w) V^T,   w ascending,   V^T V = I
//
//   std::vector<double> a = { 2, 1,
//                             1, 2 };
//   auto [w, v] = steep::linalg::sym_eigh(a.data(), 2);
//   // w = { 1, 3 }; v is row-major 2 x 2 and its column j is w[j]'s eigenvector, as in NumPy's
//   // eigh: v = { -0.7071, 0.7071,
//   //              0.7071, 0.7071 } (or a column negated)
//
// A is row-major n x n and only its upper triangle is read (what blas::syrk writes, so a
// preconditioner accumulated by syrk needs no mirroring). Each eigenvector's sign is LAPACK's,
// either one: compare V diag(w) V^T, or |v_j . u_j|, never V itself. Where eigenvalues are
// close, so is the eigenvector's error large (about eps ||A|| / gap); the functions of A built
// from it (matrix_power.hpp) are not affected.

#include "steep/kernel/lapack.hpp"

#include <cstddef>
#include <utility>
#include <vector>

namespace steep::linalg {

template <class T>
struct eigh_result {
  std::vector<T> values;  // n eigenvalues, ascending
  std::vector<T> vectors; // row-major n x n; column j is a unit eigenvector of values[j]
};

template <class T>
eigh_result<T> sym_eigh(const T* a, std::size_t n) {
  // syevd leaves eigenvector j in row j (V^T, row-major): transpose to NumPy's layout.
  std::vector<T> vt(a, a + n * n), w(n);
  kernel::lapack::syevd(n, vt.data(), w.data());
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j)
      std::swap(vt[i * n + j], vt[j * n + i]);
  return { std::move(w), std::move(vt) };
}

} // namespace steep::linalg
