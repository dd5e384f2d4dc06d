#pragma once
// A layer graph as a type: sequential composition of bias-free linear layers and activations,
// and its homogeneity degree, computed at compile time.
//
//   template <class... Pieces> struct sequential;    // pieces: linear, affine, or an activation
//   template <class Net> constexpr int degree_v;     // L with f(x; c theta) = c^L f(x; theta)
//   template <int Depth, class Act> using mlp_t;     // linear, Act, linear, ..., linear (Depth linears)
//
//   namespace md = steep::model;
//   using net = md::sequential<md::linear, md::relu_pow<2>, md::linear>;  // 2-layer squared-ReLU net
//   static_assert(steep::degree_v<net> == 3);
//   static_assert(steep::degree_v<md::mlp_t<3, md::relu_pow<2>>> == 7);
//
// The math (docs: README, "The main job"): the input has degree 0 in theta; a linear layer adds
// its own weight, so degree d becomes d + 1; a positively k-homogeneous activation makes it k d.
// For D linear layers with a k-homogeneous activation between them, L = (k^D - 1)/(k - 1) (D when
// k = 1). A bias (affine) or tanh breaks homogeneity, and degree_v refuses such a graph.

#include "steep/model/activation.hpp"

#include <cstddef>
#include <type_traits>

namespace steep::model {

// A bias-free linear layer z = W h, W of shape (out, in) (torch's layout).
struct linear {
  static constexpr bool homogeneous = true;
};
// A linear layer with a bias: not homogeneous (the bias has degree 0).
struct affine {
  static constexpr bool homogeneous = false;
};

template <class P>
inline constexpr bool is_linear_v = std::is_same_v<P, linear>;

template <class P>
concept piece = std::is_same_v<P, linear> || std::is_same_v<P, affine> || activation<P>;

template <class... Pieces>
struct sequential {
  static_assert(sizeof...(Pieces) > 0, "sequential<...>: a graph needs at least one layer");
  static_assert((piece<Pieces> && ...),
                "sequential<...>: every piece must be steep::model::linear, affine or an activation "
                "(identity, relu, relu_pow<K>, power<K>, tanh_act)");
  static constexpr std::size_t n_pieces = sizeof...(Pieces);
  static constexpr std::size_t n_linear = (std::size_t{ 0 } + ... + (is_linear_v<Pieces> ? 1 : 0));
  static constexpr bool homogeneous = (Pieces::homogeneous && ...);
  static constexpr bool ends_linear =
    std::is_same_v<decltype((std::type_identity<Pieces>{}, ...)), std::type_identity<linear>>;
};

template <class N>
struct is_sequential : std::false_type {};
template <class... P>
struct is_sequential<sequential<P...>> : std::true_type {};

// A graph steep can train and measure margins of: sequential, homogeneous, ends in a linear layer.
template <class Net>
concept homogeneous_graph = is_sequential<Net>::value && Net::homogeneous && Net::ends_linear;

namespace detail {
template <class P>
constexpr int next_degree(int d) {
  if constexpr (std::is_same_v<P, linear>)
    return d + 1;
  else if constexpr (activation<P> && P::homogeneous)
    return d * P::degree;
  else
    return -1;
}
template <class... P>
constexpr int degree_of(sequential<P...>*) {
  int d = 0;
  ((d = next_degree<P>(d)), ...);
  return d;
}
template <class Net>
constexpr int checked_degree() {
  static_assert(is_sequential<Net>::value,
                "steep::degree_v<Net>: Net must be a steep::model::sequential<...>");
  static_assert(Net::homogeneous,
                "steep::degree_v<Net>: this graph is not positively homogeneous: it contains a bias (affine) "
                "or a non-homogeneous activation (tanh_act); margins and the implicit-bias theory need "
                "bias-free linear layers and activations such as relu, relu_pow<K>, power<K>, identity");
  static_assert(Net::ends_linear,
                "steep::degree_v<Net>: the graph must end with a linear layer (the output)");
  return degree_of(static_cast<Net*>(nullptr));
}

template <int Depth, class Act, class... Acc>
struct mlp_builder {
  using type = typename mlp_builder<Depth - 1, Act, Acc..., Act, linear>::type;
};
template <class Act, class... Acc>
struct mlp_builder<1, Act, Acc...> {
  using type = sequential<Acc...>;
};
} // namespace detail

template <class Net>
inline constexpr int degree_v = detail::checked_degree<Net>();

// Depth linear layers with Act between them: mlp_t<2, relu_pow<2>> is linear, relu2, linear.
template <int Depth, activation Act>
using mlp_t = typename detail::mlp_builder<(Depth >= 1 ? Depth : 1), Act, linear>::type;

} // namespace steep::model

namespace steep {
using model::degree_v;
} // namespace steep
