#pragma once
// chunk_loop: visits [begin, end) of one block as full SIMD batches, then a scalar tail.
//
//   steep::kernel::chunk_loop<float>(c.begin, c.end, [&]<class V>(std::size_t i) {
//     steep::kernel::store(out + i, steep::kernel::load<V>(in + i) * V(2.f));
//   });
//
// The body is a template on the value type V (batch<T> or T), called with the first element
// index of the group; writing the body once for both widths is what keeps the tail exact
// (the tail computes the same expression, not an approximation of it).

#include "steep/kernel/simd.hpp"

#include <cstddef>

namespace steep::kernel {

template <class T, class Body>
inline void chunk_loop(std::size_t begin, std::size_t end, Body&& body) {
  using V = batch<T>;
  constexpr std::size_t w = V::size;
  std::size_t i = begin;
  for (; i + w <= end; i += w)
    body.template operator()<V>(i);
  for (; i < end; ++i)
    body.template operator()<T>(i);
}

} // namespace steep::kernel
