#pragma once
// The exact spectral dual map: the polar factor U V^T of a block G = U S V^T, in place.
//
//   steep::norms::exact_polar polar;           // drop singular values <= max(r, c) * eps * s_max
//   polar.apply(x, rows, cols);                // x (row-major rows x cols) <- U V^T
//
// The math: argmax_{||D||_2 <= 1} <G, D> = U V^T, with <G, U V^T> = sum_i s_i = ||G||_* (the
// nuclear norm, the spectral norm's dual). When G is rank deficient the maximizer is not unique;
// steep drops the directions of (numerically) zero singular values, so the result is the
// partial isometry of G's range and a zero block maps to zero, never to an arbitrary rotation.
// Computed by LAPACK's gesdd (called directly: polar_apply.hpp), as torch.linalg.svd does on
// the CPU: this is what the golden `muon_exact` case uses in place of Newton–Schulz.

#include <cstddef>
#include <vector>

namespace steep::norms {

struct spectral; // spectral.hpp

struct exact_polar {
  // What the map is the dual map of, and whether exactly (train/implied_norm.hpp reads these).
  using approximates = spectral;
  static constexpr bool exact = true;
  // Singular values at or below rcond * s_max count as zero; negative: max(rows, cols) * epsilon.
  double rcond = -1;

  bool operator==(const exact_polar&) const = default;

  // x <- U V^T (defined in polar_apply.hpp, which the engine includes: LAPACK stays out of rules).
  template <class T>
  void apply(T* x, std::size_t rows, std::size_t cols) const;
};

// The singular values of a row-major rows x cols block, descending (LAPACK gesdd, no vectors;
// polar_apply.hpp).
template <class T>
std::vector<double> singular_values(const T* x, std::size_t rows, std::size_t cols);

} // namespace steep::norms
