#pragma once
// matrix_power_sym, inverse_root: real powers of a symmetric positive semidefinite matrix, as
// Shampoo takes its preconditioners' inverse roots (eigendecomposition, LAPACK syevd).
//
//   template <class T> std::vector<T> matrix_power_sym(const T* a, std::size_t n, double power, double eps,
//                                                      eps_mode mode = eps_mode::absolute);
//   template <class T> std::vector<T> inverse_root(const T* a, std::size_t n, double p, double eps,
//                                                  eps_mode mode = eps_mode::absolute);
//                                     // = matrix_power_sym(a, n, -1 / p, eps, mode)
//   template <class T> std::vector<T> pinv_root(const T* a, std::size_t n, double p);
//                                     // (A^+)^(1/p): the pseudo-inverse's root, no eps
//
//   A = V diag(w) V^T (w ascending),   w'_i = (w_i - min(w_1, 0)) + e,
//   matrix_power_sym(A, power, eps) = V diag(w'^power) V^T   (= (A + eps I)^power for A PSD)
//   e = eps (eps_mode::absolute), or e = eps max(w'_n, 1e-16) (eps_mode::relative: eps times the
//       largest eigenvalue after the shift, Anil et al. 2020's ridge)
//
//   // Shampoo's step for a rows x cols gradient G: L^(-1/4) G R^(-1/4)
//   auto l = steep::linalg::inverse_root(L.data(), rows, 4, 1e-12);   // (L + eps I)^(-1/4)
//   auto r = steep::linalg::inverse_root(R.data(), cols, 4, 1e-12);
//   auto half = steep::linalg::matrix_power_sym(A.data(), n, 0.5, 0.0); // A's PSD square root
//
// A is row-major n x n and only its upper triangle is read (blas::syrk's); the result is row-major
// and exactly symmetric (both triangles written).
//
// The convention is distributed Shampoo's: Shi et al. (2023), "A Distributed Data-Parallel
// PyTorch Implementation of the Distributed Shampoo Optimizer for Training Neural Networks
// At-Scale" (arXiv:2309.06497), code in the repository facebookresearch/optimizers
// (matrix_inverse_root with the eigendecomposition method, perturbed after it; the repository's
// later default adds eps before the eigendecomposition and shifts only an eigenvalue below eps:
// the two agree to 4e-13 on the reference cases, docs/benchmarks.md). Rounding
// can leave a PSD matrix (a sum of outer products) with slightly negative eigenvalues; Shampoo
// does not clamp each eigenvalue at 0 but SHIFTS all of them by -min(w_1, 0), which makes the
// smallest one exactly 0 and keeps the gaps, and then adds eps. For a positive definite A the
// shift is 0 and the result is (A + eps I)^power. eps is absolute by default, as distributed
// Shampoo's is. eps_mode::relative scales it by A's largest eigenvalue, as Anil et al. (2020),
// "Scalable Second Order Optimization for Deep Learning" (arXiv:2002.09018; the repository
// google-research/google-research, scalable_shampoo: ridge_epsilon * max(max_ev, 1e-16), there
// with the top eigenvalue from a power iteration and the root by a coupled Newton iteration) do:
// a factor that is a sum of outer products grows with the steps, and an absolute eps then
// regularizes less and less, while eps w_max bounds the root's condition number by 1 / eps at
// every scale (the main job's accumulated Shampoo on the paper preset needs it:
// docs/results/shampoo/README.md).
//
// The powers are taken in double for float input too. A negative power of a zero eigenvalue
// (eps = 0 and A singular, or A with a negative eigenvalue) is refused: pass eps > 0.
//
// pinv_root takes no eps: it is the p-th root of the Moore-Penrose pseudo-inverse A^+, the inverse
// root on A's range and 0 on its null space. An eigenvalue at or below n u max_j |w_j| (u: T's
// unit roundoff times 2, numeric_limits<T>::epsilon; the cutoff of NumPy's matrix_rank) counts as
// 0. It is what makes Shampoo without accumulation the polar factor: for G = U S V^T of rank r,
// (G G^T)^(+1/4) G (G^T G)^(+1/4) = U_r V_r^T, exactly the dual map of the spectral norm
// (Bernstein & Newhouse 2024, "Old Optimizer, New Norm", arXiv:2409.20325), where any eps > 0
// would leave a step that grows with G's size.

#include "steep/core/error.hpp"
#include "steep/kernel/blas.hpp"
#include "steep/kernel/lapack.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

namespace steep::linalg {

namespace detail {
inline std::string number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

// V diag(f) V^T from syevd's eigenvectors b (row j: eigenvector j; overwritten), given
// half_power(j) = f_j^(1/2) >= 0, the root of the function's value at eigenvalue j: B^T B with
// B = diag(f^(1/2)) V^T, one syrk (half a GEMM's flops), and the result exactly symmetric (both
// triangles written). (f^(1/2) is taken as lambda^(power / 2) in one pow, not as the root of
// lambda^power: one rounding.)
template <class T, class F>
std::vector<T> from_eigen(std::vector<T>& b, std::size_t n, F&& half_power) {
  for (std::size_t j = 0; j < n; ++j) {
    const T s = static_cast<T>(half_power(j));
    for (std::size_t i = 0; i < n; ++i)
      b[j * n + i] *= s;
  }
  std::vector<T> x(n * n);
  kernel::blas::syrk<T>(n, n, T(1), b.data(), n, T(0), x.data(), n, /*transpose_a=*/true);
  for (std::size_t i = 0; i < n; ++i) // syrk wrote the upper triangle
    for (std::size_t j = 0; j < i; ++j)
      x[i * n + j] = x[j * n + i];
  return x;
}
} // namespace detail

// How eps is read: as given, or times the matrix's largest eigenvalue (above).
enum class eps_mode { absolute, relative };
constexpr eps_mode relative_if(bool relative) { return relative ? eps_mode::relative : eps_mode::absolute; }

template <class T>
std::vector<T> matrix_power_sym(const T* a, std::size_t n, double power, double eps,
                                eps_mode mode = eps_mode::absolute) {
  if (!std::isfinite(power))
    throw usage_error("matrix_power_sym: the power must be finite, got " + detail::number(power));
  if (!(eps >= 0) || !std::isfinite(eps))
    throw usage_error("matrix_power_sym: eps must be finite and >= 0, got " + detail::number(eps));
  if (n == 0)
    return {};
  std::vector<T> b(a, a + n * n), w(n);
  kernel::lapack::syevd(n, b.data(), w.data()); // row j of b: eigenvector j (V^T, row-major)
  // Shampoo's two additions, in its order: the shift, then eps (w ascending: w[0] is the least).
  const double shift = -std::min(static_cast<double>(w[0]), 0.0);
  const double ridge =
    mode == eps_mode::relative ? eps * std::max(static_cast<double>(w[n - 1]) + shift, 1e-16) : eps;
  return detail::from_eigen(b, n, [&](std::size_t j) {
    const double lambda = (static_cast<double>(w[j]) + shift) + ridge;
    if (power < 0 && !(lambda > 0))
      throw usage_error("matrix_power_sym: the " + std::to_string(n) + " x " + std::to_string(n) +
                        " matrix plus eps I has eigenvalue " + detail::number(lambda) +
                        " (after Shampoo's shift " + detail::number(shift) + "), and power " +
                        detail::number(power) + " < 0 needs it positive: pass eps > 0");
    return std::pow(lambda, power / 2);
  });
}

// (A + eps I)^(-1/p) in Shampoo's convention (above); any real p > 0 (Shampoo: 2 per side of a
// matrix, 4 for its two-sided preconditioner, 2 k for a k-dimensional tensor).
template <class T>
std::vector<T> inverse_root(const T* a, std::size_t n, double p, double eps,
                            eps_mode mode = eps_mode::absolute) {
  if (!(p > 0) || !std::isfinite(p))
    throw usage_error("inverse_root: the root p must be finite and > 0, got " + detail::number(p));
  return matrix_power_sym(a, n, -1.0 / p, eps, mode);
}

// (A^+)^(1/p) of a symmetric PSD A (above): eigenvalues at or below n eps max |w| are 0; any
// real p > 0 (2 per side for one-sided Shampoo, 4 for the two-sided preconditioner).
template <class T>
std::vector<T> pinv_root(const T* a, std::size_t n, double p) {
  if (!(p > 0) || !std::isfinite(p))
    throw usage_error("pinv_root: the root p must be finite and > 0, got " + detail::number(p));
  if (n == 0)
    return {};
  std::vector<T> b(a, a + n * n), w(n);
  kernel::lapack::syevd(n, b.data(), w.data());
  const double top = std::max(std::abs(static_cast<double>(w[0])), std::abs(static_cast<double>(w[n - 1])));
  const double cutoff = static_cast<double>(n) * std::numeric_limits<T>::epsilon() * top;
  return detail::from_eigen(b, n, [&](std::size_t j) {
    const double lambda = w[j];
    return lambda > cutoff ? std::pow(lambda, -0.5 / p) : 0.0;
  });
}

} // namespace steep::linalg
