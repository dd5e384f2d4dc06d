// steep-bench-ns: how close steep's spectral dual map (Newton-Schulz x5, float32) comes to the
// SGEMM rate, and what the symmetric products and the batching of same-shape blocks buy.
//
//   steep-bench-ns                                    # 1024x1024, 1024x4096, 24 x 1024x1024
//   steep-bench-ns --shapes 24x1024x1024 --threads 2 --rounds 3 --out ns.json
//   steep-bench-ns --quick                            # smoke test (ctest)
//
// Shapes are BxRxC: B same-shape blocks of R x C. For each shape and thread count, timed
// interleaved (harness.hpp), one sample = all B blocks once:
//   muon_step  steep     a whole steep::optimizer step of rules::muon over the B blocks: the
//                        elementwise passes plus the matrix phase (symmetric SYRK/SYMM products;
//                        blocks in parallel over TBB with single-threaded BLAS when B >= threads,
//                        else BLAS threaded: .deterministic = false, the fast mode);
//   muon_stacked_step steep  the same B matrices as one stacked (B R, C) block under
//                        rules::muon_stacked(lr, R, C): each slice is a task of the matrix phase
//                        like a block, so it should cost what B separate blocks cost;
//   ns5        steep     newton_schulz{}.apply on each block in turn, BLAS threaded (unbatched);
//   ns5        plain     newton_schulz{.symmetric = false}: explicit transpose + 3 GEMMs per
//                        step, each block in turn, BLAS threaded — the textbook implementation;
//   sgemm      roofline  SGEMM C(m x n) = A(m x m) B(m x n) repeated to the same nominal flops as
//                        NS x5 of all B blocks (m = min(R, C), n = max(R, C)): the BLAS's rate on
//                        this problem size.
// Rates count NS's nominal flops, (4 m^2 n + 2 m^3) x 5 per block, for every
// variant, so gflop_per_s compares like with like; the symmetric form does fewer real flops
// and can exceed the SGEMM rate.
//
// OPENBLAS_CORETYPE is recorded, not changed: OpenBLAS reads it when
// the library loads. Run the binary twice (with and without `env -u OPENBLAS_CORETYPE`) to
// compare kernels; the correctness check below runs in both.

// clang-format off
#include <steep/steep.hpp> // first: see xsimd_fence.hpp
#include "harness.hpp"
// clang-format on

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace steep::bench;
namespace norms = steep::norms;

using shape = block_shape;

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v)
    x = d(gen);
  return v;
}

// Everything one (shape, threads) setting times, allocated and touched up front.
struct setting {
  shape sh;
  int threads;
  std::vector<std::vector<float>> inputs, work;
  std::unique_ptr<steep::param_store<float>> store;
  using muon_t = decltype(steep::rules::muon(0.02f));
  std::unique_ptr<steep::optimizer<muon_t, float>> opt;
  std::unique_ptr<steep::param_store<float>> stacked_store;
  using stacked_t = decltype(steep::rules::muon_stacked(0.02f, 1, 1));
  std::unique_ptr<steep::optimizer<stacked_t, float>> stacked;
  std::vector<float> a, b, c;
  int gemm_reps = 1;

  setting(shape s, int thr)
    : sh(s)
    , threads(thr) {
    std::vector<steep::block_spec<float>> specs;
    for (std::size_t k = 0; k < sh.blocks; ++k) {
      inputs.push_back(random_floats(sh.rows * sh.cols, static_cast<unsigned>(k + 1)));
      work.push_back(inputs.back());
      specs.emplace_back("W" + std::to_string(k), steep::shape_t{ sh.rows, sh.cols });
    }
    store = std::make_unique<steep::param_store<float>>(specs);
    for (std::size_t k = 0; k < sh.blocks; ++k)
      std::copy(inputs[k].begin(), inputs[k].end(), store->block_at(k).grad);
    opt = std::make_unique<steep::optimizer<muon_t, float>>(
      steep::rules::muon(0.02f), *store,
      steep::optimizer_options{ .threads = threads, .deterministic = false });
    stacked_store = std::make_unique<steep::param_store<float>>(
      std::vector<steep::block_spec<float>>{ { "stack", steep::shape_t{ sh.blocks * sh.rows, sh.cols } } });
    for (std::size_t k = 0; k < sh.blocks; ++k)
      std::copy(inputs[k].begin(), inputs[k].end(), stacked_store->block_at(0).grad + k * sh.rows * sh.cols);
    stacked = std::make_unique<steep::optimizer<stacked_t, float>>(
      steep::rules::muon_stacked(0.02f, sh.rows, sh.cols), *stacked_store,
      steep::optimizer_options{ .threads = threads, .deterministic = false });
    const std::size_t m = std::min(sh.rows, sh.cols), n = std::max(sh.rows, sh.cols);
    a = random_floats(m * m, 99);
    b = random_floats(m * n, 98);
    c.assign(m * n, 0.0f);
    // NS x5 nominal flops of all blocks / flops of one m x m x n GEMM.
    gemm_reps = static_cast<int>(std::lround(norms::newton_schulz{}.flops(sh.rows, sh.cols) *
                                             static_cast<double>(sh.blocks) / (2.0 * m * m * n)));
  }

  double flops() const {
    return norms::newton_schulz{}.flops(sh.rows, sh.cols) * static_cast<double>(sh.blocks);
  }

  void ns_each(bool symmetric) {
    steep::kernel::blas::thread_limit blas(threads);
    for (std::size_t k = 0; k < sh.blocks; ++k) {
      std::copy(inputs[k].begin(), inputs[k].end(), work[k].begin());
      norms::newton_schulz{ .symmetric = symmetric }.apply(work[k].data(), sh.rows, sh.cols);
    }
  }
  void sgemm() {
    steep::kernel::blas::thread_limit blas(threads);
    const std::size_t m = std::min(sh.rows, sh.cols), n = std::max(sh.rows, sh.cols);
    for (int r = 0; r < gemm_reps; ++r)
      steep::kernel::blas::gemm<float>(false, false, m, n, m, 1.0f, a.data(), m, b.data(), n, 0.0f, c.data(),
                                       n);
  }
};

// The three NS paths must agree before their times mean anything.
bool check(const shape& sh, int threads) {
  setting s(sh, threads);
  s.opt->step(); // U = (1 - 0.95) g + 0.95 (0.05 g) at t = 1: a multiple of g, so NS(U) = NS(g)
  s.stacked->step();
  s.ns_each(true);
  auto sym = s.work;
  s.ns_each(false);
  double worst = 0;
  for (std::size_t k = 0; k < sh.blocks; ++k) {
    const float* p = s.store->block_at(k).param;
    const double scale = 0.02 * std::sqrt(std::max(1.0, double(sh.rows) / double(sh.cols)));
    const float* q = s.stacked_store->block_at(0).param + k * sh.rows * sh.cols;
    for (std::size_t i = 0; i < sh.rows * sh.cols; ++i) {
      worst = std::max(worst, std::abs(double(q[i]) - double(p[i])) / scale);
      worst = std::max(worst, std::abs(double(sym[k][i]) - double(s.work[k][i])));
      worst = std::max(worst, std::abs(-double(p[i]) / scale - double(sym[k][i])));
    }
  }
  const bool ok = worst < 2e-3;
  std::printf(
    "check %s, %d thread(s): steep step / stacked step / symmetric NS / plain NS agree to %.2e -> %s\n",
    sh.label().c_str(), threads, worst, ok ? "ok" : "FAILED");
  return ok;
}

} // namespace

int main(int argc, char** argv) {
  const int all_threads = oneapi::tbb::info::default_concurrency();
  std::vector<std::string> shape_args{ "1024x1024", "1024x4096", "24x1024x1024" };
  std::vector<int> threads{ 1, all_threads };
  int rounds = 3, steps = 1, warmup = 1;
  std::string out_path = "bench-ns-results.json";
  bool quick = false;

  CLI::App app{ "steep-bench-ns: Newton-Schulz x5 (float32) in steep vs SGEMM and a plain implementation" };
  app.add_option("--shapes", shape_args, "RxC or BxRxC (B same-shape blocks)")
    ->delimiter(',')
    ->capture_default_str();
  app.add_option("--threads", threads, "thread counts")->delimiter(',')->capture_default_str();
  app.add_option("--rounds", rounds, "interleaved rounds")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--steps-per-round", steps, "timed samples per variant per round")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed samples per variant")->capture_default_str();
  app.add_option("--out", out_path, "JSON results file")->capture_default_str();
  app.add_flag("--quick", quick, "smoke test: small shapes, 2 rounds");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    shape_args = { "64x64", "64x256", "6x64x64" };
    rounds = 2;
  }
  const std::vector<shape> shapes = parse_block_shapes(shape_args);
  std::vector<int> thread_list;
  try {
    thread_list = distinct_threads(threads);
  } catch (const std::invalid_argument& e) {
    std::cerr << "steep-bench-ns: " << e.what() << '\n';
    return 2;
  }

  for (int t : thread_list)
    if (!check({ 3, 48, 80 }, t) || !check({ 2, 80, 48 }, t))
      return 1;

  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  nlohmann::json records = nlohmann::json::array(), ratios = nlohmann::json::array();
  std::printf("\n%-17s %-9s %-14s %4s %10s %10s %10s %9s\n", "name", "impl", "shape", "thr", "median_ms",
              "min_ms", "max_ms", "GFLOP/s");
  for (const auto& sh : shapes)
    for (int thr : thread_list) {
      setting s(sh, thr);
      std::vector<variant> vs;
      vs.push_back({ "muon_step", "steep", [&] { s.opt->step(); }, {}, {} });
      vs.push_back({ "ns5", "steep", [&] { s.ns_each(true); }, {}, {} });
      vs.push_back({ "ns5", "plain", [&] { s.ns_each(false); }, {}, {} });
      vs.push_back({ "sgemm", "roofline", [&] { s.sgemm(); }, {}, {} });
      vs.push_back({ "muon_stacked_step", "steep", [&] { s.stacked->step(); }, {}, {} });
      run_interleaved(vs, rounds, steps, warmup);
      for (const auto& v : vs) {
        const auto [med, lo, hi] = summarize(v.samples);
        const double gf = s.flops() / med / 1e9;
        std::printf("%-17s %-9s %-14s %4d %10.2f %10.2f %10.2f %9.1f\n", v.name.c_str(), v.impl.c_str(),
                    sh.label().c_str(), thr, med * 1e3, lo * 1e3, hi * 1e3, gf);
        records.push_back({ { "name", v.name },
                            { "impl", v.impl },
                            { "shape", sh.label() },
                            { "blocks", sh.blocks },
                            { "rows", sh.rows },
                            { "cols", sh.cols },
                            { "threads", thr },
                            { "dtype", "float32" },
                            { "ns_steps", 5 },
                            { "nominal_flops", s.flops() },
                            { "median_s", med },
                            { "min_s", lo },
                            { "max_s", hi },
                            { "samples", v.samples.size() },
                            { "round_medians_s", v.round_medians },
                            { "gflop_per_s", gf } });
      }
      // Rate ratios = inverse time ratios (same nominal flops).
      const double step_vs_sgemm = round_ratio(vs[3], vs[0]);
      const double ns_vs_sgemm = round_ratio(vs[3], vs[1]);
      const double step_vs_plain = round_ratio(vs[2], vs[0]);
      const double ns_vs_plain = round_ratio(vs[2], vs[1]);
      const double stacked_vs_step = round_ratio(vs[0], vs[4]);
      std::printf(
        "  rate ratios: muon_step/sgemm %.3f, ns5/sgemm %.3f, muon_step/plain %.3f, ns5/plain %.3f, "
        "muon_stacked_step/muon_step %.3f\n",
        step_vs_sgemm, ns_vs_sgemm, step_vs_plain, ns_vs_plain, stacked_vs_step);
      ratios.push_back({ { "shape", sh.label() },
                         { "threads", thr },
                         { "steep_muon_step_over_sgemm_rate", step_vs_sgemm },
                         { "steep_ns5_over_sgemm_rate", ns_vs_sgemm },
                         { "steep_muon_step_over_plain_rate", step_vs_plain },
                         { "steep_ns5_over_plain_rate", ns_vs_plain },
                         { "steep_muon_stacked_step_over_muon_step_rate", stacked_vs_step } });
    }

  const nlohmann::json result{
    { "machine", machine_info(thread_list) },
    { "settings",
      { { "rounds", rounds },
        { "steps_per_round", steps },
        { "warmup", warmup },
        { "openblas_coretype", coretype ? coretype : "(unset)" },
        { "ratio_method",
          "median over rounds of per-round time ratios; rates count NS x5 nominal flops" } } },
    { "records", records },
    { "ratios", ratios }
  };
  return write_results(out_path, result, "steep-bench-ns") ? 0 : 1;
}
