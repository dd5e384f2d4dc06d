#pragma once
// steep::norms: norms of parameter blocks, their duals and dual maps, and composites over blocks.
//
//   using namespace steep::norms;
//   fixed_matrix<double, 2, 2> g{{3, 0, 0, -2}}, d;
//   dual_map<spectral>(g, d);                // d = U V^T: Muon's step, exactly
//   value<nuclear>(g) == inner(g, d);        // 5: <g, dual_map(g)> = ||g||_{spectral*}
//   static_assert(std::is_same_v<dual_norm_t<dual_norm_t<l1>>, l1>);
//   max_composite<spectral, linf> hybrid{{1.0, 3.0}};   // Muon on matrices, Signum on vectors
//
// For every norm N: d = dual_map<N>(g) maximizes <g, d> over ||d||_N <= 1, so <g, d> = ||g||_{N*}
// and ||d||_N = 1 (0 for g = 0); steepest<N>(g) = ||g||_{N*} d. Normalized steepest descent under N
// steps along -d (Bernstein & Newhouse 2024; Gronich & Vardi 2026). Everything is constexpr, so the
// duality laws are static_asserts (tests/unit/test_norm_laws_static.cpp).
//
//   block_ref.hpp       vector_ref, matrix_ref (views), fixed_vector, fixed_matrix (owning)
//   norm.hpp            the concept `norm`, dual_norm_t, value, dual_map, steepest, inner
//   entrywise.hpp       l1, linf, l2, frobenius, lp<P>
//   spectral.hpp        spectral, nuclear (one-sided Jacobi SVD, detail/jacobi_svd.hpp)
//   operator_norms.hpp  l1_to_l2, sum_col_l2, l2_to_linf, sum_row_l2 (Scion / modula)
//   linf_operator.hpp   linf_to_linf, sum_row_linf (largest absolute row sum, and its dual)
//   composite.hpp       composite<fold, N...>: max_composite, sum_composite, l2_composite (fold.hpp)
//   erased.hpp          block_norm_ref: any norm type at run time (block_norm_of<N>)
//   catalogue.hpp       every norm steep ships, and norm_named(name) (not included here)
//   constexpr_math.hpp  sqrt, exp, log, pow, abs usable in constant expressions
//   newton_schulz.hpp   Muon's approximate polar factor (SYRK/SYMM products)
//   polar.hpp           the exact polar factor and singular values by LAPACK
//
// The norms layer uses only core/ and kernel/ (docs/design.md, "Layers of the code"); at run time the
// spectral norms go through LAPACK (polar.hpp), in constant evaluation through a Jacobi SVD.

#include "steep/norms/block_ref.hpp"
#include "steep/norms/composite.hpp"
#include "steep/norms/constexpr_math.hpp"
#include "steep/norms/entrywise.hpp"
#include "steep/norms/erased.hpp"
#include "steep/norms/fold.hpp"
#include "steep/norms/linf_operator.hpp"
#include "steep/norms/maps.hpp"
#include "steep/norms/newton_schulz.hpp"
#include "steep/norms/norm.hpp"
#include "steep/norms/operator_norms.hpp"
#include "steep/norms/polar.hpp"
#include "steep/norms/spectral.hpp"
