#pragma once
// The l_inf -> l_inf operator norm (the largest absolute row sum) and its dual, the sum of the
// rows' l_inf norms.
//
//   linf_to_linf   // ||W||_{inf->inf} = max_i ||W[i, :]||_1, dual sum_row_linf; map: per row, sign at its
//   argmax sum_row_linf   // sum_i ||W[i, :]||_inf,               dual linf_to_linf;  map: sign of the top
//   row
//
//   fixed_matrix<double, 2, 2> g{{3, -1, 0, 2}}, d;   // rows (3, -1) and (0, 2)
//   value<linf_to_linf>(g);       // max(4, 2) = 4
//   dual_map<linf_to_linf>(g, d); // {{1, 0}, {0, 1}}: <g, d> = 3 + 2 = 5 = sum_row_linf(g)
//   dual_map<sum_row_linf>(g, d); // {{1, -1}, {0, 0}}: <g, d> = 4 = linf_to_linf(g)
//
// Why: a layer whose inputs are bounded entrywise (|x_j| <= 1) and whose outputs are measured in
// l_inf has the induced inf -> inf norm, max_i sum_j |W_ij|: the norm of a layer that steps like
// Signum per row but budgets each output's total change. Its steepest direction moves each row
// along its single largest gradient entry (a per-row coordinate descent); the dual's moves the
// row of largest l1 norm by its signs. Ties go to the first largest entry (row); zero rows stay
// zero. Matrix norms: a vector block is refused at compile time, naming the norm.

#include "steep/norms/constexpr_math.hpp"
#include "steep/norms/norm.hpp"

#include <cstddef>
#include <string_view>

namespace steep::norms {

namespace detail {

// ||x[i, :]||_1 and ||x[i, :]||_inf, in double.
template <class T>
constexpr double row_l1(matrix_ref<const T> x, std::size_t i) {
  double s = 0;
  for (std::size_t j = 0; j < x.cols; ++j)
    s += math::abs(static_cast<double>(x(i, j)));
  return s;
}
template <class T>
constexpr std::size_t row_argmax_abs(matrix_ref<const T> x, std::size_t i) {
  std::size_t best = 0;
  for (std::size_t j = 1; j < x.cols; ++j)
    if (math::abs(static_cast<double>(x(i, j))) > math::abs(static_cast<double>(x(i, best))))
      best = j;
  return best;
}

} // namespace detail

template <bool Max>
struct row_l1_linf_norm {
  using dual_type = row_l1_linf_norm<!Max>;
  static constexpr std::string_view name = Max ? "linf_to_linf" : "sum_row_linf";
  static constexpr bool matrix_only = true;

  template <class X>
  static constexpr auto value(const X& x) {
    if constexpr (refuse_vector<X>()) {
      const auto v = detail::value_arg(x);
      double r = 0;
      for (std::size_t i = 0; i < v.rows; ++i) {
        if constexpr (Max) {
          const double s = detail::row_l1(v, i);
          r = s > r ? s : r;
        } else if (v.cols > 0) {
          r += math::abs(static_cast<double>(v(i, detail::row_argmax_abs(v, i))));
        }
      }
      return static_cast<typename decltype(v)::value_type>(r);
    } else {
      return 0.0;
    }
  }

  template <class G, class Out>
  static constexpr void dual_map(const G& g, Out&& out) {
    if constexpr (refuse_vector<G>()) {
      auto [gv, ov] = detail::dual_map_args(g, out);
      using T = typename decltype(ov)::value_type;
      if constexpr (Max) {
        // Each row: the sign of its first largest entry there, zeros elsewhere (read before
        // writing: out may alias g).
        for (std::size_t i = 0; i < gv.rows && gv.cols > 0; ++i) {
          const std::size_t j = detail::row_argmax_abs(gv, i);
          const T s = static_cast<T>(math::sign(static_cast<double>(gv(i, j))));
          for (std::size_t k = 0; k < gv.cols; ++k)
            ov(i, k) = T(0);
          ov(i, j) = s;
        }
      } else {
        // The first row of largest l1 norm, by its signs; zeros elsewhere.
        std::size_t best = 0;
        double top = 0;
        for (std::size_t i = 0; i < gv.rows; ++i) {
          const double s = detail::row_l1(gv, i);
          if (s > top)
            top = s, best = i;
        }
        if (top == 0)
          return detail::fill_zero(ov);
        for (std::size_t k = 0; k < gv.cols; ++k)
          ov(best, k) = static_cast<T>(math::sign(static_cast<double>(gv(best, k))));
        for (std::size_t i = 0; i < gv.rows; ++i)
          for (std::size_t k = 0; k < gv.cols && i != best; ++k)
            ov(i, k) = T(0);
      }
    }
  }

private:
  // A vector block does not compile, with a message naming the norm.
  template <class X>
  static constexpr bool refuse_vector() {
    constexpr bool vec = is_vector_block_v<X>;
    if constexpr (Max)
      static_assert(!vec,
                    "the linf_to_linf norm (largest absolute row sum) is a matrix norm: this block is a "
                    "vector; use l1 or route the block to a vector rule");
    else
      static_assert(!vec, "the sum_row_linf norm (sum of the rows' largest entries) is a matrix norm: this "
                          "block is a vector; use linf or route the block to a vector rule");
    return !vec;
  }
};

// ||W||_{inf->inf} = max_i sum_j |W_ij|. Dual: sum_row_linf. Dual map: per row, the sign at its argmax.
using linf_to_linf = row_l1_linf_norm<true>;
// sum_i max_j |W_ij|. Dual: linf_to_linf. Dual map: the first row of largest l1 norm, by its signs.
using sum_row_linf = row_l1_linf_norm<false>;

} // namespace steep::norms
