// Uses the installed headers only: a catalogue rule and a new composition.
#include <cstdio>
#include <steep/steep.hpp>

int main() {
  using namespace steep::expr;
  steep::param_store<float> store({ { "W", { 8, 4 } }, { "b", { 8 } } });
  store.grad("W").fill(1.f);
  store.grad("b").fill(-1.f);
  steep::optimizer adam(steep::rules::adam(1e-2f), store);
  steep::optimizer mine(-1e-2 * sign(ema<"m">(grad, 0.9)) * abs(param), store);
  adam.step();
  mine.step();
  const float w = store.param("W")(0, 0), b = store.param("b")(0);
  std::printf("W[0,0] = %g, b[0] = %g\n", w, b);
  return (w < 0.f && b > 0.f) ? 0 : 1;
}
