#pragma once
// chunk_loop: visits [begin, end) of one block as full SIMD batches, then a tail.
//
//   steep::kernel::chunk_loop<float>(c.begin, c.end, [&]<class V, bool Tail>(std::size_t i, std::size_t n) {
//     steep::kernel::store(out + i, steep::kernel::load<V>(in + i) * V(2.f));
//   });
//
// The body is a template on the value type V (batch<T> or T), called with the first element
// index of the group and its size n; writing the body once for both widths is what keeps the
// tail exact (the tail computes the same expression, not an approximation of it). The tail is
// scalars (V = T, n = 1), or with MaskedTail one batch of which n < V::size lanes are in use
// (Tail = true): for a body that reads and writes nothing but its own elements' streams, which
// kernel::load_first and store_first keep inside [i, i + n). A model's many small tensors each
// end in a tail, and there a rule such as Lion spent as long on its last 7 scalars as on the
// 320 elements before them.

#include "steep/kernel/simd.hpp"

#include <cstddef>

namespace steep::kernel {

template <class T, bool MaskedTail = false, class Body>
inline void chunk_loop(std::size_t begin, std::size_t end, Body&& body) {
  using V = batch<T>;
  constexpr std::size_t w = V::size;
  std::size_t i = begin;
  for (; i + w <= end; i += w)
    body.template operator()<V, false>(i, w);
  if constexpr (MaskedTail) {
    if (i < end)
      body.template operator()<V, true>(i, end - i);
  } else {
    for (; i < end; ++i)
      body.template operator()<T, false>(i, 1);
  }
}

} // namespace steep::kernel
