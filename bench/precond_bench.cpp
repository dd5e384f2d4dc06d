// steep-bench-precond: what Shampoo's step costs in steep (float32), amortized over its refresh
// interval, against Muon's step on the same blocks, and its refresh's eigendecomposition against
// LAPACK's own.
//
//   steep-bench-precond                                 # 256x256, 256x1024, 8x256x256; 1 and 2 threads
//   steep-bench-precond --shapes 512x512 --threads 1 --rounds 3 --out precond.json
//   steep-bench-precond --quick                         # smoke test (ctest)
//
// Shapes are BxRxC: B same-shape blocks of R x C. For each shape and thread count, timed
// interleaved (harness.hpp), one sample = `batch` optimizer steps over all B blocks (the time per
// step is reported, so a sample of an interval-k Shampoo holds batch / k refreshes: the median is
// the amortized cost, not the cheap steps' alone):
//   shampoo_every1    steep   rules::shampoo(lr, {.every = 1}): L += G G^T, R += G^T G (SYRK), the
//                             roots (LAPACK syevd) every step, L_root G R_root (two GEMMs);
//   shampoo_every10   steep   the roots every 10 steps, the stale ones between;
//   shampoo_every100  steep   every 100 steps;
//   muon_step         steep   rules::muon (Newton-Schulz x5) on the same blocks, for scale;
//   eigh_refresh      steep   linalg::sym_eigh of the first block's R factor (the refresh's
//                             eigendecomposition, with its transposition to column eigenvectors);
//   eigh_lapack       lapack  LAPACK's ssyevd alone on the same matrix (workspace allocated once):
//                             the rate a refresh's eigendecomposition can have here.
// The 1024-wide shapes of steep-bench-ns take seconds per refresh on a 2-core VM (the R factor of
// a 1024 x 4096 block is 4096 x 4096), so the defaults are a quarter of them.

// clang-format off
#include <steep/steep.hpp> // first: see xsimd_fence.hpp
#include "harness.hpp"
// clang-format on

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <steep/linalg.hpp>
#include <string>
#include <vector>

namespace {

using namespace steep::bench;

using shape = block_shape;

using shampoo_rule = decltype(steep::rules::shampoo(1e-3f));
using muon_rule = decltype(steep::rules::muon(0.02f));

// Everything one (shape, threads) setting times, allocated and filled up front.
struct setting {
  shape sh;
  std::unique_ptr<steep::param_store<float>> store;
  std::vector<std::unique_ptr<steep::optimizer<shampoo_rule, float>>> shampoo; // every 1, 10, 100
  std::unique_ptr<steep::optimizer<muon_rule, float>> muon;
  std::vector<float> factor, work, w;
  volatile float sink = 0; // keeps each eigendecomposition's result alive

  setting(shape s, int threads)
    : sh(s) {
    std::vector<steep::block_spec<float>> specs;
    for (std::size_t k = 0; k < sh.blocks; ++k)
      specs.emplace_back("W" + std::to_string(k), steep::shape_t{ sh.rows, sh.cols });
    store = std::make_unique<steep::param_store<float>>(specs);
    std::mt19937 rng(3);
    std::normal_distribution<float> n(0.f, 1.f);
    for (std::size_t k = 0; k < sh.blocks; ++k)
      for (std::size_t i = 0; i < store->block_at(k).size; ++i) {
        store->block_at(k).param[i] = 0.02f * n(rng);
        store->block_at(k).grad[i] = n(rng);
      }
    const steep::optimizer_options opts{ .threads = threads };
    for (int every : { 1, 10, 100 })
      shampoo.push_back(std::make_unique<steep::optimizer<shampoo_rule, float>>(
        steep::rules::shampoo(1e-4f, { .eps = 1e-6, .every = every }), *store, opts));
    muon = std::make_unique<steep::optimizer<muon_rule, float>>(steep::rules::muon(1e-4f), *store, opts);
    for (auto& o : shampoo) // factors of full rank before timing
      for (int t = 0; t < 2; ++t)
        o->step();
    const auto r = shampoo[0]->state<float>("W0", "R");
    factor.assign(r.begin(), r.end());
    w.resize(sh.cols);
  }

  std::size_t n() const { return sh.cols; }
  void eigh_steep() { sink = steep::linalg::sym_eigh(factor.data(), n()).values[0]; }
  void eigh_lapack() {
    work = factor;
    steep::kernel::lapack::syevd(n(), work.data(), w.data());
    sink = w[0];
  }
  template <class Opt>
  static void steps(Opt& o, int k) {
    for (int t = 0; t < k; ++t)
      o.step();
  }
};

} // namespace

int main(int argc, char** argv) {
  CLI::App app{ "steep-bench-precond: Shampoo's amortized step, and its refresh's eigh against LAPACK's" };
  std::vector<std::string> shape_args{ "256x256", "256x1024", "8x256x256" };
  std::vector<int> threads{ 1, 2 };
  int rounds = 5, samples = 3, warmup = 1, batch = 100;
  std::string out_path = "bench-precond.json";
  bool quick = false;
  app.add_option("--shapes", shape_args, "RxC or BxRxC (B same-shape blocks)")->delimiter(',');
  app.add_option("--threads", threads, "thread counts")->delimiter(',');
  app.add_option("--rounds", rounds, "interleaved rounds");
  app.add_option("--samples", samples, "samples per variant per round");
  app.add_option("--batch", batch, "optimizer steps per sample (a multiple of 100 holds whole intervals)");
  app.add_option("--out", out_path, "JSON results");
  app.add_flag("--quick", quick, "smoke test: small shapes, 2 rounds");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    shape_args = { "32x32", "32x96", "3x32x32" };
    rounds = 2;
    samples = 1;
    batch = 100;
  }
  const std::vector<shape> shapes = parse_block_shapes(shape_args);
  std::vector<int> thread_list;
  try {
    thread_list = distinct_threads(threads);
  } catch (const std::invalid_argument& e) {
    std::cerr << "steep-bench-precond: " << e.what() << '\n';
    return 2;
  }

  nlohmann::json records = nlohmann::json::array(), ratios = nlohmann::json::array();
  std::printf("\n%-17s %-7s %-14s %4s %12s %12s %12s\n", "name", "impl", "shape", "thr", "median_ms",
              "min_ms", "max_ms");
  for (const auto& sh : shapes)
    for (int thr : thread_list) {
      setting s(sh, thr);
      std::vector<variant> vs;
      const int b = batch;
      vs.push_back({ "shampoo_every1", "steep", [&] { setting::steps(*s.shampoo[0], b); }, {}, {} });
      vs.push_back({ "shampoo_every10", "steep", [&] { setting::steps(*s.shampoo[1], b); }, {}, {} });
      vs.push_back({ "shampoo_every100", "steep", [&] { setting::steps(*s.shampoo[2], b); }, {}, {} });
      vs.push_back({ "muon_step", "steep", [&] { setting::steps(*s.muon, b); }, {}, {} });
      // The eigendecompositions with OpenBLAS at this setting's thread count, as a refresh runs.
      vs.push_back({ "eigh_refresh",
                     "steep",
                     [&] {
                       steep::kernel::blas::thread_limit lim(thr);
                       s.eigh_steep();
                     },
                     {},
                     {} });
      vs.push_back({ "eigh_lapack",
                     "lapack",
                     [&] {
                       steep::kernel::blas::thread_limit lim(thr);
                       s.eigh_lapack();
                     },
                     {},
                     {} });
      run_interleaved(vs, rounds, samples, warmup);
      for (std::size_t i = 0; i < vs.size(); ++i) {
        const double per = i < 4 ? 1.0 / b : 1.0; // optimizer variants: per step
        const auto [med, lo, hi] = summarize(vs[i].samples);
        std::printf("%-17s %-7s %-14s %4d %12.3f %12.3f %12.3f\n", vs[i].name.c_str(), vs[i].impl.c_str(),
                    sh.label().c_str(), thr, med * per * 1e3, lo * per * 1e3, hi * per * 1e3);
        records.push_back({ { "name", vs[i].name },
                            { "impl", vs[i].impl },
                            { "shape", sh.label() },
                            { "threads", thr },
                            { "dtype", "float32" },
                            { "steps_per_sample", i < 4 ? b : 0 },
                            { "median_s", med * per },
                            { "min_s", lo * per },
                            { "max_s", hi * per },
                            { "samples", vs[i].samples.size() } });
      }
      const double eigh_rate = round_ratio(vs[5], vs[4]); // LAPACK's time / steep's: >= 0.9 is the goal
      const double every10 = round_ratio(vs[0], vs[1]), every100 = round_ratio(vs[0], vs[2]);
      const double vs_muon = round_ratio(vs[3], vs[2]);
      std::printf(
        "  ratios: eigh steep/lapack rate %.3f; every-1 step time / every-10 %.2f, / every-100 %.2f; "
        "muon step / shampoo every-100 step %.2f\n",
        eigh_rate, every10, every100, vs_muon);
      ratios.push_back({ { "shape", sh.label() },
                         { "threads", thr },
                         { "eigh_steep_over_lapack_rate", eigh_rate },
                         { "shampoo_every1_over_every10_time", every10 },
                         { "shampoo_every1_over_every100_time", every100 },
                         { "muon_over_shampoo_every100_time", vs_muon } });
      // describe()'s figure against what the optimizer holds: L, R and the two roots per block.
      const std::size_t expected = sh.blocks * 2 * (sh.rows * sh.rows + sh.cols * sh.cols) * sizeof(float);
      const std::string d = s.shampoo[0]->describe();
      const bool state_ok = d.find("matrix-stage state: " + std::to_string(expected / sizeof(float)) +
                                   " values, " + std::to_string(expected) + " bytes") != std::string::npos;
      std::printf("  matrix-stage state: %zu bytes (%.2f per parameter); describe() says so: %s\n", expected,
                  static_cast<double>(expected) / static_cast<double>(sh.blocks * sh.rows * sh.cols),
                  state_ok ? "yes" : "NO");
      if (!state_ok)
        return 1;
    }

  const nlohmann::json result{ { "machine", machine_info(thread_list) },
                               { "settings",
                                 { { "rounds", rounds },
                                   { "samples_per_round", samples },
                                   { "warmup", warmup },
                                   { "steps_per_sample", batch },
                                   { "ratio_method", "median over rounds of per-round time ratios" } } },
                               { "records", records },
                               { "ratios", ratios } };
  return write_results(out_path, result, "steep-bench-precond") ? 0 : 1;
}
