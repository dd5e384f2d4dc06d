// Uses the installed steep::compiled: Muon-Adam from the library (the target gives STEEP_COMPILED,
// so <steep/steep.hpp> declares the catalogue's optimizers instead of compiling them here).
#include <cstdio>
#include <steep/steep.hpp>

int main() {
  const auto rule = steep::rules::muon_adam(0.02, 1e-2);
  static_assert(steep::compiled::has_instance<std::remove_cvref_t<decltype(rule)>, float>,
                "Muon-Adam should come from steep::compiled");
  steep::param_store<float> store({ { "W", { 8, 4 } }, { "b", { 8 } } });
  store.grad("W").fill(1.f);
  store.grad("b").fill(-1.f);
  steep::optimizer opt(rule, store);
  opt.step();
  const float w = store.param("W")(0, 0), b = store.param("b")(0);
  std::printf("W[0,0] = %g, b[0] = %g\n", w, b);
  return (w < 0.f && b > 0.f) ? 0 : 1;
}
