#pragma once
// tensor_view<T>: a block of steep's memory (a parameter, a gradient, an optimizer's state slot) as
// a pointer and a row-major shape. It owns nothing; writes go to the memory it views.
//
//   steep::tensor_view<float> W = store.param("W1");   // 48 x 32, over the arena
//   W(0, 0) = 0.5f;                                   // (i, j): row-major
//   W[7] = 1.f;                                       // [k]: the k-th element in memory order
//   W.fill(0.f);
//   std::vector<float> copy(W.begin(), W.end());
//   opt.state("W1", "exp_avg").shape();               // {48, 32}
//
//   #include <steep/xtensor.hpp>                       // xtensor's algebra over the same memory:
//   steep::as_xtensor(store.param("W1")) = xt::zeros<float>({48, 32});
//
// Index rules are xtensor's, so code written against the xtensor views these calls returned before
// keeps its meaning: `v(i...)` with fewer indices than dimensions addresses the last axes (the
// leading indices are 0), and indices are not checked.
//
// Why steep's own type and not an xtensor adaptor: `<xtensor/xadapt.hpp>` is 27K lines of every
// translation unit that includes the engine, about 0.7 s of each compile (docs/compile-time.md),
// and most units only build and step optimizers. The norms' `vector_ref`/`matrix_ref`
// (norms/block_ref.hpp) are the fixed-rank views a norm computes on, down to constexpr; this one has
// a block's run-time rank.

#include "steep/core/shape.hpp"

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace steep {

template <class T>
class tensor_view {
public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using iterator = T*;

  tensor_view() = default;
  tensor_view(T* data, shape_t shape)
    : data_(data)
    , shape_(std::move(shape))
    , size_(element_count(shape_)) {}

  T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t dimension() const noexcept { return shape_.size(); }
  const shape_t& shape() const noexcept { return shape_; }
  std::size_t shape(std::size_t axis) const noexcept { return shape_[axis]; }

  T* begin() const noexcept { return data_; }
  T* end() const noexcept { return data_ + size_; }

  T& operator[](std::size_t k) const noexcept { return data_[k]; }

  template <std::integral... I>
  T& operator()(I... index) const noexcept {
    static_assert(sizeof...(I) > 0,
                  "a tensor_view is indexed by at least one index; v[k] is the k-th element");
    const std::size_t at[] = { static_cast<std::size_t>(index)... };
    const std::size_t n = std::min(sizeof...(I), shape_.size());
    std::size_t offset = 0, stride = 1;
    for (std::size_t j = 0; j < n; ++j) { // the last n axes, innermost first
      offset += at[sizeof...(I) - 1 - j] * stride;
      stride *= shape_[shape_.size() - 1 - j];
    }
    return data_[offset];
  }

  void fill(const value_type& value) const { std::fill(begin(), end(), value); }

  operator tensor_view<const T>() const requires(!std::is_const_v<T>) { return { data_, shape_ }; }

private:
  T* data_ = nullptr;
  shape_t shape_;
  std::size_t size_ = 0;
};

} // namespace steep
