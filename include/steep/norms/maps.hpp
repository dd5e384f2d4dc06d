#pragma once
// Every dual map's out-of-line body (BLAS, LAPACK): what running a matrix stage needs beyond the
// map's declaration. The engine includes this umbrella and names no norm; a rule that only names
// a map (rules/, expr/dual.hpp) includes the declarations alone.
//
//   #include <steep/norms/maps.hpp>
//   steep::norms::newton_schulz{}.apply(x, rows, cols);   // defined
//
// A norm whose dual map has an out-of-line body adds its *_apply.hpp here, and nowhere else.

#include "steep/norms/newton_schulz_apply.hpp"
#include "steep/norms/polar_apply.hpp"
