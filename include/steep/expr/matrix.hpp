#pragma once
// Matrix stages: a map applied to a whole block at once (a norm's dual map on matrices), and
// the per-block scalars that depend on a block's shape.
//
//   auto u = lerp(grad, ema<"momentum_buffer">(grad, 0.95), 0.95);       // Nesterov momentum
//   auto o = orthogonalize(steep::norms::newton_schulz{}, u);             // Muon's dual map
//   auto rule = -lr * shape_scale(lr_adjust::original) * o;               // lr * sqrt(max(1, r/c))
//   dual<steep::norms::spectral>(u)   // the same with the exact polar factor
//
// A matrix stage splits a step into phases (docs/design.md: "a matrix phase between two fused
// loops"):
//   1. a read-only elementwise pre-pass writes the stage's operand (u) of every block to a
//      scratch arena — state is computed but not stored, so nothing has changed yet;
//   2. the matrix phase applies the map to each block's scratch (same-shape blocks in
//      parallel over TBB, each with single-threaded BLAS; or one block at a time with BLAS's
//      own threads when there are fewer blocks than threads);
//   3. the ordinary fused update pass reads the map's result from scratch where the stage
//      stands in the rule, and stores parameters and state once.
// A block that a matrix map cannot take (a vector, or an embedding the user did not opt in
// for) is refused when the optimizer is built, before any step.
//
// Blocks of rank > 2 are treated as shape[0] x (product of the rest), as Muon
// implementations do for convolution kernels.

#include "steep/core/shape.hpp"
#include "steep/expr/ops.hpp"
#include "steep/expr/reduce.hpp"

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace steep::expr {

// Anything that maps a row-major rows x cols block in place, in float and in double.
template <class M>
concept matrix_map = std::equality_comparable<M> && requires(const M& m, float* f, double* d, std::size_t n) {
  m.apply(f, n, n);
  m.apply(d, n, n);
};

// A matrix stage's own state, which the map declares and the engine keeps per block: Shampoo's
// factors L (rows x rows) and R (cols x cols), say (precond/shampoo.hpp). The map reads slot j as
// the last step left it (old[j]) and writes its new value in full (next[j]); the engine stores
// the new values only when the step commits, so a refused step leaves every factor bitwise as it
// was, and checkpoints, describe() and state() see them as slots of their own.
template <class T>
struct matrix_state {
  const T* const* old; // slot j of this block, row-major in the shape the map declared
  T* const* next;      // where the map writes slot j's new value
  std::int64_t step;   // this step, from 1
  // A stage of several operands (precondition(map, inputs(x, y, ...)), below): operand j >= 1 of
  // this block, rows x cols like x (operand 0 is x itself); null for a stage of one operand.
  const T* const* operands = nullptr;
  std::size_t n_operands = 0;
};

// A map that keeps state: it declares `state_count` slots, each named and shaped per block, and
// maps a block in place given them.
template <class M>
concept stateful_matrix_map = std::equality_comparable<M> &&
  requires(const M& m, float* f, double* d, std::size_t n, matrix_state<float> sf, matrix_state<double> sd) {
  { M::state_count } -> std::convertible_to<std::size_t>;
  { m.state_name(n) } -> std::convertible_to<std::string>;
  { m.state_shape(n, n, n) } -> std::convertible_to<shape_t>;
  m.apply(f, n, n, sf);
  m.apply(d, n, n, sd);
};

// How a stateful map stores slot j: in the parameters' type, or as bfloat16 where the map says so
// with `bool state_bfloat16(std::size_t j) const` (expr/bfloat16_state.hpp wraps any map to say
// it). The map computes in the parameters' type either way: the engine hands it the committed
// state widened exactly, and rounds each new value once, to nearest even, when it stores it
// (core/bfloat16.hpp), as it does for an element slot.
template <class M>
bool state_bfloat16(const M& map, std::size_t j) {
  if constexpr (requires { map.state_bfloat16(j); })
    return map.state_bfloat16(j);
  else
    return false;
}

// Whether a map needs a true matrix (rank >= 2; Muon-style role checks apply). A map says
// otherwise with `static constexpr bool needs_matrix = false` (e.g. the l1 dual map of a vector).
template <class Map>
constexpr bool map_needs_matrix() {
  if constexpr (requires { Map::needs_matrix; })
    return Map::needs_matrix;
  else
    return true;
}

// Several elementwise operands of one matrix stage: inputs(x, y, ...), where x is the one the
// map maps in place and y, ... are read beside it (Shampoo's factors from the gradient, applied
// to a momentum: precond/compose.hpp, pc::arg<J>). The pre-pass writes each of them to a scratch
// arena of its own; evaluated as a value, an inputs node is its first operand.
template <class... C>
struct inputs_node : node_tag {
  static_assert(sizeof...(C) >= 2, "inputs(...) takes two or more operands");
  static_assert(((C::level == 2) && ...), "each operand of a matrix stage is elementwise (a whole block)");
  using offsets = child_offsets<C...>;
  static constexpr int level = 2;
  static constexpr bool is_inline = false;
  static constexpr std::size_t count = sizeof...(C);
  static constexpr std::size_t n_step = offsets::step[count];
  static constexpr std::size_t n_block = offsets::block[count];
  static constexpr std::size_t n_red = offsets::red[count];

  operands<C...> kids;

  template <std::size_t S, std::size_t B, class Ctx>
  auto eval(const Ctx& c) const {
    return evaluate<S, B>(expr::get<0>(kids), c);
  }
  bool operator==(const inputs_node&) const = default;
};
template <operand... X>
constexpr auto inputs(X&&... x) {
  return inputs_node<as_expr_t<X>...>{ {}, operands<as_expr_t<X>...>{ { as_expr(std::forward<X>(x)) }... } };
}
template <class N>
struct is_inputs_node : std::false_type {};
template <class... C>
struct is_inputs_node<inputs_node<C...>> : std::true_type {};
// How many elementwise operands a matrix stage over child C reads (scratch arenas it needs).
template <class C>
inline constexpr std::size_t operand_count = 1;
template <class... C>
inline constexpr std::size_t operand_count<inputs_node<C...>> = sizeof...(C);

template <class Map, class C>
struct matrix_node : node_tag {
  static_assert(matrix_map<Map> || stateful_matrix_map<Map>,
                "a matrix stage needs a map with apply(T* data, rows, cols) for float and double, or "
                "a map that declares its state (expr::stateful_matrix_map)");
  static_assert(C::level == 2, "a matrix map needs an elementwise operand (a whole block), not a scalar");
  static_assert(!is_inputs_node<C>::value || stateful_matrix_map<Map>,
                "a matrix stage of several operands (inputs(...)) needs a map that reads them: a "
                "stateful map such as precond::precondition's composition");
  using map_type = Map;
  using child_type = C;
  static constexpr std::size_t n_operands = operand_count<C>;
  static constexpr bool needs_matrix = map_needs_matrix<Map>();
  using offsets = child_offsets<C>;
  static constexpr int level = 2;
  static constexpr bool is_inline = false;
  static constexpr std::size_t n_step = C::n_step;
  static constexpr std::size_t n_block = C::n_block;
  static constexpr std::size_t n_red = C::n_red;

  Map map;
  operands<C> kids;

  // In the update pass: this block's mapped value, read from the stage's scratch.
  template <std::size_t S, std::size_t B, class Ctx>
  auto eval(const Ctx& c) const {
    return c.template matrix_value<matrix_node>();
  }
  bool operator==(const matrix_node&) const = default;
};

// Stacked matrices: a block that holds several matrices one after another, each slice_rows x
// slice_cols, gets `map` applied to each slice on its own.
//   orthogonalize(slices(newton_schulz{}, out, in), u)     // MoE experts (E, out, in)
//   orthogonalize(slices(newton_schulz{}, d_head, d), u)   // fused QKV (3 d, d), per head
// A block whose size is not a multiple of slice_rows x slice_cols is refused when the
// optimizer is built, naming it (check_block).
// Empty if a rows x cols block splits into whole slice_rows x slice_cols slices; otherwise why not.
inline std::string slice_split_problem(std::size_t rows, std::size_t cols, std::size_t slice_rows,
                                       std::size_t slice_cols) {
  const std::size_t n = slice_rows * slice_cols;
  if (n == 0 || (rows * cols) % n != 0)
    return "its " + std::to_string(rows * cols) + " entries do not split into " + std::to_string(slice_rows) +
           " x " + std::to_string(slice_cols) + " slices";
  return {};
}
// What is wrong with a map's settings (its check_settings(), where it has one); empty if nothing.
template <class Map>
std::string settings_problem(const Map& map) {
  if constexpr (requires { map.check_settings(); })
    return map.check_settings();
  else
    return {};
}

template <class Map>
struct sliced {
  Map map;
  std::size_t slice_rows = 1, slice_cols = 1;
  static constexpr bool needs_matrix = map_needs_matrix<Map>();
  bool operator==(const sliced&) const = default;

  template <class T>
  void apply(T* x, std::size_t rows, std::size_t cols) const {
    for (std::size_t k = 0; k < pieces(rows, cols); ++k)
      apply_piece(x, rows, cols, k);
  }
  // The engine runs each slice as a task of its own, scheduled with every other block's and
  // slice's, so an (E, out, in) block's experts are orthogonalized in parallel: a map that
  // splits a block says into how many equal, consecutive pieces, and applies one of them.
  std::size_t pieces(std::size_t rows, std::size_t cols) const {
    return rows * cols / (slice_rows * slice_cols);
  }
  template <class T>
  void apply_piece(T* x, std::size_t, std::size_t, std::size_t k) const {
    map.apply(x + k * slice_rows * slice_cols, slice_rows, slice_cols);
  }
  std::string check_settings() const { return settings_problem(map); }
  // Empty if a rows x cols block splits into whole slices; otherwise why not.
  std::string check_block(std::size_t rows, std::size_t cols) const {
    return slice_split_problem(rows, cols, slice_rows, slice_cols);
  }
};
template <matrix_map Map>
constexpr sliced<Map> slices(Map map, std::size_t slice_rows, std::size_t slice_cols) {
  return { std::move(map), slice_rows, slice_cols };
}

template <class N>
struct is_matrix_node : std::false_type {};
template <class M, class C>
struct is_matrix_node<matrix_node<M, C>> : std::true_type {};

// The block-wise map `map` of x (see the file comment for how it runs).
template <matrix_map Map, operand X>
constexpr auto orthogonalize(Map map, X&& x) {
  using C = as_expr_t<X>;
  return matrix_node<Map, C>{ {}, std::move(map), operands<C>{ { as_expr(std::forward<X>(x)) } } };
}

// x preconditioned block-wise by a map that keeps state (Shampoo's factors: precond/shampoo.hpp);
// with more operands, the map also reads y, ... (inputs(x, y, ...), above).
template <stateful_matrix_map Map, operand X, operand... Y>
constexpr auto precondition(Map map, X&& x, Y&&... y) {
  if constexpr (sizeof...(Y) == 0) {
    using C = as_expr_t<X>;
    return matrix_node<Map, C>{ {}, std::move(map), operands<C>{ { as_expr(std::forward<X>(x)) } } };
  } else {
    auto in = inputs(std::forward<X>(x), std::forward<Y>(y)...);
    return matrix_node<Map, decltype(in)>{ {}, std::move(map), operands<decltype(in)>{ { std::move(in) } } };
  }
}

// ---------------------------------------------------------------------------------------------
// Shape-dependent per-block scalars
// ---------------------------------------------------------------------------------------------

inline block_dims dims_of(const shape_t& s, weight_layout layout = weight_layout::out_in) {
  const fans_t f = fans(s, layout);
  if (s.empty())
    return { 1, 1, 1, 1 };
  return { static_cast<double>(s[0]), static_cast<double>(element_count(s) / (s[0] ? s[0] : 1)),
           static_cast<double>(f.fan_in), static_cast<double>(f.fan_out) };
}

// How a Muon-style rule rescales its learning rate per block, in terms of the block's fans
// (its weight layout, core/shape.hpp), so one rule is right for torch and JAX layouts alike:
//   none             1
//   original         sqrt(max(1, fan_out / fan_in)): torch 2.11 adjust_lr_fn=None, written there as
//                    rows/cols of an (out, in) weight; optax.contrib.muon, written as cols/rows of (in, out)
//   match_rms_adamw  0.2 sqrt(max(fan_out, fan_in)): torch 2.11 'match_rms_adamw' (Liu et al. 2025)
enum class lr_adjust { none, original, match_rms_adamw };

inline double lr_scale(lr_adjust a, block_dims d) {
  switch (a) {
    case lr_adjust::none:
      return 1.0;
    case lr_adjust::original:
      return std::sqrt(std::max(1.0, d.fan_out / d.fan_in));
    case lr_adjust::match_rms_adamw:
      return 0.2 * std::sqrt(std::max(d.fan_out, d.fan_in));
  }
  return 1.0;
}

// A per-block scalar computed from the block's dims by f(block_dims) -> double.
template <class F>
struct shape_node : leaf {
  static constexpr int level = 1;
  static constexpr std::size_t n_block = 1;
  [[no_unique_address]] F f;
  template <std::size_t R>
  double block_value(const host_ctx& h) const {
    return f(h.dims);
  }
  bool operator==(const shape_node& o) const {
    if constexpr (std::equality_comparable<F>)
      return f == o.f;
    else
      return true; // a captureless lambda: its type is its identity
  }
};

// shape_scale(lr_adjust::original): Muon's per-block learning-rate factor.
struct lr_adjust_fn {
  lr_adjust a = lr_adjust::original;
  double operator()(block_dims d) const { return lr_scale(a, d); }
  bool operator==(const lr_adjust_fn&) const = default;
};
constexpr auto shape_scale(lr_adjust a) { return shape_node<lr_adjust_fn>{ {}, lr_adjust_fn{ a } }; }

// Any user function of the block's dims, e.g. shape_scalar([](block_dims d) { return d.rows; }).
template <class F>
constexpr auto shape_scalar(F f) {
  return shape_node<F>{ {}, f };
}

// The mean of x over each block: block_sum(x) / (number of entries). Adam-mini's second moment
// is an EMA of block_mean(square(grad)), one value per block. The mean of no entries (an empty
// block, row or column) is 0, the sum's: not 0 * Inf = NaN in a slot.
inline double inverse_count(double n) { return n > 0 ? 1.0 / n : 0.0; }
struct inverse_size_fn {
  double operator()(block_dims d) const { return inverse_count(d.rows * d.cols); }
  bool operator==(const inverse_size_fn&) const = default;
};
template <operand X>
constexpr auto block_mean(X&& x) {
  return block_sum(std::forward<X>(x)) * shape_node<inverse_size_fn>{ {}, {} };
}

// The mean of x along each row (over the columns) and along each column (over the rows).
struct inverse_cols_fn {
  double operator()(block_dims d) const { return inverse_count(d.cols); }
  bool operator==(const inverse_cols_fn&) const = default;
};
struct inverse_rows_fn {
  double operator()(block_dims d) const { return inverse_count(d.rows); }
  bool operator==(const inverse_rows_fn&) const = default;
};
template <operand X>
constexpr auto row_mean(X&& x) {
  return row_sum(std::forward<X>(x)) * shape_node<inverse_cols_fn>{ {}, {} };
}
template <operand X>
constexpr auto col_mean(X&& x) {
  return col_sum(std::forward<X>(x)) * shape_node<inverse_rows_fn>{ {}, {} };
}

} // namespace steep::expr
