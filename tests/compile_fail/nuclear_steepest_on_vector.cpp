// Must not compile: the nuclear norm is a matrix norm, so steepest<nuclear> refuses a vector block.
// EXPECT: the nuclear norm is a matrix norm: this block is a vector
#include <steep/norms.hpp>
using namespace steep::norms;
int main() {
  double g[3] = { 1, 2, 3 }, d[3];
  steepest<nuclear>(vector_ref<const double>{ g, 3 }, vector_ref<double>{ d, 3 });
}
