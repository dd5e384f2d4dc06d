// steep-bench-dist: the sharded optimizer's step (steep/dist/sharded_optimizer.hpp) against one
// process's, timed: run it alone (1 rank) and under mpirun -np W; each rank steps with one thread.
// Prints the median step time, the collectives' share and the bytes each rank sent per step.
//
//   ./build/bench/steep-bench-dist --params 16000000 --steps 20
//   mpirun -np 2 ./build/bench/steep-bench-dist --params 16000000 --steps 20
// (On this 2-core VM two ranks use both cores: what one process with 2 threads would use; compare
// with steep-bench at --threads 2, docs/distributed.md.)
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
// The rules from steep::compiled where the build has it (STEEP_COMPILED, from linking it): its
// headers declare the optimizers `extern template`, which only the library defines.
#ifdef STEEP_COMPILED
#include <steep/compiled/adam.hpp>
#include <steep/compiled/hybrids.hpp>
#else
#include <steep/rules/adam.hpp>
#include <steep/rules/hybrids.hpp>
#endif
#include <steep/dist/communicator.hpp>
#include <steep/dist/sharded_optimizer.hpp>
#include <steep/engine.hpp>
#include <string>
#include <vector>

namespace {

template <class Comm, class Rule>
void run(Comm& comm, Rule rule, const std::string& name, std::size_t params, int steps) {
  // A model of 8 hidden matrices and one large vector holding the rest.
  std::vector<steep::block_spec<float>> blocks;
  std::size_t rest = params;
  for (int k = 0; k < 8 && rest > 512 * 512; ++k, rest -= 512 * 512)
    blocks.push_back({ "W" + std::to_string(k), { 512, 512 } });
  blocks.push_back({ "v", { rest } });
  steep::param_store<float> store(blocks);
  for (const auto& b : store.blocks())
    for (std::size_t i = 0; i < b.size; ++i)
      b.param[i] = 0.01f * static_cast<float>(i % 7), b.grad[i] = 0.001f * static_cast<float>(i % 5);
  steep::engine::optimizer_options o;
  o.threads = 1;
  steep::dist::sharded_optimizer opt(rule, store, comm, { o, {} });
  std::vector<double> t;
  comm.reset_counters();
  for (int s = 0; s < steps; ++s) {
    comm.all_reduce(0.0, steep::dist::reduce_op::sum); // (every rank starts the step together)
    const auto t0 = std::chrono::steady_clock::now();
    opt.step();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  const double slowest = comm.all_reduce(t[t.size() / 2], steep::dist::reduce_op::max);
  // (Reduce-scatter and all-gather: the step's payload; the all-reduces are a few scalars.)
  const auto& c = comm.counters();
  const double bytes = static_cast<double>(c.reduce_scatter.bytes + c.all_gather.bytes);
  const double state = comm.all_reduce(static_cast<double>(opt.state_bytes()), steep::dist::reduce_op::max);
  if (comm.rank() == 0)
    std::printf(
      "%-10s W=%d  %zu params  median step %.2f ms (slowest rank)  state %.1f MB (largest rank)  sent "
      "%.1f MB/rank/step\n",
      name.c_str(), comm.size(), store.total_elements(), slowest * 1e3, state / 1e6, bytes / steps / 1e6);
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{ "steep-bench-dist: a sharded step against one process's" };
  std::size_t params = 16'000'000;
  int steps = 20;
  app.add_option("--params", params, "parameters in the model");
  app.add_option("--steps", steps, "steps timed");
  CLI11_PARSE(app, argc, argv);
#if defined(STEEP_WITH_MPI)
  if (std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE")) {
    steep::dist::mpi_session mpi(&argc, &argv);
    steep::dist::mpi_communicator comm;
    run(comm, steep::rules::adam(1e-3), "adam", params, steps);
    run(comm, steep::rules::muon_adam(), "muon_adam", params, steps);
    return 0;
  }
#endif
  steep::dist::serial_communicator comm;
  run(comm, steep::rules::adam(1e-3), "adam", params, steps);
  run(comm, steep::rules::muon_adam(), "muon_adam", params, steps);
}
