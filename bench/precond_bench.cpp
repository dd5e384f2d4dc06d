// steep-bench-precond: what the preconditioners' steps cost in steep (float32) — Shampoo's and
// SOAP's amortized over their refresh intervals, Dion's — against Muon's step on the same blocks,
// the refresh's eigendecomposition against LAPACK's own, and the state each keeps.
//
//   steep-bench-precond                                 # 256x256, 256x1024, 8x256x256; 1 and 2 threads
//   steep-bench-precond --shapes 512x512 --threads 1 --rounds 3 --out precond.json
//   steep-bench-precond --quick                         # smoke test (ctest)
//
// Shapes are BxRxC: B same-shape blocks of R x C. For each shape and thread count, timed
// interleaved (harness.hpp), one sample = `batch` optimizer steps over all B blocks (the time per
// step is reported, so a sample of an interval-k rule holds batch / k refreshes: the median is
// the amortized cost, not the cheap steps' alone):
//   shampoo_every1    steep   rules::shampoo(lr, {.every = 1}): L += G G^T, R += G^T G (SYRK), the
//                             roots (LAPACK syevd) every step, L_root G R_root (two GEMMs);
//   shampoo_every10   steep   the roots every 10 steps, the stale ones between;
//   shampoo_every100  steep   every 100 steps;
//   soap_every1       steep   rules::soap(lr, {.precondition_frequency = 1}): the rotation into the
//                             eigenbases and back (four GEMMs), the factors' EMAs, and the bases'
//                             refresh (one power iteration L Q and a QR per side) every step;
//   soap_every10      steep   precondition_frequency 10 (the authors' default);
//   soap_every100     steep   precondition_frequency 100;
//   dion_step         steep   rules::dion(lr): rank min(R, C) (the authors' default rank_fraction
//                             1), one power iteration and a QR every step: Dion has no refresh
//                             interval, so it is timed once per shape;
//   muon_step         steep   rules::muon (Newton-Schulz x5) on the same blocks, for scale;
//   shampoo_sliced_every1  steep  (B > 1) the B blocks as one stacked (B, R, C) block, Shampoo every
//                             step per R x C slice (expr::slices: a factor pair per slice); each
//                             slice is a task of the matrix phase, so this is shampoo_every1's time
//                             (the ratio "sliced / separate blocks");
//   eigh_refresh      steep   linalg::sym_eigh of the first block's R factor (the refresh's
//                             eigendecomposition, with its transposition to column eigenvectors);
//   eigh_lapack       lapack  LAPACK's ssyevd alone on the same matrix (workspace allocated once):
//                             the rate a refresh's eigendecomposition can have here. A sample of
//                             either is --eigh-reps decompositions (per-call times reported).
// The 1024-wide shapes of steep-bench-ns take seconds per refresh on a 2-core VM (the R factor of
// a 1024 x 4096 block is 4096 x 4096), so the defaults are a quarter of them.
//
// The state each rule keeps, per shape: describe()'s "matrix-stage state" figure, the bytes its
// slots expose (visit_slots: what state() and checkpoints see), what the rule's formula says (L,
// R and their roots or bases, SOAP's two moments, Dion's momentum and Q), and the heap an
// optimizer's construction takes (glibc's mallinfo2 before and after, one thread: the state as
// the engine allocates it, with its scratch and bookkeeping). The first three must agree, or the
// benchmark fails; the heap figure is reported as measured. The authors' torch implementations
// on the same shapes: bench/torch_precond_step.py.

// clang-format off
#include <steep/steep.hpp> // first: see xsimd_fence.hpp
#include "harness.hpp"
// clang-format on

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <malloc.h>
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
using soap_rule = decltype(steep::rules::soap(1e-3f));
using dion_rule = decltype(steep::rules::dion(1e-3f));
using muon_rule = decltype(steep::rules::muon(0.02f));

template <class Rule>
using opt_ptr = std::unique_ptr<steep::optimizer<Rule, float>>;

constexpr int intervals[] = { 1, 10, 100 };

// The rules as timed, at refresh interval `every` (Dion has none). The settings are the authors'
// defaults where the rules have them (SOAP's betas 0.95, eps 1e-8; Dion's rank_fraction 1, mu
// 0.95), with no weight decay; Shampoo's eps 1e-6 keeps the roots of the summed factors finite.
auto make_shampoo(int every) { return steep::rules::shampoo(1e-4f, { .eps = 1e-6, .every = every }); }
auto make_soap(int every) { return steep::rules::soap(1e-4f, { .precondition_frequency = every }); }
auto make_dion() { return steep::rules::dion(1e-4f); }
auto make_sliced_shampoo(std::size_t rows, std::size_t cols) {
  using namespace steep::expr;
  return -steep::rules::hp::lr(1e-4f) *
         precondition(slices(steep::precond::shampoo<"L", "R">{ { .eps = 1e-6, .every = 1 } }, rows, cols),
                      grad);
}
using sliced_rule = decltype(make_sliced_shampoo(1, 1));

// The values of matrix-stage state a rule's formula says a rows x cols block keeps.
std::size_t formula_values(const std::string& rule, const shape& sh) {
  const std::size_t r = sh.rows, c = sh.cols, factors = r * r + c * c;
  if (rule == "shampoo")
    return sh.blocks * 2 * factors; // L, R, L_root, R_root
  if (rule == "soap")
    return sh.blocks * (2 * factors + 2 * r * c); // L, R, Q_L, Q_R, exp_avg, exp_avg_sq
  const std::size_t d = std::min(r, c);
  return sh.blocks * (r * c + d * d); // Dion: the momentum, Q (min(r, c) x rank, rank = min(r, c))
}

// The number after `key` in describe()'s text ("matrix-stage state: N values, B bytes": key
// "matrix-stage state: " gives N); 0 when it has none.
std::size_t described_number(const std::string& d, const std::string& key) {
  const auto at = d.find(key);
  return at == std::string::npos ? 0 : std::stoul(d.substr(at + key.size()));
}

// What one rule's state comes to on one shape (see the header).
struct state_bytes {
  std::string rule;
  std::size_t described = 0, exposed = 0, formula = 0, heap = 0, params = 0;
  std::size_t scratch = 0; // describe()'s matrix-stage scratch, bytes per parameter
  bool agree() const { return described == exposed && exposed == formula; }
  // What the heap holds beyond two copies of the state (the committed one, which describe()
  // counts, and the step's next, matrix_phase.hpp) and the scratch: the work list, names, tables.
  double rest() const {
    return static_cast<double>(heap) - 2.0 * static_cast<double>(described) -
           static_cast<double>(scratch * params);
  }
};

template <class Rule>
state_bytes measure_state(const std::string& name, Rule rule, steep::param_store<float>& store,
                          const shape& sh) {
  state_bytes out{ .rule = name, .formula = formula_values(name, sh) * sizeof(float) };
  const auto before = mallinfo2();
  auto opt = std::make_unique<steep::optimizer<Rule, float>>(std::move(rule), store,
                                                             steep::optimizer_options{ .threads = 1 });
  const auto after = mallinfo2();
  out.heap = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
  const std::string d = opt->describe();
  out.described = described_number(d, "matrix-stage state: ") * sizeof(float);
  out.scratch = described_number(d, ", scratch: ");
  opt->visit_slots([&](const steep::slot_bytes& s) { out.exposed += s.bytes.size(); });
  out.params = sh.blocks * sh.rows * sh.cols;
  return out;
}

// Everything one (shape, threads) setting times, allocated and filled up front.
struct setting {
  shape sh;
  std::unique_ptr<steep::param_store<float>> store;
  std::vector<opt_ptr<shampoo_rule>> shampoo; // every 1, 10, 100
  std::vector<opt_ptr<soap_rule>> soap;       // precondition_frequency 1, 10, 100
  opt_ptr<dion_rule> dion;
  opt_ptr<muon_rule> muon;
  std::unique_ptr<steep::param_store<float>> stacked; // B > 1: the B blocks as one (B, R, C) block
  opt_ptr<sliced_rule> sliced;
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
    for (int every : intervals) {
      shampoo.push_back(
        std::make_unique<steep::optimizer<shampoo_rule, float>>(make_shampoo(every), *store, opts));
      soap.push_back(std::make_unique<steep::optimizer<soap_rule, float>>(make_soap(every), *store, opts));
    }
    dion = std::make_unique<steep::optimizer<dion_rule, float>>(make_dion(), *store, opts);
    muon = std::make_unique<steep::optimizer<muon_rule, float>>(steep::rules::muon(1e-4f), *store, opts);
    if (sh.blocks > 1) {
      stacked = std::make_unique<steep::param_store<float>>(
        std::vector{ steep::block_spec<float>("E", steep::shape_t{ sh.blocks, sh.rows, sh.cols }) });
      for (std::size_t k = 0; k < sh.blocks; ++k) {
        const auto& from = store->block_at(k);
        std::copy(from.param, from.param + from.size, stacked->block_at(0).param + k * from.size);
        std::copy(from.grad, from.grad + from.size, stacked->block_at(0).grad + k * from.size);
      }
      sliced = std::make_unique<steep::optimizer<sliced_rule, float>>(make_sliced_shampoo(sh.rows, sh.cols),
                                                                      *stacked, opts);
      for (int t = 0; t < 2; ++t)
        sliced->step();
    }
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
  CLI::App app{ "steep-bench-precond: Shampoo's, SOAP's and Dion's steps, the refresh's eigh against "
                "LAPACK's, and their state" };
  std::vector<std::string> shape_args{ "256x256", "256x1024", "8x256x256" };
  std::vector<int> threads{ 1, 2 };
  int rounds = 5, samples = 3, warmup = 1, batch = 100, eigh_reps = 10;
  std::string out_path = "bench-precond.json";
  bool quick = false;
  app.add_option("--shapes", shape_args, "RxC or BxRxC (B same-shape blocks)")->delimiter(',');
  app.add_option("--threads", threads, "thread counts")->delimiter(',');
  app.add_option("--rounds", rounds, "interleaved rounds");
  app.add_option("--samples", samples, "samples per variant per round");
  app.add_option("--batch", batch, "optimizer steps per sample (a multiple of 100 holds whole intervals)");
  app.add_option("--eigh-reps", eigh_reps,
                 "eigendecompositions per sample (a single one of a small factor is within the noise)");
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

  // The state first, before any thread pool or timing: one optimizer of each rule per shape.
  nlohmann::json state_records = nlohmann::json::array();
  bool state_ok = true;
  std::printf("\n%-8s %-14s %11s %11s %11s %8s %11s %9s %9s\n", "rule", "shape", "describe_B", "slots_B",
              "formula_B", "B/param", "heap_B", "heap/desc", "rest_B");
  for (const auto& sh : shapes) {
    setting s(sh, 1);
    for (const auto& b : { measure_state("shampoo", make_shampoo(1), *s.store, sh),
                           measure_state("soap", make_soap(10), *s.store, sh),
                           measure_state("dion", make_dion(), *s.store, sh) }) {
      const double per = static_cast<double>(b.described) / static_cast<double>(b.params);
      const double heap_ratio = static_cast<double>(b.heap) / static_cast<double>(b.described);
      std::printf("%-8s %-14s %11zu %11zu %11zu %8.2f %11zu %9.3f %9.0f\n", b.rule.c_str(),
                  sh.label().c_str(), b.described, b.exposed, b.formula, per, b.heap, heap_ratio, b.rest());
      state_records.push_back({ { "rule", b.rule },
                                { "shape", sh.label() },
                                { "dtype", "float32" },
                                { "describe_bytes", b.described },
                                { "slot_bytes", b.exposed },
                                { "formula_bytes", b.formula },
                                { "describe_bytes_per_param", per },
                                { "heap_bytes_at_construction", b.heap },
                                { "heap_over_describe", heap_ratio },
                                { "scratch_bytes_per_param", b.scratch },
                                { "heap_beyond_two_states_and_scratch", b.rest() } });
      state_ok = state_ok && b.agree();
    }
  }
  // The heap holds the state twice (heap/desc >= 2): a step writes the next state beside the
  // committed one, so that a refused step leaves every factor as it was; describe() counts one.
  std::printf("  matrix-stage state: describe() = slots = formula for every rule: %s (the heap: twice that, "
              "the committed state and the step's next, plus the scratch and rest_B)\n",
              state_ok ? "yes" : "NO");
  if (!state_ok)
    return 1;

  nlohmann::json records = nlohmann::json::array(), ratios = nlohmann::json::array();
  std::printf("\n%-17s %-7s %-14s %4s %12s %12s %12s\n", "name", "impl", "shape", "thr", "median_ms",
              "min_ms", "max_ms");
  for (const auto& sh : shapes)
    for (int thr : thread_list) {
      setting s(sh, thr);
      std::vector<variant> vs;
      const int b = batch;
      for (std::size_t k = 0; k < std::size(intervals); ++k)
        vs.push_back({ "shampoo_every" + std::to_string(intervals[k]),
                       "steep",
                       [&s, k, b] { setting::steps(*s.shampoo[k], b); },
                       {},
                       {} });
      for (std::size_t k = 0; k < std::size(intervals); ++k)
        vs.push_back({ "soap_every" + std::to_string(intervals[k]),
                       "steep",
                       [&s, k, b] { setting::steps(*s.soap[k], b); },
                       {},
                       {} });
      vs.push_back({ "dion_step", "steep", [&] { setting::steps(*s.dion, b); }, {}, {} });
      vs.push_back({ "muon_step", "steep", [&] { setting::steps(*s.muon, b); }, {}, {} });
      if (s.sliced)
        vs.push_back({ "shampoo_sliced_every1", "steep", [&] { setting::steps(*s.sliced, b); }, {}, {} });
      const std::size_t n_optimizers = vs.size();
      // The eigendecompositions with OpenBLAS at this setting's thread count, as a refresh runs.
      vs.push_back({ "eigh_refresh",
                     "steep",
                     [&] {
                       steep::kernel::blas::thread_limit lim(thr);
                       for (int k = 0; k < eigh_reps; ++k)
                         s.eigh_steep();
                     },
                     {},
                     {} });
      vs.push_back({ "eigh_lapack",
                     "lapack",
                     [&] {
                       steep::kernel::blas::thread_limit lim(thr);
                       for (int k = 0; k < eigh_reps; ++k)
                         s.eigh_lapack();
                     },
                     {},
                     {} });
      run_interleaved(vs, rounds, samples, warmup);
      for (std::size_t i = 0; i < vs.size(); ++i) {
        const bool is_step = i < n_optimizers;
        const double per = 1.0 / (is_step ? b : eigh_reps); // per step, per eigendecomposition
        const auto [med, lo, hi] = summarize(vs[i].samples);
        std::printf("%-17s %-7s %-14s %4d %12.3f %12.3f %12.3f\n", vs[i].name.c_str(), vs[i].impl.c_str(),
                    sh.label().c_str(), thr, med * per * 1e3, lo * per * 1e3, hi * per * 1e3);
        records.push_back({ { "name", vs[i].name },
                            { "impl", vs[i].impl },
                            { "shape", sh.label() },
                            { "threads", thr },
                            { "dtype", "float32" },
                            { "steps_per_sample", is_step ? b : 0 },
                            { "calls_per_sample", is_step ? b : eigh_reps },
                            { "median_s", med * per },
                            { "min_s", lo * per },
                            { "max_s", hi * per },
                            { "samples", vs[i].samples.size() } });
      }
      const auto at = [&](const std::string& name) -> const variant& {
        return *std::find_if(vs.begin(), vs.end(), [&](const variant& v) { return v.name == name; });
      };
      // LAPACK's time / steep's: >= 0.9 is the goal.
      const double eigh_rate = round_ratio(at("eigh_lapack"), at("eigh_refresh"));
      nlohmann::json r{ { "shape", sh.label() },
                        { "threads", thr },
                        { "eigh_steep_over_lapack_rate", eigh_rate } };
      std::printf("  ratios: eigh steep/lapack rate %.3f", eigh_rate);
      for (const std::string rule : { "shampoo", "soap" }) {
        const double every10 = round_ratio(at(rule + "_every1"), at(rule + "_every10"));
        const double every100 = round_ratio(at(rule + "_every1"), at(rule + "_every100"));
        r[rule + "_every1_over_every10_time"] = every10;
        r[rule + "_every1_over_every100_time"] = every100;
        std::printf("; %s every-1 / every-10 %.2f, / every-100 %.2f", rule.c_str(), every10, every100);
      }
      for (const std::string name : { "shampoo_every100", "soap_every10", "dion_step" }) {
        r[name + "_over_muon_time"] = round_ratio(at(name), at("muon_step"));
        std::printf("; %s / muon %.2f", name.c_str(), r[name + "_over_muon_time"].get<double>());
      }
      if (s.sliced) {
        r["shampoo_sliced_over_blocks_time"] = round_ratio(at("shampoo_sliced_every1"), at("shampoo_every1"));
        std::printf("; shampoo sliced / separate blocks %.2f",
                    r["shampoo_sliced_over_blocks_time"].get<double>());
      }
      std::printf("\n");
      ratios.push_back(r);
    }

  const nlohmann::json result{ { "machine", machine_info(thread_list) },
                               { "settings",
                                 { { "rounds", rounds },
                                   { "samples_per_round", samples },
                                   { "warmup", warmup },
                                   { "steps_per_sample", batch },
                                   { "eigh_per_sample", eigh_reps },
                                   { "ratio_method", "median over rounds of per-round time ratios" } } },
                               { "records", records },
                               { "ratios", ratios },
                               { "state", state_records } };
  return write_results(out_path, result, "steep-bench-precond") ? 0 : 1;
}
