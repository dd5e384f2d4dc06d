// Must not compile: a reduction of a reduction would need a third pass.
// EXPECT: a reduction of a reduction needs a third pass
#include <steep/steep.hpp>
using namespace steep::expr;
int main() {
  steep::param_store<float> s({{"w", {4}}});
  steep::optimizer opt(grad / norm2(grad / norm2(grad)), s);
}
