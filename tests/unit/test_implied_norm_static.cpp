// implied_norm_t<Rule> at compile time: each rule of the theory maps to its norm, and rules outside
// it say so (Gronich & Vardi 2026; README, "The main job").
#include <steep/steep.hpp>
#include <steep/train/implied_norm.hpp>
#include <type_traits>

namespace {
using namespace steep::expr;
namespace nm = steep::norms;
namespace rules = steep::rules;
using steep::implied_norm;
using steep::implied_norm_t;

template <class R>
using in = implied_norm_t<R>;

auto m = ema<"m">(grad, 0.9);

// The paper's optimizers.
static_assert(std::is_same_v<in<decltype(rules::momentum_gd(0.1))>, nm::l2>);
static_assert(std::is_same_v<in<decltype(rules::signum(0.1))>, nm::linf>);
static_assert(std::is_same_v<in<decltype(rules::adam_paper(0.1))>, nm::linf>);
static_assert(std::is_same_v<in<decltype(rules::adam_eps0(0.1))>, nm::linf>);
static_assert(std::is_same_v<in<decltype(rules::spectral_msd(0.1))>, nm::spectral>);
static_assert(std::is_same_v<in<decltype(rules::muon_paper(0.1))>, nm::spectral>);
static_assert(std::is_same_v<in<decltype(rules::muon_signum_paper(0.1, 0.01))>,
                             nm::max_composite<nm::spectral, nm::linf>>);
static_assert(
  std::is_same_v<in<decltype(rules::muon_adam_paper(0.1, 0.01))>, nm::max_composite<nm::spectral, nm::linf>>);
// Schedules are per-step scalars: same norm.
static_assert(std::is_same_v<in<decltype(rules::signum(inv_power(0.1, 0.8)))>, nm::linf>);

// Compositions written by hand.
static_assert(std::is_same_v<in<decltype(-0.1 * dual<nm::linf>(m))>, nm::linf>);
static_assert(std::is_same_v<in<decltype(-0.1 * dual<nm::spectral>(m))>, nm::spectral>);
static_assert(std::is_same_v<in<decltype(-0.1 * dual<nm::l2>(m))>, steep::train::per_block<nm::l2>>);
static_assert(std::is_same_v<in<decltype(-0.1 * m / norm2(m))>, nm::l2>);
static_assert(std::is_same_v<in<decltype(-0.1 * grad)>, nm::l2>);                       // GD: unnormalized l2
static_assert(std::is_same_v<in<decltype(rules::momentum(0.1, 0.9))>, nm::l2>);         // heavy ball
static_assert(std::is_same_v<in<decltype(-0.1 * sign(lerp(grad, m, 0.9)))>, nm::linf>); // Nesterov-style
static_assert(std::is_same_v<in<decltype(-0.1 * dual<nm::l1_to_l2>(m))>, nm::l1_to_l2>);

// Outside the theory: the type says so, with a reason.
static_assert(!implied_norm<decltype(rules::adam(0.1))>::known); // run-time eps
static_assert(implied_norm<decltype(rules::adam(0.1))>::reason.find("eps") != std::string_view::npos);
static_assert(!implied_norm<decltype(rules::muon(0.02))>::known); // weight decay + NS + shape scale
static_assert(!implied_norm<decltype(-0.1 * dual<nm::spectral>(m, nm::newton_schulz{}))>::known);
static_assert(implied_norm<decltype(-0.1 * dual<nm::spectral>(m, nm::newton_schulz{}))>::reason.find(
                "Newton") != std::string_view::npos);
static_assert(!implied_norm<decltype(-0.1 * ema<"a">(sign(grad), 0.9))>::known); // momentum after the map
static_assert(!implied_norm<decltype(rules::adamw(0.1))>::known);
static_assert(!implied_norm<decltype(-0.1 * map([](auto x) noexcept { return x * x * x; }, grad))>::known);
static_assert(std::is_same_v<in<decltype(rules::adam(0.1))>, steep::train::not_implied>);
// A preconditioner that keeps state (Shampoo's factors) is not a dual map, and says so.
static_assert(!implied_norm<decltype(rules::shampoo(0.1))>::known);
static_assert(implied_norm<decltype(-0.1 * precondition(steep::precond::shampoo<>{}, m))>::reason.find(
                "preconditioner that keeps state") != std::string_view::npos);
// Shampoo without accumulation and eps is the polar factor, and its type says so: the composition of
// pseudo-inverse roots of the momentum's own Gram matrices, two-sided or one-sided.
namespace pc = steep::precond;
static_assert(std::is_same_v<in<decltype(rules::shampoo_unaccumulated(0.1))>, nm::spectral>);
static_assert(implied_norm<decltype(rules::shampoo_unaccumulated(0.1))>::exact);
static_assert(
  std::is_same_v<in<decltype(-0.1 * pc::precondition(pc::pinv_root<2>(pc::gram_rows(pc::x)) * pc::x, m))>,
                 nm::spectral>);
static_assert(
  std::is_same_v<in<decltype(-0.1 * pc::precondition(pc::x * pc::pinv_root<2>(pc::gram_cols(pc::x)), m))>,
                 nm::spectral>);
// Not with an eps, another root, factors of another operand, or accumulated factors.
static_assert(
  !implied_norm<decltype(-0.1 * pc::precondition(pc::inverse_root(pc::gram_rows(pc::x), 2, 1e-12) * pc::x,
                                                 m))>::known);
static_assert(
  !implied_norm<decltype(-0.1 * pc::precondition(pc::pinv_root<4>(pc::gram_rows(pc::x)) * pc::x, m))>::known);
static_assert(
  !implied_norm<decltype(-0.1 * pc::precondition(pc::pinv_root<2>(pc::gram_rows(pc::arg<1>)) * pc::x, m,
                                                 grad))>::known);
static_assert(
  implied_norm<decltype(-0.1 *
                        pc::precondition(pc::pinv_root<2>(pc::accumulate<"L">(pc::gram_rows(pc::x))) * pc::x,
                                         m))>::reason.find("preconditioner that keeps state") !=
  std::string_view::npos);

// A run-time floor on the norm is an eps (below it the step is unnormalized); a compile-time zero
// guard is not.
static_assert(!implied_norm<decltype(-0.1 * m / max(norm2(m), 1e-3))>::known);
static_assert(std::is_same_v<in<decltype(-0.1 * m / max(norm2(m), ct<1e-30>))>, nm::l2>);
// A route is steepest descent under a max-composite only when every arm is normalized.
static_assert(
  !implied_norm<decltype(steep::route(steep::on<steep::block_role::hidden_matrix> >> rules::spectral_msd(0.1),
                                      steep::otherwise >> rules::momentum(0.1, 0.9)))>::known);
} // namespace
