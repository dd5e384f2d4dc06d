// Must not compile: a composition that reads pc::arg<2> given precondition(value, x, y) (two
// operands: arg<0> and arg<1>).
// EXPECT: the composition reads pc::arg<J> for a J past precondition's operands
#include <steep/steep.hpp>
using namespace steep::expr;
namespace pc = steep::precond;
int main() {
  steep::param_store<float> s({ { "W", { 4, 4 } } });
  steep::optimizer opt(-0.1 * pc::precondition(pc::gram_rows(pc::arg<2>) * pc::x, ema<"m">(grad, 0.9), grad),
                       s);
}
