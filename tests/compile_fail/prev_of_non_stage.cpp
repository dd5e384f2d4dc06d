// Must not compile: prev() only applies to stages that own state.
// EXPECT: prev\(x\) needs a stage that owns state
#include <steep/steep.hpp>
using namespace steep::expr;
int main() {
  steep::param_store<float> s({{"w", {4}}});
  steep::optimizer opt(prev(grad * 2.0), s);
}
