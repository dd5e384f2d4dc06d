// A unit compiled for another SIMD architecture than steep::compiled's must not link against it:
// the library's loops would run with another batch width than the unit expects. The unit refers
// to a symbol only a library built for its own architecture defines (steep/compiled/instance.hpp),
// so the linker names the architecture it wanted. The test compiles this file for x86-64's
// baseline (SSE2) and links it with the library, built for the build machine (-march=native).
// EXPECT: built_for<xsimd::sse2>::value
#include <steep/compiled/sgd.hpp>

int main() {
  steep::param_store<float> store({ { "W", { 8, 4 } } });
  steep::optimizer opt(steep::rules::momentum(0.1, 0.9), store);
  opt.step();
}
