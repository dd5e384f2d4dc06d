// A planted use-after-free for scripts/check.sh: an optimizer over a block of 5 floats (under one
// SIMD batch, so only the chunk's masked tail touches it) whose gradient buffer is freed before a
// step. AddressSanitizer must report it, or its "clean" on the real tests would say nothing about
// tails: with AVX-512 a tail is one masked load and store, which ASan does not check, so the
// sanitizer build defines STEEP_UNMASKED_TAILS (kernel/simd.hpp) and the tail goes through
// instrumented accesses of the same values.

#include <span>
#include <steep/engine.hpp>
#include <steep/rules/sgd.hpp>
#include <vector>

int main() {
  std::vector<float> param(5, 1.0f);
  auto* grad = new std::vector<float>(5, 0.5f);
  steep::param_store<float> store({ { "w", { 5 }, std::span<float>(param), std::span<float>(*grad) } });
  steep::optimizer opt(steep::rules::sgd(0.1f), store, { .nonfinite = steep::nonfinite_policy::off });
  delete grad; // the store still points at it
  opt.step();  // reads the freed gradient in the tail
  return static_cast<int>(param[0]);
}
