// libFuzzer target: the golden-manifest reader (tools/golden) on any bytes. Each input is a
// manifest.json; reading it, each of its cases, and building each group's optimizer either
// works or is refused with a clear error (manifest_error, unsupported, steep::error or
// steep::usage_error). Any
// other exception, a crash, or a sanitizer report is a finding.
//
//   scripts/check.sh fuzz                  # builds with clang, runs every target (docs/robustness.md)

#include "golden/manifest.hpp"

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace golden = steep::golden;
  const auto m = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded())
    return 0; // not JSON: the reader reports nlohmann's parse error, nothing of ours runs
  try {
    const golden::manifest_info info = golden::read_manifest(m);
    if (!m.contains("cases") || !m.at("cases").is_object())
      return 0;
    for (const auto& [name, c] : m.at("cases").items()) {
      try {
        const auto [grads, groups] = golden::read_case(m, info, name);
        for (const auto& g : groups) {
          std::vector<steep::block_spec<double>> specs;
          std::size_t total = 0;
          for (const auto& p : g.params) {
            specs.emplace_back(p, info.shapes.at(p));
            total += steep::element_count(info.shapes.at(p));
          }
          if (total > 4096)
            continue; // the reader accepted it; allocating it is not what is under test
          steep::param_store<double> store(std::move(specs));
          golden::make_group_optimizer<double>(g.algo, g.hp, store);
        }
      } catch (const golden::unsupported&) {
      } catch (const steep::error&) {
      } catch (const steep::usage_error&) {
      } catch (const golden::manifest_error&) {
      }
    }
  } catch (const golden::manifest_error&) {
  }
  return 0;
}
