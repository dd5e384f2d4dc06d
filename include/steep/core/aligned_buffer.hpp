#pragma once
// aligned_buffer<T>: a zero-initialised, 64-byte aligned, fixed-size array — the arena that
// holds every parameter, gradient and state slot of one dtype.
//
//   steep::aligned_buffer<float> a(1000);   // a.data() % 64 == 0, all zeros
//
// 64 bytes = one cache line = one AVX-512 register, so a block that starts at a multiple of
// 64 bytes never splits a vector load across lines. Allocation happens once, at set-up: on the
// project's VMs a fresh page costs ~10 us to fault in, so nothing in steep
// allocates per step.

#include "steep/core/xsimd_fence.hpp"

#include <cstddef>
#include <vector>
#include <xsimd/memory/xsimd_aligned_allocator.hpp>

namespace steep {

inline constexpr std::size_t arena_alignment = 64;

// Elements of T that fill a whole number of cache lines and hold at least n elements.
template <class T>
constexpr std::size_t padded_count(std::size_t n) {
  constexpr std::size_t per_line = arena_alignment / sizeof(T);
  return (n + per_line - 1) / per_line * per_line;
}

template <class T>
using aligned_buffer = std::vector<T, xsimd::aligned_allocator<T, arena_alignment>>;

} // namespace steep
