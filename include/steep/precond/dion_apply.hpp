#pragma once
// The body of dion<M, Q>::apply (dion.hpp): the momentum, a power iteration with GEMMs, the thin
// QR of P (linalg/qr_orthonormal), the error feedback and the new Q, and the update P Q^T.
//
//   steep::precond::dion<> map;
//   map.apply(x, rows, cols, steep::expr::matrix_state<double>{ old, next, t });
//
// Each product is one GEMM on the row-major momentum, with the transpose flag where the block is
// wide (B = M^T), so M is never copied transposed. It writes every slot of st.next in full and
// reads st.old only: the engine stores st.next when the step commits
// (engine/passes/matrix_phase.hpp).

#include "steep/kernel/blas.hpp"
#include "steep/linalg/qr.hpp"
#include "steep/precond/dion.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace steep::precond {

namespace detail {
// Dion's first Q (dion.hpp, q_init): n x r, row-major.
template <class T>
void dion_initial_q(T* q, std::size_t n, std::size_t r, dion_q_init init, std::uint64_t seed) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < r; ++j) {
      const std::size_t k = i * r + j;
      if (init == dion_q_init::identity) {
        q[k] = i == j ? T(1) : T(0);
        continue;
      }
      std::uint64_t z = seed + (static_cast<std::uint64_t>(k) + 1) * 0x9E3779B97F4A7C15ULL; // splitmix64
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
      z ^= z >> 31;
      const double u = static_cast<double>(z >> 11) * 0x1p-53; // exact: 53 bits
      q[k] = static_cast<T>(2 * u - 1);
    }
}
} // namespace detail

template <fixed_string M, fixed_string Q>
template <class T>
void dion<M, Q>::apply(T* x, std::size_t rows, std::size_t cols, expr::matrix_state<T> st) const {
  const std::size_t size = rows * cols;
  T* mom = st.next[0];
  for (std::size_t i = 0; i < size; ++i) // M <- M + G
    mom[i] = st.old[0][i] + x[i];
  const std::size_t r = rank(rows, cols);
  if (r == 0) // an empty block: nothing to project (and BLAS refuses a leading dimension of 0)
    return;
  // B = M (tall or square) or M^T (wide): m x n, m >= n; P, B Q: m x r; R, B^T P: n x r.
  const bool wide = rows < cols;
  const std::size_t m = wide ? cols : rows, n = wide ? rows : cols;
  std::vector<T> q_used(n * r);
  if (st.step == 1)
    detail::dion_initial_q(q_used.data(), n, r, s.q_init, s.seed);
  else
    std::copy(st.old[1], st.old[1] + n * r, q_used.data());

  std::vector<T> p(m * r), rr(n * r);
  const T* q = q_used.data();
  for (int it = 0; it < s.power_iters; ++it) {
    // P = B Q: M Q, or M^T Q for a wide block.
    kernel::blas::gemm<T>(wide, false, m, r, n, T(1), mom, cols, q, r, T(0), p.data(), r);
    p = linalg::qr_orthonormal(p.data(), m, r).q;
    // R = B^T P: M^T P, or M P for a wide block.
    kernel::blas::gemm<T>(!wide, false, n, r, m, T(1), mom, cols, p.data(), r, T(0), rr.data(), r);
    q = rr.data();
  }
  if (std::all_of(mom, mom + size, [](T v) { return v == T(0); })) { // the authors' all-zero fix
    std::fill(p.begin(), p.end(), T(0));
    rr = q_used;
  }
  // Error feedback: M <- M - (1 - mu) P R^T, or (R P^T) for a wide block (rows x cols either way).
  const T* left = wide ? rr.data() : p.data();
  const T* right = wide ? p.data() : rr.data();
  kernel::blas::gemm<T>(false, true, rows, cols, r, static_cast<T>(-(1 - s.mu)), left, r, right, r, T(1), mom,
                        cols);
  // Q <- R / (column norms + eps), the norms accumulated in double.
  T* q_new = st.next[1];
  std::vector<double> norm2(r, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < r; ++j)
      norm2[j] += static_cast<double>(rr[i * r + j]) * static_cast<double>(rr[i * r + j]);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < r; ++j)
      q_new[i * r + j] = static_cast<T>(static_cast<double>(rr[i * r + j]) / (std::sqrt(norm2[j]) + s.eps));
  // x <- scale P Q^T, or scale Q P^T for a wide block.
  const T scale = s.scale == dion_scale::fan_ratio
                    ? static_cast<T>(std::sqrt(static_cast<double>(rows) / static_cast<double>(cols)))
                    : T(1);
  kernel::blas::gemm<T>(false, true, rows, cols, r, scale, wide ? q_new : p.data(), r,
                        wide ? p.data() : q_new, r, T(0), x, cols);
}

} // namespace steep::precond
