// steep-bench-catalogue: one step of every rule of the catalogue (steep/rules/catalogue.hpp), timed
// interleaved on one model-shaped store, so a rule added to the catalogue is timed with no change
// here. steep-bench times the elementwise rules against hand-written loops; this times them all,
// routes and matrix stages included, against one another and against the bytes their update pass
// moves (describe(): "bytes per parameter (update pass)").
//
//   steep-bench-catalogue --params 1048576 --threads 1,2 --out catalogue.json
//   steep-bench-catalogue --quick          # smoke test: a small model, 2 rounds
//
// The store: `layers` square hidden matrices of width w, each with a bias vector, and a head
// vector, w a multiple of 6 chosen so the model has about --params parameters (a rule that takes matrices
// only is given the matrices alone). Each rule runs its catalogue example's settings, float32, with the
// non-finite guard off, on gradients that stay fixed (the step's cost does not depend on them).
// Reported per rule and thread count: the median step time over rounds (each round's median of
// --steps steps), its spread, nanoseconds per parameter, and the update pass's bytes per
// parameter over the step time (GB/s; a rule with reductions or a matrix phase moves more).

#include "harness.hpp"

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <deque>
#include <nlohmann/json.hpp>
#include <steep/rules/catalogue.hpp>
#include <steep/steep.hpp>
#include <string>
#include <vector>

namespace {

using T = float;

// `layers` hidden matrices w x w with a bias each, and a head of w: about `params` in all.
steep::param_store<T> make_store(std::size_t params, std::size_t layers, bool vectors) {
  // A multiple of 6, so the catalogue's stacked examples (2 x 3 slices) divide every matrix.
  const auto w = 6 * std::max<std::size_t>(
                       1, static_cast<std::size_t>(std::sqrt(static_cast<double>(params) / layers) / 6));
  std::vector<steep::block_spec<T>> specs;
  for (std::size_t k = 0; k < layers; ++k) {
    specs.emplace_back("W" + std::to_string(k + 1), steep::shape_t{ w, w });
    if (vectors)
      specs.emplace_back("b" + std::to_string(k + 1), steep::shape_t{ w });
  }
  if (vectors)
    specs.emplace_back("head", steep::shape_t{ w }, steep::block_role::head);
  steep::param_store<T> store(std::move(specs));
  for (std::size_t b = 0; b < store.size(); ++b) {
    const auto& blk = store.block_at(b);
    for (std::size_t i = 0; i < blk.size; ++i) {
      blk.param[i] = static_cast<T>(0.01 * std::sin(0.1 * static_cast<double>(i + b)));
      blk.grad[i] = static_cast<T>(0.01 * std::cos(0.3 * static_cast<double>(i + 7 * b)));
    }
  }
  return store;
}

} // namespace

int main(int argc, char** argv) {
  std::size_t params = 1 << 20, layers = 4;
  std::vector<int> threads{ 1, oneapi::tbb::info::default_concurrency() };
  int rounds = 5, steps = 3, warmup = 2;
  std::string out_path = "bench-catalogue.json";
  bool quick = false;
  CLI::App app{ "steep-bench-catalogue: one step of every catalogue rule, timed interleaved on one model" };
  app.add_option("--params", params, "parameters of the model (about)")->capture_default_str();
  app.add_option("--layers", layers, "hidden matrices (each with a bias)")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "thread counts")->delimiter(',')->capture_default_str();
  app.add_option("--rounds", rounds, "interleaved rounds")->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed steps per rule per round")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps per rule first")->check(CLI::NonNegativeNumber);
  app.add_option("--out", out_path, "JSON results file")->capture_default_str();
  app.add_flag("--quick", quick, "smoke test: 20,000 parameters, 2 rounds");
  CLI11_PARSE(app, argc, argv);
  if (quick)
    params = 20000, rounds = 2, steps = 2, warmup = 1;
  try {
    const auto counts = steep::bench::distinct_threads(threads);
    nlohmann::json result{ { "tool", "steep-bench-catalogue" },
                           { "machine", steep::bench::machine_info(counts) },
                           { "settings",
                             { { "params", params },
                               { "layers", layers },
                               { "rounds", rounds },
                               { "steps", steps },
                               { "dtype", "float32" } } } };
    std::printf("%-26s %7s %12s %10s %10s %8s\n", "rule", "threads", "ms/step", "ns/param", "GB/s upd",
                "B/param");
    for (int n : counts) {
      // Every rule's optimizer over its own copy of the store, then all timed in one interleaved run.
      // A deque: each optimizer keeps a reference to its store, which must not move as more are added.
      std::deque<steep::param_store<T>> stores;
      std::vector<std::unique_ptr<steep::any_optimizer<T>>> opts;
      std::vector<steep::bench::variant> vs;
      std::vector<std::size_t> sizes;
      steep::rules::for_each_catalogue_rule(
        [&](std::string_view name, const auto& rule, steep::rules::takes t) {
          // Shampoo's factors and eigendecompositions grow with the square and cube of a block's
          // side, not with its size: steep-bench-precond times them.
          if (name.substr(0, 7) == "shampoo")
            return;
          stores.push_back(make_store(params, layers, t == steep::rules::takes::any));
          auto& store = stores.back();
          const steep::optimizer_options o{ .threads = n, .nonfinite = steep::nonfinite_policy::off };
          opts.push_back(steep::make_any_optimizer(rule, store, o));
          auto* opt = opts.back().get();
          std::size_t total = 0;
          for (const auto& b : store.blocks())
            total += b.size;
          sizes.push_back(total);
          vs.push_back({ std::string(name),
                         "steep",
                         [opt] { opt->step(); },
                         {},
                         {},
                         store.size(),
                         opt->bytes_per_param() });
        });
      steep::bench::run_interleaved(vs, rounds, steps, warmup);
      for (std::size_t k = 0; k < vs.size(); ++k) {
        const auto& v = vs[k];
        const double t = steep::bench::median(v.round_medians);
        const auto sp = steep::bench::summarize(v.samples);
        const double gbs = static_cast<double>(v.bytes_per_param * sizes[k]) / t / 1e9;
        std::printf("%-26s %7d %12.4f %10.3f %10.2f %8zu\n", v.name.c_str(), n, 1e3 * t,
                    1e9 * t / static_cast<double>(sizes[k]), gbs, v.bytes_per_param);
        result["results"].push_back({ { "rule", v.name },
                                      { "threads", n },
                                      { "params", sizes[k] },
                                      { "tensors", v.tensors },
                                      { "seconds_median", t },
                                      { "seconds_min", sp.min },
                                      { "seconds_max", sp.max },
                                      { "bytes_per_param_update", v.bytes_per_param },
                                      { "update_gbs", gbs } });
      }
    }
    return steep::bench::write_results(out_path, result, "steep-bench-catalogue") ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "steep-bench-catalogue: %s\n", e.what());
    return 1;
  }
}
