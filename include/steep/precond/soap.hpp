#pragma once
// soap<>: SOAP, Adam in the eigenbasis of Shampoo's factors, as a matrix stage that keeps state.
//
//   template <fixed_string L = "L", fixed_string R = "R"> struct soap { soap_settings s; };
//   expr::precondition(soap<>{ { .precondition_frequency = 10 } }, grad)   // a matrix stage
//
// For each rows x cols block G (the stage's operand: the gradient), at steep's step t (the code's
// step k = t - 1), sb = shampoo_beta (or beta2 where it is < 0):
//
//   t = 1:  L = (1 - sb) G G^T,  R = (1 - sb) G^T G,  Q_L, Q_R = eigh(L), eigh(R) (descending);
//           the stage's value is 0 (the first step only sets the preconditioner up)
//   t > 1:  G' = Q_L^T G Q_R,  m = b1 m + (1 - b1) G',  v = b2 v + (1 - b2) G'^2
//           the stage's value:  sqrt(1 - b2^k) / (1 - b1^k)  Q_L (m / (sqrt(v) + eps)) Q_R^T
//           then L, R <- their EMA with sb (G G^T, G^T G), and where k % precondition_frequency
//           == 0: v's rows (columns) re-sorted by diag(Q^T L Q) descending, Q <- qr(L Q_sorted)
//           (one power iteration); m is carried into the new basis (Q_new^T Q_old m ...)
//           at a refresh (the code rotates it back and forth every step: the same up to
//           roundoff, at 9/5 of the GEMM work; .round_trip_every_step = true does as it does)
//
// That is the authors' SOAP.step (Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo
// using Adam", arXiv:2409.11321; repository nikhilvyas/SOAP) for a 2-D parameter, with merge_dims
// and normalize_grads off, correct_bias on and weight decay left to the rule (a composition
// around the stage). A side longer than max_precond_dim keeps no factor (0 x 0 slots) and is not
// rotated, as the code's empty GG entry. The rule subtracts lr times the stage:
//
//   using namespace steep::expr;
//   auto soap_rule = -lr * precondition(steep::precond::soap<>{ { .beta2 = 0.99 } }, grad);
//
// The state, per block: L (rows x rows), R (cols x cols), their bases Q_L, Q_R (the same shapes),
// and Adam's moments exp_avg, exp_avg_sq (rows x cols), both in the rotated coordinates, as the
// code keeps them (exp_avg is rotated along with a new basis; exp_avg_sq only re-sorted). A step
// between refreshes calls no LAPACK routine, and a checkpoint taken there resumes bitwise. The
// bases are computed in the parameters' type (the code takes float32 for its eigh and QR).
// The map's body is in soap_apply.hpp, which the engine includes (precond/maps.hpp).

#include "steep/core/shape.hpp"
#include "steep/expr/fixed_string.hpp"
#include "steep/expr/matrix.hpp"
#include "steep/precond/settings.hpp"

#include <cmath>
#include <cstddef>
#include <string>

namespace steep::precond {

struct soap_settings {
  double beta1 = 0.95, beta2 = 0.95;   // Adam's moments (the code's betas)
  double shampoo_beta = -1;            // the factors' EMA; < 0: beta2, as the code
  double eps = 1e-8;                   // Adam's, added to sqrt(v)
  int precondition_frequency = 10;     // the bases are refreshed at t > 1 with (t - 1) % this == 0
  std::size_t max_precond_dim = 10000; // a longer side keeps no factor
  // true: exp_avg is rotated back out of the bases and into them again every step, as the code
  // does; false: only where the bases change (a refresh). Between refreshes that round trip is
  // exp_avg up to roundoff (Q^T Q = I), and it is 4 of the step's 9 units of GEMM work.
  bool round_trip_every_step = false;
  bool operator==(const soap_settings&) const = default;
};

template <fixed_string L = "L", fixed_string R = "R">
struct soap {
  soap_settings s{};

  static constexpr bool needs_matrix = true;
  static constexpr std::size_t state_count = 6; // L, R, Q_L, Q_R, exp_avg, exp_avg_sq

  double factor_beta() const { return s.shampoo_beta >= 0 ? s.shampoo_beta : s.beta2; }
  bool keeps(std::size_t n) const { return n <= s.max_precond_dim; }

  std::string state_name(std::size_t j) const {
    if (j >= 4)
      return j == 4 ? "exp_avg" : "exp_avg_sq";
    const std::string side(j % 2 == 0 ? L.view() : R.view());
    return j < 2 ? side : "Q_" + side;
  }
  shape_t state_shape(std::size_t j, std::size_t rows, std::size_t cols) const {
    if (j >= 4)
      return { rows, cols };
    const std::size_t n = j % 2 == 0 ? rows : cols;
    return keeps(n) ? shape_t{ n, n } : shape_t{ 0, 0 };
  }

  // Empty if the settings make a preconditioner; otherwise what is wrong with them.
  std::string check_settings() const {
    auto in_01 = [](double b) { return b >= 0 && b < 1; };
    if (!in_01(s.beta1) || !in_01(s.beta2))
      return "soap: betas must be in [0, 1) (the bias correction divides by 1 - b1^k), got " +
             std::to_string(s.beta1) + ", " + std::to_string(s.beta2);
    if (!(s.shampoo_beta < 1) || std::isnan(s.shampoo_beta))
      return "soap: shampoo_beta must be < 1 (< 0: beta2), got " + std::to_string(s.shampoo_beta);
    if (auto bad = finite_nonnegative("soap", "eps", s.eps); !bad.empty())
      return bad;
    if (s.precondition_frequency < 1)
      return "soap: precondition_frequency must be >= 1, got " + std::to_string(s.precondition_frequency);
    return {};
  }

  // x (row-major rows x cols) <- SOAP's direction, the state updated into st.next (soap_apply.hpp).
  template <class T>
  void apply(T* x, std::size_t rows, std::size_t cols, expr::matrix_state<T> st) const;

  bool operator==(const soap&) const = default;
};

} // namespace steep::precond
