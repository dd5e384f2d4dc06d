#pragma once
// optimizer_options: how an optimizer runs — threads, chunking, which roles a matrix stage may
// take, and what a non-finite gradient does to a step.
//
//   steep::optimizer opt(rule, store, {.threads = 2, .nonfinite = steep::nonfinite_policy::skip});

#include "steep/core/shape.hpp"
#include "steep/kernel/work_list.hpp"

#include <cstddef>
#include <vector>

namespace steep::engine {

// What a NaN or Inf in a gradient does (engine/guard.hpp):
//   refuse  the step throws steep::nonfinite_error, naming the block and the first bad index;
//           parameters and every slot stay bitwise as they were (the default);
//   skip    the step is skipped and counted (skipped_steps()); step() returns refused;
//   mask    per coordinate, for rules whose every coordinate steps on its own gradient alone
//           (Adam, Lion, momentum, ...): a coordinate whose gradient is NaN or Inf keeps its
//           parameter and state, every other coordinate steps. The check rides in the update
//           pass, so it costs no memory traffic (refuse and skip must read the gradient once
//           more when the rule's only pass writes). step() returns held_back and held_back() says
//           where and how many; skipped_steps() counts such steps. Refused at construction for
//           a rule with a reduction or a matrix stage, where one NaN reaches a whole block;
//   off     no check: the step runs and NaN goes where the arithmetic takes it.
// Under every policy but off, a coordinate whose finite inputs give a new parameter or state
// value that is not finite (float32 Adam's v for |g| > ~1.8e19) keeps its old values, the rest
// of the step is applied, step() returns held_back and held_back() names it (engine/guard.hpp);
// a slot kept per block or per line holds its whole block back.
enum class nonfinite_policy { refuse, skip, mask, off };

struct optimizer_options {
  int threads = 0; // 0: all cores TBB sees
  // Entries per chunk of the work list, a multiple of 64; 0: 16384, or about a 16th of a small
  // model (kernel::work_list::auto_chunk_elements), so two threads split it evenly.
  std::size_t chunk_elements = 0;
  // Roles a matrix stage (Muon's dual map) may run on. Hidden matrices only by default: Muon is
  // meant for hidden layers; embeddings and heads go to an elementwise rule (Jordan et al. 2024).
  // route(...) widens this only for an arm that opted in explicitly.
  std::vector<block_role> matrix_roles = { block_role::hidden_matrix };
  // A pass over the work list (elementwise, reduction, guard and matrix pre-pass) with fewer
  // parameters than this runs on the calling thread alone; 0: every pass of a multi-threaded
  // optimizer splits. In a training loop TBB's workers fall asleep during the forward and
  // backward pass, and waking them costs more than two threads save on a small step. On the
  // machine of docs/benchmarks.md, a 50K Adam step took 22 us on one thread, 41 us on two
  // after 1 ms of other work, and 13 us on two back to back; from 2^18 parameters two threads
  // won even after the gap (steep-bench-dispatch --gap-us 0,1000).
  std::size_t serial_below = 0;
  nonfinite_policy nonfinite = nonfinite_policy::refuse;
  // Bitwise the same parameters and state for any thread count, matrix phase included: each
  // block's matrix map runs its BLAS products on one thread, blocks in parallel. Off, a model
  // with fewer matrix blocks than threads lets OpenBLAS thread each block's products instead
  // (faster for one big matrix; OpenBLAS's blocking, so the last bits, then depend on the
  // thread count). Elementwise and reduction passes are deterministic either way.
  bool deterministic = true;
  // For a route: the arm of each block of the store (in its order) instead of the route's
  // selectors; empty: the selectors decide. For a caller that cuts a model into pieces and must
  // send each piece where its whole block went (dist/sharded_optimizer.hpp): a piece's index and
  // shape are not its block's, so on_index and on_if would choose again, differently.
  std::vector<std::size_t> arms = {};
};

} // namespace steep::engine
