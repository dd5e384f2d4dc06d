// Must not compile: dual_map<N> needs a norm type (a dual_type whose dual is N, a name, ...).
// EXPECT: dual_map<N>\(g, out\): N is not a norm
#include <steep/norms.hpp>
using namespace steep::norms;
struct my_norm {}; // no dual_type, no name, no value or dual_map
int main() {
  fixed_vector<double, 3> g{ { 1, 2, 3 } }, d;
  dual_map<my_norm>(g, d);
}
