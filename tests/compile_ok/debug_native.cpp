// A debug build (-O0) for the build machine's own instruction set (-march=native) compiles: the
// engine, the bfloat16 state path and a matrix stage. GCC 12 defines some AVX-512 intrinsics as
// macros when it does not optimize, and an xsimd call that compiles at -O2 can fail there
// (kernel/simd.hpp, bf16_round_bits).
#include <steep/engine.hpp>
#include <steep/rules/adam.hpp>
#include <steep/rules/hybrids.hpp>

template <class Rule>
void run(Rule r) {
  steep::param_store<float> s({ { "W", { 8, 4 } }, { "b", { 4 } } });
  steep::optimizer o(r, s);
  o.step();
}

int main() {
  run(steep::rules::adam(1e-3f));
  run(steep::rules::adam_bf16(1e-3f));
  run(steep::rules::muon_adam());
}
