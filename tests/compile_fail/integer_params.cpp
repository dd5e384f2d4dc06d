// Must not compile: optimizers run on float32 or float64 parameters.
// EXPECT: steep optimizers run on float32 or float64 parameters
#include <steep/steep.hpp>
using namespace steep::expr;
int main() {
  steep::param_store<int> s({{"w", {4}}});
  steep::optimizer opt(-1.0 * grad, s);
}
