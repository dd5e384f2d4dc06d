// Must not compile: reductions run before the matrix phase, so they cannot read its result.
// EXPECT: a reduction of a matrix stage's result .* needs a pass after the matrix phase
#include <steep/steep.hpp>
using namespace steep::expr;
int main() {
  steep::param_store<float> s({ { "W", { 4, 4 } } });
  auto o = orthogonalize(steep::norms::newton_schulz{}, grad);
  steep::optimizer opt(-0.1 * o / norm2(o), s);
}
