#pragma once
// all_gather_bytes(comm, mine) -> every rank's bytes, one vector per rank in rank order, on every
// rank: for what is not an array of numbers (a checkpoint's slots with their names, a training
// run's results as JSON).
//
//   const auto all = steep::dist::all_gather_bytes(comm, std::as_bytes(std::span(text)));
//   for (const auto& from_rank : all) { ... }
//
// Collective: every rank calls it. The sizes travel first (one all-reduce per rank: exact, below
// 2^53 bytes), then the bytes, padded to 4, as floats through all_gather_v: nothing adds them, so
// every bit pattern arrives as it left.

#include "steep/dist/communicator.hpp"

#include <cstddef>
#include <cstring>
#include <span>
#include <vector>

namespace steep::dist {

template <communicator Comm>
std::vector<std::vector<std::byte>> all_gather_bytes(Comm& comm, std::span<const std::byte> mine) {
  const std::size_t w = static_cast<std::size_t>(comm.size());
  std::vector<std::size_t> bytes(w), counts(w);
  for (std::size_t q = 0; q < w; ++q) {
    const bool me = q == static_cast<std::size_t>(comm.rank());
    bytes[q] =
      static_cast<std::size_t>(comm.all_reduce(me ? static_cast<double>(mine.size()) : 0.0, reduce_op::sum));
    counts[q] = (bytes[q] + 3) / 4;
  }
  std::size_t total = 0;
  for (std::size_t c : counts)
    total += c;
  std::vector<float> send(counts[static_cast<std::size_t>(comm.rank())], 0.0f), all(total);
  std::memcpy(send.data(), mine.data(), mine.size());
  comm.template all_gather_v<float>(std::span<const float>(send), std::span<float>(all), counts).wait();
  std::vector<std::vector<std::byte>> out(w);
  const auto* at = reinterpret_cast<const std::byte*>(all.data());
  for (std::size_t q = 0; q < w; ++q) {
    out[q].assign(at, at + bytes[q]);
    at += counts[q] * 4;
  }
  return out;
}

} // namespace steep::dist
