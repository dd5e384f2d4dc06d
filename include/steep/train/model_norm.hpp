#pragma once
// Norms of a whole model's parameters, built from the block norms of steep/norms by block role.
//
//   auto l2   = steep::train::model_norm::l2();              // sqrt(sum over every entry of theta^2)
//   auto linf = steep::train::model_norm::linf();            // max over every entry |theta_j|
//   auto msp  = steep::train::model_norm::spectral_max();    // max_k ||W_k||_sp, head too (1 x m: ||a||_2)
//   auto hyb  = steep::train::model_norm::hybrid(c);         // max(c max_k ||W_k||_sp, ||head||_inf)
//   auto row  = steep::train::model_norm::of<steep::norms::l2_to_linf>();   // any norm: max over blocks
//   double n  = msp.value(net.store());                      // from the parameters
//   double d  = msp.dual().value_of_grads(net.store());      // dual norm of the gradient
//
// The math (Gronich & Vardi 2026; docs: README, "The main job"): a model is a list of blocks, and
// the norms the paper's optimizers maximize margins in are combinations of block norms:
//   max      N(theta) = max_b w_b N_b(theta_b)        dual: sum_b N_b*(g_b) / w_b
//   sum      N(theta) = sum_b w_b N_b(theta_b)        dual: max_b N_b*(g_b) / w_b
//   l2       N(theta) = sqrt(sum_b (w_b N_b)^2)       dual: sqrt(sum_b (N_b*(g_b) / w_b)^2)
// (norms/fold.hpp's folds, held as norms::fold_kind). Global l2 is the l2 fold of per-block l2, global l_inf
// the max of per-block l_inf, global l1 the sum of per-block l1. Which block norm and weight a block gets
// depends on its role: hidden matrices take `hidden`, every other block (the head, vectors) takes `other`.
// The block norms are any steep::norms type, held as a run-time handle (norms/erased.hpp:
// model_norm::of<N>()), so the duality laws tested there hold here too, and a new norm needs no entry here.

#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/norms.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>

namespace steep::train {

// How a model norm folds its blocks: norms::fold_kind (max, sum, l2).
using combine = norms::fold_kind;

struct model_norm {
  struct part {
    norms::block_norm_ref norm = norms::block_norm_of<norms::l2>;
    double weight = 1;
  };
  std::string name;
  combine how = combine::max;
  part hidden; // blocks with role hidden_matrix
  part other;  // every other block (the head, vectors)

  // N on every block, folded as N declares (norms/erased.hpp: l2 as the root of the sum of squares,
  // l1 as a sum, l_inf and every norm without a global form as the max over blocks).
  static model_norm of(const norms::block_norm_ref& n, std::string name = "") {
    return { name.empty() ? std::string(n.name) : std::move(name), n.global_fold, { n, 1 }, { n, 1 } };
  }
  template <class N>
  static model_norm of() {
    return of(norms::block_norm_of<N>);
  }

  static model_norm l2() { return of<norms::l2>(); }
  static model_norm linf() { return of<norms::linf>(); }
  static model_norm l1() { return of<norms::l1>(); }
  // max_k ||W_k||_sp over every matrix, the head included (a 1 x m head: its l2 norm).
  static model_norm spectral_max() { return of<norms::spectral>(); }
  // max(c max_k ||W_k||_sp, ||head||_inf): Muon-Signum (c = 1) and Muon-Adam (c = eta_A / eta_M).
  static model_norm hybrid(double c) {
    if (!(c > 0 && std::isfinite(c)))
      throw usage_error("model_norm::hybrid: c must be positive and finite, got " + std::to_string(c));
    return { "hybrid",
             combine::max,
             { norms::block_norm_of<norms::spectral>, c },
             { norms::block_norm_of<norms::linf>, 1 } };
  }

  // The dual norm, as in the file comment.
  model_norm dual() const {
    return { name + "*",
             norms::dual_fold(how),
             { hidden.norm.dual(), 1 / hidden.weight },
             { other.norm.dual(), 1 / other.weight } };
  }

  // Whether a block is measured as a matrix (a rank-1 shape is 1 x n).
  template <class T>
  const part& part_for(const block<T>& b) const {
    return b.role == block_role::hidden_matrix ? hidden : other;
  }

  template <class T>
  double value_of(const param_store<T>& s, bool grads) const {
    double acc = 0;
    for (const auto& b : s.blocks()) {
      const part& p = part_for(b);
      const std::size_t rows = b.shape.size() >= 2 ? b.shape[0] : 1;
      const double v = p.weight * p.norm.value(grads ? b.grad : b.param, rows, b.size / (rows ? rows : 1));
      acc = how == combine::max ? std::max(acc, v) : (how == combine::sum ? acc + v : acc + v * v);
    }
    return how == combine::l2 ? std::sqrt(acc) : acc;
  }
  template <class T>
  double value(const param_store<T>& s) const {
    return value_of(s, false);
  }
  template <class T>
  double value_of_grads(const param_store<T>& s) const {
    return value_of(s, true);
  }

  std::string describe() const {
    std::ostringstream os;
    const char* c = how == combine::max ? "max" : (how == combine::sum ? "sum" : "l2");
    os << name << " = " << c << "(hidden: " << hidden.weight << " " << hidden.norm.name
       << ", other: " << other.weight << " " << other.norm.name << ")";
    return os.str();
  }
};

} // namespace steep::train
