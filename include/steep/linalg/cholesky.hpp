#pragma once
// cholesky: the Cholesky factor of a symmetric positive definite matrix (LAPACK potrf), float or
// double.
//
//   template <class T> std::vector<T> cholesky(const T* a, std::size_t n);
//
//   A = L L^T,   L lower triangular with a positive diagonal
//
//   std::vector<double> a = { 4, 2,
//                             2, 5 };
//   auto l = steep::linalg::cholesky(a.data(), 2);   // { 2, 0,
//                                                    //   1, 2 }
//
// A is row-major n x n and only its lower triangle is read; L is row-major with zeros above the
// diagonal. A matrix that is not positive definite is refused, not repaired: steep::lapack_error
// (core/error.hpp) names dpotrf / spotrf, the shape and the first leading minor that is not
// positive (info = its order), e.g. "steep: LAPACK dpotrf failed (info 2): the 3 x 3 matrix is
// not positive definite: its leading minor of order 2 is not positive". A caller that wants a factor
// anyway adds a ridge (A + eps I) and retries; which eps is the caller's policy, not this
// function's.

#include "steep/kernel/lapack.hpp"

#include <cstddef>
#include <vector>

namespace steep::linalg {

template <class T>
std::vector<T> cholesky(const T* a, std::size_t n) {
  std::vector<T> l(a, a + n * n);
  kernel::lapack::potrf(n, l.data(), kernel::lapack::triangle::lower);
  for (std::size_t i = 0; i < n; ++i) // potrf leaves the upper triangle as A had it
    for (std::size_t j = i + 1; j < n; ++j)
      l[i * n + j] = T(0);
  return l;
}

} // namespace steep::linalg
