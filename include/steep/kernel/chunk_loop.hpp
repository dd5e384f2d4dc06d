#pragma once
// chunk_loop: visits [begin, end) of one block as full SIMD batches, then one masked batch.
//
//   steep::kernel::chunk_loop<float>(c.begin, c.end, [&]<class V, bool Tail>(std::size_t i, std::size_t n) {
//     const V x = steep::kernel::load_group<V, Tail>(in + i, n);
//     steep::kernel::store_group<Tail>(out + i, x * V(2.f), n);
//   });
//
// The body is a template on the batch type V and on Tail, called with the first element index
// of the group and its size n; for the tail (Tail = true) n < V::size lanes are in use, and
// kernel::load_first and store_first keep the body inside [i, i + n). Writing the body once
// for both keeps the tail exact (the same expression, not an approximation of it). A model's
// many small tensors each end in a tail, and there a rule such as Lion spent as long on a scalar
// tail of 7 elements as on the 320 before them; and a scalar tail compiled a scalar copy of the
// rule's whole loop (docs/compile-time.md).

#include "steep/kernel/simd.hpp"

#include <cstddef>

namespace steep::kernel {

// A group's load and store: a full batch, or for the tail its first n lanes (load_first,
// store_first: zeros past them on the load, nothing past them written).
template <class V, bool Tail, class S>
inline V load_group(const S* p, [[maybe_unused]] std::size_t n) {
  if constexpr (Tail)
    return load_first<V>(p, n);
  else
    return load<V>(p);
}
template <bool Tail, class S, class V>
inline void store_group(S* p, const V& v, [[maybe_unused]] std::size_t n) {
  if constexpr (Tail)
    store_first(p, v, n);
  else
    store_exact(p, v);
}

template <class T, class Body>
inline void chunk_loop(std::size_t begin, std::size_t end, Body&& body) {
  using V = batch<T>;
  constexpr std::size_t w = V::size;
  std::size_t i = begin;
  for (; i + w <= end; i += w)
    body.template operator()<V, false>(i, w);
  if (i < end)
    body.template operator()<V, true>(i, end - i);
}

} // namespace steep::kernel
