#pragma once
// Block views: what a norm reads and what a dual map writes.
//
//   template <class T> struct vector_ref { T* data; std::size_t size; };              // non-owning
//   template <class T> struct matrix_ref { T* data; std::size_t rows, cols; };        // row-major
//   template <class T, std::size_t N>            struct fixed_vector;   // owning, std::array inside
//   template <class T, std::size_t R, std::size_t C> struct fixed_matrix;
//
//   float* w = store.param("W1").data();                        // a 48 x 32 block of the arena
//   steep::norms::matrix_ref<const float> W{w, 48, 32};
//   constexpr steep::norms::fixed_matrix<double, 2, 3> A{{1, 0, 2, 0, 3, 0}};
//   static_assert(steep::norms::value<steep::norms::spectral>(A.ref()) == 3.0);
//
// Views are a pointer and sizes, trivially copyable, so norms take them by value and run the same
// code on an arena slice at run time and on a fixed_matrix inside a static_assert ("constexpr
// evaluation so duality identities are checked by static_assert"). A matrix is dense and row-major
// with no stride: the layout of steep's arena (core/param_store.hpp) and of torch's Linear weight.
// `T` may be const: a norm reads a `*_ref<const T>`, a dual map writes a `*_ref<T>`, and a mutable
// view converts to a const one implicitly.

#include <array>
#include <cstddef>
#include <type_traits>

namespace steep::norms {

template <class T>
struct vector_ref {
  using element_type = T;
  using value_type = std::remove_cv_t<T>;

  T* data = nullptr;
  std::size_t size = 0;

  constexpr T& operator[](std::size_t i) const { return data[i]; }
  constexpr std::size_t numel() const { return size; }
  constexpr vector_ref<T> flat() const { return *this; }
  constexpr operator vector_ref<const T>() const requires(!std::is_const_v<T>) { return { data, size }; }
};

template <class T>
struct matrix_ref {
  using element_type = T;
  using value_type = std::remove_cv_t<T>;

  T* data = nullptr;
  std::size_t rows = 0;
  std::size_t cols = 0;

  constexpr T& operator()(std::size_t i, std::size_t j) const { return data[i * cols + j]; }
  constexpr std::size_t numel() const { return rows * cols; }
  // Entrywise norms (l1, l2, linf, lp, frobenius) see a matrix as its rows*cols entries.
  constexpr vector_ref<T> flat() const { return { data, rows * cols }; }
  constexpr operator matrix_ref<const T>() const requires(!std::is_const_v<T>) {
    return { data, rows, cols };
  }
};

// Small owning blocks for compile-time checks and tests: `fixed_vector<double, 4> v{{1, -2, 3, 0}}`.
template <class T, std::size_t N>
struct fixed_vector {
  std::array<T, N> values{};

  constexpr vector_ref<T> ref() { return { values.data(), N }; }
  constexpr vector_ref<const T> ref() const { return { values.data(), N }; }
  constexpr T& operator[](std::size_t i) { return values[i]; }
  constexpr const T& operator[](std::size_t i) const { return values[i]; }
};

// Row-major: `fixed_matrix<double, 2, 3> a{{a00, a01, a02, a10, a11, a12}}`.
template <class T, std::size_t R, std::size_t C>
struct fixed_matrix {
  std::array<T, R * C> values{};

  constexpr matrix_ref<T> ref() { return { values.data(), R, C }; }
  constexpr matrix_ref<const T> ref() const { return { values.data(), R, C }; }
  constexpr T& operator()(std::size_t i, std::size_t j) { return values[i * C + j]; }
  constexpr const T& operator()(std::size_t i, std::size_t j) const { return values[i * C + j]; }
};

// ---- traits ---------------------------------------------------------------------------------

template <class X>
struct is_vector_block : std::false_type {};
template <class T>
struct is_vector_block<vector_ref<T>> : std::true_type {};
template <class T, std::size_t N>
struct is_vector_block<fixed_vector<T, N>> : std::true_type {};

template <class X>
struct is_matrix_block : std::false_type {};
template <class T>
struct is_matrix_block<matrix_ref<T>> : std::true_type {};
template <class T, std::size_t R, std::size_t C>
struct is_matrix_block<fixed_matrix<T, R, C>> : std::true_type {};

// A vector block or a matrix block: a view or a fixed container, any cv-qualification.
template <class X>
inline constexpr bool is_vector_block_v = is_vector_block<std::remove_cvref_t<X>>::value;
template <class X>
inline constexpr bool is_matrix_block_v = is_matrix_block<std::remove_cvref_t<X>>::value;

template <class X>
concept block = is_vector_block_v<X> || is_matrix_block_v<X>;

// The view of a block: views pass through, fixed containers give their ref() (const if they are).
template <class T>
constexpr vector_ref<T> as_ref(vector_ref<T> x) {
  return x;
}
template <class T>
constexpr matrix_ref<T> as_ref(matrix_ref<T> x) {
  return x;
}
template <class T, std::size_t N>
constexpr vector_ref<T> as_ref(fixed_vector<T, N>& x) {
  return x.ref();
}
template <class T, std::size_t N>
constexpr vector_ref<const T> as_ref(const fixed_vector<T, N>& x) {
  return x.ref();
}
template <class T, std::size_t R, std::size_t C>
constexpr matrix_ref<T> as_ref(fixed_matrix<T, R, C>& x) {
  return x.ref();
}
template <class T, std::size_t R, std::size_t C>
constexpr matrix_ref<const T> as_ref(const fixed_matrix<T, R, C>& x) {
  return x.ref();
}

// The read-only view of a block.
template <class T>
constexpr vector_ref<const T> as_const_ref(vector_ref<T> x) {
  return { x.data, x.size };
}
template <class T>
constexpr matrix_ref<const T> as_const_ref(matrix_ref<T> x) {
  return { x.data, x.rows, x.cols };
}
template <class T, std::size_t N>
constexpr vector_ref<const T> as_const_ref(const fixed_vector<T, N>& x) {
  return x.ref();
}
template <class T, std::size_t R, std::size_t C>
constexpr matrix_ref<const T> as_const_ref(const fixed_matrix<T, R, C>& x) {
  return x.ref();
}

// The element type of a block, without const: float or double.
template <block X>
using block_value_t =
  typename decltype(as_const_ref(std::declval<const std::remove_cvref_t<X>&>()))::value_type;

} // namespace steep::norms
