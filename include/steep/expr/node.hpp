#pragma once
// The grammar of update rules: terminals, hyperparameters, levels and evaluation; the
// operations on them (arithmetic, elementwise functions) are ops.hpp.
//
//   using namespace steep::expr;
//   auto rule = -0.1 * grad / (sqrt(square(grad)) + 1e-8);   // an expression type, built at run time
//
// An expression is a tree of small value types. Each node type states, at compile time,
//   level    — 0: the same for every element and block of a step (a hyperparameter, beta^t),
//              1: the same within a block (a norm of the block), 2: differs per element;
//   n_step   — how many per-step scalars its subtree hoists out of the loop,
//   n_block  — how many per-block scalars, n_red — how many reductions it contains,
// so the compiler (program.hpp) can number every hoisted value by position and the kernel can
// read it from a table with an index known at compile time. Level-0 subtrees are evaluated once
// per step in double on the host, level-1 subtrees once per block after the reduction pass, and
// only level-2 nodes run inside the SIMD loop ("per-step scalars to hoist").
//
// Values of hyperparameters are run-time doubles (`constant`, or a named `hyper<"lr">` that
// an optimizer can change between steps); `ct<0.9>` is a compile-time constant the C++ compiler
// folds into the loop.

#include "steep/expr/fixed_string.hpp"
#include "steep/expr/operands.hpp"
#include "steep/kernel/simd.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace steep::expr {

// A block seen as a matrix (rows = shape[0], cols = the product of the rest; 1 for a vector),
// and its fans from its weight layout (core/shape.hpp).
struct block_dims {
  double rows = 1, cols = 1;
  double fan_in = 1, fan_out = 1;
};

// This block's per-block state slots as the host sees them (state.hpp): the value of slot
// `name` before this step (old) or after it (new, once computed).
struct block_slots {
  const void* owner = nullptr;
  double (*value)(const void* owner, std::string_view name, bool old) = nullptr;
};

// What a host-side (double) evaluation of a level-0 or level-1 subtree may read.
struct host_ctx {
  std::int64_t t = 0;                 // 1-based step counter
  const double* reductions = nullptr; // this block's reduction results (level 1 only)
  block_dims dims{};                  // this block's dims (level 1 only)
  block_slots slots{};                // this block's per-block slots (level 1 only)
};

struct node_tag {
  bool operator==(const node_tag&) const = default;
};

template <class N>
concept expression = std::is_base_of_v<node_tag, std::remove_cvref_t<N>>;

template <class X>
concept operand = expression<X> || std::is_arithmetic_v<std::remove_cvref_t<X>>;

// ---------------------------------------------------------------------------------------------
// Leaves
// ---------------------------------------------------------------------------------------------

// Leaf defaults: no children, nothing hoisted.
struct leaf : node_tag {
  static constexpr std::size_t n_step = 0, n_block = 0, n_red = 0;
  static constexpr bool is_inline = false;
  bool operator==(const leaf&) const = default;
};

// A per-step scalar leaf: hoisted, one table entry.
struct step_leaf : leaf {
  static constexpr int level = 0;
  static constexpr std::size_t n_step = 1;
};

struct grad_t : leaf {
  static constexpr int level = 2;
  template <std::size_t S, std::size_t B, class Ctx>
  auto eval(const Ctx& c) const {
    return c.grad;
  }
  bool operator==(const grad_t&) const = default;
};
struct param_t : leaf {
  static constexpr int level = 2;
  template <std::size_t S, std::size_t B, class Ctx>
  auto eval(const Ctx& c) const {
    return c.param;
  }
  bool operator==(const param_t&) const = default;
};

// The gradient of this step and the parameter before it.
inline constexpr grad_t grad{};
inline constexpr param_t param{};

// A run-time hyperparameter.
struct constant : step_leaf {
  double value = 0;
  constexpr constant() = default;
  constexpr explicit constant(double v)
    : value(v) {}
  double hoist_value(const host_ctx&) const { return value; }
  bool operator==(const constant&) const = default;
};

// The values a named hyperparameter may take: the optimizer checks them when it is built and
// at every set(), and refuses others by name (a NaN learning rate, beta = 1, eps < 0 ...).
namespace range {
struct finite {
  static constexpr std::string_view text = "a finite number";
  static constexpr bool ok(double v) { return v == v && v - v == 0; }
};
struct nonnegative {
  static constexpr std::string_view text = "finite and >= 0";
  static constexpr bool ok(double v) { return finite::ok(v) && v >= 0; }
};
struct unit_interval { // an EMA's beta: 1 would never forget (and debias divides by 1 - 1^t)
  static constexpr std::string_view text = "in [0, 1)";
  static constexpr bool ok(double v) { return v >= 0 && v < 1; }
};
struct positive_fraction { // one minus an EMA's beta (Scion's momentum): 0 would never move
  static constexpr std::string_view text = "in (0, 1]";
  static constexpr bool ok(double v) { return v > 0 && v <= 1; }
};
} // namespace range

// A run-time hyperparameter with a name: optimizer::set("lr", 1e-4) changes it between steps.
template <fixed_string Name, class Range = range::finite>
struct hyper_node : step_leaf {
  static constexpr auto name = Name;
  using range_type = Range;
  double value = 0;
  constexpr hyper_node() = default;
  constexpr explicit hyper_node(double v)
    : value(v) {}
  double hoist_value(const host_ctx&) const { return value; }
  bool operator==(const hyper_node&) const = default;
};
template <fixed_string Name, class Range = range::finite>
constexpr hyper_node<Name, Range> hyper(double v) {
  return hyper_node<Name, Range>(v);
}

// A compile-time constant: folded into the loop, no table entry.
template <double V>
struct ct_node : leaf {
  static constexpr int level = 0;
  static constexpr bool is_inline = true;
  double hoist_value(const host_ctx&) const { return V; }
  bool operator==(const ct_node&) const = default;
};
template <double V>
inline constexpr ct_node<V> ct{};

// The 1-based step counter t.
struct step_t : step_leaf {
  double hoist_value(const host_ctx& h) const { return static_cast<double>(h.t); }
  bool operator==(const step_t&) const = default;
};
inline constexpr step_t step{};

// ---------------------------------------------------------------------------------------------
// Lines: values that vary per element but are constant along each row (or each column, or
// each slice of consecutive entries) of a block seen as a matrix — a per-row reduction, a
// per-row state slot, and anything computed from them and from per-step or per-block scalars. The engine
// computes them on the host, once per row (column), and the loop reads them from a table (reduce.hpp:
// row_sum, col_norm2, ...). A line node reserves one per-block table entry whose offset is its identity.
// ---------------------------------------------------------------------------------------------

inline constexpr int not_a_line = 0, rows_line = 1, cols_line = 2, slices_line = 3;

template <class N>
constexpr int line_of() {
  if constexpr (requires { N::line; })
    return N::line;
  else
    return not_a_line;
}
template <class N>
inline constexpr int line_of_v = line_of<std::remove_cvref_t<N>>();

// Whether N is a (maximal or inner) line subtree.
template <class N>
struct is_line_node : std::bool_constant<N::level == 2 && line_of_v<N> != not_a_line> {};

// ---------------------------------------------------------------------------------------------
// Evaluation by level (the one place that decides "table lookup or compute")
// ---------------------------------------------------------------------------------------------

// The contract between the grammar and whoever runs it: what evaluate() and the nodes' eval()
// (state.hpp, matrix.hpp, reduce.hpp) read from their context Ctx, V = Ctx::value_type (a batch):
//   step_scalar<S>()     per-step scalar S (a hoisted level-0 subtree), broadcast
//   block_scalar<B>()    this block's per-block scalar B (a level-1 subtree)
//   line_value<B, L>()   this group's value of the line table at per-block offset B (L: rows_line, ...)
//   old_value<Name>()    state slot Name before this step; new_value<Name>(): after it
//   matrix_value<N>()    matrix stage N's result for this group (matrix.hpp)
//   computes_lines       false: a line is read from its table (line_value), not computed
// The engine's eval_ctx (engine/eval_ctx.hpp) is checked against it.
template <class C>
concept eval_context = !C::computes_lines && requires(const C& c) {
  typename C::value_type;
  { c.template step_scalar<0>() } -> std::same_as<typename C::value_type>;
  { c.template block_scalar<0>() } -> std::same_as<typename C::value_type>;
  { c.template line_value<0, rows_line>() } -> std::same_as<typename C::value_type>;
  { c.template old_value<fixed_string("slot")>() } -> std::same_as<typename C::value_type>;
  { c.template new_value<fixed_string("slot")>() } -> std::same_as<typename C::value_type>;
  { c.template matrix_value<leaf>() } -> std::same_as<typename C::value_type>;
};

// The context of one line's value, computed on the host in double (the engine's line pass,
// engine/passes/lines.hpp): the same reads as eval_context for scalars and slots (value_type =
// double; a per-line slot's old or new value at this line), and where eval_context reads a
// line's table, a line is computed from its operands down to
//   line_reduction<B>()  this line's result of the line reduction at per-block offset B
template <class C>
concept line_context = C::computes_lines && requires(const C& c) {
  typename C::value_type;
  { c.template step_scalar<0>() } -> std::same_as<typename C::value_type>;
  { c.template block_scalar<0>() } -> std::same_as<typename C::value_type>;
  { c.template line_reduction<0>() } -> std::same_as<typename C::value_type>;
  { c.template old_value<fixed_string("slot")>() } -> std::same_as<typename C::value_type>;
  { c.template new_value<fixed_string("slot")>() } -> std::same_as<typename C::value_type>;
};

// The value of node n in context c (an eval_context: one group of elements in the SIMD loop; a
// line_context: one line on the host); S, B = the node's table offsets. The one tree evaluator:
// it decides, by level, what is read from a table and what is computed from operands.
template <std::size_t S, std::size_t B, class N, class Ctx>
inline auto evaluate(const N& n, const Ctx& c) {
  using V = typename Ctx::value_type;
  if constexpr (N::level == 0 && N::is_inline)
    return kernel::broadcast<V>(n.hoist_value(host_ctx{}));
  else if constexpr (N::level == 0)
    return c.template step_scalar<S>();
  else if constexpr (N::level == 1)
    return c.template block_scalar<B>();
  else if constexpr (line_of_v<N> != not_a_line && !Ctx::computes_lines)
    return c.template line_value<B, line_of_v<N>>();
  else
    return n.template eval<S, B>(c);
}

// Host (double) value of a level-0 or level-1 node; R = the node's reduction offset.
template <std::size_t R, class N>
inline double host_value(const N& n, const host_ctx& h) {
  static_assert(N::level <= 1, "host_value: an elementwise subtree has no single value");
  if constexpr (N::level == 0)
    return n.hoist_value(h);
  else
    return n.template block_value<R>(h);
}

// ---------------------------------------------------------------------------------------------
// Interior nodes: an operation applied to children
// ---------------------------------------------------------------------------------------------

// a[0] = base, a[i + 1] = a[i] + count[i]: where each of N consecutive table ranges starts, and
// (last) where they end. A function per length, not per node type: three generic lambdas per
// node type cost front-end time in every rule (docs/compile-time.md).
template <std::size_t N>
constexpr std::array<std::size_t, N + 1> partial_sums(const std::array<std::size_t, N>& count,
                                                      std::size_t base = 0) {
  std::array<std::size_t, N + 1> a{};
  a[0] = base;
  for (std::size_t i = 0; i < N; ++i)
    a[i + 1] = a[i] + count[i];
  return a;
}

// Offsets of each child's first table entry, relative to its parent's. A line node keeps the
// first per-block entry for itself (BlockBase = 1).
template <std::size_t BlockBase, class... C>
struct child_offsets_from {
  static constexpr std::size_t n = sizeof...(C);
  static constexpr auto step = partial_sums<n>({ C::n_step... });
  static constexpr auto block = partial_sums<n>({ C::n_block... }, BlockBase);
  static constexpr auto red = partial_sums<n>({ C::n_red... });
};
template <class... C>
using child_offsets = child_offsets_from<0, C...>;

// The line of an operation on C...: rows (cols) if every elementwise operand is a row (col)
// line, none otherwise.
template <class... C>
constexpr int line_of_operation() {
  int line = -1;
  bool ok = true;
  (
    [&] {
      if constexpr (C::level == 2) {
        constexpr int l = line_of_v<C>;
        if (l == not_a_line || (line != -1 && line != l))
          ok = false;
        line = l;
      }
    }(),
    ...);
  return ok && line > 0 ? line : not_a_line;
}

// An operation with a form for a last operand that is the same across the loop (ops::div).
template <class Op>
inline constexpr bool has_uniform_last = requires {
  Op::has_uniform_last;
};

template <class Op, class... C>
struct apply_node : node_tag {
  static_assert(sizeof...(C) > 0, "an operation needs at least one operand");
  static constexpr int level = std::max({ C::level... });
  static constexpr int line = level == 2 ? line_of_operation<C...>() : not_a_line;
  // A per-block (level 1) or line node keeps its own per-block entry first; its operands'
  // entries follow (a reduction inside needs them for its operand).
  using offsets = child_offsets_from<(line != not_a_line || level == 1 ? 1 : 0), C...>;
  static constexpr bool is_inline = level == 0 && (C::is_inline && ...);
  static constexpr std::size_t n_step = level == 0 ? (is_inline ? 0 : 1) : offsets::step[sizeof...(C)];
  static constexpr std::size_t n_block = level >= 1 ? offsets::block[sizeof...(C)] : 0;
  static constexpr std::size_t n_red = offsets::red[sizeof...(C)];

  [[no_unique_address]] Op op;
  operands<C...> kids;

  constexpr apply_node(Op o, C... c)
    : op(o)
    , kids{ { std::move(c) }... } {}

  double hoist_value(const host_ctx& h) const {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return op(expr::get<I>(kids).hoist_value(h)...);
    }
    (std::index_sequence_for<C...>{});
  }
  template <std::size_t R>
  double block_value(const host_ctx& h) const {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return op(host_value<R + offsets::red[I]>(expr::get<I>(kids), h)...);
    }
    (std::index_sequence_for<C...>{});
  }
  template <std::size_t S, std::size_t B, class Ctx>
  auto eval(const Ctx& c) const {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      if constexpr (uniform_last)
        return op.uniform_last(
          evaluate<S + offsets::step[I], B + offsets::block[I]>(expr::get<I>(kids), c)...);
      else
        return op(evaluate<S + offsets::step[I], B + offsets::block[I]>(expr::get<I>(kids), c)...);
    }
    (std::index_sequence_for<C...>{});
  }

  bool operator==(const apply_node& o) const { return kids == o.kids; }

private:
  // An elementwise operation whose last operand is the same across the loop (a per-step or
  // per-block scalar), for an operation with a faster form for that (ops::div).
  static constexpr bool uniform_last =
    has_uniform_last<Op> && level == 2 && std::array{ C::level... }[sizeof...(C) - 1] < 2;
};

// Wraps a plain number as a run-time constant; passes expressions through.
template <operand X>
constexpr auto as_expr(X&& x) {
  if constexpr (expression<X>)
    return std::forward<X>(x);
  else
    return constant(static_cast<double>(x));
}
template <class X>
using as_expr_t = decltype(as_expr(std::declval<X>()));

template <class Op, operand... X>
constexpr auto make_apply(Op op, X&&... x) {
  return apply_node<Op, as_expr_t<X>...>(op, as_expr(std::forward<X>(x))...);
}

} // namespace steep::expr
