#pragma once
// dion<"momentum", "Q">: Dion's update as a matrix stage that keeps its momentum and its low-rank
// basis as state.
//
//   template <fixed_string M = "momentum", fixed_string Q = "Q"> struct dion { dion_settings s; };
//   expr::precondition(dion<>{ { .rank_fraction = 0.25 } }, grad)   // a matrix stage
//
// For each rows x cols block G (the stage's operand: the gradient), at step t, with B oriented
// so that it is tall (B = M for rows >= cols, B = M^T for a wide block, whose Q then has rows
// rows):
//
//   M <- M + G                                    (B: m x n, m >= n, Q: n x r)
//   P = B Q;  P <- orth(P)                        (thin QR, R's diagonal >= 0)
//   R = B^T P                                     (power_iters > 1: Q <- R, and again)
//   M <- M - (1 - mu) P R^T                       (error feedback: what P Q^T left out stays)
//   Q <- R / (||R's column||_2 + eps)             (column by column)
//   the stage's value:  scale P Q^T               (scale = sqrt(rows / cols): fan_out / fan_in)
//
// Ahn, Xu, Abreu & Langford 2025, "Dion: Distributed Orthonormalized Updates"
// (arXiv:2504.05295), as the authors' single-device code runs it (the repository
// microsoft/dion: dion_update and power_iteration of its reference Dion, qr_method "qr"). As
// there: the rank r is ceil(rank_fraction min(rows, cols) / rank_multiple_of) rank_multiple_of,
// at most min(rows, cols); a block with M = 0 after the gradient is added (a zero gradient on
// the first step) keeps P = 0 and Q (their fix_all_zero_or_nan), so Q does not collapse to 0;
// the rule adds decoupled weight decay, p (1 - lr wd) - lr scale P Q^T (rules/dion.hpp).
//
//   using namespace steep::expr;
//   auto dion_rule = -lr * precondition(steep::precond::dion<>{}, grad);            // r = min(rows, cols)
//   auto low_rank = -lr * precondition(steep::precond::dion<>{ { .rank_fraction = 0.25 } }, grad);
//
// Where steep differs, and why:
//   - the first Q. The authors draw Q_0 with torch.randn, which no C++ program reproduces. steep's
//     Q_0 is deterministic (q_init): by default `hashed`, entry k of Q_0 (row-major, n x r) is
//     2 u - 1 with u = (splitmix64(seed + (k + 1) 0x9E3779B97F4A7C15) >> 11) 2^-53, uniform in
//     [-1, 1) as a random matrix would be, so B Q_0 meets every direction of B (the first r
//     columns of I, `identity`, would see only the first r columns of B, and a block whose first
//     columns are zero would start rank-deficient). Its scale does not matter: P is orthonormalized
//     and Q renormalized. The map builds it at step 1 (st.step == 1), when the engine's slot is 0.
//   - orth is Householder QR (LAPACK, linalg/qr_orthonormal), the authors' "qr" method: their
//     default "rcqr" (randomized Cholesky QR) draws a sketch at random too. P's columns, and so
//     Q's, take the sign that makes R's diagonal >= 0; P Q^T and M do not depend on it.
//   - everything runs in the parameters' type (the authors' QR and column norms run in float32
//     whatever the state's type, for bfloat16 states).
//   - a non-finite P or R is not replaced by 0 (their nan_to_num): the slots are then non-finite
//     and the engine refuses the step by block, leaving M and Q as they were.
//
// The state, per block: the momentum M (rows x cols) and Q (min(rows, cols) x r), named as the
// authors' state dict names them. The map's body (BLAS, LAPACK) is in dion_apply.hpp, which the
// engine includes (precond/maps.hpp); a rule needs only this header.

#include "steep/core/shape.hpp"
#include "steep/expr/fixed_string.hpp"
#include "steep/expr/matrix.hpp"
#include "steep/precond/settings.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace steep::precond {

enum class dion_q_init {
  hashed,  // splitmix64 of (seed, entry), uniform in [-1, 1): a random matrix, reproducibly
  identity // the first r columns of the identity
};

enum class dion_scale {
  fan_ratio, // sqrt(rows / cols), the authors' (fan_out / fan_in)^0.5 factor of lr
  none       // P Q^T as it is
};

struct dion_settings {
  double rank_fraction = 1.0;       // r / min(rows, cols), in (0, 1]
  std::size_t rank_multiple_of = 1; // r rounded up to a multiple of this (then at most min(rows, cols))
  std::size_t rank = 0;             // nonzero: r = min(rank, min(rows, cols)), rank_fraction unused
  double mu = 0.95;                 // error feedback keeps mu of what P R^T captured in M
  double eps = 1e-8;                // added to each column norm of R
  int power_iters = 1;              // power iterations per step (the authors' default: 1)
  dion_scale scale = dion_scale::fan_ratio;
  dion_q_init q_init = dion_q_init::hashed;
  std::uint64_t seed = 0; // q_init hashed: the first entry's hash input is seed + golden ratio
  bool operator==(const dion_settings&) const = default;
};

template <fixed_string M = "momentum", fixed_string Q = "Q">
struct dion {
  dion_settings s{};

  static constexpr bool needs_matrix = true;
  static constexpr std::size_t state_count = 2; // M, Q

  // Dion's rank for a rows x cols block (the authors' _init_opt_state_dion).
  std::size_t rank(std::size_t rows, std::size_t cols) const {
    const std::size_t d = std::min(rows, cols);
    if (s.rank != 0)
      return std::min(s.rank, d);
    const double multiple = static_cast<double>(s.rank_multiple_of);
    const auto r =
      static_cast<std::size_t>(multiple * std::ceil(s.rank_fraction * static_cast<double>(d) / multiple));
    return std::min(r, d);
  }

  std::string state_name(std::size_t j) const { return std::string(j == 0 ? M.view() : Q.view()); }
  shape_t state_shape(std::size_t j, std::size_t rows, std::size_t cols) const {
    if (j == 0)
      return { rows, cols };
    return { std::min(rows, cols), rank(rows, cols) };
  }

  // Empty if the settings make Dion's update; otherwise what is wrong with them.
  std::string check_settings() const {
    if (!(s.rank_fraction > 0 && s.rank_fraction <= 1))
      return "dion: rank_fraction must be in (0, 1], got " + std::to_string(s.rank_fraction);
    if (s.rank_multiple_of < 1)
      return "dion: rank_multiple_of must be >= 1";
    if (auto bad = finite_nonnegative("dion", "mu", s.mu); !bad.empty())
      return bad;
    if (auto bad = finite_nonnegative("dion", "eps", s.eps); !bad.empty())
      return bad;
    if (s.power_iters < 1)
      return "dion: power_iters must be >= 1, got " + std::to_string(s.power_iters);
    return {};
  }

  // x (row-major rows x cols) <- scale P Q^T, the momentum and Q updated into st.next
  // (dion_apply.hpp).
  template <class T>
  void apply(T* x, std::size_t rows, std::size_t cols, expr::matrix_state<T> st) const;

  bool operator==(const dion&) const = default;
};

} // namespace steep::precond
