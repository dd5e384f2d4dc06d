#pragma once
// executor: runs a body once per chunk of a work_list on up to `threads` TBB workers.
//
//   steep::kernel::executor ex(2);                       // 0 = every core TBB sees
//   ex.for_each_chunk(wl, [&](std::size_t c) { ... });   // each chunk exactly once
//
// Each executor owns a tbb::task_arena, so one optimizer can run on 1 thread while another
// uses all of them, without touching TBB's global state. Chunks go out with a static
// partitioner: they are equal-sized, so dynamic stealing buys nothing on a memory-bound loop
// and costs scheduling time. Lists too short to
// share run on the calling thread. for_each_task is the dynamic counterpart for unequal tasks.

#include "steep/kernel/work_list.hpp"

#include <cstddef>
#include <memory>
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

namespace steep::kernel {

class executor {
public:
  explicit executor(int threads = 0)
    : threads_(threads > 0 ? threads : oneapi::tbb::info::default_concurrency())
    , arena_(std::make_unique<oneapi::tbb::task_arena>(threads_)) {}

  int threads() const noexcept { return threads_; }

  template <class Body>
  void for_each_chunk(const work_list& wl, Body&& body) const {
    const std::size_t n = wl.size();
    if (threads_ == 1 || n < 2) {
      for (std::size_t c = 0; c < n; ++c)
        body(c);
      return;
    }
    arena_->execute([&] {
      oneapi::tbb::parallel_for(
        oneapi::tbb::blocked_range<std::size_t>(0, n, 1),
        [&](const oneapi::tbb::blocked_range<std::size_t>& r) {
          for (std::size_t c = r.begin(); c != r.end(); ++c)
            body(c);
        },
        oneapi::tbb::static_partitioner{});
    });
  }

  // Runs body(i) for i in [0, n) with dynamic load balancing: for unequal tasks such as the
  // matrix maps of blocks of different shapes, handed out largest first by the caller.
  template <class Body>
  void for_each_task(std::size_t n, Body&& body) const {
    if (threads_ == 1 || n < 2) {
      for (std::size_t i = 0; i < n; ++i)
        body(i);
      return;
    }
    arena_->execute([&] { oneapi::tbb::parallel_for(std::size_t{ 0 }, n, [&](std::size_t i) { body(i); }); });
  }

private:
  int threads_;
  std::unique_ptr<oneapi::tbb::task_arena> arena_; // task_arena is neither copyable nor movable
};

} // namespace steep::kernel
