// Must not compile: a matrix map cannot run on vectors, even when asked explicitly.
// EXPECT: a matrix stage .* cannot run on vectors or scalars, even explicitly
#include <steep/steep.hpp>
using steep::block_role;
int main() {
  auto rule = steep::route(steep::on<block_role::hidden_matrix, block_role::vector>.explicitly() >>
                             steep::rules::muon(0.02),
                           steep::otherwise >> steep::rules::adam(1e-3));
  (void)rule;
}
