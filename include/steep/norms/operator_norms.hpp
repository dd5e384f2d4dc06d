#pragma once
// Operator norms of Scion and modula: max column / max row l2 norms and their duals.
//
//   l1_to_l2    // max_j ||W[:, j]||_2 = ||W||_{1->2},   dual sum_col_l2; map: each column / its l2
//   sum_col_l2  // sum_j ||W[:, j]||_2,                  dual l1_to_l2;   map: top column / its l2
//   l2_to_linf  // max_i ||W[i, :]||_2 = ||W||_{2->inf}, dual sum_row_l2; map: each row / its l2
//   sum_row_l2  // sum_i ||W[i, :]||_2,                  dual l2_to_linf; map: top row / its l2
//   (all four are line_l2_norm<Max, ByCols>; zero columns / rows stay zero; the "top" maps are zero outside
//   the first largest column / row)
//
//   fixed_matrix<double, 2, 2> g{{3, 0, 4, 1}}, d;   // columns (3, 4) and (0, 1)
//   value<sum_col_l2>(g);       // 5 + 1 = 6 = ||g||_{(1->2)*}
//   dual_map<l1_to_l2>(g, d);   // {{0.6, 0}, {0.8, 1}}: Scion's ColNorm step, <g, d> = 6
//   dual_map<sum_col_l2>(g, d); // {{0.6, 0}, {0.8, 0}}: <g, d> = 5 = ||g||_{1->2}
//
// Why: an embedding or input layer maps one-hot (l1) inputs, and the induced l1 -> l2 operator norm
// is the largest column norm; a head maps to logits measured in linf, and 2 -> inf is the largest
// row norm. Scion (Pethick et al. 2025) and modula (Bernstein & Newhouse 2024) steer those layers
// with these norms ("ColNorm" / "RowNorm"). Their duals are sums of column (row) norms, a group-l1
// norm. Normalizing every nonzero column gives <g, d> = sum_j ||g_j|| with every column of d of norm
// 1 (zero columns stay zero); the dual's map puts all mass on the first largest column.
// Scion's RMS scaling (sqrt(d_out), 1/d_in) is a weight, not a different geometry: apply it as a
// composite weight (composite.hpp) or in the rule. All four are matrix norms.

#include "steep/norms/entrywise.hpp"
#include "steep/norms/norm.hpp"

#include <cstddef>
#include <string_view>

namespace steep::norms {

namespace detail {

// The l2 norm of each column (by_cols) or row of a row-major matrix, one at a time.
template <class T>
constexpr double line_norm(matrix_ref<const T> x, std::size_t j, bool by_cols) {
  return by_cols ? l2_strided(x.data + j, x.rows, x.cols) : l2_strided(x.data + j * x.cols, x.cols, 1);
}

template <class T>
constexpr double max_line_norm(matrix_ref<const T> x, bool by_cols) {
  double m = 0;
  for (std::size_t j = 0, n = by_cols ? x.cols : x.rows; j < n; ++j) {
    const double v = line_norm(x, j, by_cols);
    m = v > m ? v : m;
  }
  return m;
}

template <class T>
constexpr double sum_line_norms(matrix_ref<const T> x, bool by_cols) {
  double s = 0;
  for (std::size_t j = 0, n = by_cols ? x.cols : x.rows; j < n; ++j)
    s += line_norm(x, j, by_cols);
  return s;
}

// Writes x[line j] * c into out[line j].
template <class T>
constexpr void scale_line(matrix_ref<const T> x, matrix_ref<T> out, std::size_t j, bool by_cols, double c) {
  const std::size_t n = by_cols ? x.rows : x.cols;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t at = by_cols ? i * x.cols + j : j * x.cols + i;
    out.data[at] = static_cast<T>(static_cast<double>(x.data[at]) * c);
  }
}

// Dual map of the max-line norm: every nonzero line normalized, zero lines zero.
template <class T>
constexpr void normalize_lines(matrix_ref<const T> g, matrix_ref<T> out, bool by_cols) {
  for (std::size_t j = 0, n = by_cols ? g.cols : g.rows; j < n; ++j) {
    const double v = line_norm(g, j, by_cols);
    scale_line(g, out, j, by_cols, v > 0 ? 1.0 / v : 0.0);
  }
}

// Dual map of the sum-of-lines norm: the first largest line, normalized; zeros elsewhere.
template <class T>
constexpr void top_line(matrix_ref<const T> g, matrix_ref<T> out, bool by_cols) {
  const std::size_t n = by_cols ? g.cols : g.rows;
  std::size_t best = 0;
  double top = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const double v = line_norm(g, j, by_cols);
    if (v > top) {
      top = v;
      best = j;
    }
  }
  if (top == 0)
    return fill_zero(out);
  scale_line(g, out, best, by_cols, 1.0 / top); // first, then zero the rest: out may alias g
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t i = 0, len = by_cols ? g.rows : g.cols; i < len && j != best; ++i)
      out.data[by_cols ? i * g.cols + j : j * g.cols + i] = T(0);
}

} // namespace detail

// One template for the four: the largest (Max) or the sum of the l2 norms of the columns
// (ByCols) or rows of a matrix. The max and the sum over the same lines are each other's duals.
template <bool Max, bool ByCols>
struct line_l2_norm {
  using dual_type = line_l2_norm<!Max, ByCols>;
  static constexpr std::string_view name =
    Max ? (ByCols ? "l1_to_l2" : "l2_to_linf") : (ByCols ? "sum_col_l2" : "sum_row_l2");
  static constexpr bool matrix_only = true;

  template <class X>
  static constexpr auto value(const X& x) {
    if constexpr (refuse_vector<X>()) {
      const auto v = detail::value_arg(x);
      return static_cast<typename decltype(v)::value_type>(Max ? detail::max_line_norm(v, ByCols)
                                                               : detail::sum_line_norms(v, ByCols));
    } else {
      return 0.0;
    }
  }

  template <class G, class Out>
  static constexpr void dual_map(const G& g, Out&& out) {
    if constexpr (refuse_vector<G>()) {
      auto [gv, ov] = detail::dual_map_args(g, out);
      if constexpr (Max)
        detail::normalize_lines(gv, ov, ByCols);
      else
        detail::top_line(gv, ov, ByCols);
    }
  }

private:
  // A vector block does not compile, with a message naming the norm.
  template <class X>
  static constexpr bool refuse_vector() {
    constexpr bool vec = is_vector_block_v<X>;
    if constexpr (Max && ByCols)
      static_assert(!vec,
                    "the l1_to_l2 norm (largest column l2 norm) is a matrix norm: this block is a vector; "
                    "use l2 or route the block to a vector rule");
    else if constexpr (Max)
      static_assert(!vec,
                    "the l2_to_linf norm (largest row l2 norm) is a matrix norm: this block is a vector; "
                    "use l2 or route the block to a vector rule");
    else if constexpr (ByCols)
      static_assert(!vec, "the sum_col_l2 norm (sum of column l2 norms) is a matrix norm: this block is a "
                          "vector; use l2 or route the block to a vector rule");
    else
      static_assert(!vec, "the sum_row_l2 norm (sum of row l2 norms) is a matrix norm: this block is a "
                          "vector; use l2 or route the block to a vector rule");
    return !vec;
  }
};

// ||W||_{1->2} = max_j ||W[:, j]||_2. Dual: sum_col_l2. Dual map: each nonzero column normalized.
using l1_to_l2 = line_l2_norm<true, true>;
// sum_j ||W[:, j]||_2. Dual: l1_to_l2. Dual map: the first largest column, normalized; 0 elsewhere.
using sum_col_l2 = line_l2_norm<false, true>;
// ||W||_{2->inf} = max_i ||W[i, :]||_2. Dual: sum_row_l2. Dual map: each nonzero row normalized.
using l2_to_linf = line_l2_norm<true, false>;
// sum_i ||W[i, :]||_2. Dual: l2_to_linf. Dual map: the first largest row, normalized; 0 elsewhere.
using sum_row_l2 = line_l2_norm<false, false>;

} // namespace steep::norms
