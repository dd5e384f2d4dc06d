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
//
// With STEEP_STD_THREAD_EXECUTOR defined, the same partitions run on std::threads, created and
// joined per call, instead of TBB: slower, but ThreadSanitizer sees every hand-off (Debian's
// TBB is not instrumented, so under TSan it reports each one as a race). scripts/check.sh
// builds the threaded tests this way, so TSan's verdict is about steep's own sharing: which
// tasks of a pass touch which memory, and that passes are ordered.

#include "steep/kernel/work_list.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>
#include <thread>
#include <vector>

namespace steep::kernel {

// Which threads run the passes, as a type: a library compiled with one and a unit compiled with
// the other would each run their own (steep::compiled checks that they agree at link time,
// steep/compiled/instance.hpp).
struct tbb_threads {};
struct std_threads {};
#ifdef STEEP_STD_THREAD_EXECUTOR
using executor_threads = std_threads;
#else
using executor_threads = tbb_threads;
#endif

class executor {
public:
  // serial_below: a work list of fewer entries than this runs on the calling thread
  // (optimizer_options::serial_below: waking sleeping workers costs more than a small pass).
  explicit executor(int threads = 0, std::size_t serial_below = 0)
    : threads_(threads > 0 ? threads : oneapi::tbb::info::default_concurrency())
    , serial_below_(serial_below)
    , arena_(std::make_unique<oneapi::tbb::task_arena>(threads_)) {}

  int threads() const noexcept { return threads_; }
  std::size_t serial_below() const noexcept { return serial_below_; }

  template <class Body>
  void for_each_chunk(const work_list& wl, Body&& body) const {
    for_each_range(wl, [&](std::size_t first, std::size_t last) {
      for (std::size_t c = first; c < last; ++c)
        body(c);
    });
  }

  // body(first, last) over ranges of chunks that cover the list once, each on one thread: for
  // a pass with per-task setup (the update pass's broadcast scalars, engine/optimizer.hpp).
  template <class Body>
  void for_each_range(const work_list& wl, Body&& body) const {
    const std::size_t n = wl.size();
    if (threads_ == 1 || n < 2 || wl.elements() < serial_below_) {
      body(std::size_t{ 0 }, n);
      return;
    }
    split_ranges(n, range_ref(body));
  }

  // Runs body(i) for i in [0, n) with dynamic load balancing: for unequal tasks such as the
  // matrix maps of blocks of different shapes, handed out largest first by the caller.
  template <class Body>
  void for_each_task(std::size_t n, Body&& body) const {
    auto tasks = [&](std::size_t first, std::size_t last) {
      for (std::size_t i = first; i < last; ++i)
        body(i);
    };
    if (threads_ == 1 || n < 2)
      tasks(0, n);
    else
      balance_tasks(n, range_ref(tasks));
  }

private:
  // A pass's body(first, last), called through one pointer per range of chunks or tasks. The
  // threaded part below is compiled once, not once per pass of every rule: TBB's parallel_for
  // instantiated per body was a tenth of the functions a translation unit with the whole
  // catalogue compiled (docs/compile-time.md). The serial path above calls the body
  // directly.
  class range_ref {
  public:
    template <class F>
    explicit range_ref(F& f) noexcept
      : f_(const_cast<void*>(static_cast<const void*>(std::addressof(f))))
      , call_([](void* p, std::size_t first, std::size_t last) { (*static_cast<F*>(p))(first, last); }) {}
    void operator()(std::size_t first, std::size_t last) const { call_(f_, first, last); }

  private:
    void* f_;
    void (*call_)(void*, std::size_t, std::size_t);
  };

  // Ranges of [0, n), statically partitioned: chunks are equal-sized.
  void split_ranges(std::size_t n, range_ref body) const {
#ifdef STEEP_STD_THREAD_EXECUTOR
    on_threads([&](std::size_t k, std::size_t parts) { body(n * k / parts, n * (k + 1) / parts); });
#else
    arena_->execute([&] {
      oneapi::tbb::parallel_for(
        oneapi::tbb::blocked_range<std::size_t>(0, n, 1),
        [&](const oneapi::tbb::blocked_range<std::size_t>& r) { body(r.begin(), r.end()); },
        oneapi::tbb::static_partitioner{});
    });
#endif
  }

  // Ranges of [0, n) handed out dynamically (TBB's auto partitioner, grain 1).
  void balance_tasks(std::size_t n, range_ref body) const {
#ifdef STEEP_STD_THREAD_EXECUTOR
    std::atomic<std::size_t> next{ 0 };
    on_threads([&](std::size_t, std::size_t) {
      for (std::size_t i; (i = next.fetch_add(1)) < n;)
        body(i, i + 1);
    });
#else
    arena_->execute([&] {
      oneapi::tbb::parallel_for(
        oneapi::tbb::blocked_range<std::size_t>(0, n, 1),
        [&](const oneapi::tbb::blocked_range<std::size_t>& r) { body(r.begin(), r.end()); });
    });
#endif
  }

#ifdef STEEP_STD_THREAD_EXECUTOR
  // part(k, parts) on `threads_` std::threads, the calling thread taking part 0; the first
  // exception any part throws is rethrown after all have joined (as TBB does).
  template <class Part>
  void on_threads(Part&& part) const {
    const std::size_t parts = static_cast<std::size_t>(threads_);
    std::vector<std::exception_ptr> errors(parts);
    auto guarded = [&](std::size_t k) {
      try {
        part(k, parts);
      } catch (...) {
        errors[k] = std::current_exception();
      }
    };
    std::vector<std::thread> pool;
    for (std::size_t k = 1; k < parts; ++k)
      pool.emplace_back(guarded, k);
    guarded(0);
    for (auto& t : pool)
      t.join();
    for (auto& e : errors)
      if (e)
        std::rethrow_exception(e);
  }
#endif

  int threads_;
  std::size_t serial_below_;
  std::unique_ptr<oneapi::tbb::task_arena> arena_; // task_arena is neither copyable nor movable
};

} // namespace steep::kernel
