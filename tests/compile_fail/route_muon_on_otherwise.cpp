// Must not compile: Muon on an arm that could receive embeddings or vectors, without opting in.
// EXPECT: this arm's rule has a matrix stage .* can receive embeddings, heads, vectors or scalars
#include <steep/steep.hpp>
using steep::block_role;
int main() {
  auto rule = steep::route(steep::on<block_role::head> >> steep::rules::adam(1e-3),
                           steep::otherwise >> steep::rules::muon(0.02));
  (void)rule;
}
