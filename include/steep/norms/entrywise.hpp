#pragma once
// Entrywise norms: a block (vector or matrix) is seen as its list of entries.
//
//   struct l1;         // sum |x_i|,          dual linf; map: sign(g_i) e_i at the first argmax |g_i|
//   struct linf;       // max |x_i|,          dual l1;   map: sign(g), sign(0) = 0
//   struct l2;         // sqrt(sum x_i^2),    self-dual; map: g / ||g||_2
//   struct frobenius;  // l2 of the entries of a matrix, self-dual, the same map
//   template <auto P, auto Q = P / (P - 1)>
//   using lp = lp_norm<double(P), double(Q)>;  // (sum |x_i|^P)^(1/P), dual lp<Q, P>;
//                                              // map: d_i = sign(g_i) |g_i|^(Q-1) / ||g||_Q^(Q-1)
//
//   fixed_vector<float, 4> g{{0.5f, -2, 2, 0}}, d;
//   dual_map<linf>(g, d);   // (1, -1, 1, 0): Signum's step; the dual norm is ||g||_1 = 4.5
//   dual_map<l1>(g, d);     // (0, -1, 0, 0): all mass on the first largest |g_i|, ||g||_inf = 2
//   dual_map<lp<3>>(g, d);  // ||d||_3 = 1 and <g, d> = ||g||_{3/2}
//
// Why these: l2 is (normalized) gradient descent, linf is Signum and, in the limit, Adam, l1 is
// coordinate descent; Gronich & Vardi 2026 show each optimizer's margin is the margin of its norm.
// The l1 tie rule (lowest index) and sign(0) = 0 are steep's conventions; both give a maximizer of <g, d>
// with ||d|| = 1 for any nonzero g, and 0 for g = 0. lp is there so a law kit can sweep a family of
// norms between the endpoints; its exponents are double template parameters so that
// dual_norm_t<dual_norm_t<lp<P>>> is lp<P> again as a type.

#include "steep/norms/constexpr_math.hpp"
#include "steep/norms/fold.hpp"
#include "steep/norms/norm.hpp"

#include <array>
#include <cstddef>
#include <string_view>

namespace steep::norms {

namespace detail {

template <class T>
constexpr double max_abs(vector_ref<const T> x) {
  double m = 0;
  for (std::size_t i = 0; i < x.size; ++i) {
    const double a = math::abs(static_cast<double>(x.data[i]));
    m = a > m ? a : m;
  }
  return m;
}

template <class T>
constexpr double sum_abs(vector_ref<const T> x) {
  double s = 0;
  for (std::size_t i = 0; i < x.size; ++i)
    s += math::abs(static_cast<double>(x.data[i]));
  return s;
}

// sqrt(sum x_i^2) over n entries `stride` apart, in double. Squares of huge or tiny doubles
// overflow or underflow, so then the sum is redone on x / max|x_i| (the fast path is the common one).
template <class T>
constexpr double l2_strided(const T* x, std::size_t n, std::size_t stride) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(x[i * stride]);
    s += v * v;
  }
  if (s > 1e-290 && s < 1e300)
    return math::sqrt(s);
  double m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double a = math::abs(static_cast<double>(x[i * stride]));
    m = a > m ? a : m;
  }
  if (m == 0)
    return 0;
  s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(x[i * stride]) / m;
    s += v * v;
  }
  return m * math::sqrt(s);
}

template <class T>
constexpr double l2_norm(vector_ref<const T> x) {
  return l2_strided(x.data, x.size, 1);
}

// ||x||_p = m (sum (|x_i| / m)^p)^(1/p), m = max |x_i|: scaled so that no power overflows.
template <class T>
constexpr double lp_value(vector_ref<const T> x, double p) {
  const double m = max_abs(x);
  if (m == 0)
    return 0;
  double s = 0;
  for (std::size_t i = 0; i < x.size; ++i)
    s += math::pow(math::abs(static_cast<double>(x.data[i])) / m, p);
  return m * math::pow(s, 1.0 / p);
}

template <class T>
constexpr void l2_dual_map(vector_ref<const T> g, vector_ref<T> out) {
  const double n = l2_norm(g);
  if (n == 0)
    return fill_zero(out);
  for (std::size_t i = 0; i < g.size; ++i)
    out.data[i] = static_cast<T>(static_cast<double>(g.data[i]) / n);
}

// P / (P - 1), or 0 (invalid) when P <= 1, so that the default argument of lp never divides by zero
// and lp's static_assert can say what is wrong.
constexpr double conjugate_exponent(double p) { return p > 1 ? p / (p - 1) : 0.0; }

// "l3", "l1.5": the name of lp<P>, formatted at compile time (up to 6 decimals).
struct short_name {
  std::array<char, 32> buf{};
  std::size_t len = 0;
  constexpr std::string_view view() const { return { buf.data(), len }; }
};

constexpr short_name lp_name(double p) {
  short_name n;
  n.buf[n.len++] = 'l';
  if (!(p > 0 && p < 1e9)) {
    n.buf[n.len++] = 'p';
    return n;
  }
  const auto scaled = static_cast<unsigned long long>(p * 1e6 + 0.5);
  unsigned long long ip = scaled / 1000000, fp = scaled % 1000000;
  char digits[20]{};
  int nd = 0;
  do {
    digits[nd++] = static_cast<char>('0' + ip % 10);
    ip /= 10;
  } while (ip > 0);
  while (nd > 0)
    n.buf[n.len++] = digits[--nd];
  if (fp != 0) {
    n.buf[n.len++] = '.';
    int width = 6;
    while (fp % 10 == 0) {
      fp /= 10;
      --width;
    }
    for (int i = width - 1; i >= 0; --i) {
      unsigned long long d = fp;
      for (int k = 0; k < i; ++k)
        d /= 10;
      n.buf[n.len++] = static_cast<char>('0' + d % 10);
    }
  }
  return n;
}

} // namespace detail

struct linf;

// ||x||_1 = sum |x_i|. Dual: linf. Dual map: the signed one-hot at the first i with maximal |g_i|.
struct l1 {
  using dual_type = linf;
  using global_fold = fold::sum; // a model's l1: the sum of its blocks' l1
  static constexpr std::string_view name = "l1";
  static constexpr bool matrix_only = false;

  template <class X>
  static constexpr auto value(const X& x) {
    const auto v = detail::value_arg(x);
    using T = typename decltype(v)::value_type;
    return static_cast<T>(detail::sum_abs(v.flat()));
  }

  template <class G, class Out>
  static constexpr void dual_map(const G& g, Out&& out) {
    auto [gv, ov] = detail::dual_map_args(g, out);
    const auto gf = gv.flat();
    const auto of = ov.flat();
    using T = typename decltype(of)::value_type;
    std::size_t best = 0;
    double top = 0;
    for (std::size_t i = 0; i < gf.size; ++i) {
      const double a = math::abs(static_cast<double>(gf.data[i]));
      if (a > top) {
        top = a;
        best = i;
      }
    }
    if (top == 0)
      return detail::fill_zero(of);
    const T s = math::sign(gf.data[best]); // read before zeroing: out may alias g
    detail::fill_zero(of);
    of.data[best] = s;
  }
};

// ||x||_inf = max |x_i|. Dual: l1. Dual map: sign(g) with sign(0) = 0 (Signum's step).
struct linf {
  using dual_type = l1;
  using fused_form = fused::sign;
  using global_fold = fold::max; // a model's l_inf: the max of its blocks' l_inf
  static constexpr std::string_view name = "linf";
  static constexpr bool matrix_only = false;

  template <class X>
  static constexpr auto value(const X& x) {
    const auto v = detail::value_arg(x);
    using T = typename decltype(v)::value_type;
    return static_cast<T>(detail::max_abs(v.flat()));
  }

  template <class G, class Out>
  static constexpr void dual_map(const G& g, Out&& out) {
    auto [gv, ov] = detail::dual_map_args(g, out);
    const auto gf = gv.flat();
    const auto of = ov.flat();
    for (std::size_t i = 0; i < gf.size; ++i)
      of.data[i] = math::sign(gf.data[i]);
  }
};

// ||x||_2 = sqrt(sum x_i^2). Self-dual. Dual map: g / ||g||_2 (normalized gradient descent).
struct l2 {
  using dual_type = l2;
  using fused_form = fused::l2_scale;
  using global_fold = fold::l2; // a model's l2: the l2 of its blocks' l2
  static constexpr std::string_view name = "l2";
  static constexpr bool matrix_only = false;

  template <class X>
  static constexpr auto value(const X& x) {
    const auto v = detail::value_arg(x);
    using T = typename decltype(v)::value_type;
    return static_cast<T>(detail::l2_norm(v.flat()));
  }

  template <class G, class Out>
  static constexpr void dual_map(const G& g, Out&& out) {
    auto [gv, ov] = detail::dual_map_args(g, out);
    detail::l2_dual_map(gv.flat(), ov.flat());
  }
};

// The Frobenius norm: l2 of a matrix's entries (on a vector it is l2). Self-dual, same dual map.
// A type of its own so that a rule can say which geometry it means for a weight matrix.
struct frobenius {
  using dual_type = frobenius;
  using fused_form = fused::l2_scale;
  using global_fold = fold::l2;
  static constexpr std::string_view name = "frobenius";
  static constexpr bool matrix_only = false;

  template <class X>
  static constexpr auto value(const X& x) {
    return l2::value(x);
  }
  template <class G, class Out>
  static constexpr void dual_map(const G& g, Out&& out) {
    l2::dual_map(g, out);
  }
};

// ||x||_P = (sum |x_i|^P)^(1/P), 1 < P < inf. Dual: lp<Q, P> with 1/P + 1/Q = 1.
// Dual map: d_i = sign(g_i) |g_i|^(Q-1) / ||g||_Q^(Q-1); then <g, d> = ||g||_Q and ||d||_P = 1
// because (Q - 1) P = Q.
template <double P, double Q>
struct lp_norm {
  static_assert(P > 1 && P < 1e300, "lp<P>: P must be a finite number greater than 1; use l1 or linf for the "
                                    "endpoints");
  static_assert(Q > 1 && Q < 1e300 && math::abs(1.0 / P + 1.0 / Q - 1.0) < 1e-12,
                "lp<P, Q>: Q must be the conjugate exponent of P, 1/P + 1/Q = 1 (leave it out)");

  using dual_type = lp_norm<Q, P>;
  static constexpr double p = P;
  static constexpr double q = Q;
  static constexpr detail::short_name name_storage = detail::lp_name(P);
  static constexpr std::string_view name = name_storage.view();
  static constexpr bool matrix_only = false;

  template <class X>
  static constexpr auto value(const X& x) {
    const auto v = detail::value_arg(x);
    using T = typename decltype(v)::value_type;
    return static_cast<T>(detail::lp_value(v.flat(), P));
  }

  template <class G, class Out>
  static constexpr void dual_map(const G& g, Out&& out) {
    auto [gv, ov] = detail::dual_map_args(g, out);
    const auto gf = gv.flat();
    const auto of = ov.flat();
    using T = typename decltype(of)::value_type;
    // On r = |g| / max |g| (scale-free): d_i = sign(g_i) r_i^(Q-1) / ||r||_Q^(Q-1).
    const double m = detail::max_abs(gf);
    if (m == 0)
      return detail::fill_zero(of);
    const double denom = math::pow(detail::lp_value(gf, Q) / m, Q - 1);
    for (std::size_t i = 0; i < gf.size; ++i) {
      const double gi = static_cast<double>(gf.data[i]);
      of.data[i] = static_cast<T>(math::sign(gi) * math::pow(math::abs(gi) / m, Q - 1) / denom);
    }
  }
};

// lp<3> and lp<3.0> name one type, lp_norm<3.0, 1.5>: an int exponent is not a valid double template
// argument by itself, and the dual of the dual must be the same type again.
template <auto P, auto Q = detail::conjugate_exponent(static_cast<double>(P))>
using lp = lp_norm<static_cast<double>(P), static_cast<double>(Q)>;

} // namespace steep::norms
