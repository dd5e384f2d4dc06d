#pragma once
// The preconditioners: the matrix grammar (precond/compose.hpp: Gram matrices, products, matrix
// powers and named matrix-valued state, per block), and the packaged maps Shampoo, SOAP and Dion.
// Declarations only; their bodies (BLAS, LAPACK) come with the engine (precond/maps.hpp).
#include "steep/precond/compose.hpp"
#include "steep/precond/dion.hpp"
#include "steep/precond/shampoo.hpp"
#include "steep/precond/soap.hpp"
