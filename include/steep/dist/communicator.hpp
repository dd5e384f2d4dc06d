#pragma once
// steep::dist::communicator: what a sharded optimizer asks of the ranks it runs on. Two models:
// serial_communicator (one rank, no MPI; dist/serial.hpp) and mpi_communicator (dist/mpi.hpp,
// where the build defines STEEP_WITH_MPI).
//
//   template <steep::dist::communicator Comm>
//   void sync(Comm& comm, std::span<const float> g, std::span<float> mine, std::span<float> p,
//             std::span<const std::size_t> counts) {
//     comm.template reduce_scatter_sum<float>(g, mine, counts).wait();  // mine = my slice of sum(g)
//     /* update mine */
//     comm.template all_gather_v<float>(mine, p, counts).wait();        // p = every rank's slice
//   }
//
// The contract, for T = float, double, steep::bfloat16:
// - size(), rank(): ranks are 0 .. size() - 1; counts hold one entry per rank, in rank order.
// - reduce_scatter_sum(send, recv, counts) -> request: send has sum(counts) elements on every
//   rank; recv gets rank()'s counts[rank()] elements of their elementwise sum. bfloat16 is summed
//   in float and rounded to nearest even per addition.
// - all_gather_v(mine, all, counts) -> request: all gets the ranks' `mine` concatenated; `mine`
//   may be rank()'s own range of `all` (in place: nothing is copied on the sending side).
// - request::wait(): the buffers may be read (recv, all) or reused (send, mine) only after it.
// - all_reduce(x, reduce_op::sum | max | min) -> double, blocking.
// - counters(): messages and bytes per collective kind (dist/collective.hpp says what a byte is).
// - Bad arguments (wrong sizes, a count past INT_MAX) throw steep::usage_error naming the
//   collective, on the calling rank, before anything is sent.

#include "steep/core/bfloat16.hpp"
#include "steep/dist/collective.hpp"
#include "steep/dist/mpi.hpp"
#include "steep/dist/serial.hpp"

#include <concepts>
#include <cstddef>
#include <span>

namespace steep::dist {

template <class C, class T>
concept collectives_of = requires(C& c, std::span<const T> in, std::span<T> out,
                                  std::span<const std::size_t> n) {
  { c.template reduce_scatter_sum<T>(in, out, n) } -> std::same_as<typename C::request>;
  { c.template all_gather_v<T>(in, out, n) } -> std::same_as<typename C::request>;
};

template <class C>
concept communicator = requires(C& c, const C& cc, typename C::request& rq, double x) {
  { cc.size() } -> std::same_as<int>;
  { cc.rank() } -> std::same_as<int>;
  rq.wait();
  { c.all_reduce(x, reduce_op::sum) } -> std::same_as<double>;
  { cc.counters() } -> std::same_as<const comm_counters&>;
}
&&collectives_of<C, float>&& collectives_of<C, double>&& collectives_of<C, bfloat16>;

static_assert(communicator<serial_communicator>,
              "serial_communicator must offer every collective of steep::dist::communicator");
#if defined(STEEP_WITH_MPI)
static_assert(communicator<mpi_communicator>,
              "mpi_communicator must offer every collective of steep::dist::communicator");
#endif

} // namespace steep::dist
