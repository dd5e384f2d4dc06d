#pragma once
// The grammar's operations: arithmetic, elementwise functions and user maps, each a node built
// by make_apply (node.hpp). Each is a callable on a batch, on a float/double, and (on the host)
// on a double, so one definition serves the SIMD loop and the host tables.
//
//   using namespace steep::expr;
//   auto rule = -0.1 * grad / (sqrt(square(grad)) + 1e-8);
//   auto clipped = map([](auto x) { return x * x; }, grad);   // a user's elementwise function

#include "steep/expr/node.hpp"

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace steep::expr {

namespace ops {
struct add {
  template <class V>
  V operator()(const V& a, const V& b) const {
    return a + b;
  }
};
struct sub {
  template <class V>
  V operator()(const V& a, const V& b) const {
    return a - b;
  }
};
struct mul {
  template <class V>
  V operator()(const V& a, const V& b) const {
    return a * b;
  }
};
struct div {
  template <class V>
  V operator()(const V& a, const V& b) const {
    return a / b;
  }
  // The same quotient where b is the same across the loop (apply_node: a per-step or per-block
  // divisor of an elementwise operand), without a division per batch.
  static constexpr bool has_uniform_last = true;
  template <class V>
  V uniform_last(const V& a, const V& b) const {
    return kernel::div_uniform(a, b);
  }
};
// a / b, and 0 where b == 0: the paper's convention 0 / 0 := 0 for a coordinate that never
// moved (Gronich & Vardi 2026, numerical advice; docs/design.md).
struct div_or_zero {
  template <class V>
  V operator()(const V& a, const V& b) const {
    if constexpr (kernel::is_batch_v<V>)
      return xsimd::select(b == V(0), V(0), a / b);
    else
      return b == V(0) ? V(0) : a / b;
  }
};
struct neg {
  template <class V>
  V operator()(const V& a) const {
    return -a;
  }
};
struct sqrt {
  template <class V>
  V operator()(const V& a) const {
    return kernel::sqrt(a);
  }
};
struct abs {
  template <class V>
  V operator()(const V& a) const {
    return kernel::abs(a);
  }
};
struct sign {
  template <class V>
  V operator()(const V& a) const {
    return kernel::sign(a);
  }
};
struct square {
  template <class V>
  V operator()(const V& a) const {
    return a * a;
  }
};
struct max {
  template <class V>
  V operator()(const V& a, const V& b) const {
    return kernel::max(a, b);
  }
};
struct min {
  template <class V>
  V operator()(const V& a, const V& b) const {
    return kernel::min(a, b);
  }
};
struct exp {
  template <class V>
  V operator()(const V& a) const {
    return kernel::exp(a);
  }
};
struct log {
  template <class V>
  V operator()(const V& a) const {
    return kernel::log(a);
  }
};
struct pow {
  template <class V>
  V operator()(const V& a, const V& b) const {
    if constexpr (kernel::is_batch_v<V>)
      return xsimd::pow(a, b);
    else
      return std::pow(a, b);
  }
};
struct clamp {
  template <class V>
  V operator()(const V& x, const V& lo, const V& hi) const {
    return kernel::min(kernel::max(x, lo), hi);
  }
};
// A user's elementwise function (see `map`): any generic callable on V.
template <class F>
struct user {
  [[no_unique_address]] F f;
  template <class... V>
  auto operator()(const V&... a) const {
    return f(a...);
  }
};
} // namespace ops

template <operand A, operand B>
requires(expression<A> || expression<B>) constexpr auto operator+(A&& a, B&& b) {
  return make_apply(ops::add{}, std::forward<A>(a), std::forward<B>(b));
}
template <operand A, operand B>
requires(expression<A> || expression<B>) constexpr auto operator-(A&& a, B&& b) {
  return make_apply(ops::sub{}, std::forward<A>(a), std::forward<B>(b));
}
template <operand A, operand B>
requires(expression<A> || expression<B>) constexpr auto operator*(A&& a, B&& b) {
  return make_apply(ops::mul{}, std::forward<A>(a), std::forward<B>(b));
}
template <operand A, operand B>
requires(expression<A> || expression<B>) constexpr auto operator/(A&& a, B&& b) {
  return make_apply(ops::div{}, std::forward<A>(a), std::forward<B>(b));
}
template <operand A, operand B>
constexpr auto div_or_zero(A&& a, B&& b) {
  return make_apply(ops::div_or_zero{}, std::forward<A>(a), std::forward<B>(b));
}
template <expression A>
constexpr auto operator-(A&& a) {
  return make_apply(ops::neg{}, std::forward<A>(a));
}

template <operand A>
constexpr auto sqrt(A&& a) {
  return make_apply(ops::sqrt{}, std::forward<A>(a));
}
template <operand A>
constexpr auto abs(A&& a) {
  return make_apply(ops::abs{}, std::forward<A>(a));
}
// sign(0) = 0: an entry whose direction is exactly zero does not move (manifest, signum_zs).
template <operand A>
constexpr auto sign(A&& a) {
  return make_apply(ops::sign{}, std::forward<A>(a));
}
template <operand A>
constexpr auto square(A&& a) {
  return make_apply(ops::square{}, std::forward<A>(a));
}
template <operand A>
constexpr auto exp(A&& a) {
  return make_apply(ops::exp{}, std::forward<A>(a));
}
template <operand A>
constexpr auto log(A&& a) {
  return make_apply(ops::log{}, std::forward<A>(a));
}
template <operand A, operand B>
constexpr auto max(A&& a, B&& b) {
  return make_apply(ops::max{}, std::forward<A>(a), std::forward<B>(b));
}
template <operand A, operand B>
constexpr auto min(A&& a, B&& b) {
  return make_apply(ops::min{}, std::forward<A>(a), std::forward<B>(b));
}
template <operand A, operand B>
constexpr auto pow(A&& a, B&& b) {
  return make_apply(ops::pow{}, std::forward<A>(a), std::forward<B>(b));
}
template <operand X, operand L, operand H>
constexpr auto clamp(X&& x, L&& lo, H&& hi) {
  return make_apply(ops::clamp{}, std::forward<X>(x), std::forward<L>(lo), std::forward<H>(hi));
}
// torch's lerp: a + w (b - a).
template <operand A, operand B, operand W>
constexpr auto lerp(A&& a, B&& b, W&& w) {
  auto a2 = as_expr(std::forward<A>(a));
  return a2 + std::forward<W>(w) * (std::forward<B>(b) - a2);
}

// A new elementwise function without touching steep: f must accept batches and scalars alike,
// and be noexcept — it runs inside the update pass, where an exception would leave some
// parameters stepped and others not.
//   auto cube = map([](auto x) noexcept { return x * x * x; }, grad);
template <class F, operand... X>
constexpr auto map(F f, X&&... x) {
  static_assert(std::is_nothrow_invocable_v<const F&, decltype((static_cast<void>(sizeof(X)), 1.0))...>,
                "map(f, ...): f must be noexcept, e.g. [](auto x) noexcept { return x * x; }: it runs "
                "inside the update pass, where a throw would leave the step half applied");
  return make_apply(ops::user<F>{ f }, std::forward<X>(x)...);
}

} // namespace steep::expr
