#pragma once
// Why implied_norm_t<Rule> (implied_norm.hpp) finds no norm for a rule: one reason per kind of
// stage the theory (Gronich & Vardi 2026, Thm 3.3) does not cover, which implied_norm<R>::reason
// and implied_norm_of's error give the user.
//
//   steep::train::implied::reasons[steep::train::implied::w_preconditioner]   // Shampoo's

#include <array>
#include <string_view>

namespace steep::train::implied {

enum why : int {
  w_structure = 0,
  w_eps,
  w_newton_schulz,
  w_shape_scale,
  w_param,
  w_map_after,
  w_user_map,
  w_preconditioner
};
inline constexpr std::array<std::string_view, 8> reasons = {
  "the rule is not momentum steepest descent: no stage of the form -lr * dual_map(momentum of grad)",
  "an eps (or a floor) known only at run time, e.g. Adam's: l_inf while |g| >> eps, drifting to l2 after; "
  "use eps = 0 (adam_eps0), ct<0.0>, or a compile-time zero guard ct<V> with V <= 1e-20",
  "Newton-Schulz is an approximate polar factor; the theory covers the exact map (dual<spectral>(m))",
  "a shape-dependent per-block scale weights each block's norm by a run-time factor",
  "the rule reads the parameter (weight decay): a constrained problem, outside the theory",
  "momentum after the dual map is a different algorithm, not covered by the theory",
  "a user elementwise map (map(f, ...)): its effect on the geometry is unknown",
  "a preconditioner that keeps state (Shampoo's accumulated factors, precond/): its step depends on "
  "past gradients' geometry, not on the current momentum alone; the theory covers dual maps (Shampoo "
  "without accumulation and eps is the polar factor: rules::shampoo_unaccumulated, spectral)",
};

} // namespace steep::train::implied
