// Must not compile: a matrix stage of a norm taken after another matrix stage would need a
// second matrix phase (a norm of a matrix stage's result alone is fine: AdaMuon takes one).
// EXPECT: would need two matrix phases; steep runs one
#include <steep/steep.hpp>
using namespace steep::expr;
int main() {
  steep::param_store<float> s({ { "W", { 4, 4 } } });
  auto o = orthogonalize(steep::norms::newton_schulz{}, grad);
  steep::optimizer opt(-0.1 * orthogonalize(steep::norms::exact_polar{}, grad / norm2(o)), s);
}
