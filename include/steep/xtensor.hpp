#pragma once
// as_xtensor(view): xtensor's algebra over a steep::tensor_view (a parameter, a gradient or a state
// slot), without a copy.
//
//   #include <steep/xtensor.hpp>
//   auto W = steep::as_xtensor(store.param("W1"));          // an xtensor adaptor, shape {48, 32}
//   W = xt::load_npy<float>("W1.npy");                      // writes the arena
//   double norm = xt::norm_l2(steep::as_xtensor(opt.state("W1", "exp_avg")))();
//
// A header of its own because xtensor is 27K lines a unit that only steps does not need
// (core/tensor_view.hpp, docs/compile-time.md).

#include "steep/core/tensor_view.hpp"
#include "steep/core/xsimd_fence.hpp"

#include <xtensor/xadapt.hpp>

namespace steep {

template <class T>
auto as_xtensor(const tensor_view<T>& view) {
  return xt::adapt(view.data(), view.size(), xt::no_ownership(), view.shape());
}

} // namespace steep
