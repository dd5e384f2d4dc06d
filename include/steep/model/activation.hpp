#pragma once
// Activations of a homogeneous network, and the pieces that break homogeneity.
//
//   template <class A> concept activation;        // apply(z), derivative(z), name, homogeneous
//   identity, relu, relu_pow<K>, power<K>          // positively homogeneous of degree 1, 1, K, K
//   tanh_act (and graph.hpp's affine)              // not homogeneous: refused where L is needed
//
//   static_assert(steep::model::relu_pow<2>::degree == 2);
//   double y = steep::model::relu_pow<2>::apply(3.0);   // 9
//
// The math: sigma is positively k-homogeneous when sigma(c z) = c^k sigma(z) for c > 0. ReLU^k
// (k >= 2) and z^k are smooth (C^1 or better), which is the setting where Gronich & Vardi (2026)
// prove that momentum steepest descent converges to a KKT point of its norm's margin problem;
// ReLU is homogeneous but not smooth. tanh, GELU, SiLU and any bias are not homogeneous
// (docs: README, "The main job").

#include <cmath>
#include <concepts>
#include <cstddef>
#include <string_view>

namespace steep::model {

template <class A>
concept activation = requires(double z) {
  { A::name } -> std::convertible_to<std::string_view>;
  { A::homogeneous } -> std::convertible_to<bool>;
  { A::apply(z) } -> std::convertible_to<double>;
  { A::derivative(z) } -> std::convertible_to<double>;
};

namespace detail {
// z^K for a small compile-time K, by repeated multiplication (exact for K <= 3 in IEEE).
template <int K, class T>
constexpr T ipow(T z) {
  T r = 1;
  for (int i = 0; i < K; ++i)
    r *= z;
  return r;
}
} // namespace detail

struct identity {
  static constexpr std::string_view name = "identity";
  static constexpr bool homogeneous = true;
  static constexpr int degree = 1;
  template <class T>
  static constexpr T apply(T z) {
    return z;
  }
  template <class T>
  static constexpr T derivative(T) {
    return T(1);
  }
};

// ReLU: degree 1, Lipschitz but not C^1 at 0 (the derivative there is taken as 0).
struct relu {
  static constexpr std::string_view name = "relu";
  static constexpr bool homogeneous = true;
  static constexpr int degree = 1;
  template <class T>
  static constexpr T apply(T z) {
    return z > 0 ? z : T(0);
  }
  template <class T>
  static constexpr T derivative(T z) {
    return z > 0 ? T(1) : T(0);
  }
};

// max(0, z)^K: degree K, C^(K-1). relu_pow<2> is the paper's squared ReLU.
template <int K>
struct relu_pow {
  static_assert(K >= 1, "relu_pow<K>: K must be a positive integer");
  static constexpr std::string_view name = K == 2 ? "relu2" : (K == 3 ? "relu3" : "relu_pow");
  static constexpr bool homogeneous = true;
  static constexpr int degree = K;
  template <class T>
  static constexpr T apply(T z) {
    return z > 0 ? detail::ipow<K>(z) : T(0);
  }
  template <class T>
  static constexpr T derivative(T z) {
    return z > 0 ? T(K) * detail::ipow<K - 1>(z) : T(0);
  }
};

// z^K: degree K, smooth (a polynomial network).
template <int K>
struct power {
  static_assert(K >= 1, "power<K>: K must be a positive integer");
  static constexpr std::string_view name = K == 2 ? "square" : (K == 3 ? "cube" : "power");
  static constexpr bool homogeneous = true;
  static constexpr int degree = K;
  template <class T>
  static constexpr T apply(T z) {
    return detail::ipow<K>(z);
  }
  template <class T>
  static constexpr T derivative(T z) {
    return T(K) * detail::ipow<K - 1>(z);
  }
};

// Not homogeneous: allowed in a graph, refused where homogeneity is required (degree_v).
struct tanh_act {
  static constexpr std::string_view name = "tanh";
  static constexpr bool homogeneous = false;
  template <class T>
  static T apply(T z) {
    return std::tanh(z);
  }
  template <class T>
  static T derivative(T z) {
    const T t = std::tanh(z);
    return T(1) - t * t;
  }
};

} // namespace steep::model
