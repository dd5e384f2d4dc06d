// The communicators (steep/dist/communicator.hpp): reduce-scatter and all-gather exact for float,
// double and bfloat16, the counters against their formula, the scalar all-reduce, and the
// refusals. Built twice: test_dist_comm runs serial_communicator; test_dist_comm_mpi (STEEP_WITH_MPI,
// under mpirun -np 1..4) runs the same checks on mpi_communicator too. Values are small integers,
// so every float sum, in any order, is exact, and so is every bfloat16 sum (below 256).
#include <catch2/catch.hpp>
#include <climits>
#include <cstddef>
#include <steep/dist/communicator.hpp>
#include <string>
#include <vector>

namespace {

using steep::bfloat16;
using steep::dist::reduce_op;

// Uneven counts with an empty rank (rank 1 when there are 3 or more): the v in the collectives.
std::vector<std::size_t> counts_for(int size) {
  std::vector<std::size_t> c;
  for (int q = 0; q < size; ++q)
    c.push_back(size >= 3 && q == 1 ? 0 : static_cast<std::size_t>(3 + 5 * q));
  return c;
}

template <class T, class Comm>
void check_reduce_scatter_and_gather(Comm& comm) {
  const int w = comm.size(), r = comm.rank();
  const auto counts = counts_for(w);
  std::size_t total = 0, displ = 0;
  for (int q = 0; q < w; ++q) {
    if (q == r)
      displ = total;
    total += counts[static_cast<std::size_t>(q)];
  }
  const std::size_t mine = counts[static_cast<std::size_t>(r)];

  // Rank q sends (q + 1) * (i % 7 + 1): the sum over ranks is (i % 7 + 1) * w (w + 1) / 2 <= 70.
  std::vector<T> send(total), recv(mine);
  for (std::size_t i = 0; i < total; ++i)
    send[i] = T(float((r + 1) * static_cast<int>(i % 7 + 1)));
  comm.reset_counters();
  auto rs = comm.template reduce_scatter_sum<T>(std::span<const T>(send), std::span<T>(recv),
                                                std::span<const std::size_t>(counts));

  // Started before the first is waited for: two collectives in flight at once.
  std::vector<T> piece(mine), all(total);
  for (std::size_t j = 0; j < mine; ++j)
    piece[j] = T(float(2 * (r + 1) + static_cast<int>(j % 5)));
  auto ag = comm.template all_gather_v<T>(std::span<const T>(piece), std::span<T>(all),
                                          std::span<const std::size_t>(counts));
  rs.wait();
  ag.wait();

  const float ranks_sum = float(w * (w + 1) / 2);
  for (std::size_t j = 0; j < mine; ++j)
    REQUIRE(float(recv[j]) == ranks_sum * float((displ + j) % 7 + 1));
  std::size_t at = 0;
  for (int q = 0; q < w; ++q)
    for (std::size_t j = 0; j < counts[static_cast<std::size_t>(q)]; ++j, ++at)
      REQUIRE(float(all[at]) == float(2 * (q + 1) + static_cast<int>(j % 5)));

  // Counters: what this rank owes the others, once per receiving rank (dist/collective.hpp).
  const auto& c = comm.counters();
  CHECK(c.reduce_scatter == steep::dist::traffic{ 1, (total - mine) * sizeof(T) });
  CHECK(c.all_gather == steep::dist::traffic{ 1, mine * sizeof(T) * static_cast<std::size_t>(w - 1) });

  // In place: each rank's piece already at its place in `all` (the sharded optimizer's parameters).
  std::vector<T> in_place(total, T(0.0f));
  for (std::size_t j = 0; j < mine; ++j)
    in_place[displ + j] = piece[j];
  comm
    .template all_gather_v<T>(std::span<const T>(in_place.data() + displ, mine), std::span<T>(in_place),
                              std::span<const std::size_t>(counts))
    .wait();
  REQUIRE(in_place == all);
  CHECK(c.all_reduce == steep::dist::traffic{});
  CHECK(c.total().bytes == c.reduce_scatter.bytes + c.all_gather.bytes);
}

template <class Comm>
void check_all_reduce(Comm& comm) {
  const int w = comm.size();
  const double x = comm.rank() + 1;
  comm.reset_counters();
  CHECK(comm.all_reduce(x, reduce_op::sum) == w * (w + 1) / 2.0);
  CHECK(comm.all_reduce(x, reduce_op::max) == double(w));
  CHECK(comm.all_reduce(x, reduce_op::min) == 1.0);
  CHECK(comm.counters().all_reduce ==
        steep::dist::traffic{ 3, 3 * sizeof(double) * static_cast<std::size_t>(w - 1) });
}

// Refused on every rank before anything is sent, so no rank waits for another.
template <class Comm>
void check_refusals(Comm& comm) {
  const auto counts = counts_for(comm.size());
  std::vector<float> a(1000), b(1000);
  std::vector<std::size_t> short_counts(counts.begin(), counts.end() - 1);
  REQUIRE_THROWS_WITH(comm.template reduce_scatter_sum<float>(a, b, short_counts),
                      Catch::Contains("reduce_scatter_sum") && Catch::Contains("one count per rank"));
  REQUIRE_THROWS_WITH(comm.template all_gather_v<float>(a, b, counts),
                      Catch::Contains("all_gather_v") && Catch::Contains("add up to"));
  // A count past INT_MAX is refused, never truncated (MPI counts are int).
  auto huge = counts;
  huge.back() = static_cast<std::size_t>(INT_MAX) + 1;
  REQUIRE_THROWS_WITH(comm.template reduce_scatter_sum<float>(a, b, huge),
                      Catch::Contains("reduce_scatter_sum") && Catch::Contains("INT_MAX") &&
                        Catch::Contains("2147483648"));
  REQUIRE_THROWS_WITH(comm.template all_gather_v<float>(a, b, huge),
                      Catch::Contains("all_gather_v") && Catch::Contains("INT_MAX"));
  comm.reset_counters();
  REQUIRE(comm.counters() == steep::dist::comm_counters{});
}

template <class Comm>
void check_communicator(Comm& comm) {
  static_assert(steep::dist::communicator<Comm>, "the tests run on communicators");
  SECTION("float") { check_reduce_scatter_and_gather<float>(comm); }
  SECTION("double") { check_reduce_scatter_and_gather<double>(comm); }
  SECTION("bfloat16") { check_reduce_scatter_and_gather<bfloat16>(comm); }
  SECTION("all_reduce") { check_all_reduce(comm); }
  SECTION("refusals") { check_refusals(comm); }
}

} // namespace

TEST_CASE("dist comm: serial_communicator", "[dist][comm]") {
  steep::dist::serial_communicator comm;
  REQUIRE(comm.size() == 1);
  REQUIRE(comm.rank() == 0);
  check_communicator(comm);
}

TEST_CASE("dist comm: serial_communicator sends nothing", "[dist][comm]") {
  steep::dist::serial_communicator comm;
  std::vector<float> g{ 1, 2, 3 }, mine(3);
  const std::size_t n[] = { 3 };
  comm.reduce_scatter_sum<float>(g, mine, n).wait();
  REQUIRE(mine == g);
  REQUIRE(comm.counters().total() == steep::dist::traffic{ 1, 0 });
}

#if defined(STEEP_WITH_MPI)
TEST_CASE("dist comm: mpi_communicator", "[dist][comm][mpi]") {
  steep::dist::mpi_communicator comm;
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  REQUIRE(comm.size() == world);
  check_communicator(comm);
}

TEST_CASE("dist comm: an MPI error names the rank, the call and MPI's message", "[dist][comm][mpi]") {
  const steep::dist::mpi_error e("reduce_scatter_sum (MPI_Ireduce_scatter)", MPI_ERR_COUNT);
  char text[MPI_MAX_ERROR_STRING];
  int len = 0, rank = 0, size = 0;
  MPI_Error_string(MPI_ERR_COUNT, text, &len);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  REQUIRE(e.code() == MPI_ERR_COUNT);
  REQUIRE_THAT(e.what(), Catch::StartsWith("steep: rank " + std::to_string(rank) + " of " +
                                           std::to_string(size) + ": MPI reduce_scatter_sum") &&
                           Catch::Contains("MPI_Ireduce_scatter") && Catch::Contains(std::string(text, len)));
}

TEST_CASE("dist comm: bfloat16 sums round in float, as core/bfloat16.hpp", "[dist][comm][mpi]") {
  steep::dist::mpi_communicator comm;
  const int w = comm.size();
  // Rank 0 sends 256, rank 1 sends 1, the others 0: in any order the one inexact addition is
  // 256 + 1 = 257, a tie between bfloat16 neighbours 256 and 258 that rounds to even, 256.
  const float x = comm.rank() == 0 ? 256.f : comm.rank() == 1 ? 1.f : 0.f;
  std::vector<bfloat16> send(static_cast<std::size_t>(w), bfloat16(x));
  std::vector<bfloat16> recv(1);
  std::vector<std::size_t> counts(static_cast<std::size_t>(w), 1);
  comm.reduce_scatter_sum<bfloat16>(send, recv, counts).wait();
  REQUIRE(float(recv[0]) == 256.f);
}
#endif
