// Must not compile: one slot name for two different stages.
// EXPECT: two different stages that own state share one slot name
#include <steep/steep.hpp>
using namespace steep::expr;
int main() {
  steep::param_store<float> s({{"w", {4}}});
  steep::optimizer opt(ema<"m">(grad, 0.9) + ema<"m">(square(grad), 0.9), s);
}
