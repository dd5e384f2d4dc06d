// steep-bench-train: one full-batch training step of the main job's model (docs/benchmarks.md,
// "The main job's training step"), as a fraction of the in-process DGEMM rate for the same flops.
//
//   ./build/bench/steep-bench-train --samples 1000 --width 64 --threads 1,2 --rounds 7 --out train.json
//
// The step is: forward (X W1^T, relu^2, H a^T), the logistic loss and its output derivative in
// log-space, backward (dW1 = dZ^T X, da, dH), one optimizer step over all blocks. At the paper
// preset (1000 samples of 784 pixels, width 64, float64) it is GEMM-bound: the two n x d x m
// products cost 4 n d m flops, everything else is O(n m + d m). The reference is DGEMM on the
// same shapes ((m x d)(d x n), then (m x n)(n x d)), timed interleaved with the steps in one process
// (the machines are noisy: bench/harness.hpp). Rules timed: Adam (eps = 0, elementwise) and Muon
// with the exact polar factor (an SVD of the 64 x 784 block per step), from
// dsl/steep/rules/implicit_bias.hpp. bench/torch_train_step.py times the same step in PyTorch.

// clang-format off
#include <steep/steep.hpp> // first: see xsimd_fence.hpp
#include "harness.hpp"
// clang-format on

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <random>
#include <steep/train/trainer.hpp>
#include <string>
#include <vector>

namespace {

namespace md = steep::model;
namespace tr = steep::train;
using net_t = md::mlp_t<2, md::relu_pow<2>>;

tr::dataset<double> synthetic_images(std::size_t n, std::size_t d) {
  // Random non-negative "pixels" (the step's cost does not depend on the values).
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(0, 1);
  tr::dataset<double> data;
  data.dim = d;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < d; ++j)
      data.x.push_back(u(rng));
    data.labels.push_back(i % 2 ? 1 : -1);
  }
  tr::normalize_rows(data);
  return data;
}

} // namespace

int main(int argc, char** argv) {
  std::size_t samples = 1000, dim = 784, width = 64;
  std::vector<int> threads{ 1, 2 };
  int rounds = 7, steps = 20, warmup = 5;
  std::string out = "bench-train.json";
  bool quick = false;
  CLI::App app{ "steep-bench-train: a training step of the main job's model vs DGEMM" };
  app.add_option("--samples", samples, "training samples (full batch)");
  app.add_option("--dim", dim, "input dimension");
  app.add_option("--width", width, "hidden width");
  app.add_option("--threads", threads, "thread counts")->delimiter(',');
  app.add_option("--rounds", rounds, "interleaved rounds");
  app.add_option("--steps", steps, "timed steps per variant per round");
  app.add_option("--out", out, "JSON results");
  app.add_flag("--quick", quick, "smoke run: small sizes, 2 rounds");
  CLI11_PARSE(app, argc, argv);
  if (quick)
    samples = 100, width = 16, rounds = 2, steps = 3, warmup = 1, threads = { 1 };

  const auto data = synthetic_images(samples, dim);
  nlohmann::json result;
  result["machine"] = steep::bench::machine_info(threads);
  result["shape"] = { { "samples", samples }, { "dim", dim }, { "width", width } };
  const double flops =
    4.0 * double(samples) * double(dim) * double(width) + 6.0 * double(samples) * double(width);
  std::printf("%-24s %8s %12s %12s %10s\n", "variant", "threads", "median_ms", "gflop_per_s", "vs_dgemm");
  for (int t : steep::bench::distinct_threads(threads)) {
    steep::kernel::blas::thread_limit blas(t);
    md::network<net_t, double> net_adam({ dim, width, 1 }, samples), net_muon({ dim, width, 1 }, samples);
    net_adam.init_gaussian(0.1, 1);
    net_muon.init_gaussian(0.1, 1);
    const md::loss_fn loss{ md::loss_kind::logistic };
    tr::full_batch<net_t, double> task_adam(net_adam, data, loss), task_muon(net_muon, data, loss);
    using steep::expr::inv_power;
    steep::optimizer adam(steep::rules::adam_paper(inv_power(1e-3, 0.8)), net_adam.store(), { .threads = t });
    steep::optimizer muon(steep::rules::muon_paper(inv_power(1e-2, 0.8)), net_muon.store(), { .threads = t });
    // DGEMM with the step's two big products.
    std::vector<double> w(width * dim, 0.01), z(samples * width), g(width * dim);
    auto make = [](std::string name, std::string impl, std::function<void()> f) {
      steep::bench::variant v;
      v.name = std::move(name), v.impl = std::move(impl), v.step = std::move(f);
      return v;
    };
    std::vector<steep::bench::variant> vs = {
      make("dgemm_same_flops", "openblas",
           [&] {
             // The step's two products in their faster, feature-major orientation (model/network.hpp).
             steep::kernel::blas::gemm<double>(false, true, width, samples, dim, 1.0, w.data(), dim,
                                               data.x.data(), dim, 0.0, z.data(), samples);
             steep::kernel::blas::gemm<double>(false, false, width, dim, samples, 1.0, z.data(), samples,
                                               data.x.data(), dim, 0.0, g.data(), dim);
           }),
      make("train_step_adam", "steep",
           [&] {
             task_adam.gradient();
             adam.step();
           }),
      make("train_step_muon_exact", "steep",
           [&] {
             task_muon.gradient();
             muon.step();
           }),
      make("forward_backward", "steep", [&] { task_adam.gradient(); }),
    };
    steep::bench::run_interleaved(vs, rounds, steps, warmup);
    for (const auto& v : vs) {
      const auto sp = steep::bench::summarize(v.samples);
      const double ratio = 1.0 / steep::bench::round_ratio(v, vs[0]);
      std::printf("%-24s %8d %12.3f %12.2f %10.3f\n", v.name.c_str(), t, sp.median * 1e3,
                  flops / sp.median * 1e-9, ratio);
      result["records"].push_back({ { "name", v.name },
                                    { "impl", v.impl },
                                    { "threads", t },
                                    { "dtype", "float64" },
                                    { "median_s", sp.median },
                                    { "min_s", sp.min },
                                    { "max_s", sp.max },
                                    { "gflop_per_s", flops / sp.median * 1e-9 },
                                    { "fraction_of_dgemm", ratio } });
    }
  }
  return steep::bench::write_results(out, result, "steep-bench-train") ? 0 : 1;
}
