#pragma once
// norms::catalogue: every block norm steep ships, and norm_named(name), its handle by name: what a
// command line picks a norm from (examples/implicit_bias.cpp, --norms). Apart from the umbrella,
// so a unit that does not look norms up by name does not instantiate every norm's run-time handle.
//
//   const steep::norms::block_norm_ref* n = steep::norms::norm_named("linf_to_linf");   // or nullptr
//   steep::train::model_norm::of(*n);
//
// A new norm is its header, its include in steep/norms.hpp and its entry here; model norms,
// margins, KKT certificates and implied norms then take it with no other change (erased.hpp).

#include "steep/norms.hpp"

#include <string_view>
#include <tuple>

namespace steep::norms {

using catalogue = std::tuple<l1, linf, l2, frobenius, spectral, nuclear, l1_to_l2, sum_col_l2, l2_to_linf,
                             sum_row_l2, linf_to_linf, sum_row_linf>;

// The handle of the catalogue's norm named `name` (N::name), or nullptr.
inline const block_norm_ref* norm_named(std::string_view name) {
  const block_norm_ref* found = nullptr;
  [&]<class... Ns>(std::tuple<Ns...>*) {
    ((found = !found && Ns::name == name ? &block_norm_of<Ns> : found), ...);
  }(static_cast<catalogue*>(nullptr));
  return found;
}

} // namespace steep::norms
