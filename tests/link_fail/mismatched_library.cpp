// A unit compiled unlike steep::compiled must not link against it: the library's loops would run
// with another batch width, or on another executor's threads, than the unit's. The unit refers to
// a symbol only a library compiled like it defines (steep/compiled/instance.hpp), so the linker
// names what the unit wanted. The tests (tests/CMakeLists.txt) compile this file for x86-64's
// baseline (SSE2), and for the library's architecture with STEEP_STD_THREAD_EXECUTOR, and link
// each with the library (built for -march=native with TBB):
//   built_for<xsimd::sse2, steep::kernel::tbb_threads>::value          undefined
//   built_for<xsimd::<the library's>, steep::kernel::std_threads>::value undefined
#include <steep/compiled/sgd.hpp>

int main() {
  steep::param_store<float> store({ { "W", { 8, 4 } } });
  steep::optimizer opt(steep::rules::momentum(0.1, 0.9), store);
  opt.step();
}
