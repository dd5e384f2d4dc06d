#pragma once
// The body of shampoo<L, R>::apply (shampoo.hpp): the factors' update with one SYRK per side, the
// roots by LAPACK's syevd at a refresh (linalg/matrix_power.hpp), copied from the last step's
// between refreshes, and the preconditioned block with one GEMM per side.
//
//   steep::precond::shampoo<> map;
//   map.apply(x, rows, cols, steep::expr::matrix_state<float>{ old, next, t });
//
// It writes every slot of st.next in full and reads st.old only: the engine stores st.next when
// the step commits (engine/passes/matrix_phase.hpp).

#include "steep/kernel/blas.hpp"
#include "steep/linalg/matrix_power.hpp"
#include "steep/precond/shampoo.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace steep::precond {

namespace detail {
// next = beta2 old + (1 - beta2) X X^T (left) or X^T X (right), or old + that product for beta2 =
// 1; n x n, both triangles written.
template <class T>
void update_factor(const T* x, std::size_t rows, std::size_t cols, bool left, double beta2, const T* old,
                   T* next) {
  const std::size_t n = left ? rows : cols;
  std::copy(old, old + n * n, next);
  if (rows == 0 || cols == 0) // an empty block: a product of nothing is zero (and BLAS refuses lda 0)
    return;
  const T alpha = beta2 == 1 ? T(1) : static_cast<T>(1 - beta2), beta = static_cast<T>(beta2);
  if (left)
    kernel::blas::syrk<T>(rows, cols, alpha, x, cols, beta, next, rows);
  else
    kernel::blas::syrk<T>(cols, rows, alpha, x, cols, beta, next, cols, /*transpose_a=*/true);
  for (std::size_t i = 0; i < n; ++i) // syrk wrote the upper triangle
    for (std::size_t j = 0; j < i; ++j)
      next[i * n + j] = next[j * n + i];
}
} // namespace detail

template <fixed_string L, fixed_string R>
template <class T>
void shampoo<L, R>::apply(T* x, std::size_t rows, std::size_t cols, expr::matrix_state<T> st) const {
  const double a = left_exponent(rows, cols), b = right_exponent(rows, cols);
  const bool refresh = (st.step - 1) % s.every == 0;
  std::vector<T> tmp;
  for (int side = 0; side < 2; ++side) {
    const bool left = side == 0;
    const double power = left ? a : b;
    if (power == 0)
      continue;
    const std::size_t n = left ? rows : cols;
    detail::update_factor(x, rows, cols, left, s.beta2, st.old[side], st.next[side]);
    T* root = st.next[2 + side];
    if (refresh) {
      const std::vector<T> r =
        linalg::matrix_power_sym(st.next[side], n, power, s.eps, linalg::relative_if(s.relative_eps));
      std::copy(r.begin(), r.end(), root);
    } else
      std::copy(st.old[2 + side], st.old[2 + side] + n * n, root);
  }
  // Both factors are updated from the operand before it is overwritten.
  if (rows == 0 || cols == 0)
    return;
  if (a != 0) { // x <- L_root x
    tmp.assign(x, x + rows * cols);
    kernel::blas::gemm<T>(false, false, rows, cols, rows, T(1), st.next[2], rows, tmp.data(), cols, T(0), x,
                          cols);
  }
  if (b != 0) { // x <- x R_root
    tmp.assign(x, x + rows * cols);
    kernel::blas::gemm<T>(false, false, rows, cols, cols, T(1), tmp.data(), cols, st.next[3], cols, T(0), x,
                          cols);
  }
}

} // namespace steep::precond
