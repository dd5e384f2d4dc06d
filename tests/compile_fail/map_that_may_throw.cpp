// A user map that may throw would leave a step half applied: one readable error.
// EXPECT: f must be noexcept
#include <steep/steep.hpp>

using namespace steep::expr;
auto rule = -0.1 * map([](auto x) { return x * x * x; }, grad);
