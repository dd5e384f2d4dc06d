// Must not compile: prev(x) reads a slot element by element; a per-row slot has no such value.
// EXPECT: prev\(x\) of a per-block, per-row or per-column slot is not supported
#include <steep/steep.hpp>
using namespace steep::expr;
int main() {
  steep::param_store<float> s({ { "W", { 4, 4 } } });
  auto v = ema<"v">(row_mean(square(grad)), 0.9);
  steep::optimizer opt(-0.1 * grad / (sqrt(prev(v)) + 1e-8) + 0.0 * v, s);
}
