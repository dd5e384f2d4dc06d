// steep-bench-dispatch: would a lighter dispatch than TBB's fork-join speed up small steps?
//
//   steep-bench-dispatch                                  # 50K, 64K, 1M; 2 threads
//   steep-bench-dispatch --sizes 65536 --threads 2 --rounds 15 --out dispatch.json
//
// The margin experiments step a 50K-parameter model 40,000 times, where a step is ~20 us and two
// threads give steep and a hand-written loop alike only 1.4-1.7x. This times the hand-written
// float32 Adam chunk loop (handwritten.hpp, 16384-entry chunks, one tensor) dispatched four ways,
// interleaved (harness.hpp):
//   serial  every chunk on the calling thread: the 1-thread time;
//   tbb     a task_arena + parallel_for with the static partitioner: how steep's executor and the
//           hand-written references dispatch;
//   spin    a persistent pool: workers wait on an atomic epoch, spinning ~20 us after each job,
//           then sleeping in std::atomic::wait (a futex); the caller takes part 0 and spins until
//           the others finish. OpenMP's active wait, in 40 lines: the lightest dispatch that does
//           not burn a core between steps.
//   ideal   serial time / threads, computed: the bound no dispatch beats.
// and steep's default Adam (guard on) on 1 thread and on --threads threads.
// Reports each variant's median step and its speed-up over serial (median of per-round ratios).
//
// --gap-us 0,1000 times every size twice: steps back to back, and each step after 1 ms of busy
// work on the calling thread (harness.hpp, busy_gap), as in a training loop, where the pools'
// workers fall asleep between steps. steep's optimizer_options::serial_below is the answer to
// what that run shows (docs/benchmarks.md).

// clang-format off
#include <steep/steep.hpp> // first: see xsimd_fence.hpp
#include "handwritten.hpp"
#include "harness.hpp"
// clang-format on

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <immintrin.h>
#include <thread>
#include <vector>

namespace {

using namespace steep::bench;

// Workers spin on the epoch for a while after each job (the next step comes within
// microseconds), then sleep on it; run() publishes a job by bumping the epoch.
class spin_pool {
public:
  explicit spin_pool(int threads)
    : parts_(threads) {
    for (int k = 1; k < threads; ++k)
      workers_.emplace_back([this, k] { work(k); });
  }
  ~spin_pool() {
    stop_.store(true, std::memory_order_release);
    epoch_.fetch_add(1, std::memory_order_release);
    epoch_.notify_all();
    for (auto& w : workers_)
      w.join();
  }
  spin_pool(const spin_pool&) = delete;
  spin_pool& operator=(const spin_pool&) = delete;

  // job(k, parts) for k in [0, parts): part 0 on the caller.
  void run(const std::function<void(int, int)>& job) {
    job_ = &job;
    remaining_.store(parts_ - 1, std::memory_order_relaxed);
    epoch_.fetch_add(1, std::memory_order_release);
    epoch_.notify_all();
    job(0, parts_);
    while (remaining_.load(std::memory_order_acquire) != 0)
      _mm_pause();
  }

private:
  void work(int k) {
    std::uint64_t seen = 0;
    for (;;) {
      const auto t0 = std::chrono::steady_clock::now();
      std::uint64_t e;
      while ((e = epoch_.load(std::memory_order_acquire)) == seen) {
        if (std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(20))
          epoch_.wait(seen, std::memory_order_acquire);
        else
          _mm_pause();
      }
      seen = e;
      if (stop_.load(std::memory_order_acquire))
        return;
      (*job_)(k, parts_);
      remaining_.fetch_sub(1, std::memory_order_release);
    }
  }

  int parts_;
  std::atomic<std::uint64_t> epoch_{ 0 };
  std::atomic<int> remaining_{ 0 };
  std::atomic<bool> stop_{ false };
  const std::function<void(int, int)>* job_ = nullptr;
  std::vector<std::thread> workers_;
};

} // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes{ 50000, 65536, 1048576 };
  std::vector<double> gaps{ 0 };
  int threads = 2, rounds = 11, warmup = 20;
  std::string out_path = "bench-dispatch-results.json";
  CLI::App app{ "steep-bench-dispatch: TBB's fork-join against a spinning pool, on small Adam steps" };
  app.add_option("--sizes", sizes, "parameter counts (one tensor)")->delimiter(',')->capture_default_str();
  app.add_option("--threads", threads, "threads of the parallel variants")->check(CLI::Range(2, 1024));
  app.add_option("--gap-us", gaps, "busy microseconds before each timed step (0: back to back)")
    ->delimiter(',')
    ->capture_default_str();
  app.add_option("--rounds", rounds, "interleaved rounds")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--out", out_path, "JSON results file")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  nlohmann::json records = nlohmann::json::array();
  oneapi::tbb::task_arena arena(threads);
  spin_pool pool(threads);
  std::printf("%-8s %9s %4s %10s %12s\n", "dispatch", "params", "thr", "median_us", "vs serial");
  for (double gap : gaps)
    for (std::size_t n : sizes) {
      std::vector<float> p(n, 0.1f), g(n), m(n, 0.f), v(n, 0.f);
      for (std::size_t i = 0; i < n; ++i)
        g[i] = std::sin(0.37f * static_cast<float>(i));
      const auto chunks = hw::make_chunks<float>({ { p.data(), g.data(), m.data(), v.data(), n } });
      const auto s = hw::adam_step<float>(1e-3, 0.9, 0.999, 1e-8, 0.0, 1);
      auto body = [&](const hw::streams<float>& c) { hw::adam_like<0, false>(c, s); };
      const std::function<void(int, int)> part = [&](int k, int parts) {
        const std::size_t nc = chunks.size(), u = static_cast<std::size_t>(k),
                          w = static_cast<std::size_t>(parts);
        for (std::size_t c = nc * u / w; c < nc * (u + 1) / w; ++c)
          body(chunks[c]);
      };
      const int steps = static_cast<int>(std::clamp<std::size_t>(20'000'000 / (n + 1), 3, 400));
      std::vector<variant> vs;
      vs.push_back({ "adam",
                     "serial",
                     [&] {
                       for (const auto& c : chunks)
                         body(c);
                     },
                     {},
                     {} });
      vs.push_back({ "adam", "tbb", [&] { hw::run(arena, chunks, body); }, {}, {} });
      vs.push_back({ "adam", "spin", [&] { pool.run(part); }, {}, {} });
      // steep's default Adam on its own copy of the streams, on 1 thread and on `threads`.
      steep::param_store<float> store1({ { "w", { n } } }), store2({ { "w", { n } } });
      for (auto* st : { &store1, &store2 })
        std::copy(g.begin(), g.end(), st->grad("w").data());
      steep::optimizer steep1(steep::rules::adam(1e-3f), store1, { .threads = 1 });
      steep::optimizer steep2(steep::rules::adam(1e-3f), store2, { .threads = threads });
      vs.push_back({ "adam", "steep_1t", [&] { steep1.step(); }, {}, {} });
      vs.push_back({ "adam", "steep", [&] { steep2.step(); }, {}, {} });
      run_interleaved(vs, rounds, steps, warmup, gap);
      std::printf("(gap %.0f us before each step)\n", gap);
      for (const auto& x : vs) {
        const double med = summarize(x.samples).median, speedup = round_ratio(vs[0], x);
        const int th = x.impl == "serial" || x.impl == "steep_1t" ? 1 : threads;
        std::printf("%-8s %9zu %4d %10.2f %11.2fx\n", x.impl.c_str(), n, th, med * 1e6, speedup);
        records.push_back({ { "name", "adam" },
                            { "impl", x.impl },
                            { "params", n },
                            { "tensors", 1 },
                            { "gap_us", gap },
                            { "threads", th },
                            { "chunks", chunks.size() },
                            { "median_s", med },
                            { "speedup_over_serial", speedup },
                            { "round_medians_s", x.round_medians } });
      }
      const double ideal = std::min<double>(threads, static_cast<double>(chunks.size()));
      std::printf("%-8s %9zu %4d %10.2f %11.2fx\n", "ideal", n, threads,
                  summarize(vs[0].samples).median / ideal * 1e6, ideal);
    }
  const nlohmann::json result{ { "machine", machine_info({ 1, threads }) },
                               { "settings", { { "rounds", rounds }, { "warmup", warmup } } },
                               { "records", records } };
  return write_results(out_path, result, "steep-bench-dispatch") ? 0 : 1;
}
