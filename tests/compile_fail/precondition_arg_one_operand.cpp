// Must not compile: a composition that reads pc::arg<1> given one operand.
// EXPECT: the composition reads pc::arg<J> for a J past precondition.s operands
#include <steep/steep.hpp>
using namespace steep::expr;
namespace pc = steep::precond;
int main() {
  steep::param_store<float> s({ { "W", { 4, 4 } } });
  steep::optimizer opt(-0.1 * pc::precondition(pc::gram_rows(pc::arg<1>) * pc::x, grad), s);
}
