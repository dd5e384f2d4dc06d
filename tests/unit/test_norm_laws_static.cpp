// Compile-time duality laws of every norm in steep::norms: if this file compiles, they
// hold. Each law is evaluated in a constant expression on small fixed blocks (vectors of 5, matrices
// 3x2, 2x3, 3x3, one of rank 1, one all zero), through the constexpr one-sided Jacobi SVD for the
// spectral family. For a norm N with dual N*, and d = dual_map<N>(g):
//   dual_norm_t<dual_norm_t<N>> is N;   <g, d> = ||g||_{N*};   ||d||_N = 1 (g != 0);
//   <g, x> <= ||g||_{N*} ||x||_N (Hoelder) for other x;   dual_map(0) = 0;   steepest = ||g||_{N*} d.

#include <catch2/catch.hpp>
#include <steep/norms.hpp>
#include <tuple>
#include <type_traits>

using namespace steep::norms;

namespace {

constexpr double tol = 1e-12;

constexpr bool close(double a, double b, double rel = tol) {
  const double scale = math::abs(a) > math::abs(b) ? math::abs(a) : math::abs(b);
  return math::abs(a - b) <= rel * (scale > 1 ? scale : 1.0);
}

// ---- inputs -----------------------------------------------------------------------------------

constexpr fixed_vector<double, 5> va{ { 3, -1, 4, -1.5, 0 } };
constexpr fixed_vector<double, 5> vb{ { -0.5, 2, 0.25, 1, -3 } };
constexpr fixed_vector<double, 5> vtie{ { 4, -4, 1, 0, 2 } }; // |g| ties: l1 picks the first
constexpr fixed_vector<double, 5> vzero{};

constexpr fixed_matrix<double, 3, 2> m32a{ { 1, 2, -3, 0.5, 2, -1 } };
constexpr fixed_matrix<double, 3, 2> m32b{ { 0.5, -1, 1, 1, -2, 0.25 } };
constexpr fixed_matrix<double, 2, 3> m23a{ { 2, -1, 0, 1, 3, -2 } };
constexpr fixed_matrix<double, 2, 3> m23b{ { -1, 0.5, 2, 0, 1, 1 } };
constexpr fixed_matrix<double, 3, 3> m33a{ { 4, 1, -2, 1, 3, 0, -2, 0, 5 } };
constexpr fixed_matrix<double, 3, 3> m33b{ { 0, 1, 2, -1, 0, 1, 3, -2, 1 } };
// Rank 1: (1, -2, 0.5)^T (2, 1, -1); its third row is not zero but it has one direction.
constexpr fixed_matrix<double, 3, 3> m33rank1{ { 2, 1, -1, -4, -2, 2, 1, 0.5, -0.5 } };
// Rank 2 with a zero column.
constexpr fixed_matrix<double, 3, 3> m33rank2{ { 1, 0, 2, 0, 0, 1, 1, 0, 3 } };
constexpr fixed_matrix<double, 3, 3> m33zero{};

// ---- laws -------------------------------------------------------------------------------------

template <class N, class X>
constexpr bool attains(const X& g) {
  X d{};
  dual_map<N>(g, d);
  return close(inner(g, d), static_cast<double>(value<dual_norm_t<N>>(g)));
}

template <class N, class X>
constexpr bool unit(const X& g) {
  X d{};
  dual_map<N>(g, d);
  return close(static_cast<double>(value<N>(d)), 1.0);
}

template <class N, class X>
constexpr bool hoelder(const X& g, const X& x) {
  const double bound = static_cast<double>(value<dual_norm_t<N>>(g)) * static_cast<double>(value<N>(x));
  return inner(g, x) <= bound + tol * (bound > 1 ? bound : 1.0);
}

template <class N, class X>
constexpr bool zero_to_zero(const X& zero) {
  X d{};
  for (auto& x : d.values)
    x = 7; // every entry must be written
  dual_map<N>(zero, d);
  for (auto x : d.values)
    if (x != 0)
      return false;
  return true;
}

template <class N, class X>
constexpr bool steepest_scales(const X& g) {
  X d{}, s{};
  dual_map<N>(g, d);
  steepest<N>(g, s);
  const double c = static_cast<double>(value<dual_norm_t<N>>(g));
  for (std::size_t i = 0; i < d.values.size(); ++i)
    if (!close(s.values[i], c * d.values[i]))
      return false;
  return true;
}

template <class N>
constexpr bool attains_on_vectors() {
  return attains<N>(va) && attains<N>(vb) && attains<N>(vtie);
}
template <class N>
constexpr bool attains_on_matrices() {
  return attains<N>(m32a) && attains<N>(m32b) && attains<N>(m23a) && attains<N>(m23b) && attains<N>(m33a) &&
         attains<N>(m33b) && attains<N>(m33rank1) && attains<N>(m33rank2);
}
template <class N>
constexpr bool unit_on_vectors() {
  return unit<N>(va) && unit<N>(vb) && unit<N>(vtie);
}
template <class N>
constexpr bool unit_on_matrices() {
  return unit<N>(m32a) && unit<N>(m32b) && unit<N>(m23a) && unit<N>(m23b) && unit<N>(m33a) && unit<N>(m33b) &&
         unit<N>(m33rank1) && unit<N>(m33rank2);
}
template <class N>
constexpr bool hoelder_on_vectors() {
  return hoelder<N>(va, vb) && hoelder<N>(vb, va) && hoelder<N>(va, vtie) && hoelder<N>(vtie, vb);
}
template <class N>
constexpr bool hoelder_on_matrices() {
  return hoelder<N>(m32a, m32b) && hoelder<N>(m32b, m32a) && hoelder<N>(m23a, m23b) &&
         hoelder<N>(m33a, m33b) && hoelder<N>(m33b, m33rank1) && hoelder<N>(m33rank2, m33a);
}
template <class N>
constexpr bool steepest_on_all() {
  if constexpr (N::matrix_only)
    return steepest_scales<N>(m32a) && steepest_scales<N>(m23b) && steepest_scales<N>(m33rank1);
  else
    return steepest_scales<N>(va) && steepest_scales<N>(m32a);
}
template <class N>
constexpr bool dual_is_involution() {
  return std::is_same_v<dual_norm_t<dual_norm_t<N>>, N> && norm<N> && norm<dual_norm_t<N>>;
}

// ---- entrywise norms, on vectors and on matrices (their entries) ----------------------------------

static_assert(dual_is_involution<l1>(), "l1's dual is linf, whose dual is l1 again");
static_assert(attains_on_vectors<l1>() && attains_on_matrices<l1>(),
              "l1: <g, dual_map(g)> equals ||g||_inf, the dual norm");
static_assert(unit_on_vectors<l1>() && unit_on_matrices<l1>(), "l1: the dual map has l1 norm 1");
static_assert(hoelder_on_vectors<l1>() && hoelder_on_matrices<l1>(), "l1: <g, x> <= ||g||_inf ||x||_1");
static_assert(zero_to_zero<l1>(vzero) && zero_to_zero<l1>(m33zero), "l1: a zero gradient maps to zero");
static_assert(steepest_on_all<l1>(), "l1: steepest(g) is ||g||_inf dual_map(g)");

static_assert(dual_is_involution<linf>(), "linf's dual is l1, whose dual is linf again");
static_assert(attains_on_vectors<linf>() && attains_on_matrices<linf>(),
              "linf: <g, sign(g)> equals ||g||_1, the dual norm");
static_assert(unit_on_vectors<linf>() && unit_on_matrices<linf>(), "linf: sign(g) has linf norm 1");
static_assert(hoelder_on_vectors<linf>() && hoelder_on_matrices<linf>(), "linf: <g, x> <= ||g||_1 ||x||_inf");
static_assert(zero_to_zero<linf>(vzero) && zero_to_zero<linf>(m33zero), "linf: a zero gradient maps to zero");
static_assert(steepest_on_all<linf>(), "linf: steepest(g) is ||g||_1 sign(g)");

static_assert(dual_is_involution<l2>() && std::is_same_v<dual_norm_t<l2>, l2>, "l2 is self-dual");
static_assert(attains_on_vectors<l2>() && attains_on_matrices<l2>(), "l2: <g, g / ||g||> equals ||g||_2");
static_assert(unit_on_vectors<l2>() && unit_on_matrices<l2>(), "l2: g / ||g||_2 has l2 norm 1");
static_assert(hoelder_on_vectors<l2>() && hoelder_on_matrices<l2>(),
              "l2: Cauchy-Schwarz, <g, x> <= ||g|| ||x||");
static_assert(zero_to_zero<l2>(vzero) && zero_to_zero<l2>(m33zero),
              "l2: a zero gradient maps to zero, not NaN");
static_assert(steepest_on_all<l2>(), "l2: steepest(g) is g itself (gradient descent)");

static_assert(dual_is_involution<frobenius>() && std::is_same_v<dual_norm_t<frobenius>, frobenius>,
              "frobenius is self-dual");
static_assert(attains_on_matrices<frobenius>(), "frobenius: <g, g / ||g||_F> equals ||g||_F");
static_assert(unit_on_matrices<frobenius>(), "frobenius: g / ||g||_F has Frobenius norm 1");
static_assert(hoelder_on_matrices<frobenius>(), "frobenius: <g, x> <= ||g||_F ||x||_F");
static_assert(zero_to_zero<frobenius>(m33zero), "frobenius: a zero gradient maps to zero");
static_assert(steepest_on_all<frobenius>(), "frobenius: steepest(g) is g itself");

static_assert(dual_is_involution<lp<3>>() && std::is_same_v<dual_norm_t<lp<3>>, lp<1.5>> &&
                std::is_same_v<lp<3>, lp<3.0>>,
              "lp<3>'s dual is lp<1.5>, whose dual is lp<3> again; lp<3> and lp<3.0> are one type");
static_assert(lp<3>::name == "l3" && lp<1.5>::name == "l1.5", "lp<P> is named lP");
static_assert(attains_on_vectors<lp<3>>() && attains_on_matrices<lp<3>>(),
              "lp<3>: <g, dual_map(g)> equals ||g||_{3/2}, the dual norm");
static_assert(unit_on_vectors<lp<3>>() && unit_on_matrices<lp<3>>(), "lp<3>: the dual map has l3 norm 1");
static_assert(hoelder_on_vectors<lp<3>>() && hoelder_on_matrices<lp<3>>(),
              "lp<3>: <g, x> <= ||g||_1.5 ||x||_3");
static_assert(zero_to_zero<lp<3>>(vzero) && zero_to_zero<lp<3>>(m33zero),
              "lp<3>: a zero gradient maps to zero");
static_assert(steepest_on_all<lp<3>>(), "lp<3>: steepest(g) is ||g||_1.5 dual_map(g)");

static_assert(attains_on_vectors<lp<1.5>>() && attains_on_matrices<lp<1.5>>(),
              "lp<1.5>: <g, dual_map(g)> equals ||g||_3, the dual norm");
static_assert(unit_on_vectors<lp<1.5>>() && unit_on_matrices<lp<1.5>>(),
              "lp<1.5>: the dual map has l1.5 norm 1");
static_assert(hoelder_on_vectors<lp<1.5>>() && hoelder_on_matrices<lp<1.5>>(),
              "lp<1.5>: <g, x> <= ||g||_3 ||x||_1.5");
static_assert(zero_to_zero<lp<1.5>>(vzero), "lp<1.5>: a zero gradient maps to zero");
static_assert(steepest_on_all<lp<1.5>>(), "lp<1.5>: steepest(g) is ||g||_3 dual_map(g)");

// ---- matrix norms -------------------------------------------------------------------------------

static_assert(dual_is_involution<spectral>() && std::is_same_v<dual_norm_t<spectral>, nuclear>,
              "spectral's dual is nuclear, whose dual is spectral again");
static_assert(attains_on_matrices<spectral>(), "spectral: <g, U V^T> equals ||g||_nuclear, the dual norm");
static_assert(unit_on_matrices<spectral>(), "spectral: the polar factor U V^T has spectral norm 1");
static_assert(hoelder_on_matrices<spectral>(), "spectral: <g, x> <= ||g||_nuclear ||x||_spectral");
static_assert(zero_to_zero<spectral>(m33zero), "spectral: a zero gradient maps to zero, not NaN");
static_assert(steepest_on_all<spectral>(), "spectral: steepest(g) is ||g||_nuclear U V^T");

static_assert(dual_is_involution<nuclear>(), "nuclear's dual is spectral, whose dual is nuclear again");
static_assert(attains_on_matrices<nuclear>(), "nuclear: <g, u1 v1^T> equals ||g||_spectral, the dual norm");
static_assert(unit_on_matrices<nuclear>(), "nuclear: u1 v1^T has nuclear norm 1");
static_assert(hoelder_on_matrices<nuclear>(), "nuclear: <g, x> <= ||g||_spectral ||x||_nuclear");
static_assert(zero_to_zero<nuclear>(m33zero), "nuclear: a zero gradient maps to zero, not NaN");
static_assert(steepest_on_all<nuclear>(), "nuclear: steepest(g) is ||g||_spectral u1 v1^T");

static_assert(dual_is_involution<l1_to_l2>() && std::is_same_v<dual_norm_t<l1_to_l2>, sum_col_l2>,
              "l1_to_l2's dual is sum_col_l2, whose dual is l1_to_l2 again");
static_assert(attains_on_matrices<l1_to_l2>(),
              "l1_to_l2: <g, columns normalized> equals the sum of column norms");
static_assert(unit_on_matrices<l1_to_l2>(), "l1_to_l2: normalized columns have largest column norm 1");
static_assert(hoelder_on_matrices<l1_to_l2>(), "l1_to_l2: <g, x> <= sum_col_l2(g) l1_to_l2(x)");
static_assert(zero_to_zero<l1_to_l2>(m33zero), "l1_to_l2: a zero gradient maps to zero");
static_assert(steepest_on_all<l1_to_l2>(), "l1_to_l2: steepest(g) is sum_col_l2(g) dual_map(g)");

static_assert(dual_is_involution<sum_col_l2>(),
              "sum_col_l2's dual is l1_to_l2, whose dual is sum_col_l2 again");
static_assert(attains_on_matrices<sum_col_l2>(),
              "sum_col_l2: <g, top column normalized> equals the largest column "
              "norm");
static_assert(unit_on_matrices<sum_col_l2>(), "sum_col_l2: one normalized column has sum_col_l2 norm 1");
static_assert(hoelder_on_matrices<sum_col_l2>(), "sum_col_l2: <g, x> <= l1_to_l2(g) sum_col_l2(x)");
static_assert(zero_to_zero<sum_col_l2>(m33zero), "sum_col_l2: a zero gradient maps to zero");
static_assert(steepest_on_all<sum_col_l2>(), "sum_col_l2: steepest(g) is l1_to_l2(g) dual_map(g)");

static_assert(dual_is_involution<l2_to_linf>() && std::is_same_v<dual_norm_t<l2_to_linf>, sum_row_l2>,
              "l2_to_linf's dual is sum_row_l2, whose dual is l2_to_linf again");
static_assert(attains_on_matrices<l2_to_linf>(),
              "l2_to_linf: <g, rows normalized> equals the sum of row norms");
static_assert(unit_on_matrices<l2_to_linf>(), "l2_to_linf: normalized rows have largest row norm 1");
static_assert(hoelder_on_matrices<l2_to_linf>(), "l2_to_linf: <g, x> <= sum_row_l2(g) l2_to_linf(x)");
static_assert(zero_to_zero<l2_to_linf>(m33zero), "l2_to_linf: a zero gradient maps to zero");
static_assert(steepest_on_all<l2_to_linf>(), "l2_to_linf: steepest(g) is sum_row_l2(g) dual_map(g)");

static_assert(dual_is_involution<sum_row_l2>(),
              "sum_row_l2's dual is l2_to_linf, whose dual is sum_row_l2 again");
static_assert(attains_on_matrices<sum_row_l2>(),
              "sum_row_l2: <g, top row normalized> equals the largest row norm");
static_assert(unit_on_matrices<sum_row_l2>(), "sum_row_l2: one normalized row has sum_row_l2 norm 1");
static_assert(hoelder_on_matrices<sum_row_l2>(), "sum_row_l2: <g, x> <= l2_to_linf(g) sum_row_l2(x)");
static_assert(zero_to_zero<sum_row_l2>(m33zero), "sum_row_l2: a zero gradient maps to zero");
static_assert(steepest_on_all<sum_row_l2>(), "sum_row_l2: steepest(g) is l2_to_linf(g) dual_map(g)");

// ---- closed forms ---------------------------------------------------------------------------------

constexpr fixed_matrix<double, 2, 2> diag32{ { 3, 0, 0, -2 } };

constexpr bool closed_forms_hold() {
  fixed_matrix<double, 2, 2> d{};
  dual_map<spectral>(diag32, d);
  const bool polar = close(d(0, 0), 1) && close(d(1, 1), -1) && d(0, 1) == 0 && d(1, 0) == 0;
  dual_map<nuclear>(diag32, d);
  const bool top = close(math::abs(d(0, 0)), 1) && math::abs(d(1, 1)) < tol;
  return polar && top && close(value<spectral>(diag32), 3) && close(value<nuclear>(diag32), 5);
}
static_assert(closed_forms_hold(),
              "diag(3, -2): spectral 3, nuclear 5, polar factor diag(1, -1), top pair e1 e1^T");

constexpr bool rank_one_collapses() {
  const double f = value<frobenius>(m33rank1);
  return close(value<spectral>(m33rank1), f) && close(value<nuclear>(m33rank1), f);
}
static_assert(rank_one_collapses(), "a rank-1 matrix has spectral = nuclear = Frobenius norm");

constexpr bool l1_picks_first_tie() {
  fixed_vector<double, 5> d{};
  dual_map<l1>(vtie, d);
  return d[0] == 1 && d[1] == 0 && d[2] == 0 && d[3] == 0 && d[4] == 0;
}
static_assert(l1_picks_first_tie(), "l1's dual map puts its mass on the first of tied largest entries");

constexpr bool sign_of_zero_is_zero() {
  fixed_vector<double, 5> d{};
  dual_map<linf>(va, d);
  return d[0] == 1 && d[1] == -1 && d[4] == 0;
}
static_assert(sign_of_zero_is_zero(), "linf's dual map is sign(g) with sign(0) = 0");

constexpr bool float_blocks_work() {
  constexpr fixed_vector<float, 4> g{ { 0.5f, -2, 2, 0 } };
  fixed_vector<float, 4> d{};
  dual_map<lp<3>>(g, d);
  const bool lp_ok = close(inner(g, d), value<lp<1.5>>(g), 1e-6) && close(value<lp<3>>(d), 1, 1e-6);
  constexpr fixed_matrix<float, 2, 3> a{ { 1, 2, 0, -1, 0.5f, 3 } };
  fixed_matrix<float, 2, 3> p{};
  dual_map<spectral>(a, p);
  return lp_ok && close(inner(a, p), value<nuclear>(a), 1e-6) && close(value<spectral>(p), 1, 1e-6);
}
static_assert(float_blocks_work(), "float blocks: the laws hold to float precision");

static_assert(close(math::sqrt(2.0) * math::sqrt(2.0), 2.0, 1e-15) &&
                close(math::exp(math::log(7.5)), 7.5, 1e-15) &&
                close(math::pow(2.0, 0.5), math::sqrt(2.0), 1e-15) && math::pow(-2.0, 3.0) == -8.0 &&
                close(math::pow(10.0, -2.5), 0.0031622776601683794, 1e-14),
              "constexpr sqrt, exp, log and pow agree with their definitions");

// ---- composites -----------------------------------------------------------------------------------

using hybrid = max_composite<spectral, linf, l2>;
static_assert(std::is_same_v<dual_norm_t<hybrid>, sum_composite<nuclear, l1, l2>> &&
                std::is_same_v<dual_norm_t<dual_norm_t<hybrid>>, hybrid>,
              "the dual of max_composite<N...> is sum_composite<dual N...>, and back");

template <class G0, class G1, class G2>
constexpr bool max_composite_duality(const G0& g0, const G1& g1, const G2& g2) {
  const hybrid c{ { 1.0, 3.0, 0.5 } };
  G0 d0{};
  G1 d1{};
  G2 d2{};
  c.dual_map(std::tie(g0, g1, g2), std::tie(d0, d1, d2));
  const double ip = inner(g0, d0) + inner(g1, d1) + inner(g2, d2);
  const double dual_value = c.dual().value(std::tie(g0, g1, g2));
  const bool zero = dual_value == 0;
  return close(ip, dual_value) &&
         (zero ? c.value(std::tie(d0, d1, d2)) == 0 : close(c.value(std::tie(d0, d1, d2)), 1));
}
static_assert(
  max_composite_duality(m32a, va, vb),
  "max composite: <g, dual_map(g)> = sum_b ||g_b||_* / c_b and the dual map has composite norm 1");
static_assert(max_composite_duality(m33rank1, vzero, vb),
              "max composite with a zero block: the laws hold and the zero block stays zero");
static_assert(max_composite_duality(m33zero, vzero, vzero), "max composite: zero maps to zero");

template <class G0, class G1, class G2>
constexpr bool sum_composite_duality(const G0& g0, const G1& g1, const G2& g2) {
  const sum_composite<nuclear, l1, l2> c{ { 1.0, 1.0 / 3.0, 2.0 } };
  G0 d0{};
  G1 d1{};
  G2 d2{};
  c.dual_map(std::tie(g0, g1, g2), std::tie(d0, d1, d2));
  const double ip = inner(g0, d0) + inner(g1, d1) + inner(g2, d2);
  const double dual_value = c.dual().value(std::tie(g0, g1, g2));
  const bool zero = dual_value == 0;
  // All mass on one block: the others are exactly zero.
  int nonzero_blocks = (value<l2>(d0) > 0) + (value<l2>(d1) > 0) + (value<l2>(d2) > 0);
  return close(ip, dual_value) && nonzero_blocks == (zero ? 0 : 1) &&
         (zero ? c.value(std::tie(d0, d1, d2)) == 0 : close(c.value(std::tie(d0, d1, d2)), 1));
}
static_assert(
  sum_composite_duality(m32a, va, vb),
  "sum composite: <g, dual_map(g)> = max_b ||g_b||_* / w_b and the dual map has composite norm 1");
static_assert(sum_composite_duality(m33a, vtie, vzero),
              "sum composite: all mass on the block of largest ratio");
static_assert(sum_composite_duality(m33zero, vzero, vzero), "sum composite: zero maps to zero");

} // namespace

TEST_CASE("the duality laws of every norm hold at compile time (see the static_asserts in this file)") {
  SUCCEED();
}
