// steep-golden DIR [--dtype float64|float32] [--threads N] [--case NAME ...] [--bits] [--order steep|torch]
//
// Runs every case of a golden set (the format of tests/data/golden/manifest.json) through steep
// and prints one line per case — name, max relative error, PASS/FAIL, or SKIP with the reason —
// then "N passed, M failed". Exits non-zero if any case failed. A future set in the same format
// runs unchanged: cases are read from the manifest, never listed here. --bits adds each case's
// CRC-32 of its trajectory and final state (golden_set.hpp): a refactor's proof by bits is the
// same column before and after. --order torch runs torch's Adam, AdamW and SGD with momentum
// with the catalogue's rules in torch's order of operations (rule_from_manifest.hpp).

#include "golden/golden_set.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace {
template <class T>
int run(steep::golden::golden_set& set, const std::vector<std::string>& only, int threads, bool bits,
        steep::golden::order rule_order) {
  int passed = 0, failed = 0, skipped = 0;
  for (auto& [name, c] : set.manifest().at("cases").items()) {
    if (!only.empty() && std::find(only.begin(), only.end(), name) == only.end())
      continue;
    steep::golden::case_result r;
    try {
      r = steep::golden::run_case<T>(set, name, { .threads = threads }, rule_order);
    } catch (const std::exception& e) {
      r.name = name;
      r.state = steep::golden::status::failed;
      r.max_rel = 0;
      r.note = std::string("error: ") + e.what();
    }
    using steep::golden::status;
    if (r.state == status::skipped) {
      std::printf("%-26s %-12s SKIP  %s\n", r.name.c_str(), "-", r.note.c_str());
      ++skipped;
      continue;
    }
    if (bits)
      std::printf("%08x ", r.bits);
    std::printf("%-26s %-12.3e %s  (tol %.0e)%s%s\n", r.name.c_str(), r.max_rel,
                r.state == status::passed ? "PASS" : "FAIL", r.tolerance, r.note.empty() ? "" : "  ",
                r.note.c_str());
    (r.state == status::passed ? passed : failed) += 1;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  if (skipped)
    std::fprintf(stderr, "(%d skipped)\n", skipped);
  return failed == 0 ? 0 : 1;
}
} // namespace

int main(int argc, char** argv) {
  CLI::App app{ "Runs a golden optimizer-trajectory set through steep" };
  std::string dir, dtype = "float64", order = "steep";
  std::vector<std::string> only;
  int threads = 0;
  bool bits = false;
  app.add_option("dir", dir, "directory holding manifest.json, inputs/ and cases/")->required();
  app.add_option("--dtype", dtype, "float64 or float32")->check(CLI::IsMember({ "float64", "float32" }));
  app.add_option("--threads", threads, "worker threads (0: all)");
  app.add_option("--case", only, "run only these cases");
  app.add_flag("--bits", bits, "print each case's CRC-32 of its trajectory and final state first");
  app
    .add_option("--order", order,
                "steep (adam, adamw, momentum, ...) or torch (adam_torch, adamw_torch, momentum_torch, ...)")
    ->check(CLI::IsMember({ "steep", "torch" }));
  CLI11_PARSE(app, argc, argv);
  try {
    steep::golden::golden_set set(dir);
    const auto rule_order = order == "torch" ? steep::golden::order::torch : steep::golden::order::steep;
    return dtype == "float64" ? run<double>(set, only, threads, bits, rule_order)
                              : run<float>(set, only, threads, bits, rule_order);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "steep-golden: %s\n", e.what());
    return 2;
  }
}
