#pragma once
// The definition of newton_schulz::apply (newton_schulz.hpp): BLAS's SYRK/SYMM or GEMMs. The
// engine includes it; a rule that only names the map does not need it.
//
//   #include <steep/norms/newton_schulz_apply.hpp>
//   steep::norms::newton_schulz{}.apply(x, rows, cols);

#include "steep/kernel/blas.hpp"
#include "steep/norms/newton_schulz.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace steep::norms {

namespace detail {

// Scratch for one thread, reused across calls: NS runs every step on every block, and
// zero-filling fresh buffers of the block's size each time costs a visible share of a step.
template <class T>
std::vector<T>& ns_scratch(int which, std::size_t n) {
  thread_local std::vector<T> bufs[3];
  if (bufs[which].size() < n)
    bufs[which].resize(n);
  return bufs[which];
}

// Copies the upper triangle of a symmetric m x m matrix to the lower, tile by tile (a plain
// column-order loop over a 1024 x 1024 block is cache-hostile and cost a third of an NS step).
template <class T>
void mirror_upper(T* a, std::size_t m) {
  constexpr std::size_t tile = 32;
  for (std::size_t ib = 0; ib < m; ib += tile)
    for (std::size_t jb = ib; jb < m; jb += tile)
      for (std::size_t i = ib; i < std::min(ib + tile, m); ++i)
        for (std::size_t j = std::max(jb, i + 1); j < std::min(jb + tile, m); ++j)
          a[j * m + i] = a[i * m + j];
}

template <class T>
void ns_iterate_symmetric(const newton_schulz& ns, T* x, std::size_t rows, std::size_t cols) {
  namespace blas = kernel::blas;
  const bool tall = rows > cols;
  const std::size_t m = tall ? cols : rows, n = tall ? rows : cols, size = rows * cols;
  T* a = ns_scratch<T>(0, m * m).data();
  T* b = ns_scratch<T>(1, m * m).data();
  T* cur = x;
  T* next = ns_scratch<T>(2, size).data();
  for (int k = 0; k < ns.step_count(); ++k) {
    const ns_coefficients q = ns.at(k);
    // A = X X^T (wide) or X^T X (tall): upper triangle, then mirrored so A can be a plain operand.
    blas::syrk<T>(m, n, T(1), cur, cols, T(0), a, m, tall);
    mirror_upper(a, m);
    // B = b A + c A A^T (A symmetric, so A A^T = A A); then B + a I, so that the update
    // a X + B X is one product (B + a I) X with nothing to copy first.
    std::copy(a, a + m * m, b);
    blas::syrk<T>(m, m, static_cast<T>(q.c), a, m, static_cast<T>(q.b), b, m);
    for (std::size_t i = 0; i < m; ++i)
      b[i * m + i] += static_cast<T>(q.a);
    // X <- (B + a I) X (wide) or X (B + a I) (tall: the transpose of the same update).
    if (tall)
      blas::symm_right<T>(rows, cols, T(1), b, m, cur, cols, T(0), next, cols);
    else
      blas::symm_left<T>(rows, cols, T(1), b, m, cur, cols, T(0), next, cols);
    std::swap(cur, next);
  }
  if (cur != x)
    std::copy(cur, cur + size, x);
}

// torch's sequence: explicit transpose, A = X X^T, B = b A + c A A, X = a X + B X (all GEMM).
template <class T>
void ns_iterate_plain(const newton_schulz& ns, T* x, std::size_t rows, std::size_t cols) {
  namespace blas = kernel::blas;
  const bool tall = rows > cols;
  const std::size_t m = tall ? cols : rows, n = tall ? rows : cols, size = rows * cols;
  std::vector<T> xs(size), a(m * m), b(m * m), y(size);
  if (tall) {
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j)
        xs[j * rows + i] = x[i * cols + j];
  } else {
    std::copy(x, x + size, xs.begin());
  }
  for (int k = 0; k < ns.step_count(); ++k) {
    const ns_coefficients q = ns.at(k);
    blas::gemm<T>(false, true, m, m, n, T(1), xs.data(), n, xs.data(), n, T(0), a.data(), m);
    std::copy(a.begin(), a.end(), b.begin());
    blas::gemm<T>(false, false, m, m, m, static_cast<T>(q.c), a.data(), m, a.data(), m, static_cast<T>(q.b),
                  b.data(), m);
    std::copy(xs.begin(), xs.end(), y.begin());
    blas::gemm<T>(false, false, m, n, m, T(1), b.data(), m, xs.data(), n, static_cast<T>(q.a), y.data(), n);
    xs.swap(y);
  }
  if (tall) {
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j)
        x[i * cols + j] = xs[j * rows + i];
  } else {
    std::copy(xs.begin(), xs.end(), x);
  }
}
} // namespace detail

template <class T>
void newton_schulz::apply(T* x, std::size_t rows, std::size_t cols) const {
  if (rows == 0 || cols == 0)
    return;
  const std::size_t size = rows * cols;
  double ss = 0;
  for (std::size_t i = 0; i < size; ++i)
    ss += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  const double nrm = norm_scale * std::sqrt(ss);
  const T denom = static_cast<T>(guard == frobenius_guard::clamp ? std::max(nrm, eps) : nrm + eps);
  for (std::size_t i = 0; i < size; ++i)
    x[i] = x[i] / denom;
  if (symmetric)
    detail::ns_iterate_symmetric(*this, x, rows, cols);
  else
    detail::ns_iterate_plain(*this, x, rows, cols);
}

} // namespace steep::norms
