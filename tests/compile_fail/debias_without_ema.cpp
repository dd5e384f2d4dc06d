// Must not compile: bias correction needs an EMA's beta.
// EXPECT: debias\(x\) needs an ema
#include <steep/steep.hpp>
using namespace steep::expr;
int main() {
  steep::param_store<float> s({{"w", {4}}});
  steep::optimizer opt(debias(trace<"b">(grad, 0.9)), s);
}
