#pragma once
// Folds: how block values combine into the norm of several blocks (composite.hpp), and how a
// norm of all a model's entries is a fold of its blocks' (erased.hpp, train/model_norm.hpp).
//
//   fold::max::combine(std::array{1.0, 3.0});   // 3        dual fold: sum
//   fold::sum::combine(std::array{1.0, 3.0});   // 4        dual fold: max
//   fold::l2::combine(std::array{3.0, 4.0});    // 5        dual fold: l2
//   struct l2 { using global_fold = fold::l2; ... };   // ||theta||_2 = sqrt(sum_b ||theta_b||_2^2)

#include "steep/norms/constexpr_math.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <string_view>

namespace steep::norms {

// How a composite folds its weighted block values, what its dual folds by, and how its dual map
// weighs each block's own dual map (given s_b = ||g_b||_{N_b*} / w_b, the blocks' scores).
namespace fold {
struct sum;
struct max {
  using dual = sum;
  static constexpr std::string_view name = "max_composite";
  static constexpr bool needs_scores = false; // (its shares do not look at them)
  template <std::size_t K>
  static constexpr double combine(const std::array<double, K>& v) {
    double m = 0;
    for (double x : v)
      m = std::max(m, x);
    return m;
  }
  // Every block takes its full step.
  template <std::size_t K>
  static constexpr std::array<double, K> shares(const std::array<double, K>&) {
    std::array<double, K> r{};
    for (auto& x : r)
      x = 1.0;
    return r;
  }
};
struct sum {
  using dual = max;
  static constexpr std::string_view name = "sum_composite";
  static constexpr bool needs_scores = true;
  template <std::size_t K>
  static constexpr double combine(const std::array<double, K>& v) {
    double t = 0.0;
    for (double x : v)
      t = t + x;
    return t;
  }
  // All mass on the first block of the largest score (none if every score is 0).
  template <std::size_t K>
  static constexpr std::array<double, K> shares(const std::array<double, K>& score) {
    std::size_t best = 0;
    for (std::size_t b = 1; b < K; ++b)
      if (score[b] > score[best])
        best = b;
    std::array<double, K> r{};
    if (score[best] > 0)
      r[best] = 1.0;
    return r;
  }
};
struct l2 {
  using dual = l2;
  static constexpr std::string_view name = "l2_composite";
  static constexpr bool needs_scores = true;
  template <std::size_t K>
  static constexpr double combine(const std::array<double, K>& v) {
    double t = 0.0;
    for (double x : v)
      t = t + x * x;
    return math::sqrt(t);
  }
  // Block b in proportion to its score: the unit vector along the scores.
  template <std::size_t K>
  static constexpr std::array<double, K> shares(const std::array<double, K>& score) {
    const double n = combine(score);
    std::array<double, K> r{};
    if (n > 0)
      for (std::size_t b = 0; b < K; ++b)
        r[b] = score[b] / n;
    return r;
  }
};
} // namespace fold

} // namespace steep::norms
