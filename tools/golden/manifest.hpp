#pragma once
// Reads a golden manifest (tests/data/golden/manifest.json format) and checks what the runner
// needs from it; a malformed manifest is a manifest_error that says what and where.
//
//   const auto info = steep::golden::read_manifest(json);        // T, each param's shape
//   auto [grads, groups] = steep::golden::read_case(json, info, "adam");
//
// No xtensor here (golden_set.hpp loads the arrays), so the manifest fuzzer (tests/fuzz)
// builds with clang.

#include "rule_from_manifest.hpp"

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace steep::golden {

// The parts of a manifest every case needs, checked: T, and each parameter's name and shape.
struct manifest_info {
  std::size_t steps = 0;
  std::map<std::string, shape_t> shapes;
};

// A whole number in [lo, hi] at j (nlohmann converts -1 to a huge size_t without a word).
inline std::size_t whole_at(const nlohmann::json& j, std::size_t lo, std::size_t hi,
                            const std::string& what) {
  if (!j.is_number_unsigned() || j.get<std::size_t>() < lo || j.get<std::size_t>() > hi)
    throw manifest_error(what + " must be a whole number in [" + std::to_string(lo) + ", " +
                         std::to_string(hi) + "]");
  return j.get<std::size_t>();
}

inline manifest_info read_manifest(const nlohmann::json& m) {
  constexpr std::size_t max_elements = std::size_t{ 1 } << 28;
  try {
    manifest_info out;
    out.steps = whole_at(m.at("T"), 1, 1'000'000, "manifest 'T'");
    for (const auto& p : m.at("params")) {
      const auto name = p.at("name").get<std::string>();
      shape_t shape;
      for (const auto& d : p.at("shape"))
        shape.push_back(whole_at(d, 0, max_elements, "a dimension of param '" + name + "'"));
      const auto count = element_count_checked(shape);
      if (!count || *count > max_elements)
        throw manifest_error("param '" + name + "' has more than 2^28 elements");
      if (!out.shapes.emplace(name, shape).second)
        throw manifest_error("param '" + name + "' is listed twice");
    }
    return out;
  } catch (const nlohmann::json::exception& e) {
    throw manifest_error(std::string("manifest: ") + e.what());
  }
}

// One optimizer group of a case: the parameters it updates, the peer's algorithm, its
// hyperparameters (rule_from_manifest.hpp).
struct group_spec {
  std::vector<std::string> params;
  std::string algo;
  nlohmann::json hp;
};

// Case `name`'s gradient file stem and groups, checked: every group names known parameters.
inline std::pair<std::string, std::vector<group_spec>> read_case(const nlohmann::json& m,
                                                                 const manifest_info& info,
                                                                 const std::string& name) {
  try {
    const auto& c = m.at("cases").at(name);
    std::vector<group_spec> groups;
    for (const auto& g : c.at("groups")) {
      group_spec spec{ g.at("params").get<std::vector<std::string>>(), g.at("algo").get<std::string>(),
                       g.at("hp") };
      for (const auto& p : spec.params)
        if (!info.shapes.count(p))
          throw manifest_error("case '" + name + "' updates param '" + p +
                               "', which the manifest does not list");
      groups.push_back(std::move(spec));
    }
    return { c.at("grads").get<std::string>(), std::move(groups) };
  } catch (const nlohmann::json::exception& e) {
    throw manifest_error("case '" + name + "': " + e.what());
  }
}

} // namespace steep::golden
