#pragma once
// Reductions: a value per block (or per step) computed from every element — the stages that
// split a rule into phases.
//
//   -lr * grad / norm2(grad)          // normalized GD, one l2 norm over all blocks of the rule
//   -lr * grad / block_norm2(grad)    // normalized GD, one norm per block (tensor)
//   block_norm_inf(m), norm1(x), block_sum(x), ...
//
// A rule with reductions runs them in read-only passes before the update pass: every reduction
// at once (recomputing, not storing, any state it needs). A reduction whose operand needs a
// matrix stage's result (AdaMuon's ||O / sqrt(V)||_F) runs in a read-only pass after the
// matrix phase; the others before it. Nothing is written before the update pass, so a step
// can still be refused without touching parameters or state. Each chunk of the work list sums in a fixed
// order and chunks are then combined in list order, in double (float data accumulates in double lanes, so a
// float sum of squares neither overflows nor underflows): the result is bitwise the same for any thread
// count. A reduction of an expression that itself contains a reduction would need a pass of its own and is
// rejected at compile time.

#include "steep/expr/ops.hpp"

#include <cstddef>
#include <type_traits>
#include <utility>

namespace steep::expr {

namespace red {
// Each: identity, the lane-wise accumulate, a fixed-order horizontal finish, and how two
// partial results combine (in double).
struct sum_sq {
  template <class V>
  static V accumulate(const V& acc, const V& x) {
    return acc + x * x;
  }
  template <class V>
  static double finish(const V& acc) {
    return static_cast<double>(kernel::hsum(acc));
  }
  static double combine(double a, double b) { return a + b; }
};
struct sum_abs {
  template <class V>
  static V accumulate(const V& acc, const V& x) {
    return acc + kernel::abs(x);
  }
  template <class V>
  static double finish(const V& acc) {
    return static_cast<double>(kernel::hsum(acc));
  }
  static double combine(double a, double b) { return a + b; }
};
struct sum {
  template <class V>
  static V accumulate(const V& acc, const V& x) {
    return acc + x;
  }
  template <class V>
  static double finish(const V& acc) {
    return static_cast<double>(kernel::hsum(acc));
  }
  static double combine(double a, double b) { return a + b; }
};
struct max_abs {
  template <class V>
  static V accumulate(const V& acc, const V& x) {
    return kernel::max(acc, kernel::abs(x));
  }
  template <class V>
  static double finish(const V& acc) {
    return static_cast<double>(kernel::hmax(acc));
  }
  static double combine(double a, double b) { return a < b ? b : a; }
};
} // namespace red

// Over which elements a reduction runs.
struct per_block { // each block separately
  bool operator==(const per_block&) const = default;
};
struct all_blocks { // every block the rule updates, as one vector
  bool operator==(const all_blocks&) const = default;
};
struct per_row { // each row of each block seen as a matrix (rows = shape[0]): a row line
  bool operator==(const per_row&) const = default;
};
struct per_col { // each column likewise: a column line
  bool operator==(const per_col&) const = default;
};
// Each run of `length` consecutive entries of a block (a head's rows in a fused QKV, an
// expert's matrix in an (E, out, in) block, a row of each expert): a slice line. The length
// is a run-time value; the engine refuses a block whose size is not a multiple of it.
struct per_slice {
  std::size_t length = 1;
  bool operator==(const per_slice&) const = default;
};

template <class Scope>
inline constexpr int scope_line = std::is_same_v<Scope, per_row>     ? rows_line
                                  : std::is_same_v<Scope, per_col>   ? cols_line
                                  : std::is_same_v<Scope, per_slice> ? slices_line
                                                                     : not_a_line;

// A reduction over a block (or all blocks) is a per-block scalar (level 1); over rows or
// columns it is a line (node.hpp), one value per row (column) that the loop reads from a table.
// Its operand may use per-block scalars and lines computed by earlier passes: the compiler
// orders reductions into passes by what they need (program.hpp, reduction_depth).
template <class Op, class Scope, class C>
struct reduce_node : node_tag {
  static_assert(C::level == 2, "a reduction needs an elementwise operand (reducing a scalar is the scalar)");
  static_assert(C::n_red == 0, "a reduction directly of an expression with a block reduction in it is not "
                               "supported: keep the inner one in a state slot, or reduce per row first");
  using op_type = Op;
  using scope = Scope;
  using child_type = C;
  using offsets = child_offsets_from<1, C>; // the first per-block entry is the reduction's own
  static constexpr int line = scope_line<Scope>;
  static constexpr int level = line == not_a_line ? 1 : 2;
  static constexpr bool is_inline = false;
  static constexpr std::size_t n_step = C::n_step;
  static constexpr std::size_t n_block = 1 + C::n_block;
  static constexpr std::size_t n_red = line == not_a_line ? 1 : 0;

  operands<C> kids;
  [[no_unique_address]] Scope over{}; // which elements (a slice length for per_slice)

  template <std::size_t R>
  double block_value(const host_ctx& h) const {
    return h.reductions[R];
  }
  // (Reached only where lines are computed, line_context: in the loop a line reduction is a
  // table entry, and a block reduction a per-block scalar.)
  template <std::size_t S, std::size_t B, class Ctx>
  auto eval(const Ctx& c) const {
    return c.template line_reduction<B>();
  }
  bool operator==(const reduce_node&) const = default;
};

template <class N>
struct is_reduce_node : std::false_type {};
template <class O, class S, class C>
struct is_reduce_node<reduce_node<O, S, C>> : std::true_type {};

template <class Op, class Scope, operand X>
constexpr auto reduce(X&& x, Scope scope = {}) {
  using C = as_expr_t<X>;
  return reduce_node<Op, Scope, C>{ {}, operands<C>{ { as_expr(std::forward<X>(x)) } }, scope };
}

// Norms over all blocks of the rule ("global") and per block.
template <operand X>
constexpr auto norm2(X&& x) {
  return sqrt(reduce<red::sum_sq, all_blocks>(std::forward<X>(x)));
}
template <operand X>
constexpr auto norm1(X&& x) {
  return reduce<red::sum_abs, all_blocks>(std::forward<X>(x));
}
template <operand X>
constexpr auto norm_inf(X&& x) {
  return reduce<red::max_abs, all_blocks>(std::forward<X>(x));
}
template <operand X>
constexpr auto block_norm2(X&& x) {
  return sqrt(reduce<red::sum_sq, per_block>(std::forward<X>(x)));
}
template <operand X>
constexpr auto block_norm1(X&& x) {
  return reduce<red::sum_abs, per_block>(std::forward<X>(x));
}
template <operand X>
constexpr auto block_norm_inf(X&& x) {
  return reduce<red::max_abs, per_block>(std::forward<X>(x));
}
// x / ||x||_2 over the scope (one block, or every block of the rule), and 0 for a zero x: the
// grammar's one l2 normalization (dual<l2> is l2_normalize<per_block>). The floor only turns
// 0 / 0 into 0; it must be a normal number of the parameters' dtype (1e-30 suits float and
// double; a float64-only rule may floor at 1e-300). Sums of squares accumulate in double, so
// no float norm is lost to overflow or underflow. The floor is a compile-time constant, so
// analyses of the rule's type can tell a zero guard from an eps (train/implied_norm.hpp).
template <class Scope = per_block, double Floor = 1e-30, operand X>
constexpr auto l2_normalize(X&& x) {
  static_assert(Floor > 0 && Floor <= 1e-20, "l2_normalize: the floor is a zero guard, not an eps");
  auto xe = as_expr(std::forward<X>(x));
  return xe / max(sqrt(reduce<red::sum_sq, Scope>(xe)), ct<Floor>);
}

// Per row and per column (of each block seen as rows = shape[0] x the rest): lines.
template <operand X>
constexpr auto row_sum(X&& x) {
  return reduce<red::sum, per_row>(std::forward<X>(x));
}
template <operand X>
constexpr auto col_sum(X&& x) {
  return reduce<red::sum, per_col>(std::forward<X>(x));
}
template <operand X>
constexpr auto row_norm2(X&& x) {
  return sqrt(reduce<red::sum_sq, per_row>(std::forward<X>(x)));
}
template <operand X>
constexpr auto col_norm2(X&& x) {
  return sqrt(reduce<red::sum_sq, per_col>(std::forward<X>(x)));
}

// Per slice: each run of slice_rows x slice_cols consecutive entries of a block (its rows in
// the stacked view of expr/matrix.hpp's slices(...)); one value per slice.
//   ema<"v">(slice_mean(square(grad), d_head, d), 0.999)   // Adam-mini per head of a (3 d, d) QKV
//   slice_norm2(o, out, in)                                // ||O_e||_F per expert of (E, out, in)
//   slice_mean(square(o), 1, in)                           // per row of each expert
template <operand X>
constexpr auto slice_sum(X&& x, std::size_t slice_rows, std::size_t slice_cols) {
  return reduce<red::sum>(std::forward<X>(x), per_slice{ slice_rows * slice_cols });
}
template <operand X>
constexpr auto slice_mean(X&& x, std::size_t slice_rows, std::size_t slice_cols) {
  return slice_sum(std::forward<X>(x), slice_rows, slice_cols) *
         (1.0 / static_cast<double>(slice_rows * slice_cols));
}
template <operand X>
constexpr auto slice_norm2(X&& x, std::size_t slice_rows, std::size_t slice_cols) {
  return sqrt(reduce<red::sum_sq>(std::forward<X>(x), per_slice{ slice_rows * slice_cols }));
}

template <operand X>
constexpr auto block_sum(X&& x) {
  return reduce<red::sum, per_block>(std::forward<X>(x));
}

} // namespace steep::expr
