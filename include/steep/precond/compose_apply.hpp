#pragma once
// The body of composed<E>::apply (compose.hpp): every state slot of the composition updated
// (children before parents, each once), then the composition's value, written over the operand.
//
//   steep::precond::composed<E> map{ {}, e };
//   map.apply(x, rows, cols, steep::expr::matrix_state<double>{ old, next, t });
//
// It writes every slot of st.next in full and reads st.old only: the engine stores st.next when
// the step commits (engine/passes/matrix_phase.hpp). A factor updated from a Gram matrix
// (ema or accumulate of gram_rows / gram_cols) takes one SYRK with its beta, the body
// precond::shampoo uses (shampoo_apply.hpp), so the two give the same bits.

#include "steep/kernel/blas.hpp"
#include "steep/linalg/matrix_power.hpp"
#include "steep/precond/compose.hpp"
#include "steep/precond/shampoo_apply.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <utility>
#include <vector>

namespace steep::precond {

namespace detail {

// A piece's value for one block: a view of memory (the operand, a slot's new value) or a buffer
// of its own. Move-only, so a view into `own` stays valid.
template <class T>
struct value {
  const T* data = nullptr;
  std::size_t r = 0, c = 0;
  std::vector<T> own;

  static value view(const T* p, std::size_t r, std::size_t c) { return { p, r, c, {} }; }
  static value owned(std::vector<T> v, std::size_t r, std::size_t c) {
    value out{ nullptr, r, c, std::move(v) };
    out.data = out.own.data();
    return out;
  }
  value(const T* p, std::size_t r, std::size_t c, std::vector<T> v)
    : data(p)
    , r(r)
    , c(c)
    , own(std::move(v)) {}
  value(value&&) noexcept = default;
  value(const value&) = delete;
};

template <class E>
struct is_gram : std::false_type {};
template <class E>
struct is_gram<gram_rows_t<E>> : std::true_type {
  static constexpr bool left = true;
};
template <class E>
struct is_gram<gram_cols_t<E>> : std::true_type {
  static constexpr bool left = false;
};

template <class C, class T>
struct composed_eval {
  const T* x;
  std::size_t rows, cols;
  expr::matrix_state<T> st;
  std::array<bool, C::state_count> done{};

  value<T> eval(const operand_t&) { return value<T>::view(x, rows, cols); }
  template <std::size_t J>
  value<T> eval(const input_t<J>&) {
    return value<T>::view(st.operands[J - 1], rows, cols);
  }

  template <class G>
  requires is_gram<G>::value value<T> eval(const G& n) {
    const value<T> v = eval(n.e);
    const std::size_t m = is_gram<G>::left ? v.r : v.c;
    std::vector<T> zero(m * m, T(0)), out(m * m);
    update_factor(v.data, v.r, v.c, is_gram<G>::left, 0.0, zero.data(), out.data());
    return value<T>::owned(std::move(out), m, m);
  }

  template <class A, class B>
  value<T> eval(const product_t<A, B>& n) {
    const value<T> a = eval(n.a);
    const value<T> b = eval(n.b);
    std::vector<T> out(a.r * b.c, T(0));
    if (a.r > 0 && b.c > 0 && a.c > 0)
      kernel::blas::gemm<T>(false, false, a.r, b.c, a.c, T(1), a.data, a.c, b.data, b.c, T(0), out.data(),
                            b.c);
    return value<T>::owned(std::move(out), a.r, b.c);
  }

  template <class E>
  value<T> eval(const power_t<E>& n) {
    const value<T> v = eval(n.e);
    if (v.r == 0)
      return value<T>::owned({}, 0, 0);
    return value<T>::owned(
      linalg::matrix_power_sym(v.data, v.r, n.exponent, n.eps, linalg::relative_if(n.relative)), v.r, v.r);
  }

  template <int K, class E>
  value<T> eval(const pinv_root_t<K, E>& n) {
    const value<T> v = eval(n.e);
    if (v.r == 0)
      return value<T>::owned({}, 0, 0);
    return value<T>::owned(linalg::pinv_root(v.data, v.r, K), v.r, v.r);
  }

  template <fixed_string N, slot_kind K, class E>
  value<T> eval(const slot_t<N, K, E>& n) {
    using S = slot_t<N, K, E>;
    constexpr std::size_t j = C::template slot_index<S>;
    const dims d = shape<S>::of(rows, cols);
    const std::size_t count = d.r * d.c;
    T* next = st.next[j];
    const T* old = st.old[j];
    if (!done[j]) {
      if constexpr (K == slot_kind::every) {
        if ((st.step - 1) % n.k == 0) {
          const value<T> v = eval(n.e);
          std::copy(v.data, v.data + count, next);
        } else {
          std::copy(old, old + count, next);
        }
      } else if constexpr (is_gram<E>::value) { // one SYRK with the factor's beta
        const value<T> v = eval(n.e.e);
        update_factor(v.data, v.r, v.c, is_gram<E>::left, K == slot_kind::sum ? 1.0 : n.beta, old, next);
      } else {
        const value<T> v = eval(n.e);
        const T beta = static_cast<T>(n.beta), alpha = static_cast<T>(1 - n.beta);
        for (std::size_t i = 0; i < count; ++i)
          next[i] = K == slot_kind::sum ? old[i] + v.data[i] : beta * old[i] + alpha * v.data[i];
      }
      done[j] = true;
    }
    return value<T>::view(next, d.r, d.c);
  }
};

} // namespace detail

template <matrix_expression E>
template <class T>
void composed<E>::apply(T* x, std::size_t rows, std::size_t cols, expr::matrix_state<T> st) const {
  detail::composed_eval<composed, T> ev{ x, rows, cols, st };
  // Every slot first, children before parents: a factor that only a stale every<...> reads is
  // still updated at each step.
  detail::visit(e, [&]<class N>(const N& n) {
    if constexpr (detail::is_slot<N>::value)
      static_cast<void>(ev.eval(n));
  });
  const detail::value<T> out = ev.eval(e);
  if (out.data != x)
    std::copy(out.data, out.data + rows * cols, x);
}

} // namespace steep::precond
