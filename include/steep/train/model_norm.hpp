#pragma once
// Norms of a whole model's parameters, built from the block norms of steep/norms by block role.
//
//   auto l2   = steep::train::model_norm::l2();              // sqrt(sum over every entry of theta^2)
//   auto linf = steep::train::model_norm::linf();            // max over every entry |theta_j|
//   auto msp  = steep::train::model_norm::spectral_max();    // max_k ||W_k||_sp, head too (1 x m: ||a||_2)
//   auto hyb  = steep::train::model_norm::hybrid(c);         // max(c max_k ||W_k||_sp, ||head||_inf)
//   double n  = msp.value(net.store());                      // from the parameters
//   double d  = msp.dual().value_of_grads(net.store());      // dual norm of the gradient
//
// The math (Gronich & Vardi 2026; docs: README, "The main job"): a model is a list of blocks, and
// the norms the paper's optimizers maximize margins in are combinations of block norms:
//   max      N(theta) = max_b w_b N_b(theta_b)        dual: sum_b N_b*(g_b) / w_b
//   sum      N(theta) = sum_b w_b N_b(theta_b)        dual: max_b N_b*(g_b) / w_b
//   euclid   N(theta) = sqrt(sum_b (w_b N_b)^2)       dual: sqrt(sum_b (N_b*(g_b) / w_b)^2)
// Global l2 is the euclid combination of per-block l2, global l_inf the max of per-block l_inf,
// global l1 the sum of per-block l1. Which block norm and weight a block gets depends on its role:
// hidden matrices take `hidden`, every other block (the head, vectors) takes `other`. The block
// norms are steep::norms' (spectral and nuclear by LAPACK's SVD), so the duality laws tested
// there hold here too.

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

enum class block_norm { l1, l2, linf, spectral, nuclear };
enum class combine { max, sum, euclid };

inline block_norm dual_of(block_norm n) {
  switch (n) {
    case block_norm::l1:
      return block_norm::linf;
    case block_norm::linf:
      return block_norm::l1;
    case block_norm::l2:
      return block_norm::l2;
    case block_norm::spectral:
      return block_norm::nuclear;
    case block_norm::nuclear:
      return block_norm::spectral;
  }
  return n;
}

inline std::string_view to_string(block_norm n) {
  switch (n) {
    case block_norm::l1:
      return "l1";
    case block_norm::l2:
      return "l2";
    case block_norm::linf:
      return "linf";
    case block_norm::spectral:
      return "spectral";
    case block_norm::nuclear:
      return "nuclear";
  }
  return "?";
}

// ||x||_n of one block (row-major rows x cols; a vector is 1 x size), in double.
template <class T>
double block_value(block_norm n, const T* x, std::size_t rows, std::size_t cols) {
  namespace nm = steep::norms;
  const nm::vector_ref<const T> v{ x, rows * cols };
  const nm::matrix_ref<const T> m{ x, rows, cols };
  switch (n) {
    case block_norm::l1:
      return double(nm::value<nm::l1>(v));
    case block_norm::l2:
      return double(nm::value<nm::l2>(v));
    case block_norm::linf:
      return double(nm::value<nm::linf>(v));
    case block_norm::spectral:
      return double(nm::value<nm::spectral>(m));
    case block_norm::nuclear:
      return double(nm::value<nm::nuclear>(m));
  }
  return 0;
}

struct model_norm {
  struct part {
    block_norm norm = block_norm::l2;
    double weight = 1;
  };
  std::string name;
  combine how = combine::max;
  part hidden; // blocks with role hidden_matrix
  part other;  // every other block (the head, vectors)

  static model_norm l2() { return { "l2", combine::euclid, { block_norm::l2, 1 }, { block_norm::l2, 1 } }; }
  static model_norm linf() {
    return { "linf", combine::max, { block_norm::linf, 1 }, { block_norm::linf, 1 } };
  }
  static model_norm l1() { return { "l1", combine::sum, { block_norm::l1, 1 }, { block_norm::l1, 1 } }; }
  // max_k ||W_k||_sp over every matrix, the head included (a 1 x m head: its l2 norm).
  static model_norm spectral_max() {
    return { "spectral", combine::max, { block_norm::spectral, 1 }, { block_norm::spectral, 1 } };
  }
  // max(c max_k ||W_k||_sp, ||head||_inf): Muon-Signum (c = 1) and Muon-Adam (c = eta_A / eta_M).
  static model_norm hybrid(double c) {
    if (!(c > 0 && std::isfinite(c)))
      throw usage_error("model_norm::hybrid: c must be positive and finite, got " + std::to_string(c));
    return { "hybrid", combine::max, { block_norm::spectral, c }, { block_norm::linf, 1 } };
  }

  // The dual norm, as in the file comment.
  model_norm dual() const {
    const combine d =
      how == combine::max ? combine::sum : (how == combine::sum ? combine::max : combine::euclid);
    return {
      name + "*", d, { dual_of(hidden.norm), 1 / hidden.weight }, { dual_of(other.norm), 1 / other.weight }
    };
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
      const double v =
        p.weight * block_value(p.norm, grads ? b.grad : b.param, rows, b.size / (rows ? rows : 1));
      acc = how == combine::max ? std::max(acc, v) : (how == combine::sum ? acc + v : acc + v * v);
    }
    return how == combine::euclid ? std::sqrt(acc) : acc;
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
    const char* c = how == combine::max ? "max" : (how == combine::sum ? "sum" : "euclid");
    os << name << " = " << c << "(hidden: " << hidden.weight << " " << to_string(hidden.norm)
       << ", other: " << other.weight << " " << to_string(other.norm) << ")";
    return os.str();
  }
};

} // namespace steep::train
