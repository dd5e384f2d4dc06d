// Must not compile: the spectral norm's dual map (Muon's polar factor) needs a matrix block.
// EXPECT: the spectral norm is a matrix norm: this block is a vector; use l2 or route
#include <steep/norms.hpp>
using namespace steep::norms;
int main() {
  fixed_vector<float, 4> g{ { 1, -2, 3, 0 } }, d;
  dual_map<spectral>(g, d);
}
