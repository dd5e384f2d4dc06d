#pragma once
// steep's linear algebra on one matrix: row-major buffers, float and double, over LAPACK
// (kernel/lapack.hpp) and BLAS (kernel/blas.hpp). The foundation of matrix-valued optimizer state
// (Shampoo, SOAP, Dion).
//
//   #include <steep/linalg.hpp>
//   auto [w, v] = steep::linalg::sym_eigh(a.data(), n);                 // A = V diag(w) V^T
//   auto x = steep::linalg::inverse_root(a.data(), n, 4, 1e-12);        // (A + eps I)^(-1/4)
//   auto y = steep::linalg::matrix_power_sym(a.data(), n, 0.5, 0.0);    // A^(1/2)
//   auto [q, r] = steep::linalg::qr_orthonormal(b.data(), m, n);       // B = Q R, R_jj >= 0
//   auto l = steep::linalg::cholesky(a.data(), n);                      // A = L L^T

#include "steep/linalg/cholesky.hpp"
#include "steep/linalg/eigh.hpp"
#include "steep/linalg/matrix_power.hpp"
#include "steep/linalg/qr.hpp"
