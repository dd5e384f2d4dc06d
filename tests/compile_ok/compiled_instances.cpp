// Which optimizers steep::compiled holds (steep/compiled/instance.hpp), checked at compile time:
// every rule of the catalogue in its documented form, float and double, the golden tool's and the
// main job's forms among them; a rule with a schedule it does not list, or a new composition, is
// not in it (it compiles in the user's unit, as without the library).
#include <steep/compiled.hpp>
#include <steep/rules/catalogue.hpp>
#include <string_view>
#include <type_traits>

namespace rl = steep::rules;
using steep::compiled::has_instance;
using steep::expr::inv_power;

template <class Rule>
constexpr bool both = has_instance<Rule, float>&& has_instance<Rule, double>;
#define HAS(...) static_assert(both<decltype(__VA_ARGS__)>, #__VA_ARGS__ " should be in steep::compiled")
#define HAS_NOT(...)                                                                                         \
  static_assert(!has_instance<decltype(__VA_ARGS__), float>, #__VA_ARGS__ " should not be in "               \
                                                                          "steep::compiled")

HAS(rl::sgd(0.1));
HAS(rl::momentum(0.1, 0.9));
HAS(rl::nesterov(0.1, 0.9));
HAS(rl::adam(1e-3));
HAS(rl::adam(1e-3, 0.9, 0.999, 1e-8)); // the same type: defaults are doubles
HAS(rl::adam_eps0(1e-3));
HAS(rl::amsgrad(1e-3));
HAS(rl::adamw(1e-3));
HAS(rl::adam_torch(1e-3));
HAS(rl::adamw_torch(1e-3));
HAS(rl::momentum_torch(0.1, 0.9));
HAS(rl::nesterov_torch(0.1, 0.9));
HAS(rl::adagrad(1e-2));
HAS(rl::rmsprop(1e-3));
HAS(rl::lion(1e-4));
HAS(rl::signum(1e-3));
HAS(rl::adam_optax(1e-3));
HAS(rl::nadamw_optax(1e-3));
HAS(rl::normalized_gd(1e-2));
HAS(rl::normalized_gd_per_block(1e-2));
HAS(rl::adam_bf16(1e-3));
HAS(rl::adam_mini(1e-3));
HAS(rl::adam_mini_sliced(1e-3, 1, 4));
HAS(rl::muon(0.02));
HAS(rl::muon(0.02, 0.1, 0.95, steep::norms::polar_express())); // a schedule is a value
HAS(rl::muon_exact(0.02));
HAS(rl::muon_plain_rms(0.02));
HAS(rl::muon_optax(0.02));
HAS(rl::muon_stacked(0.02, 2, 4));
HAS(rl::normuon(0.02));
HAS(rl::normuon_stacked(0.02, 2, 4));
HAS(rl::adamuon(0.02));
HAS(rl::muon_adam());
HAS(rl::muon_signum());
HAS(rl::muon_optax_full(0.02));
HAS(rl::scion(1e-3));
HAS(rl::scion_colnorm(1e-3));
HAS(rl::scion_rownorm(1e-3));
HAS(rl::scion_spectral(1e-3));
HAS(rl::scion_sign(1e-3));
HAS(rl::momentum_gd(0.1));
HAS(rl::adam_paper(1e-3));
HAS(rl::spectral_msd(0.02));
HAS(rl::muon_paper(0.02));
HAS(rl::muon_signum_paper(0.02, 0.01));
HAS(rl::muon_adam_paper(0.02, 0.01));
// The golden tool's forms (tools/golden/rule_from_manifest.hpp) ...
HAS(rl::sgd(inv_power(0.1, 0.5)));
HAS(rl::momentum(inv_power(0.1, 0.5), 0.9));
HAS(rl::nesterov(inv_power(0.1, 0.5), 0.9));
HAS(rl::muon_rule<false>(0.02, 0.1, 0.95, rl::lr_adjust::original, rl::exact_polar{}));
// ... and the main job's (examples/implicit_bias.cpp): the paper's schedule.
HAS(rl::momentum_gd(inv_power(0.1, 0.5), 0.9));
HAS(rl::signum(inv_power(0.1, 0.5), 0.9));
HAS(rl::adam_paper(inv_power(0.1, 0.5), 0.9, 0.999));
HAS(rl::adam(inv_power(0.1, 0.5), 0.9, 0.999, 1e-8));
HAS(rl::muon_paper(inv_power(0.1, 0.5), 0.9));
HAS(rl::muon_signum_paper(inv_power(0.1, 0.5), inv_power(0.1, 0.5), 0.9));
HAS(rl::muon_adam_paper(inv_power(0.1, 0.5), inv_power(0.1, 0.5), 0.9, 0.9, 0.999));

HAS(rl::adam(1e-3f)); // a hyperparameter's value is a double whatever its literal
HAS(rl::momentum(0.1f, 0.9f));
HAS_NOT(rl::adamw(inv_power(0.1, 0.5))); // a schedule is a node: another type, not listed
HAS_NOT(-1e-3 * steep::expr::sign(steep::expr::ema<"m">(steep::expr::grad, 0.9)));
static_assert(!has_instance<decltype(rl::adam(1e-3)), long double>);

// Every rule of the catalogue's one list (steep/rules/catalogue.hpp), in its example form: a rule
// added there and not to steep::compiled fails to compile here.
[[maybe_unused]] void every_catalogue_rule() {
  rl::for_each_catalogue_rule([](std::string_view, const auto& rule, rl::takes) {
    static_assert(
      both<std::remove_cvref_t<decltype(rule)>>,
      "a rule of steep/rules/catalogue.hpp is not in steep::compiled: list it in steep/compiled/");
  });
}

int main() {}
