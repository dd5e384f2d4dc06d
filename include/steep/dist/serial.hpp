#pragma once
// serial_communicator: one rank, no MPI. Every collective is a copy, so code written against
// steep::dist::communicator runs (and is tested) in builds without MPI.
//
//   steep::dist::serial_communicator comm;
//   std::vector<float> g(n), mine(n);
//   const std::size_t counts[] = { n };
//   comm.reduce_scatter_sum<float>(g, mine, counts).wait();   // mine = g
//   comm.all_reduce(3.0, steep::dist::reduce_op::max);       // 3.0
//
// The arguments are checked as mpi_communicator checks them (one count, sizes that match, no
// count past INT_MAX), so a call that would fail under MPI fails here too. It sends nothing:
// the counters count messages and zero bytes.

#include "steep/dist/collective.hpp"

#include <algorithm>
#include <cstddef>
#include <span>

namespace steep::dist {

class serial_communicator {
public:
  // Already complete: a collective on one rank finishes when it is started.
  class request {
  public:
    void wait() noexcept {}
    bool done() const noexcept { return true; }
  };

  int size() const noexcept { return 1; }
  int rank() const noexcept { return 0; }

  template <class T>
  request reduce_scatter_sum(std::span<const T> send, std::span<T> recv,
                             std::span<const std::size_t> counts) {
    detail::check_counts("reduce_scatter_sum", counts, 1, 0, send.size(), recv.size(), "send", "recv");
    std::copy(send.begin(), send.end(), recv.begin());
    ++counters_.reduce_scatter.messages;
    return {};
  }

  template <class T>
  request all_gather_v(std::span<const T> mine, std::span<T> all, std::span<const std::size_t> counts) {
    detail::check_counts("all_gather_v", counts, 1, 0, all.size(), mine.size(), "all", "mine");
    if (mine.data() != all.data()) // (in place: nothing to move)
      std::copy(mine.begin(), mine.end(), all.begin());
    ++counters_.all_gather.messages;
    return {};
  }

  double all_reduce(double x, reduce_op) {
    ++counters_.all_reduce.messages;
    return x;
  }

  const comm_counters& counters() const noexcept { return counters_; }
  void reset_counters() noexcept { counters_ = {}; }

private:
  comm_counters counters_;
};

} // namespace steep::dist
