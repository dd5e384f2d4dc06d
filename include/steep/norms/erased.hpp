#pragma once
// block_norm_ref: any block norm type as a run-time value: its name, whether it needs a matrix,
// its value on a float or double block, its dual's handle, and how it folds over blocks into the
// norm of a whole model. Code that picks norms at run time (train/model_norm.hpp: margins and KKT
// certificates; a command line) names norm types, and a new norm works there with no list to
// extend.
//
//   const steep::norms::block_norm_ref& n = steep::norms::block_norm_of<steep::norms::spectral>;
//   n.name;                     // "spectral"
//   n.value(w, rows, cols);     // ||W||_sp of a row-major rows x cols block, in double
//   n.dual().name;              // "nuclear"
//
// A norm that is one norm of all a model's entries declares how its block values fold into it
// (`using global_fold = fold::l2;` on l2: sqrt of the sum of squares); any other norm is taken
// block by block and folded by max (the max over blocks, as the margins of Muon's spectral norm).

#include "steep/norms/composite.hpp"
#include "steep/norms/norm.hpp"

#include <cstddef>
#include <string_view>
#include <type_traits>

namespace steep::norms {

// The fold a norm of several blocks combines its block values by (fold.hpp), as a run-time value.
enum class fold_kind { max, sum, l2 };
// The dual norm's fold: max <-> sum, l2 <-> l2 (fold.hpp's `dual`).
constexpr fold_kind dual_fold(fold_kind f) {
  return f == fold_kind::max ? fold_kind::sum : f == fold_kind::sum ? fold_kind::max : fold_kind::l2;
}

struct block_norm_ref {
  std::string_view name;
  bool matrix_only = false;
  fold_kind global_fold = fold_kind::max; // how block values fold into a whole-model norm
  double (*value_f)(const float*, std::size_t, std::size_t) = nullptr;
  double (*value_d)(const double*, std::size_t, std::size_t) = nullptr;
  const block_norm_ref& (*dual_of)() = nullptr;

  // ||x|| of a row-major rows x cols block (a vector: 1 x size), in double.
  double value(const float* x, std::size_t rows, std::size_t cols) const { return value_f(x, rows, cols); }
  double value(const double* x, std::size_t rows, std::size_t cols) const { return value_d(x, rows, cols); }
  const block_norm_ref& dual() const { return dual_of(); }
  // Norms are told apart by name (each norm type has its own).
  bool operator==(const block_norm_ref& o) const { return name == o.name; }
};

namespace detail {
template <class F>
constexpr fold_kind fold_kind_of() {
  if constexpr (std::is_same_v<F, fold::sum>)
    return fold_kind::sum;
  else if constexpr (std::is_same_v<F, fold::l2>)
    return fold_kind::l2;
  else
    return fold_kind::max;
}
template <class N>
constexpr fold_kind global_fold_of() {
  if constexpr (requires { typename N::global_fold; })
    return fold_kind_of<typename N::global_fold>();
  else
    return fold_kind::max;
}
template <class N, class T>
double erased_value(const T* x, std::size_t rows, std::size_t cols) {
  if constexpr (N::matrix_only)
    return static_cast<double>(value<N>(matrix_ref<const T>{ x, rows, cols }));
  else
    return static_cast<double>(value<N>(vector_ref<const T>{ x, rows * cols }));
}
template <class N>
const block_norm_ref& erased_dual();
} // namespace detail

template <class N>
inline constexpr block_norm_ref block_norm_of = [] {
  static_assert(norm<N>, "block_norm_of<N>: N must be a block norm (steep::norms::l2, spectral, ...)");
  return block_norm_ref{ N::name,
                         N::matrix_only,
                         detail::global_fold_of<N>(),
                         &detail::erased_value<N, float>,
                         &detail::erased_value<N, double>,
                         &detail::erased_dual<N> };
}();

template <class N>
const block_norm_ref& detail::erased_dual() {
  return block_norm_of<dual_norm_t<N>>;
}

} // namespace steep::norms
