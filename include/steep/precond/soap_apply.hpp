#pragma once
// The body of soap<L, R>::apply (soap.hpp): the rotations into and out of the bases with one GEMM
// per side, the factors' EMA with one SYRK per side (shampoo_apply.hpp's update_factor), the bases
// by LAPACK's syevd at step 1 (linalg/eigh.hpp) and by one power iteration and a QR at a refresh
// (linalg/qr.hpp), copied from the last step's between refreshes.
//
//   steep::precond::soap<> map;
//   map.apply(x, rows, cols, steep::expr::matrix_state<float>{ old, next, t });
//
// It writes every slot of st.next in full and reads st.old only: the engine stores st.next when
// the step commits (engine/passes/matrix_phase.hpp). The order of operations is the authors'
// (SOAP.step, update_preconditioner, get_orthogonal_matrix_QR), so the state after a step is the
// code's state after the same step, up to roundoff: between refreshes the code rotates the first
// moment back out of the bases and into the same bases again, 4 of its 10 units of GEMM work a
// step, which steep skips unless soap_settings::round_trip_every_step asks for the code's order.

#include "steep/kernel/blas.hpp"
#include "steep/kernel/simd.hpp"
#include "steep/linalg/eigh.hpp"
#include "steep/linalg/qr.hpp"
#include "steep/precond/shampoo_apply.hpp"
#include "steep/precond/soap.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <vector>

namespace steep::precond {

namespace detail {
// x (rows x cols) <- Q_L^T x Q_R (the code's project), or Q_L x Q_R^T (back: its project_back); a
// side without a basis (null) is left alone, as the code's empty GG entry.
template <class T>
void soap_rotate(T* x, std::size_t rows, std::size_t cols, const T* ql, const T* qr, bool back,
                 std::vector<T>& tmp) {
  if (ql) {
    tmp.assign(x, x + rows * cols);
    kernel::blas::gemm<T>(!back, false, rows, cols, rows, T(1), ql, rows, tmp.data(), cols, T(0), x, cols);
  }
  if (qr) {
    tmp.assign(x, x + rows * cols);
    kernel::blas::gemm<T>(false, back, rows, cols, cols, T(1), tmp.data(), cols, qr, cols, T(0), x, cols);
  }
}

// The code's get_orthogonal_matrix: the eigenvectors of F + 1e-30 I, eigenvalues descending.
template <class T>
void soap_eigenbasis(const T* f, std::size_t n, T* q) {
  std::vector<T> a(f, f + n * n);
  for (std::size_t i = 0; i < n; ++i)
    a[i * n + i] += static_cast<T>(1e-30);
  const auto e = linalg::sym_eigh(a.data(), n); // ascending: flip the columns
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j)
      q[i * n + j] = e.vectors[i * n + (n - 1 - j)];
}

// The code's get_orthogonal_matrix_QR for one side: the basis's columns, and v's rows (left) or
// columns with them, sorted by the estimated eigenvalues diag(Q^T F Q) descending, then
// q_next = qr(F Q_sorted), one power iteration. QR's column signs are not the code's (steep's R
// has a nonnegative diagonal) and need not be: m is rotated back and forth, v is squared.
template <class T>
void soap_refresh(const T* f, const T* q, std::size_t n, bool left, T* v, std::size_t rows, std::size_t cols,
                  T* q_next) {
  std::vector<T> fq(n * n), qs(n * n);
  kernel::blas::gemm<T>(false, false, n, n, n, T(1), f, n, q, n, T(0), fq.data(), n);
  std::vector<T> est(n, T(0));
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j)
      est[j] += q[i * n + j] * fq[i * n + j];
  for (T& e : est) // a NaN sorts last (a strict weak order); the engine refuses such a step
    if (std::isnan(e))
      e = -std::numeric_limits<T>::infinity();
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{ 0 });
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return est[a] > est[b]; });
  const std::vector<T> vs(v, v + rows * cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c)
      v[r * cols + c] = left ? vs[idx[r] * cols + c] : vs[r * cols + idx[c]];
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j)
      qs[i * n + j] = q[i * n + idx[j]];
  kernel::blas::gemm<T>(false, false, n, n, n, T(1), f, n, qs.data(), n, T(0), fq.data(), n);
  const auto qr = linalg::qr_orthonormal(fq.data(), n, n);
  std::copy(qr.q.begin(), qr.q.end(), q_next);
}
} // namespace detail

template <fixed_string L, fixed_string R>
template <class T>
void soap<L, R>::apply(T* x, std::size_t rows, std::size_t cols, expr::matrix_state<T> st) const {
  const std::size_t size = rows * cols;
  const std::size_t n[2] = { keeps(rows) ? rows : 0, keeps(cols) ? cols : 0 };
  if (size == 0) { // an empty block: nothing to rotate (and BLAS refuses lda 0)
    for (std::size_t j = 0; j < state_count; ++j) {
      const std::size_t len = j < 4 ? n[j % 2] * n[j % 2] : 0;
      std::copy(st.old[j], st.old[j] + len, st.next[j]);
    }
    return;
  }
  const double sb = factor_beta();
  const std::vector<T> g(x, x + size);
  T *m = st.next[4], *v = st.next[5];
  auto update_factors = [&] {
    for (int side = 0; side < 2; ++side)
      if (n[side] != 0)
        detail::update_factor(g.data(), rows, cols, side == 0, sb, st.old[side], st.next[side]);
  };
  if (st.step == 1) { // the code's first step: the factors and their eigenbases, no update
    update_factors();
    for (int side = 0; side < 2; ++side) {
      const std::size_t k = n[side];
      if (k != 0 && kernel::all_finite(st.next[side], 0, k * k)) // else the engine refuses the step
        detail::soap_eigenbasis(st.next[side], k, st.next[2 + side]);
      else
        std::copy(st.old[2 + side], st.old[2 + side] + k * k, st.next[2 + side]);
    }
    std::fill(m, m + size, T(0));
    std::fill(v, v + size, T(0));
    std::fill(x, x + size, T(0));
    return;
  }
  const std::int64_t k = st.step - 1; // the code's state["step"]
  const T* ql = n[0] ? st.old[2] : nullptr;
  const T* qr = n[1] ? st.old[3] : nullptr;
  std::vector<T> tmp;
  // Adam in the bases' coordinates: x <- G' = Q_L^T G Q_R, the moments, then the direction.
  detail::soap_rotate(x, rows, cols, ql, qr, false, tmp);
  const T b1 = static_cast<T>(s.beta1), b2 = static_cast<T>(s.beta2);
  const T c1 = static_cast<T>(1 - s.beta1), c2 = static_cast<T>(1 - s.beta2), eps = static_cast<T>(s.eps);
  for (std::size_t i = 0; i < size; ++i) {
    m[i] = st.old[4][i] * b1 + c1 * x[i];
    v[i] = st.old[5][i] * b2 + c2 * (x[i] * x[i]);
    x[i] = m[i] / (std::sqrt(v[i]) + eps);
  }
  detail::soap_rotate(x, rows, cols, ql, qr, true, tmp);
  const double kd = static_cast<double>(k);
  const T step_size = static_cast<T>(std::sqrt(1 - std::pow(s.beta2, kd)) / (1 - std::pow(s.beta1, kd)));
  for (std::size_t i = 0; i < size; ++i)
    x[i] *= step_size;
  // update_preconditioner: m back with the old bases, the factors, a refresh, m into the new bases.
  // Between refreshes the bases stay, so that round trip is m up to roundoff: only the code's
  // order (round_trip_every_step) takes it there.
  const bool refresh = k % s.precondition_frequency == 0;
  const bool round_trip = refresh || s.round_trip_every_step;
  if (round_trip)
    detail::soap_rotate(m, rows, cols, ql, qr, true, tmp);
  update_factors();
  for (int side = 0; side < 2; ++side) {
    const std::size_t d = n[side];
    if (refresh && d != 0 && kernel::all_finite(st.next[side], 0, d * d)) // in order: L's, then R's
      detail::soap_refresh(st.next[side], st.old[2 + side], d, side == 0, v, rows, cols, st.next[2 + side]);
    else
      std::copy(st.old[2 + side], st.old[2 + side] + d * d, st.next[2 + side]);
  }
  if (round_trip)
    detail::soap_rotate(m, rows, cols, n[0] ? st.next[2] : nullptr, n[1] ? st.next[3] : nullptr, false, tmp);
}

} // namespace steep::precond
