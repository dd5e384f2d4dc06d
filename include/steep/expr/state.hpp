#pragma once
// Stages that own state: one mechanism (`recur`) and the stages built from it.
//
//   auto m  = ema<"exp_avg">(grad, 0.9);             // m_t = b m_{t-1} + (1-b) g_t
//   auto v  = ema<"exp_avg_sq">(square(grad), 0.999);
//   auto b  = trace<"momentum_buffer">(grad, 0.9);   // heavy ball: b_t = mu b_{t-1} + g_t
//   auto s  = running_sum<"sum">(square(grad));      // Adagrad
//   auto vm = running_max<"max_exp_avg_sq">(v);      // AMSGrad
//   auto c  = lerp(prev(m), grad, 0.1);              // Lion reads m_{t-1} before m is updated
//   auto mh = debias(m);                             // m_t / (1 - b^t), 1/(1 - b^t) hoisted per step
//
// recur<Name, Dtype>(f, init) is a state slot named Name whose value after this step is
// f(prev), where prev is the slot's value before the step (init at t = 1). A slot whose update
// is one value per block is stored per block, one value per row (column, slice) per row:
//   auto v = ema<"v">(block_mean(square(grad)), 0.999);            // Adam-mini: one v per block
//   auto h = ema<"v">(slice_mean(square(grad), 64, 512), 0.999);   // one v per 64-row head
// The slot's name and storage dtype are part of its type, so the compiler lists every slot to
// allocate with its dtype at compile time, and checkpoints address state as (block, slot name).
// Writing a new stateful stage is one call to recur; the engine never changes.
//
// Referring to a stage (m) gives its value after this step; the same name used twice is the
// same buffer, updated once. Two different stages under one name are rejected.

#include "steep/expr/ops.hpp"

#include <type_traits>
#include <utility>

namespace steep::expr {

// Dtype marker: store the slot in the parameters' dtype (the default).
struct param_dtype {};

// The value of slot Name before this step (only meaningful inside Name's own update).
template <fixed_string Name>
struct prev_ref : leaf {
  static constexpr int level = 2;
  template <std::size_t S, std::size_t B, class Ctx>
  auto eval(const Ctx& c) const {
    return c.template old_value<Name>();
  }
  bool operator==(const prev_ref&) const = default;
};

// What a stage remembers beyond its update (an EMA keeps its beta, for debias()).
struct no_extra {
  bool operator==(const no_extra&) const = default;
};
template <class Beta>
struct ema_extra {
  Beta beta;
  bool operator==(const ema_extra&) const = default;
};

// The value before this step of a per-block slot Name (inside Name's own update).
template <fixed_string Name>
struct block_prev_ref : leaf {
  static constexpr int level = 1;
  static constexpr std::size_t n_block = 1;
  template <std::size_t R>
  double block_value(const host_ctx& h) const {
    return h.slots.value(h.slots.owner, Name.view(), true);
  }
  bool operator==(const block_prev_ref&) const = default;
};

// The value before this step of a per-row (Line = rows_line), per-column or per-slice slot Name; the
// engine reads it from the slot, line by line (node.hpp, lines).
template <fixed_string Name, int Line>
struct line_prev_ref : leaf {
  static constexpr int level = 2;
  static constexpr int line = Line;
  static constexpr auto name = Name;
  static constexpr std::size_t n_block = 1;
  template <std::size_t S, std::size_t B, class Ctx>
  auto eval(const Ctx& c) const {
    return c.template old_value<Name>();
  }
  bool operator==(const line_prev_ref&) const = default;
};
template <class N>
struct is_line_prev_ref : std::false_type {};
template <fixed_string Name, int Line>
struct is_line_prev_ref<line_prev_ref<Name, Line>> : std::true_type {};

// A slot is stored per element when its update varies per element, per row (column, slice)
// when it is a row (column, slice) line (NorMuon's second moment of the polar factor, one per
// row; Adam-mini's per head), and per block when it is one value per block (an EMA of a block's mean square:
// Adam-mini). A per-block slot is a per-block scalar to the loop, a per-line slot a line; the engine updates
// both on the host, once per block (line) and step.
template <fixed_string Name, class Dtype, class Update, class Extra = no_extra>
struct state_node : leaf {
  static_assert(expression<Update>, "a state slot's update must be an expression");
  static_assert(Update::level >= 1, "a state slot's update must depend on the block or its elements (a value "
                                    "shared by every block is a per-step scalar: compute it from `step`)");
  static constexpr int level = Update::level;
  static constexpr bool per_block = level == 1;
  static constexpr int line = level == 2 ? line_of_v<Update> : not_a_line;
  static constexpr std::size_t n_block = per_block || line != not_a_line ? 1 : 0;
  static constexpr auto name = Name;
  using dtype = Dtype;
  using update_type = Update;

  Update update;
  double init = 0;
  Extra extra{};

  template <std::size_t S, std::size_t B, class Ctx>
  auto eval(const Ctx& c) const {
    return c.template new_value<Name>();
  }
  template <std::size_t R>
  double block_value(const host_ctx& h) const {
    return h.slots.value(h.slots.owner, Name.view(), false);
  }
  bool operator==(const state_node&) const = default;
};

template <class N>
struct is_state_node : std::false_type {};
template <fixed_string Name, class D, class U, class E>
struct is_state_node<state_node<Name, D, U, E>> : std::true_type {};
template <class N>
inline constexpr bool is_state_node_v = is_state_node<std::remove_cvref_t<N>>::value;

// The value before this step of a stage used elsewhere in the rule (Lion's interpolation).
template <class State>
struct prev_node : leaf {
  static constexpr int level = 2;
  using state_type = State;
  State state;
  template <std::size_t S, std::size_t B, class Ctx>
  auto eval(const Ctx& c) const {
    return c.template old_value<State::name>();
  }
  bool operator==(const prev_node&) const = default;
};
template <class N>
struct is_prev_node : std::false_type {};
template <class S>
struct is_prev_node<prev_node<S>> : std::true_type {};

template <fixed_string Name, class Dtype = param_dtype, class F, class Extra = no_extra>
constexpr auto recur(F&& f, double init = 0, Extra extra = {}) {
  // One value per block if the update is one per block given a per-block previous value.
  using per_block_update = decltype(as_expr(f(block_prev_ref<Name>{})));
  using row_update = decltype(as_expr(f(line_prev_ref<Name, rows_line>{})));
  using col_update = decltype(as_expr(f(line_prev_ref<Name, cols_line>{})));
  using slice_update = decltype(as_expr(f(line_prev_ref<Name, slices_line>{})));
  if constexpr (per_block_update::level <= 1) {
    auto update = as_expr(f(block_prev_ref<Name>{}));
    return state_node<Name, Dtype, decltype(update), Extra>{ {}, std::move(update), init, std::move(extra) };
  } else if constexpr (line_of_v<row_update> == rows_line) {
    auto update = as_expr(f(line_prev_ref<Name, rows_line>{}));
    return state_node<Name, Dtype, decltype(update), Extra>{ {}, std::move(update), init, std::move(extra) };
  } else if constexpr (line_of_v<col_update> == cols_line) {
    auto update = as_expr(f(line_prev_ref<Name, cols_line>{}));
    return state_node<Name, Dtype, decltype(update), Extra>{ {}, std::move(update), init, std::move(extra) };
  } else if constexpr (line_of_v<slice_update> == slices_line) {
    auto update = as_expr(f(line_prev_ref<Name, slices_line>{}));
    return state_node<Name, Dtype, decltype(update), Extra>{ {}, std::move(update), init, std::move(extra) };
  } else {
    auto update = as_expr(f(prev_ref<Name>{}));
    return state_node<Name, Dtype, decltype(update), Extra>{ {}, std::move(update), init, std::move(extra) };
  }
}

template <class S>
constexpr auto prev(const S& s) {
  static_assert(is_state_node_v<S>, "prev(x) needs a stage that owns state (ema, trace, recur, ...)");
  if constexpr (is_state_node_v<S>)
    static_assert(
      S::level == 2 && S::line == not_a_line,
      "prev(x) of a per-block, per-row or per-column slot is not supported: use recur(...) and its "
      "previous value instead");
  return prev_node<S>{ {}, s };
}

// Exponential moving average m_t = b m_{t-1} + (1 - b) x_t, m_0 = 0 (torch Adam's exp_avg).
template <fixed_string Name = "ema", class Dtype = param_dtype, operand X, operand B>
constexpr auto ema(X&& x, B&& beta) {
  auto b = as_expr(std::forward<B>(beta));
  static_assert(decltype(b)::level == 0, "ema(x, beta): beta must be a per-step scalar");
  auto xe = as_expr(std::forward<X>(x));
  return recur<Name, Dtype>([&](auto m) { return b * m + (1.0 - b) * xe; }, 0.0, ema_extra<decltype(b)>{ b });
}

// Heavy-ball trace b_t = mu b_{t-1} + x_t (torch SGD's momentum_buffer with dampening 0).
template <fixed_string Name = "trace", class Dtype = param_dtype, operand X, operand M>
constexpr auto trace(X&& x, M&& mu) {
  auto m = as_expr(std::forward<M>(mu));
  auto xe = as_expr(std::forward<X>(x));
  return recur<Name, Dtype>([&](auto b) { return m * b + xe; });
}

// Running sum s_t = s_{t-1} + x_t from `init` (Adagrad's accumulator).
template <fixed_string Name = "sum", class Dtype = param_dtype, operand X>
constexpr auto running_sum(X&& x, double init = 0) {
  auto xe = as_expr(std::forward<X>(x));
  return recur<Name, Dtype>([&](auto s) { return s + xe; }, init);
}

// Running maximum r_t = max(r_{t-1}, x_t), r_0 = 0 (AMSGrad's max of second moments).
template <fixed_string Name = "max", class Dtype = param_dtype, operand X>
constexpr auto running_max(X&& x) {
  auto xe = as_expr(std::forward<X>(x));
  return recur<Name, Dtype>([&](auto r) { return max(r, xe); });
}

// Bias correction of an EMA: m_t / (1 - b^t). The reciprocal is a per-step scalar, so the loop
// multiplies instead of dividing (Kingma & Ba 2015, Alg. 1).
template <class S>
constexpr auto debias(const S& m) {
  static_assert(is_state_node_v<S>, "debias(x) needs an ema(...) stage");
  if constexpr (is_state_node_v<S>) {
    static_assert(!std::is_same_v<decltype(m.extra), no_extra>,
                  "debias(x) needs an ema(...) stage: it divides by 1 - beta^t of that EMA");
    return m * (1.0 / (1.0 - pow(m.extra.beta, step)));
  }
}

// Nesterov look-ahead on an EMA in optax's bias-corrected form:
//   b m_t / (1 - b^{t+1}) + (1 - b) x_t / (1 - b^t)   (optax.scale_by_adam(nesterov=True)).
template <class S, operand X>
constexpr auto nesterov_debias(const S& m, X&& x) {
  static_assert(is_state_node_v<S>, "nesterov_debias(m, x) needs an ema(...) stage");
  const auto& b = m.extra.beta;
  return (b / (1.0 - pow(b, step + 1.0))) * m + ((1.0 - b) / (1.0 - pow(b, step))) * std::forward<X>(x);
}

} // namespace steep::expr
