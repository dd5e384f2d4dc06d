// Must not compile: a matrix map of a matrix map would need two matrix phases.
// EXPECT: would need two matrix phases; steep runs one
#include <steep/steep.hpp>
using namespace steep::expr;
int main() {
  steep::param_store<float> s({ { "W", { 4, 4 } } });
  steep::norms::newton_schulz ns;
  steep::optimizer opt(-0.1 * orthogonalize(ns, ema<"m">(orthogonalize(ns, grad), 0.9)), s);
}
