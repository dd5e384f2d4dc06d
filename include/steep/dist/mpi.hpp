#pragma once
// mpi_session and mpi_communicator: steep's collectives over MPI's C API (Open MPI, MPICH).
// Compiled only where the build defines STEEP_WITH_MPI (the CMake target steep::mpi does, and
// links MPI::MPI_C); elsewhere this header declares nothing.
//
//   steep::dist::mpi_session session(&argc, &argv);    // MPI_Init_thread(FUNNELED), MPI_Finalize
//   steep::dist::mpi_communicator comm;                 // a duplicate of MPI_COMM_WORLD
//   auto rq = comm.reduce_scatter_sum<float>(grads, my_grads, plan_counts);
//   ...                                                 // overlap: compute while it runs
//   rq.wait();
//
// Threads: FUNNELED, so only the thread that created the session calls MPI; TBB's workers never
// do. Errors: the communicator's handler is MPI_ERRORS_RETURN, and a failing call throws
// steep::dist::mpi_error naming the rank, the collective and MPI's own message. A request must be
// waited for before its buffers go away; a request destroyed unwaited waits in its destructor (its
// counts must outlive the collective, MPI 3.1 section 5.12).
// A rank that leaves (docs/distributed.md, "A rank that dies"): an exception that leaves the
// session's scope on some ranks only would have MPI_Finalize wait forever for ranks that wait in a
// collective for it; the session's destructor waits `exit_wait` for every rank to reach the end of
// its session (a refusal every rank raised, or the others done), else prints "steep: rank r of W
// ..." and calls MPI_Abort. A program that catches inside the session prints first and calls
// failed() (every rank's message is out before any rank finalizes). A rank that calls exit() with
// the session open says so too; a signal is reported by mpirun.

#if defined(STEEP_WITH_MPI)

#include "steep/core/bfloat16.hpp"
#include "steep/dist/collective.hpp"

// The C API only: Open MPI's and MPICH's mpi.h otherwise pull in the removed C++ bindings,
// whose symbols live in a library MPI::MPI_C does not link.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mpi.h>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace steep::dist {

// An MPI call that returned an error code.
class mpi_error : public std::runtime_error {
public:
  [[gnu::cold]] mpi_error(const std::string& call, int code)
    : std::runtime_error("steep: " + where() + "MPI " + call + " failed (error " + std::to_string(code) +
                         "): " + text(code))
    , code_(code) {}
  int code() const noexcept { return code_; }

  // "rank r of W: " in MPI_COMM_WORLD, while MPI runs (a job's ranks all print to one terminal).
  static std::string where() {
    int up = 0, down = 0, rank = 0, size = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (!up || down || MPI_Comm_rank(MPI_COMM_WORLD, &rank) != MPI_SUCCESS ||
        MPI_Comm_size(MPI_COMM_WORLD, &size) != MPI_SUCCESS)
      return "";
    return "rank " + std::to_string(rank) + " of " + std::to_string(size) + ": ";
  }

private:
  static std::string text(int code) {
    char buf[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS)
      return "(no message)";
    return std::string(buf, static_cast<std::size_t>(len));
  }
  int code_;
};

namespace detail {
inline void mpi_check(int rc, const char* call) {
  if (rc != MPI_SUCCESS)
    throw mpi_error(call, rc);
}
} // namespace detail

// MPI_Init_thread(MPI_THREAD_FUNNELED) unless MPI is already initialized (by mpi4py, or by the
// program), and MPI_Finalize at the end only if this session initialized it. Either way MPI must
// provide at least FUNNELED. At its end every rank meets the others (MPI_Ibarrier on a
// communicator of its own). Left by an exception, the session waits up to `exit_wait` for them: if
// they all arrive (a refusal every rank raised, as steep's are, or ranks done with their work),
// MPI_Finalize and the exception goes on; if not, MPI_Finalize would wait forever for ranks that
// wait for this one in a collective, so it aborts the job.
class mpi_session {
public:
  mpi_session()
    : mpi_session(nullptr, nullptr) {}
  mpi_session(int* argc, char*** argv, std::chrono::milliseconds exit_wait = std::chrono::seconds(10))
    : exit_wait_(exit_wait)
    , uncaught_(std::uncaught_exceptions()) {
    int finalized = 0, initialized = 0;
    MPI_Finalized(&finalized);
    if (finalized)
      throw usage_error("mpi_session: MPI was already finalized in this process; it cannot start again");
    MPI_Initialized(&initialized);
    int provided = 0;
    if (!initialized) {
      detail::mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owns_ = true;
    } else {
      detail::mpi_check(MPI_Query_thread(&provided), "MPI_Query_thread");
    }
    if (provided < MPI_THREAD_FUNNELED) {
      if (owns_)
        MPI_Finalize();
      throw usage_error("mpi_session: MPI provides thread level " + std::to_string(provided) +
                        ", below MPI_THREAD_FUNNELED, which steep needs (TBB threads run beside MPI)");
    }
    if (owns_) {
      // The ranks' agreement at an exceptional exit has a communicator of its own: no message of
      // the program's can match it.
      detail::mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &leaving_), "MPI_Comm_dup");
      static const bool registered = std::atexit(&exit_while_open) == 0;
      (void)registered;
      open_ = true;
    }
  }
  ~mpi_session() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!owns_ || finalized)
      return;
    // Every rank meets here first, however it leaves; one that leaves by an exception waits only
    // exit_wait_ for the others, which may wait for it in a collective it will never reach.
    const bool failing = failed_ || std::uncaught_exceptions() > uncaught_;
    if (!all_ranks_leave(failing))
      abort(
        failing
          ? std::string(failed_ ? "this rank failed (see above)" : "an exception leaves its MPI session") +
              " and the other ranks did not reach the end of theirs within " +
              std::to_string(exit_wait_.count()) +
              " ms (they wait in a collective this rank left, or compute)" +
              (failed_ ? "" : "; its message is lost unless caught inside the session (see failed())")
          : std::string("the ranks' meeting at the end of the MPI session failed"));
    MPI_Comm_free(&leaving_);
    open_ = false;
    MPI_Finalize();
  }
  mpi_session(const mpi_session&) = delete;
  mpi_session& operator=(const mpi_session&) = delete;

  bool owns_mpi() const noexcept { return owns_; }

  // Marks this rank as failing, for a program that catches an exception inside the session's
  // scope, prints it and returns: the session's end then waits only `exit_wait` for the other
  // ranks, as for an exception in flight, and aborts the job if they do not come. Printing inside
  // the scope matters when every rank refuses the same step: each rank's message is out before
  // any rank finalizes, and mpirun ends the job at the first non-zero exit.
  //   steep::dist::mpi_session mpi(&argc, &argv);
  //   try { return run(); } catch (const std::exception& e) { print(e); mpi.failed(); return 1; }
  void failed() noexcept { failed_ = true; }

  // Ends every rank of the job: prints "steep: rank r of W: <why>; MPI_Abort ends every rank" on
  // this rank's stderr and calls MPI_Abort(MPI_COMM_WORLD, code). For a failure of this rank alone
  // (the others would wait for it in their next collective).
  [[noreturn]] static void abort(std::string_view why, int code = 1) {
    std::fprintf(stderr, "steep: %s%.*s; MPI_Abort ends every rank\n", mpi_error::where().c_str(),
                 static_cast<int>(why.size()), why.data());
    std::fflush(stderr);
    open_ = false; // (not "exits with its session open" as well, should MPI_Abort call exit)
    MPI_Abort(MPI_COMM_WORLD, code);
    std::abort(); // (MPI_Abort does not return)
  }

private:
  // Whether every rank reaches this point (within exit_wait_ if `deadline`): a nonblocking
  // barrier, polled. Without a deadline it waits as MPI_Finalize would.
  bool all_ranks_leave(bool deadline) {
    MPI_Request rq = MPI_REQUEST_NULL;
    if (MPI_Ibarrier(leaving_, &rq) != MPI_SUCCESS)
      return false;
    if (!deadline)
      return MPI_Wait(&rq, MPI_STATUS_IGNORE) == MPI_SUCCESS;
    const auto until = std::chrono::steady_clock::now() + exit_wait_;
    for (int done = 0;;) {
      if (MPI_Test(&rq, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return false;
      if (done)
        return true;
      if (std::chrono::steady_clock::now() > until)
        return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  // At exit() with a session open (a return from main destroys it first): the job ends without
  // this rank's MPI_Finalize, and mpirun names it only by its process name; say which rank.
  static void exit_while_open() {
    if (open_)
      std::fprintf(stderr,
                   "steep: %sthe process exits with its MPI session open (exit() before the "
                   "session's end); mpirun ends the job\n",
                   mpi_error::where().c_str());
  }
  static inline bool open_ = false;

  std::chrono::milliseconds exit_wait_;
  int uncaught_;
  bool failed_ = false;
  bool owns_ = false;
  MPI_Comm leaving_ = MPI_COMM_NULL;
};

class mpi_communicator {
public:
  // A started nonblocking collective; holds the int counts MPI reads until it completes.
  class request {
  public:
    request() = default;
    request(request&& o) noexcept
      : rq_(std::exchange(o.rq_, MPI_REQUEST_NULL))
      , name_(o.name_)
      , counts_(std::move(o.counts_)) {}
    request& operator=(request&& o) noexcept {
      if (this != &o) {
        finish();
        rq_ = std::exchange(o.rq_, MPI_REQUEST_NULL);
        name_ = o.name_;
        counts_ = std::move(o.counts_);
      }
      return *this;
    }
    ~request() { finish(); }

    void wait() {
      if (rq_ == MPI_REQUEST_NULL)
        return;
      const int rc = MPI_Wait(&rq_, MPI_STATUS_IGNORE);
      rq_ = MPI_REQUEST_NULL;
      if (rc != MPI_SUCCESS)
        throw mpi_error(std::string(name_) + " (MPI_Wait)", rc);
    }
    bool done() const noexcept { return rq_ == MPI_REQUEST_NULL; }

  private:
    friend class mpi_communicator;
    request(const char* name, detail::checked_counts c)
      : name_(name)
      , counts_(std::move(c)) {}
    void finish() noexcept {
      if (rq_ != MPI_REQUEST_NULL)
        MPI_Wait(&rq_, MPI_STATUS_IGNORE); // errors cannot leave a destructor
    }
    MPI_Request rq_ = MPI_REQUEST_NULL;
    const char* name_ = "";
    detail::checked_counts counts_;
  };

  // Duplicates `base` (MPI_COMM_WORLD by default): steep's messages never match the program's.
  explicit mpi_communicator(MPI_Comm base = MPI_COMM_WORLD) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized)
      throw usage_error("mpi_communicator: MPI is not initialized; create a steep::dist::mpi_session first");
    detail::mpi_check(MPI_Comm_dup(base, &comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    // Open MPI's monitoring reports each communicator's collective bytes under its name
    // (docs/distributed.md: steep's counters equal the "steep" communicator's, to the byte).
    MPI_Comm_set_name(comm_, "steep");
    MPI_Comm_size(comm_, &size_);
    MPI_Comm_rank(comm_, &rank_);
    // bfloat16: two bytes MPI moves untouched, and a sum that widens to float and rounds back.
    detail::mpi_check(MPI_Type_contiguous(2, MPI_BYTE, &bf16_), "MPI_Type_contiguous");
    detail::mpi_check(MPI_Type_commit(&bf16_), "MPI_Type_commit");
    detail::mpi_check(MPI_Op_create(&bf16_sum, 1, &bf16_sum_), "MPI_Op_create");
  }
  ~mpi_communicator() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized || comm_ == MPI_COMM_NULL)
      return;
    MPI_Op_free(&bf16_sum_);
    MPI_Type_free(&bf16_);
    MPI_Comm_free(&comm_);
  }
  mpi_communicator(const mpi_communicator&) = delete;
  mpi_communicator& operator=(const mpi_communicator&) = delete;

  int size() const noexcept { return size_; }
  int rank() const noexcept { return rank_; }
  MPI_Comm native() const noexcept { return comm_; }

  // recv = rank()'s part (counts[rank] elements, in rank order) of the elementwise sum over ranks
  // of send (sum of counts elements).
  template <class T>
  request reduce_scatter_sum(std::span<const T> send, std::span<T> recv,
                             std::span<const std::size_t> counts) {
    static_assert(is_collective_type<T>, "steep's collectives move float, double or steep::bfloat16");
    constexpr const char* name = "reduce_scatter_sum (MPI_Ireduce_scatter)";
    auto c = detail::check_counts(name, counts, size_, rank_, send.size(), recv.size(), "send", "recv");
    const std::size_t others = c.total - counts[static_cast<std::size_t>(rank_)];
    request rq(name, std::move(c));
    detail::mpi_check(MPI_Ireduce_scatter(send.data(), recv.data(), rq.counts_.counts.data(), type<T>(),
                                          sum_op<T>(), comm_, &rq.rq_),
                      name);
    count(counters_.reduce_scatter, others * sizeof(T));
    return rq;
  }

  // all = every rank's `mine` (counts[q] elements from rank q), concatenated in rank order.
  template <class T>
  request all_gather_v(std::span<const T> mine, std::span<T> all, std::span<const std::size_t> counts) {
    static_assert(is_collective_type<T>, "steep's collectives move float, double or steep::bfloat16");
    constexpr const char* name = "all_gather_v (MPI_Iallgatherv)";
    auto c = detail::check_counts(name, counts, size_, rank_, all.size(), mine.size(), "all", "mine");
    request rq(name, std::move(c));
    // `mine` already in place (rank()'s range of `all`): MPI forbids a send buffer inside the
    // receive buffer, and MPI_IN_PLACE says so, with no copy.
    const bool in_place = mine.data() == all.data() + rq.counts_.displs[static_cast<std::size_t>(rank_)];
    detail::mpi_check(MPI_Iallgatherv(in_place ? MPI_IN_PLACE : mine.data(), static_cast<int>(mine.size()),
                                      type<T>(), all.data(), rq.counts_.counts.data(),
                                      rq.counts_.displs.data(), type<T>(), comm_, &rq.rq_),
                      name);
    count(counters_.all_gather, mine.size() * sizeof(T) * static_cast<std::size_t>(size_ - 1));
    return rq;
  }

  // Blocking: the sum, max or min of x over ranks (a loss, a norm, a hash's halves).
  double all_reduce(double x, reduce_op op) {
    double out = 0;
    const MPI_Op o = op == reduce_op::sum ? MPI_SUM : op == reduce_op::max ? MPI_MAX : MPI_MIN;
    detail::mpi_check(MPI_Allreduce(&x, &out, 1, MPI_DOUBLE, o, comm_), "all_reduce (MPI_Allreduce)");
    count(counters_.all_reduce, sizeof(double) * static_cast<std::size_t>(size_ - 1));
    return out;
  }

  const comm_counters& counters() const noexcept { return counters_; }
  void reset_counters() noexcept { counters_ = {}; }

private:
  template <class T>
  static constexpr bool is_collective_type =
    std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, bfloat16>;

  template <class T>
  MPI_Datatype type() const {
    if constexpr (std::is_same_v<T, float>)
      return MPI_FLOAT;
    else if constexpr (std::is_same_v<T, double>)
      return MPI_DOUBLE;
    else
      return bf16_;
  }
  template <class T>
  MPI_Op sum_op() const {
    return std::is_same_v<T, bfloat16> ? bf16_sum_ : MPI_SUM;
  }

  // inout[i] = in[i] + inout[i], added in float and rounded once (core/bfloat16.hpp).
  static void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
    const auto* a = static_cast<const bfloat16*>(in);
    auto* b = static_cast<bfloat16*>(inout);
    for (int i = 0; i < *len; ++i)
      b[i] = bfloat16(float(a[i]) + float(b[i]));
  }

  static void count(traffic& t, std::size_t bytes) {
    ++t.messages;
    t.bytes += bytes;
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Datatype bf16_ = MPI_DATATYPE_NULL;
  MPI_Op bf16_sum_ = MPI_OP_NULL;
  int size_ = 1, rank_ = 0;
  comm_counters counters_;
};

} // namespace steep::dist

#endif // STEEP_WITH_MPI
