// steep-dist-probe: a sharded optimizer on a tiny model, under mpirun, for the tests that look at
// the job from outside (tests/dist/check_traffic.cmake, check_rank_death.cmake):
//
//   mpirun -np 4 steep-dist-probe --rule adam --steps 3 --report out/r     # out/r.<rank>.txt
//   mpirun -np 3 steep-dist-probe --steps 4 --checkpoint c.st --die-rank 1 --die-at 3 --die-how kill
//   steep-dist-probe --verify c.st                                          # "checkpoint step 2"
//
// --report writes, per rank, steep's traffic counters after the run and what each collective of
// one step sends to each peer: the payload (what steep and Open MPI's coll monitoring count) and
// the bytes Open MPI 4.1's algorithms put on the wire (what its pml monitoring counts;
// docs/distributed.md says which algorithm does what). --die-* makes one rank die at the start of
// a step (a signal, abort(), an exception, exit(); --die-at equal to --steps: after the last), or
// rank 0 die inside a checkpoint's write
// ("in-save": the temporary file half written, before the rename), after a checkpoint of every
// earlier step.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <steep/dist/communicator.hpp>
#include <steep/dist/sharded_checkpoint.hpp>
#include <steep/dist/sharded_optimizer.hpp>
#include <steep/engine.hpp>
#include <steep/engine/checkpoint.hpp>
#include <steep/rules/adam.hpp>
#include <steep/rules/hybrids.hpp>
#include <string>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

namespace {

// Set by --die-how in-save on the rank that dies: the next fsync (write_atomic's, after the
// temporary file is written and before it is renamed, io/file_bytes.hpp) cuts the file to half
// and kills the process, as a crash midway through the write would leave it.
bool die_in_fsync = false;

} // namespace

// Interposes libc's fsync for this program (the executable's definition wins the dynamic lookup).
extern "C" int fsync(int fd) {
  if (die_in_fsync) {
    const off_t end = ::lseek(fd, 0, SEEK_END);
    if (end > 0 && ::ftruncate(fd, end / 2) != 0)
      std::perror("steep-dist-probe: ftruncate");
    std::fprintf(stderr, "steep-dist-probe: rank 0 dies while writing the checkpoint\n");
    std::raise(SIGKILL);
  }
  return static_cast<int>(::syscall(SYS_fsync, fd));
}

namespace {

struct options {
  std::string rule = "adam", report, checkpoint, verify, die_how = "kill";
  int steps = 3, die_rank = -1, die_at = -1;
  bool all_die = false;       // every rank dies (throw: a refusal every rank raises)
  bool catch_outside = false; // an exception leaves the MPI session in flight, caught after it
};

// Adam: 8,192 elementwise parameters, split evenly at 2 and 4 ranks (2 (W-1)/W Psi b exactly).
// Muon + Adam: whole matrices and a vector, split unevenly.
std::vector<steep::block_spec<float>> model(const std::string& rule) {
  if (rule == "adam")
    return { { "v", { 4096 } }, { "W", { 64, 64 } } };
  return { { "W0", { 64, 64 } }, { "W1", { 64, 64 } }, { "W2", { 32, 64 } }, { "v", { 1000 } } };
}

void fill(steep::param_store<float>& store, int rank, int step) {
  for (const auto& b : store.blocks())
    for (std::size_t i = 0; i < b.size; ++i) {
      if (step == 0)
        b.param[i] = 0.01f * static_cast<float>(i % 7);
      b.grad[i] = static_cast<float>(static_cast<int>((i * 7 + static_cast<std::size_t>(step) * 3 +
                                                       static_cast<std::size_t>(rank) * 5) %
                                                      17) -
                                     8) /
                  64.0f;
    }
}

[[noreturn]] void die(const std::string& how, int rank, int step) {
  std::fprintf(stderr, "steep-dist-probe: rank %d dies at step %d (%s)\n", rank, step, how.c_str());
  std::fflush(stderr);
  if (how == "kill")
    std::raise(SIGKILL);
  if (how == "abort")
    std::abort();
  if (how == "exit")
    std::exit(3);
  throw std::runtime_error("rank " + std::to_string(rank) + " fails at step " + std::to_string(step));
}

// What rank `me` sends to each peer in one step of `opt` (2 all-reduces of one double, the guard's
// and the held-back flag's): [0] the payload, as steep's counters and Open MPI's coll monitoring
// count it; [1] Open MPI 4.1's wire bytes (pml monitoring), with libnbc's MPI_Ireduce_scatter (a
// binomial reduce of the whole buffer to rank 0, then rank 0 sends each rank its part), libnbc's
// MPI_Iallgatherv (each rank sends its part to every other), and tuned's recursive-doubling
// MPI_Allreduce (at a power-of-two W: one double to rank ^ 2^k, k < log2 W).
std::vector<std::array<std::uint64_t, 2>> step_bytes(const std::vector<std::size_t>& counts, int me) {
  const int w = static_cast<int>(counts.size());
  std::size_t psi = 0;
  for (std::size_t c : counts)
    psi += c;
  std::vector<std::array<std::uint64_t, 2>> to(counts.size(), { 0, 0 });
  const std::uint64_t b = sizeof(float), mine = counts[static_cast<std::size_t>(me)] * b;
  for (int q = 0; q < w; ++q) {
    if (q == me)
      continue;
    auto& t = to[static_cast<std::size_t>(q)];
    t[0] = counts[static_cast<std::size_t>(q)] * b + mine + 2 * sizeof(double);
    if (me == 0)
      t[1] += counts[static_cast<std::size_t>(q)] * b; // the scatter
    if (me != 0 && q == me - (me & -me))
      t[1] += psi * b; // to the binomial parent: the whole (partly reduced) buffer
    t[1] += mine;      // the all-gather
    for (int k = 1; k < w; k <<= 1)
      if (q == (me ^ k))
        t[1] += 2 * sizeof(double);
  }
  return to;
}

template <class Comm>
int run(Comm& comm, const options& o) {
  steep::param_store<float> store(model(o.rule));
  steep::engine::optimizer_options eo;
  eo.threads = 1;
  auto go = [&](auto rule) {
    steep::dist::sharded_optimizer opt(rule, store, comm, { eo, {} });
    const auto at_start = comm.counters();
    auto rs = at_start.reduce_scatter.bytes, ag = at_start.all_gather.bytes;
    for (int s = 0; s < o.steps; ++s) {
      if (s == o.die_at && (comm.rank() == o.die_rank || o.all_die) && o.die_how != "in-save")
        die(o.die_how, comm.rank(), s);
      fill(store, comm.rank(), s);
      const auto before = comm.counters();
      opt.step();
      rs += comm.counters().reduce_scatter.bytes - before.reduce_scatter.bytes;
      ag += comm.counters().all_gather.bytes - before.all_gather.bytes;
      if (!o.checkpoint.empty()) {
        if (s + 1 == o.die_at && comm.rank() == 0 && o.die_how == "in-save")
          die_in_fsync = true;
        steep::dist::save_checkpoint(opt, o.checkpoint);
      }
    }
    if (o.die_at == o.steps && (comm.rank() == o.die_rank || o.all_die)) // (after its last collective)
      die(o.die_how, comm.rank(), o.steps);
    if (o.report.empty())
      return;
    const auto& c = comm.counters();
    const auto counts = opt.plan().counts();
    std::ofstream f(o.report + "." + std::to_string(comm.rank()) + ".txt");
    f << "ranks " << comm.size() << "\nrank " << comm.rank() << "\nsteps " << o.steps << "\nparams "
      << store.total_elements() << "\narena " << opt.plan().arena_elements << "\nbytes_per_element "
      << sizeof(float) << "\nmy_count " << counts[static_cast<std::size_t>(comm.rank())] << "\nmessages "
      << c.total().messages << "\nbytes " << c.total().bytes << "\nstep_payload_bytes "
      << (rs - at_start.reduce_scatter.bytes) / o.steps + (ag - at_start.all_gather.bytes) / o.steps << "\n";
    const auto to = step_bytes(counts, comm.rank());
    for (std::size_t q = 0; q < to.size(); ++q)
      if (static_cast<int>(q) != comm.rank())
        f << "peer " << q << " payload " << to[q][0] << " wire " << to[q][1] << "\n";
  };
  if (o.rule == "adam")
    go(steep::rules::adam(1e-3));
  else
    go(steep::rules::muon_adam());
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{ "steep-dist-probe: a sharded optimizer on a tiny model, for the MPI tests" };
  options o;
  app.add_option("--rule", o.rule, "adam (an even split) or muon_adam (whole matrices, uneven)")
    ->check(CLI::IsMember({ "adam", "muon_adam" }));
  app.add_option("--steps", o.steps, "steps")->check(CLI::PositiveNumber);
  app.add_option("--report", o.report, "write <prefix>.<rank>.txt: counters and per-peer bytes");
  app.add_option("--checkpoint", o.checkpoint, "save a checkpoint here after every step");
  app.add_option("--verify", o.verify, "load this checkpoint in one process, print its step");
  app.add_option("--die-rank", o.die_rank, "the rank that dies");
  app.add_flag("--all-ranks-die", o.all_die, "every rank dies (as --die-how says)");
  app.add_flag("--catch-outside", o.catch_outside,
               "catch an exception after the MPI session ends (its message lost if it aborts)");
  app.add_option("--die-at", o.die_at, "the step at whose start it dies (in-save: in the save before it)");
  app.add_option("--die-how", o.die_how, "kill (SIGKILL), abort, exit (status 3), throw, in-save (rank 0)")
    ->check(CLI::IsMember({ "kill", "abort", "exit", "throw", "in-save" }));
  CLI11_PARSE(app, argc, argv);
  // An exception is printed inside the MPI session (as examples/implicit_bias.cpp does, see
  // mpi_session::failed), or with --catch-outside here, after the session has ended.
  try {
    if (!o.verify.empty()) { // (--rule adam, as the death tests save)
      steep::param_store<float> store(model(o.rule));
      steep::dist::serial_communicator comm;
      steep::dist::sharded_optimizer opt(steep::rules::adam(1e-3), store, comm);
      steep::dist::load_checkpoint(opt, o.verify);
      std::printf("checkpoint step %lld\n", static_cast<long long>(opt.steps()));
      return 0;
    }
#if defined(STEEP_WITH_MPI)
    if (std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE")) {
      steep::dist::mpi_session mpi(&argc, &argv);
      if (o.catch_outside) {
        steep::dist::mpi_communicator comm;
        return run(comm, o);
      }
      try {
        steep::dist::mpi_communicator comm;
        return run(comm, o);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "steep-dist-probe: %s\n", e.what());
        mpi.failed();
        return 1;
      }
    }
#endif
    steep::dist::serial_communicator comm;
    return run(comm, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "steep-dist-probe: %s\n", e.what());
    return 1;
  }
}
