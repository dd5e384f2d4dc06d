#pragma once
// Math that works in constant expressions and calls <cmath> at run time.
//
//   constexpr double abs(double x);            // |x|, abs(-0.0) == +0.0
//   constexpr double sqrt(double x);           // x >= 0
//   constexpr double exp(double x);
//   constexpr double log(double x);            // x > 0
//   constexpr double pow(double x, double y);  // real y; x < 0 only for integral y
//
//   static_assert(steep::norms::math::sqrt(2.0) * steep::norms::math::sqrt(2.0) - 2.0 < 1e-15);
//   double q = steep::norms::math::pow(0.25, 1.5); // 0.125, std::pow at run time
//
// Why: the norms are constexpr so that duality laws are static_asserts, and the standard
// <cmath> functions are not constexpr in C++20. GCC happens to fold its builtins in constant
// expressions, but that is an extension other compilers lack, so the compile-time branch here is
// portable C++ (Newton's method for sqrt; exp and log by argument reduction and series), selected
// with std::is_constant_evaluated(). At run time the <cmath> function runs: the compile-time branch
// agrees with it to a few ulp, which is all the static_asserts need (they use tolerances).

#include <cmath>
#include <limits>
#include <type_traits>

namespace steep::norms::math {

namespace detail {

inline constexpr double inf = std::numeric_limits<double>::infinity();
inline constexpr double nan = std::numeric_limits<double>::quiet_NaN();
inline constexpr double two64 = 18446744073709551616.0; // 2^64
inline constexpr double two32 = 4294967296.0;           // 2^32
// ln 2 split so that k * ln2_hi is exact for |k| < 2^11 (fdlibm's constants).
inline constexpr double ln2_hi = 6.93147180369123816490e-01;
inline constexpr double ln2_lo = 1.90821492927058770002e-10;
inline constexpr double sqrt_half = 0.70710678118654752440;

constexpr bool is_nan(double x) { return x != x; }

// x * 2^k by repeated exact scaling (ldexp is not constexpr).
constexpr double scale2(double x, int k) {
  while (k >= 64) {
    x *= two64;
    k -= 64;
  }
  while (k <= -64) {
    x /= two64;
    k += 64;
  }
  while (k > 0) {
    x *= 2.0;
    --k;
  }
  while (k < 0) {
    x *= 0.5;
    ++k;
  }
  return x;
}

constexpr double sqrt_ce(double x) {
  if (is_nan(x) || x < 0)
    return nan;
  if (x == 0 || x == inf)
    return x;
  // x = m * 4^e with m in [1, 4): sqrt(x) = sqrt(m) * 2^e, exactly scaled.
  double m = x, f = 1.0;
  while (m >= two64) {
    m /= two64;
    f *= two32;
  }
  while (m < 1.0 / two64) {
    m *= two64;
    f /= two32;
  }
  while (m >= 4.0) {
    m *= 0.25;
    f *= 2.0;
  }
  while (m < 1.0) {
    m *= 4.0;
    f *= 0.5;
  }
  // Newton from above decreases monotonically; stop when it no longer does.
  double y = 0.5 * (1.0 + m);
  for (int i = 0; i < 64; ++i) {
    const double next = 0.5 * (y + m / y);
    if (next >= y)
      break;
    y = next;
  }
  return y * f;
}

constexpr double exp_ce(double x) {
  if (is_nan(x))
    return x;
  if (x > 709.782712893384)
    return inf;
  if (x < -745.1332191019412)
    return 0.0;
  // x = k ln2 + r, |r| <= ln2 / 2; exp(r) by Taylor series (terms < 1e-17 after ~18).
  const double kd = x / (ln2_hi + ln2_lo);
  const int k = static_cast<int>(kd < 0 ? kd - 0.5 : kd + 0.5);
  const double r = (x - k * ln2_hi) - k * ln2_lo;
  double term = 1.0, sum = 1.0;
  for (int n = 1; n < 30; ++n) {
    term *= r / n;
    sum += term;
    if ((term < 0 ? -term : term) < 1e-17 * sum)
      break;
  }
  return scale2(sum, k);
}

constexpr double log_ce(double x) {
  if (is_nan(x) || x < 0)
    return nan;
  if (x == 0)
    return -inf;
  if (x == inf)
    return x;
  // x = m * 2^k with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(z), z = (m - 1) / (m + 1), |z| < 0.172.
  double m = x;
  int k = 0;
  while (m >= two64) {
    m /= two64;
    k += 64;
  }
  while (m < 1.0 / two64) {
    m *= two64;
    k -= 64;
  }
  while (m >= 2.0 * sqrt_half) {
    m *= 0.5;
    ++k;
  }
  while (m < sqrt_half) {
    m *= 2.0;
    --k;
  }
  const double z = (m - 1.0) / (m + 1.0), z2 = z * z;
  double power = z, sum = z;
  for (int n = 3; n < 80; n += 2) {
    power *= z2;
    const double term = power / n;
    sum += term;
    if ((term < 0 ? -term : term) < 1e-18 * (sum < 0 ? -sum : sum))
      break;
  }
  return (k * ln2_hi + 2.0 * sum) + k * ln2_lo;
}

constexpr bool is_integral(double y) {
  if (y != y || y == inf || y == -inf)
    return false;
  if (y >= 4503599627370496.0 || y <= -4503599627370496.0) // >= 2^52: every double is an integer
    return true;
  return static_cast<double>(static_cast<long long>(y)) == y;
}

constexpr double pow_ce(double x, double y) {
  if (y == 0 || x == 1)
    return 1.0;
  if (is_nan(x) || is_nan(y))
    return nan;
  if (x == 0)
    return y > 0 ? 0.0 : inf;
  if (x < 0) {
    if (!is_integral(y))
      return nan;
    const double p = pow_ce(-x, y);
    const bool odd =
      (y > -9007199254740992.0 && y < 9007199254740992.0) && (static_cast<long long>(y) % 2 != 0);
    return odd ? -p : p;
  }
  // Small integral exponents by repeated squaring: exact to rounding, and cheap to evaluate.
  if (is_integral(y) && y <= 64 && y >= -64) {
    long long n = static_cast<long long>(y < 0 ? -y : y);
    double base = x, result = 1.0;
    while (n > 0) {
      if (n & 1)
        result *= base;
      base *= base;
      n >>= 1;
    }
    return y < 0 ? 1.0 / result : result;
  }
  return exp_ce(y * log_ce(x));
}

} // namespace detail

template <class T>
requires std::is_arithmetic_v<T>
constexpr T abs(T x) { return x < T(0) ? -x : (x == T(0) ? T(0) : x); }

constexpr double sqrt(double x) {
  if (std::is_constant_evaluated())
    return detail::sqrt_ce(x);
  return std::sqrt(x);
}

constexpr double exp(double x) {
  if (std::is_constant_evaluated())
    return detail::exp_ce(x);
  return std::exp(x);
}

constexpr double log(double x) {
  if (std::is_constant_evaluated())
    return detail::log_ce(x);
  return std::log(x);
}

constexpr double pow(double x, double y) {
  if (std::is_constant_evaluated())
    return detail::pow_ce(x, y);
  return std::pow(x, y);
}

// -1, 0 or +1; sign(0) = 0 and sign(NaN) = NaN, as the DSL's sign (kernel::sign; docs/dsl.md).
template <class T>
constexpr T sign(T x) {
  if (x != x)
    return x;
  return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
}

} // namespace steep::norms::math
