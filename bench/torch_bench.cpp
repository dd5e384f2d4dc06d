// steep-bench-torch: steep's Adam and PyTorch's, in one process, interleaved (harness.hpp), on
// the same parameter and gradient memory. PyTorch runs through libtorch, the C++ library under
// torch.optim, with no Python in the loop: what is compared is the CPU kernels.
//
//   steep-bench-torch                                   # 50K, 64K, 1M, 16M; 1 and 200 tensors
//   steep-bench-torch --sizes 65536 --threads 1,2 --rounds 9 --out torch.json
//
// Built only with -DSTEEP_BENCH_TORCH=ON (needs libtorch-dev: scripts/install-deps.sh --peers).
// For each (size, tensors, threads), float32, lr 1e-3, betas (0.9, 0.999), eps 1e-8:
//   steep          steep::rules::adam with its defaults (the non-finite guard on: refuse);
//   steep_noguard  the same with the guard off: the same work as torch's, which checks nothing
//                  (its time over steep's is the guard's cost: one more read of the gradient);
//   torch_forloop  torch::optim::Adam, libtorch's own optimizer (torch.optim.Adam's for-loop
//                  path: one tensor at a time, several kernels per tensor);
//   torch_foreach  torch.optim.Adam's foreach path (_multi_tensor_adam of torch 1.13's
//                  torch/optim/adam.py, capturable=False) transcribed op for op onto the same
//                  at::_foreach_* kernels, with the per-tensor step counters as tensors.
// torch_fused has no CPU kernel in the installed torch (1.13); a newer libtorch would add it.
// Both libraries get the same thread count (TBB arena for steep, at::set_num_threads for torch).
// OpenMP keeps its default wait policy: torch's threads spin briefly between its kernels. With
// OMP_WAIT_POLICY=PASSIVE each of torch's parallel regions paid a futex wake-up (torch up to 5x
// slower at 2 threads: 17 ms instead of 3.2 ms at 1M in 200 tensors), while steep's times did not
// move with either setting (65536 in 200 tensors, 2 threads: 18.3 and 18.4 us).
// Before timing, the three are checked against each other from the same start (relative error
// < 1e-5 after 3 steps).

// clang-format off
#include <steep/steep.hpp> // first: see xsimd_fence.hpp
#include "harness.hpp"
// clang-format on

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <torch/optim/adam.h>
#include <torch/version.h>
#include <vector>

namespace {

using namespace steep::bench;
constexpr double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
using adam_t = decltype(steep::rules::adam(float(lr)));

// torch.optim.Adam's foreach step (torch 1.13, weight_decay 0, amsgrad False, capturable False).
struct foreach_adam {
  std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;

  void step() {
    at::NoGradGuard no_grad;
    at::_foreach_add_(steps, 1);
    at::_foreach_mul_(exp_avgs, beta1);
    at::_foreach_add_(exp_avgs, grads, 1 - beta1);
    at::_foreach_mul_(exp_avg_sqs, beta2);
    at::_foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2);
    std::vector<at::Scalar> step_size, bias_correction2_sqrt;
    for (const auto& s : steps) {
      const double t = s.item<double>();
      step_size.emplace_back(-(lr / (1 - std::pow(beta1, t))));
      bias_correction2_sqrt.emplace_back(std::sqrt(1 - std::pow(beta2, t)));
    }
    auto exp_avg_sq_sqrt = at::_foreach_sqrt(exp_avg_sqs);
    at::_foreach_div_(exp_avg_sq_sqrt, bias_correction2_sqrt);
    auto denom = at::_foreach_add(exp_avg_sq_sqrt, eps);
    at::_foreach_addcdiv_(params, exp_avgs, denom, step_size);
  }
};

// One (size, tensors, threads) setting: a steep store whose blocks the torch tensors view.
struct setting {
  std::size_t size, tensors;
  int threads;
  std::unique_ptr<steep::param_store<float>> store;
  std::unique_ptr<steep::optimizer<adam_t, float>> steep_opt, steep_noguard;
  std::vector<at::Tensor> params, grads; // views of the store's blocks
  std::unique_ptr<torch::optim::Adam> forloop;
  foreach_adam foreach;

  setting(std::size_t n, std::size_t k, int thr)
    : size(n)
    , tensors(k)
    , threads(thr) {
    std::vector<steep::block_spec<float>> specs;
    for (std::size_t b = 0; b < k; ++b)
      specs.emplace_back("t" + std::to_string(b), steep::shape_t{ n * (b + 1) / k - n * b / k });
    store = std::make_unique<steep::param_store<float>>(specs);
    for (std::size_t b = 0; b < k; ++b) {
      const auto& blk = store->block_at(b);
      for (std::size_t i = 0; i < blk.size; ++i) {
        blk.param[i] = 0.5f * std::sin(0.37f * static_cast<float>(i + 7 * b));
        blk.grad[i] = std::cos(0.11f * static_cast<float>(i + 3 * b));
      }
      const auto len = static_cast<std::int64_t>(blk.size);
      params.push_back(at::from_blob(blk.param, { len }, at::kFloat).set_requires_grad(true));
      grads.push_back(at::from_blob(blk.grad, { len }, at::kFloat));
      params.back().mutable_grad() = grads.back();
      foreach
        .params.push_back(params.back());
      foreach
        .grads.push_back(grads.back());
      foreach
        .exp_avgs.push_back(at::zeros({ len }, at::kFloat));
      foreach
        .exp_avg_sqs.push_back(at::zeros({ len }, at::kFloat));
      foreach
        .steps.push_back(at::zeros({}, at::kFloat));
    }
    steep_opt = std::make_unique<steep::optimizer<adam_t, float>>(
      steep::rules::adam(float(lr)), *store, steep::optimizer_options{ .threads = threads });
    steep_noguard = std::make_unique<steep::optimizer<adam_t, float>>(
      steep::rules::adam(float(lr)), *store,
      steep::optimizer_options{ .threads = threads, .nonfinite = steep::nonfinite_policy::off });
    forloop = std::make_unique<torch::optim::Adam>(
      params, torch::optim::AdamOptions(lr).betas({ beta1, beta2 }).eps(eps));
  }
};

// The three from the same start agree after 3 steps (each run on a copy of the start).
bool check(std::size_t n, std::size_t k) {
  auto run = [&](int which) {
    setting s(n, k, 1);
    for (int t = 0; t < 3; ++t)
      if (which == 0)
        s.steep_opt->step();
      else if (which == 1)
        s.forloop->step();
      else
        s.foreach.step();
    std::vector<float> out;
    for (const auto& b : s.store->blocks())
      out.insert(out.end(), b.param, b.param + b.size);
    return out;
  };
  const auto a = run(0), b = run(1), c = run(2);
  double worst = 0, norm = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max({ worst, std::abs(double(a[i]) - double(b[i])), std::abs(double(a[i]) - double(c[i])) });
    norm = std::max(norm, std::abs(double(a[i])));
  }
  const bool ok = worst <= 1e-5 * norm;
  std::printf("check %zu params / %zu tensors: steep, torch_forloop, torch_foreach agree to %.2e -> %s\n", n,
              k, worst / norm, ok ? "ok" : "FAILED");
  return ok;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes{ 50000, 65536, 1048576, 16777216 };
  std::vector<int> threads{ 1, oneapi::tbb::info::default_concurrency() };
  std::size_t many = 200;
  int rounds = 7, warmup = 2;
  std::string out_path = "bench-torch-results.json";
  CLI::App app{ "steep-bench-torch: steep's Adam and libtorch's, interleaved in one process" };
  app.add_option("--sizes", sizes, "parameter counts")->delimiter(',')->capture_default_str();
  app.add_option("--threads", threads, "thread counts")->delimiter(',')->capture_default_str();
  app.add_option("--tensors", many, "tensor count of the many-tensor layout")->capture_default_str();
  app.add_option("--rounds", rounds, "interleaved rounds")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps per variant")->capture_default_str();
  app.add_option("--out", out_path, "JSON results file")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  std::vector<int> thread_list;
  try {
    thread_list = distinct_threads(threads);
  } catch (const std::invalid_argument& e) {
    std::cerr << "steep-bench-torch: " << e.what() << '\n';
    return 2;
  }
  if (!check(1003, 3) || !check(65536, many))
    return 1;

  nlohmann::json records = nlohmann::json::array(), ratios = nlohmann::json::array();
  std::printf("\n%-14s %9s %7s %4s %11s %11s %11s\n", "impl", "params", "tensors", "thr", "median_us",
              "min_us", "max_us");
  for (std::size_t n : sizes)
    for (int thr : thread_list) {
      at::set_num_threads(thr);
      // Both layouts at once, their variants alternating (1 tensor, 200 tensors, ...): each
      // variant follows one on other arrays. Right after a variant on the same arrays, a step
      // finds them warmer (docs/benchmarks.md: the harness's order).
      std::vector<std::unique_ptr<setting>> ss;
      for (std::size_t k : { std::size_t{ 1 }, many })
        ss.push_back(std::make_unique<setting>(n, k, thr));
      // Enough steps per round for the clock at small sizes (about 20 ms of steep per round).
      const int steps = static_cast<int>(std::clamp<std::size_t>(20'000'000 / (n + 1), 3, 400));
      constexpr std::size_t per = 4; // variants per layout, in this order:
      std::vector<variant> vs;
      for (std::size_t j = 0; j < per; ++j)
        for (auto& sp : ss) {
          setting& s = *sp;
          const std::function<void()> f[per] = { [&s] { s.steep_opt->step(); },
                                                 [&s] { s.steep_noguard->step(); },
                                                 [&s] { s.forloop->step(); }, [&s] { s.foreach.step(); } };
          const char* impl[per] = { "steep", "steep_noguard", "torch_forloop", "torch_foreach" };
          vs.push_back({ "adam", impl[j], f[j], {}, {}, s.tensors });
        }
      run_interleaved(vs, rounds, steps, warmup);
      for (const auto& v : vs) {
        const auto [med, lo, hi] = summarize(v.samples);
        std::printf("%-14s %9zu %7zu %4d %11.1f %11.1f %11.1f\n", v.impl.c_str(), n, v.tensors, thr,
                    med * 1e6, lo * 1e6, hi * 1e6);
        records.push_back({ { "name", v.name },
                            { "impl", v.impl },
                            { "dtype", "float32" },
                            { "params", n },
                            { "tensors", v.tensors },
                            { "threads", thr },
                            { "median_s", med },
                            { "min_s", lo },
                            { "max_s", hi },
                            { "samples", v.samples.size() },
                            { "round_medians_s", v.round_medians },
                            { "process", "same" } });
      }
      for (std::size_t l = 0; l < ss.size(); ++l) {
        const auto at = [&](std::size_t j) -> const variant& { return vs[j * ss.size() + l]; };
        const double forloop = round_ratio(at(2), at(0)), foreach_ratio = round_ratio(at(3), at(0));
        const double forloop_off = round_ratio(at(2), at(1)), foreach_off = round_ratio(at(3), at(1));
        std::printf("  %zu tensor(s), torch / steep: forloop %.2fx, foreach %.2fx; guard off: forloop %.2fx, "
                    "foreach %.2fx\n",
                    ss[l]->tensors, forloop, foreach_ratio, forloop_off, foreach_off);
        ratios.push_back({ { "name", "adam" },
                           { "params", n },
                           { "tensors", ss[l]->tensors },
                           { "threads", thr },
                           { "torch_forloop_over_steep", forloop },
                           { "torch_foreach_over_steep", foreach_ratio },
                           { "torch_forloop_over_steep_noguard", forloop_off },
                           { "torch_foreach_over_steep_noguard", foreach_off } });
      }
    }
  const nlohmann::json result{
    { "machine", machine_info(thread_list) },
    { "torch_version", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                         std::to_string(TORCH_VERSION_PATCH) },
    { "settings",
      { { "rounds", rounds },
        { "warmup", warmup },
        { "omp_wait_policy", wait ? wait : "(unset)" },
        { "ratio_method", "median over rounds of per-round time ratios (torch / steep)" } } },
    { "records", records },
    { "ratios", ratios }
  };
  return write_results(out_path, result, "steep-bench-torch") ? 0 : 1;
}
