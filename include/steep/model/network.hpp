#pragma once
// network<Net, T>: a homogeneous layer graph with its parameters in a param_store, forward and
// backward over a whole batch through BLAS (one GEMM per linear layer and direction).
//
//   using net_t = steep::model::mlp_t<2, steep::model::relu_pow<2>>;     // linear, relu2, linear
//   steep::model::network<net_t, double> net({784, 64, 1}, 1000);        // widths, batch capacity
//   net.init_gaussian(0.01, seed);
//   const double* f = net.forward(X, n);                                  // n x 1 outputs
//   net.backward(dout);            // store().grad(...) = sum_i dout_i^T d f(x_i) / d theta
//   steep::optimizer opt(rule, net.store());                              // one fused step for all
//
// Blocks: "W1" .. "WD", W_k of shape (width_k, width_{k-1}) in torch's (out, in) layout. The
// hidden layers W1 .. W(D-1) have role hidden_matrix and the output layer WD role head, so
// route(on<hidden_matrix> >> muon, otherwise >> signum) is the paper's Muon-Signum on a model
// (the head, a 1 x m matrix for a scalar output, is the paper's vector block a).
//
// Math: with A_0 = X (n x d, one sample per row), a linear piece computes A_{p+1} = A_p W^T and
// an activation A_{p+1} = sigma(A_p). Backward, given dA_P = dL/d(output):
//   linear:     dW = dA_{p+1}^T A_p,   dA_p = dA_{p+1} W   (the latter skipped for the input)
//   activation: dA_p = dA_{p+1} (.) sigma'(A_p)
// Every workspace is allocated at construction for `capacity` samples: steps allocate nothing.
// BLAS threads follow OpenBLAS's setting (kernel::blas::thread_limit to pin them).

#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/kernel/blas.hpp"
#include "steep/model/graph.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

namespace steep::model {

template <class Net, class T>
class network;

template <class... Pieces, class T>
class network<sequential<Pieces...>, T> {
  static_assert(std::is_floating_point_v<T>, "network<Net, T>: T must be float or double");
  using net_type = sequential<Pieces...>;
  static_assert(net_type::ends_linear,
                "network<Net, T>: the graph must end with a linear layer (the output)");
  static_assert((!std::is_same_v<Pieces, affine> && ...),
                "network<Net, T>: affine (biased) layers are not implemented; steep's models are bias-free");

public:
  using value_type = T;
  using graph = net_type;
  static constexpr std::size_t n_layers = net_type::n_linear;

  // widths = {input dim, hidden widths..., output dim}: one more than the number of linear layers.
  network(std::vector<std::size_t> widths, std::size_t capacity)
    : widths_(std::move(widths))
    , capacity_(capacity)
    , store_(make_specs(widths_)) {
    std::size_t layer = 0, width = widths_[0];
    acts_.resize(net_type::n_pieces + 1);
    grads_.resize(net_type::n_pieces + 1);
    std::size_t p = 0;
    ((plan_piece<Pieces>(p++, layer, width)), ...);
    out_dim_ = width;
  }

  param_store<T>& store() noexcept { return store_; }
  const param_store<T>& store() const noexcept { return store_; }
  const std::vector<std::size_t>& widths() const noexcept { return widths_; }
  std::size_t input_dim() const noexcept { return widths_.front(); }
  std::size_t output_dim() const noexcept { return out_dim_; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t parameter_count() const noexcept { return store_.total_elements(); }
  static constexpr int degree() requires(net_type::homogeneous) { return degree_v<net_type>; }

  // Block name of linear layer k (1-based).
  static std::string layer_name(std::size_t k) { return "W" + std::to_string(k); }

  // W_k ~ N(0, scale^2 / fan_in), the same stream for every run with this seed (the paper's small
  // Gaussian initialization: all optimizers start from one theta_0).
  void init_gaussian(double scale, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> n01;
    for (const auto& b : store_.blocks()) {
      const double s = scale / std::sqrt(static_cast<double>(b.shape[1]));
      for (std::size_t i = 0; i < b.size; ++i)
        b.param[i] = static_cast<T>(s * n01(rng));
    }
  }

  // Outputs for n samples (X: n x input_dim, row-major); returns n x output_dim, valid until the
  // next forward. The activations are kept for backward.
  const T* forward(const T* x, std::size_t n) {
    if (n > capacity_)
      throw usage_error("network::forward: batch of " + std::to_string(n) + " samples exceeds the capacity " +
                        std::to_string(capacity_) + " given at construction");
    n_ = n;
    input_ = x;
    std::size_t p = 0;
    ((forward_piece<Pieces>(p++)), ...);
    return act(net_type::n_pieces);
  }

  // Gradients into the store: grad(W_k) = sum_i d(sum_j dout_ij f_j(x_i)) / dW_k, for the batch of
  // the last forward. dout: n x output_dim. Overwrites every gradient block.
  void backward(const T* dout) {
    T* top = grads_[net_type::n_pieces].data();
    std::copy(dout, dout + n_ * out_dim_, top);
    backward_from<net_type::n_pieces>();
  }

private:
  struct piece_plan {
    std::size_t in = 0, out = 0; // widths before and after
    std::size_t layer = 0;       // 1-based layer index of a linear piece, 0 otherwise
  };

  static std::vector<block_spec<T>> make_specs(const std::vector<std::size_t>& widths) {
    if (widths.size() != n_layers + 1)
      throw usage_error("network: the graph has " + std::to_string(n_layers) +
                        " linear layers, so it needs " + std::to_string(n_layers + 1) +
                        " widths (input, hidden..., output); got " + std::to_string(widths.size()));
    std::vector<block_spec<T>> specs;
    for (std::size_t k = 1; k <= n_layers; ++k) {
      if (widths[k] == 0 || widths[k - 1] == 0)
        throw error(layer_name(k), "every width must be positive");
      specs.emplace_back(layer_name(k), shape_t{ widths[k], widths[k - 1] },
                         k == n_layers ? block_role::head : block_role::hidden_matrix);
    }
    return specs;
  }

  template <class P>
  void plan_piece(std::size_t p, std::size_t& layer, std::size_t& width) {
    piece_plan pl;
    pl.in = width;
    if constexpr (is_linear_v<P>) {
      pl.layer = ++layer;
      width = widths_[layer];
    }
    pl.out = width;
    plans_.push_back(pl);
    acts_[p + 1].assign(capacity_ * pl.out, T(0));
    grads_[p + 1].assign(capacity_ * pl.out, T(0));
  }

  const T* act(std::size_t p) const { return p == 0 ? input_ : acts_[p].data(); }

  template <class P>
  void forward_piece(std::size_t p) {
    const piece_plan& pl = plans_[p];
    const T* in = act(p);
    T* out = acts_[p + 1].data();
    if constexpr (is_linear_v<P>) {
      const auto& b = store_.block_at(pl.layer - 1);
      kernel::blas::gemm<T>(false, true, n_, pl.out, pl.in, T(1), in, pl.in, b.param, pl.in, T(0), out,
                            pl.out);
    } else {
      const std::size_t m = n_ * pl.out;
      for (std::size_t i = 0; i < m; ++i)
        out[i] = P::apply(in[i]);
    }
  }

  template <std::size_t P>
  void backward_from() {
    if constexpr (P > 0) {
      using piece_t = std::tuple_element_t<P - 1, std::tuple<Pieces...>>;
      backward_piece<piece_t>(P - 1);
      backward_from<P - 1>();
    }
  }

  template <class Piece>
  void backward_piece(std::size_t p) {
    const piece_plan& pl = plans_[p];
    const T* in = act(p);
    const T* dout = grads_[p + 1].data();
    if constexpr (is_linear_v<Piece>) {
      const auto& b = store_.block_at(pl.layer - 1);
      kernel::blas::gemm<T>(true, false, pl.out, pl.in, n_, T(1), dout, pl.out, in, pl.in, T(0), b.grad,
                            pl.in);
      if (p > 0)
        kernel::blas::gemm<T>(false, false, n_, pl.in, pl.out, T(1), dout, pl.out, b.param, pl.in, T(0),
                              grads_[p].data(), pl.in);
    } else if (p > 0) {
      T* din = grads_[p].data();
      const std::size_t m = n_ * pl.out;
      for (std::size_t i = 0; i < m; ++i)
        din[i] = dout[i] * Piece::derivative(in[i]);
    }
  }

  std::vector<std::size_t> widths_;
  std::size_t capacity_;
  param_store<T> store_;
  std::vector<piece_plan> plans_;
  std::vector<std::vector<T>> acts_;  // acts_[p]: input of piece p (acts_[0] unused: the caller's X)
  std::vector<std::vector<T>> grads_; // grads_[p]: d loss / d acts_[p]
  const T* input_ = nullptr;
  std::size_t n_ = 0, out_dim_ = 0;
};

} // namespace steep::model
