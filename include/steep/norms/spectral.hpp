#pragma once
// Spectral and nuclear norms: the Schatten-inf / Schatten-1 pair on matrix blocks.
//
//   struct spectral;  // ||W||_sp  = s_max(W)          dual nuclear   dual map: U V^T (polar factor)
//   struct nuclear;   // ||W||_nuc = sum_i s_i(W)      dual spectral  dual map: u_1 v_1^T (top pair)
//
//   fixed_matrix<double, 2, 2> g{{3, 0, 0, -2}}, d;
//   value<spectral>(g);        // 3
//   dual_map<spectral>(g, d);  // {{1, 0}, {0, -1}}: Muon's step (exact, not Newton-Schulz)
//   value<nuclear>(g);         // 5 = <g, d>
//   dual_map<nuclear>(g, d);   // {{1, 0}, {0, 0}}
//
// Why: Muon is normalized steepest descent under the spectral norm of each hidden matrix
// (Bernstein & Newhouse 2024, modular duality), and Gronich & Vardi 2026 show its implicit bias is the
// spectral margin. With g = U S V^T, <g, U V^T> = tr S = ||g||_nuc and ||U V^T||_sp = 1, so U V^T is the
// maximizer; <g, u_1 v_1^T> = s_1 = ||g||_sp and ||u_1 v_1^T||_nuc = 1 for the other direction.
// Directions of numerically zero singular values are dropped from U V^T, so a zero block
// maps to zero and a rank-r block to a rank-r partial isometry; ties in s_1 pick one top pair.
// Both are matrix norms: a vector block is refused at compile time (route it to l2, linf, ...).
// Singular values come from the constexpr one-sided Jacobi SVD (detail/jacobi_svd.hpp) and the polar
// factor from detail::polar_factor, the seam for a faster run-time path.

#include "steep/norms/detail/jacobi_svd.hpp"
#include "steep/norms/detail/polar_factor.hpp"
#include "steep/norms/norm.hpp"

#include <cstddef>
#include <string_view>

namespace steep::norms {

struct nuclear;
struct exact_polar; // polar.hpp

// ||W||_sp = largest singular value. Dual: nuclear. Dual map: the polar factor U V^T of g; in a
// compiled rule computed by LAPACK (exact_polar) rather than by the constexpr Jacobi SVD.
struct spectral {
  using dual_type = nuclear;
  using fused_form = fused::matrix_map<exact_polar>;
  static constexpr std::string_view name = "spectral";
  static constexpr bool matrix_only = true;

  template <class X>
  static constexpr auto value(const X& x) {
    static_assert(!is_vector_block_v<X>,
                  "the spectral norm is a matrix norm: this block is a vector; use l2 or "
                  "route the block to a vector rule");
    if constexpr (!is_vector_block_v<X>) {
      const auto v = detail::value_arg(x);
      using T = typename decltype(v)::value_type;
      const auto s = detail::singular_values(v);
      return static_cast<T>(s.empty() ? 0.0 : s[0]);
    } else {
      return 0.0;
    }
  }

  template <class G, class Out>
  static constexpr void dual_map(const G& g, Out&& out) {
    static_assert(!is_vector_block_v<G>,
                  "the spectral norm is a matrix norm: this block is a vector; use l2 or "
                  "route the block to a vector rule");
    if constexpr (!is_vector_block_v<G>) {
      auto [gv, ov] = detail::dual_map_args(g, out);
      detail::polar_factor(gv, ov);
    }
  }
};

// ||W||_nuc = sum of singular values. Dual: spectral. Dual map: u_1 v_1^T for the top singular pair.
struct nuclear {
  using dual_type = spectral;
  static constexpr std::string_view name = "nuclear";
  static constexpr bool matrix_only = true;

  template <class X>
  static constexpr auto value(const X& x) {
    static_assert(!is_vector_block_v<X>,
                  "the nuclear norm is a matrix norm: this block is a vector; use l2 or "
                  "route the block to a vector rule");
    if constexpr (!is_vector_block_v<X>) {
      const auto v = detail::value_arg(x);
      using T = typename decltype(v)::value_type;
      double sum = 0;
      for (double s : detail::singular_values(v))
        sum += s;
      return static_cast<T>(sum);
    } else {
      return 0.0;
    }
  }

  template <class G, class Out>
  static constexpr void dual_map(const G& g, Out&& out) {
    static_assert(!is_vector_block_v<G>,
                  "the nuclear norm is a matrix norm: this block is a vector; use l2 or "
                  "route the block to a vector rule");
    if constexpr (!is_vector_block_v<G>) {
      auto [gv, ov] = detail::dual_map_args(g, out);
      using T = typename decltype(ov)::value_type;
      const auto r = detail::jacobi_svd(gv, true); // works on a copy: out may alias g
      const bool nonzero = r.k > 0 && r.s[0] > 0;
      for (std::size_t i = 0; i < r.rows; ++i)
        for (std::size_t j = 0; j < r.cols; ++j)
          ov(i, j) = nonzero ? static_cast<T>(r.u_at(i, 0) * r.v_at(j, 0)) : T(0);
    }
  }
};

} // namespace steep::norms
