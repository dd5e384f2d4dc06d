#pragma once
// What an optimizer knows about the calls made on it: whether it still holds an optimizer (a
// move empties the source), and whether a call that writes is running. The facade (facade.hpp)
// holds one of each and opens a call_entry for the length of every writing call.
//
//   live_flag live;  busy_flag busy;
//   live.require("step()");                 // throws if the object was moved from
//   const call_entry e(busy, "step()");     // throws if another thread is inside a writing call
//
// steep does not lock an optimizer: a step is one call on one thread, which runs its passes on
// the executor's threads. These only detect misuse, with one atomic exchange per call (README,
// "Steps, threads and bad input"), and refuse it with nothing done.

#include "steep/core/error.hpp"

#include <atomic>
#include <string>
#include <utility>

namespace steep::engine {

// True while the object holds an optimizer: a move clears the source's.
struct live_flag {
  bool on = false;
  live_flag() = default;
  live_flag(live_flag&& o) noexcept
    : on(std::exchange(o.on, false)) {}
  live_flag& operator=(live_flag&& o) noexcept {
    on = std::exchange(o.on, false);
    return *this;
  }
  // Throws if the optimizer was moved from (its parts went with the move).
  void require(const char* what) const {
    if (!on)
      throw usage_error(std::string(what) +
                        ": this optimizer was moved from; use the optimizer it was moved into");
  }
};

// Set while a call that writes runs. A move starts unset: moving an optimizer that a call is
// using is a bug of its own.
struct busy_flag {
  std::atomic<bool> on{ false };
  busy_flag() = default;
  busy_flag(busy_flag&&) noexcept {}
  busy_flag& operator=(busy_flag&&) noexcept { return *this; }
};

// For the length of one writing call: refuses a second thread's call while one runs.
class call_entry {
public:
  call_entry(busy_flag& busy, const char* what)
    : flag_(busy.on) {
    if (flag_.exchange(true, std::memory_order_acquire))
      throw usage_error(std::string(what) +
                        ": another call on this optimizer is running (from another thread): an "
                        "optimizer takes one call at a time; nothing was done");
  }
  ~call_entry() { flag_.store(false, std::memory_order_release); }
  call_entry(const call_entry&) = delete;
  call_entry& operator=(const call_entry&) = delete;

private:
  std::atomic<bool>& flag_;
};

} // namespace steep::engine
