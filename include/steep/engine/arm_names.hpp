#pragma once
// Hyperparameter names across a route's arms: "arm<k>/<name>" addresses arm k alone, a plain name
// every arm that has it (engine/facade.hpp). Written once, for every parameter type.
//
//   std::string_view n = "arm1/weight_decay";
//   std::size_t k = steep::engine::detail::addressed_arm(n, 2);   // 1, n == "weight_decay"
//   steep::engine::detail::agreed_value("lr", {{0, 0.02}, {1, 0.02}});   // 0.02; differing throws
//
// A checkpoint saves a route's hyperparameters once per name where the arms agree and once per
// arm, prefixed, where they differ (merge_arm_values), so loading restores each arm's own.

#include "steep/core/error.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace steep::engine::detail {

// The arm an "arm<k>/" prefix names (removing the prefix from `name`), or `arms` when `name` has
// no such prefix (every arm). Refuses an arm index past the route's.
[[gnu::cold]] inline std::size_t addressed_arm(std::string_view& name, std::size_t arms) {
  if (name.rfind("arm", 0) == 0) {
    const auto slash = name.find('/');
    std::size_t k = 0;
    const auto [end, ec] = std::from_chars(name.data() + 3, name.data() + std::min(slash, name.size()), k);
    if (slash != std::string_view::npos && ec == std::errc{} && end == name.data() + slash) {
      if (k >= arms)
        throw usage_error("'" + std::string(name) + "': the route has " + std::to_string(arms) +
                          " arms, counted from 0");
      name = name.substr(slash + 1);
      return k;
    }
  }
  return arms;
}

// The value of hyperparameter `name` in the arms that have it, given as (arm, value): their common
// value, or a usage_error that says how to read one arm's.
[[gnu::cold]] inline double agreed_value(std::string_view name,
                                         const std::vector<std::pair<std::size_t, double>>& values) {
  for (const auto& [k, v] : values)
    if (v != values.front().second)
      throw usage_error("hyperparameter '" + std::string(name) + "' differs between the route's arms (arm" +
                        std::to_string(values.front().first) + ": " + std::to_string(values.front().second) +
                        ", arm" + std::to_string(k) + ": " + std::to_string(v) + "); read one arm's as 'arm" +
                        std::to_string(k) + "/" + std::string(name) + "'");
  return values.front().second;
}

// Every arm's (name, value) pairs, `arm[i]` the arm of `all[i]`, as a checkpoint keeps them: once per
// name where the arms agree, else once per arm as "arm<k>/<name>".
[[gnu::cold]] inline std::vector<std::pair<std::string, double>> merge_arm_values(
  const std::vector<std::pair<std::string, double>>& all, const std::vector<std::size_t>& arm) {
  std::vector<std::pair<std::string, double>> out;
  for (std::size_t i = 0; i < all.size(); ++i) {
    bool agree = true, first = true;
    for (std::size_t j = 0; j < all.size(); ++j)
      if (all[j].first == all[i].first) {
        agree = agree && all[j].second == all[i].second;
        first = first && j >= i;
      }
    if (!agree)
      out.emplace_back("arm" + std::to_string(arm[i]) + "/" + all[i].first, all[i].second);
    else if (first)
      out.push_back(all[i]);
  }
  return out;
}

} // namespace steep::engine::detail
