#pragma once
// shampoo<"L", "R">: Shampoo's preconditioner as a matrix stage that keeps its factors as state.
//
//   template <fixed_string L = "L", fixed_string R = "R"> struct shampoo { shampoo_settings s; };
//   expr::precondition(shampoo<"L", "R">{ { .eps = 1e-12, .every = 10 } }, x)   // a matrix stage
//
// For each rows x cols block X (the stage's operand: the gradient, or a momentum of it), at step t:
//
//   L_t = beta2 L_{t-1} + (1 - beta2) X X^T      (beta2 = 1: L_t = L_{t-1} + X X^T, the sum)
//   R_t = beta2 R_{t-1} + (1 - beta2) X^T X
//   every `every` steps (t = 1, 1 + every, ...):  L_root = (L_t + eps I)^left,  R_root = (R_t + eps I)^right
//   the stage's value:  L_root X R_root
//
// with left = right = -1/4 Shampoo's update L^(-1/4) G R^(-1/4) (Gupta, Koren & Singer 2018,
// "Shampoo: Preconditioned Stochastic Tensor Optimization", arXiv:1802.09568, Algorithm 1 for an
// order-2 tensor), beta2 < 1 the exponential moving averages and the stale root between refreshes of
// distributed Shampoo (Shi et al. 2023, arXiv:2309.06497; the repository facebookresearch/optimizers),
// whose eigendecomposition convention the root follows (linalg/matrix_power.hpp: eigenvalues
// shifted to be >= 0, then eps added; with `.relative_eps = true` eps is scaled by the factor's
// largest eigenvalue, as Anil et al. 2020, arXiv:2002.09018, do). An exponent of 0 keeps no factor
// on that side, so `.left = -0.5, .right = 0` is a one-sided Shampoo written by hand;
// `.one_sided = -0.5` keeps only the smaller side's factor of each block (L for a wide block, R for a tall
// one), with that exponent.
//
//   using namespace steep::expr;
//   auto shampoo_rule = -lr * precondition(steep::precond::shampoo<"L", "R">{}, grad);
//   auto with_momentum = -lr * precondition(steep::precond::shampoo<>{ { .beta2 = 0.999, .every = 10 } },
//                                           ema<"m">(grad, 0.9));
//
// The state, per block: L (rows x rows), R (cols x cols), and the roots last computed, L_root and
// R_root (the same shapes), so that a step between refreshes needs no LAPACK call and a checkpoint
// taken between refreshes resumes bitwise. A side that keeps no factor has 0 x 0 slots. The
// factors are kept in the parameters' type; the root is computed from them by LAPACK's syevd in
// that type, its eigenvalue powers in double. The map's body (BLAS, LAPACK) is in
// shampoo_apply.hpp, which the engine includes (precond/maps.hpp); a rule needs only this header.

#include "steep/core/shape.hpp"
#include "steep/expr/fixed_string.hpp"
#include "steep/expr/matrix.hpp"
#include "steep/precond/settings.hpp"

#include <cmath>
#include <cstddef>
#include <string>

namespace steep::precond {

struct shampoo_settings {
  double beta2 = 1.0;                 // 1: the factors are sums (Gupta et al.); < 1: EMAs (Shi et al.)
  double eps = 1e-12;                 // added to the eigenvalues before the power (absolute)
  bool relative_eps = false;          // true: eps times the factor's largest eigenvalue (Anil et al. 2020)
  double left = -0.25, right = -0.25; // the exponents of L and R; 0: no factor on that side
  double one_sided = 0;               // nonzero: only the smaller side's factor, with this exponent
  int every = 1;                      // the roots are recomputed at steps 1, 1 + every, 1 + 2 every, ...
  bool operator==(const shampoo_settings&) const = default;
};

template <fixed_string L = "L", fixed_string R = "R">
struct shampoo {
  shampoo_settings s{};

  static constexpr bool needs_matrix = true;
  static constexpr std::size_t state_count = 4; // L, R, L_root, R_root

  // The exponents a rows x cols block gets on its left and right factors (0: none kept).
  double left_exponent(std::size_t rows, std::size_t cols) const {
    return s.one_sided != 0 ? (rows <= cols ? s.one_sided : 0.0) : s.left;
  }
  double right_exponent(std::size_t rows, std::size_t cols) const {
    return s.one_sided != 0 ? (rows <= cols ? 0.0 : s.one_sided) : s.right;
  }

  std::string state_name(std::size_t j) const {
    const std::string side(j % 2 == 0 ? L.view() : R.view());
    return j < 2 ? side : side + "_root";
  }
  shape_t state_shape(std::size_t j, std::size_t rows, std::size_t cols) const {
    const bool left = j % 2 == 0;
    const std::size_t n =
      left ? (left_exponent(rows, cols) != 0 ? rows : 0) : (right_exponent(rows, cols) != 0 ? cols : 0);
    return { n, n };
  }

  // Empty if the settings make a preconditioner; otherwise what is wrong with them.
  std::string check_settings() const {
    if (!(s.beta2 > 0 && s.beta2 <= 1))
      return "shampoo: beta2 must be in (0, 1], got " + std::to_string(s.beta2);
    if (auto bad = finite_nonnegative("shampoo", "eps", s.eps); !bad.empty())
      return bad;
    if (!std::isfinite(s.left) || !std::isfinite(s.right) || !std::isfinite(s.one_sided))
      return "shampoo: the exponents must be finite";
    if (s.every < 1)
      return "shampoo: every must be >= 1 (the roots are recomputed every `every` steps), got " +
             std::to_string(s.every);
    return {};
  }

  // x (row-major rows x cols) <- L_root x R_root, the factors and roots updated into st.next
  // (shampoo_apply.hpp).
  template <class T>
  void apply(T* x, std::size_t rows, std::size_t cols, expr::matrix_state<T> st) const;

  bool operator==(const shampoo&) const = default;
};

} // namespace steep::precond
