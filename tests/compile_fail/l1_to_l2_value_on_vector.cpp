// Must not compile: the l1 -> l2 operator norm (largest column norm) is defined on matrices only.
// EXPECT: the l1_to_l2 norm \(largest column l2 norm\) is a matrix norm: this block is a vector
#include <steep/norms.hpp>
using namespace steep::norms;
int main() {
  float b[3] = { 1, 2, 3 };
  return static_cast<int>(value<l1_to_l2>(vector_ref<const float>{ b, 3 }));
}
