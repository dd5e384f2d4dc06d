#pragma once
// What every communicator shares: the reduction ops, the traffic counters and the checks a
// collective's arguments pass before any rank sends a byte.
//
//   steep::dist::traffic t = comm.counters().reduce_scatter;   // messages, bytes this rank sent
//   comm.counters().total().bytes;
//
// Counters count what this rank owes the others, once per receiving rank, whatever algorithm
// MPI picks: a reduce-scatter sends each other rank q its counts[q] elements of this rank's
// input, (sum - counts[rank]) * sizeof(T) bytes; an all-gather sends this rank's counts[rank]
// elements to each of the other W - 1 ranks; an all-reduce sends its one double to each. For an
// even split both collectives come to (W-1)/W * n * sizeof(T) per rank, the ring's bytes
// (docs/distributed.md). `messages` counts collectives started. A single rank sends nothing.

#include "steep/core/error.hpp"

#include <climits>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace steep::dist {

enum class reduce_op { sum, max, min };

struct traffic {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  friend bool operator==(const traffic&, const traffic&) = default;
};

struct comm_counters {
  traffic reduce_scatter, all_gather, all_reduce;

  traffic total() const {
    return { reduce_scatter.messages + all_gather.messages + all_reduce.messages,
             reduce_scatter.bytes + all_gather.bytes + all_reduce.bytes };
  }
  friend bool operator==(const comm_counters&, const comm_counters&) = default;
};

namespace detail {

// The arguments of a v-collective, checked and converted to MPI's int counts and displacements:
// one count per rank, buffers of exactly the sizes the counts imply, and nothing past INT_MAX
// (MPI counts are int; a larger count is refused, never truncated).
struct checked_counts {
  std::vector<int> counts, displs;
  std::size_t total = 0;
};

[[gnu::cold]] inline void refuse(const char* collective, const std::string& problem) {
  throw usage_error(std::string(collective) + ": " + problem);
}

inline checked_counts check_counts(const char* collective, std::span<const std::size_t> counts, int size,
                                   int rank, std::size_t whole, std::size_t mine, const char* whole_name,
                                   const char* mine_name) {
  if (counts.size() != static_cast<std::size_t>(size))
    refuse(collective,
           "needs one count per rank (" + std::to_string(size) + "), got " + std::to_string(counts.size()));
  checked_counts c;
  c.counts.reserve(counts.size());
  c.displs.reserve(counts.size());
  for (std::size_t q = 0; q < counts.size(); ++q) {
    if (counts[q] > static_cast<std::size_t>(INT_MAX) || c.total > static_cast<std::size_t>(INT_MAX))
      refuse(collective,
             "rank " + std::to_string(q) + "'s " +
               (counts[q] > static_cast<std::size_t>(INT_MAX) ? "count " + std::to_string(counts[q])
                                                              : "offset " + std::to_string(c.total)) +
               " exceeds INT_MAX (" + std::to_string(INT_MAX) +
               "), the largest count MPI takes; split the buffer into buckets");
    c.displs.push_back(static_cast<int>(c.total));
    c.counts.push_back(static_cast<int>(counts[q]));
    c.total += counts[q];
  }
  if (whole != c.total)
    refuse(collective, std::string(whole_name) + " holds " + std::to_string(whole) +
                         " elements; the counts add up to " + std::to_string(c.total));
  if (mine != counts[static_cast<std::size_t>(rank)])
    refuse(collective, std::string(mine_name) + " holds " + std::to_string(mine) + " elements; rank " +
                         std::to_string(rank) + "'s count is " +
                         std::to_string(counts[static_cast<std::size_t>(rank)]));
  return c;
}

} // namespace detail

} // namespace steep::dist
