#pragma once
// Every preconditioner map's out-of-line body (BLAS, LAPACK): what running a matrix stage that
// keeps state needs beyond the map's declaration, as norms/maps.hpp is for the dual maps. The
// engine includes this umbrella and names no preconditioner; a rule that only names a map
// (precond/shampoo.hpp) includes the declaration alone.
//
//   #include <steep/precond/maps.hpp>
//   steep::precond::shampoo<>{}.apply(x, rows, cols, state);   // defined
//
// A preconditioner with an out-of-line body adds its *_apply.hpp here, and nowhere else.
#include "steep/precond/compose_apply.hpp"
#include "steep/precond/dion_apply.hpp"
#include "steep/precond/shampoo_apply.hpp"
#include "steep/precond/soap_apply.hpp"
