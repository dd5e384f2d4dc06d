// Must not compile: a block reduction directly of an expression with a block reduction in it
// (the planner orders reductions through lines and slots, not inside one operand).
// EXPECT: a reduction directly of an expression with a block reduction in it is not supported
#include <steep/steep.hpp>
using namespace steep::expr;
int main() {
  steep::param_store<float> s({{"w", {4}}});
  steep::optimizer opt(grad / norm2(grad / norm2(grad)), s);
}
