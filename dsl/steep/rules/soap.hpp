#pragma once
// SOAP: Adam in the eigenbasis of Shampoo's factors, a matrix stage that keeps its factors, bases
// and moments (precond/soap.hpp).
//
//   soap:  G' = Q_L^T G Q_R;  m, v: Adam's moments of G';  p <- p - lr sqrt(1 - b2^k) / (1 - b1^k)
//          Q_L (m / (sqrt(v) + eps)) Q_R^T;  L, R: EMAs of G G^T, G^T G whose bases Q_L, Q_R are
//          refreshed every precondition_frequency steps (one power iteration and a QR)
//          (Vyas et al. 2024, arXiv:2409.11321, the authors' SOAP.step, repository nikhilvyas/SOAP)
//
// The first step sets the factors and their eigenbases up and leaves the parameters alone, as the
// authors' code. Every setting of their optimizer for a 2-D parameter is a field of
// precond::soap_settings (betas, shampoo_beta, eps, precondition_frequency, max_precond_dim):
//   steep::optimizer opt(steep::rules::soap(3e-3, { .beta1 = 0.95, .beta2 = 0.95,
//                                                   .precondition_frequency = 10 }), store);
// A weight decay is a composition around the stage. Matrices only: route vectors to an
// elementwise rule (steep::route).

#include "steep/precond/soap.hpp"
#include "steep/rules/common.hpp"

namespace steep::rules {

inline constexpr auto soap = []<operand Lr>(Lr lr, precond::soap_settings s = {}) {
  return -hp::lr(lr) * precondition(precond::soap<"L", "R">{ s }, grad);
};

} // namespace steep::rules
