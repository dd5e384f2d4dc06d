#pragma once
// Matrix-valued state as grammar: preconditioners written from their equations, per block.
//
//   namespace pc = steep::precond;
//   auto L = pc::accumulate<"L">(pc::gram_rows(pc::x));            // L_t = L_{t-1} + X X^T   (rows x rows)
//   auto R = pc::accumulate<"R">(pc::gram_cols(pc::x));            // R_t = R_{t-1} + X^T X   (cols x cols)
//   auto shampoo = -lr * pc::precondition(pc::inverse_root(L, 4, 1e-12) * pc::x * pc::inverse_root(R, 4,
//   1e-12),
//                                         grad);                    // L^(-1/4) G R^(-1/4)
//
// `pc::x` is the stage's operand (the second argument of precondition: the gradient, or any
// elementwise expression such as a momentum), a rows x cols block. The pieces:
//
//   x                     the operand X                                   rows x cols
//   arg<J>                operand J of precondition(value, x, y, ...): arg<0> = x, arg<1> = y
//   gram_rows(e)          e e^T                                           (SYRK)
//   gram_cols(e)          e^T e
//   a * b                 the matrix product                              (GEMM)
//   ema<"N">(e, beta)     state N:  N_t = beta N_{t-1} + (1 - beta) e     (N_0 = 0)
//   accumulate<"N">(e)    state N:  N_t = N_{t-1} + e
//   matrix_power(e, p, eps)   (e + eps I)^p of a symmetric PSD e, distributed Shampoo's way
//                         (linalg/matrix_power.hpp: eigenvalues shifted to >= 0, then eps; LAPACK syevd)
//   inverse_root(e, k, eps)   matrix_power(e, -1/k, eps)
//   relative_eps(eps)     as the eps of either: eps times e's largest eigenvalue, Anil et al.
//                         2020's ridge, which keeps its meaning as summed factors grow
//                         (pc::inverse_root(L, 4, pc::relative_eps(1e-6)))
//   pinv_root<k>(e)       (e^+)^(1/k): the k-th root of e's pseudo-inverse, no eps (0 on e's null
//                         space; linalg/matrix_power.hpp). Shampoo without accumulation,
//                         pinv_root<4>(gram_rows(x)) * x * pinv_root<4>(gram_cols(x)), is x's polar
//                         factor U V^T, and the stage says so: implied_norm_t finds the spectral
//                         norm in its type (below, polar_form)
//   every<"N">(e, k)      state N: e at steps 1, 1 + k, 1 + 2k, ..., and N's last value between
//                         (distributed Shampoo's stale roots: Shi et al. 2023, arXiv:2309.06497)
//
// Every piece with a name is a state slot of the stage: shaped per block as its value is (L is
// rows x rows, R cols x cols), listed by describe() and slots(), read by opt.state("W", "L"),
// checkpointed and resumed bitwise, and written only when the step commits (a refused step leaves
// it bitwise as it was: engine/passes/matrix_phase.hpp). A name used twice is one slot, updated
// once per step; every slot is updated every step, also one that only a stale every<...> reads.
// Shapes are checked per block when the optimizer is built (a product whose sides do not match, a
// power of a matrix that is not square, or a result that is not the block's shape is refused,
// naming the block).
//
//   // a user's variant: L^(-1/2) G with EMA factors, the root every 10 steps
//   auto L = pc::ema<"L">(pc::gram_rows(pc::x), 0.99);
//   auto rule = -lr * pc::precondition(pc::every<"L_root">(pc::matrix_power(L, -0.5, 1e-3), 10) * pc::x,
//   grad);
//
// With ema and accumulate of gram_rows / gram_cols the factor is updated by one SYRK with its
// beta, as precond::shampoo does (shampoo_apply.hpp), so the composition and the packaged map give
// the same bits. The bodies (BLAS, LAPACK) are in compose_apply.hpp, which the engine includes
// (precond/maps.hpp); a rule needs only this header.

#include "steep/core/shape.hpp"
#include "steep/expr/detail/type_list.hpp"
#include "steep/expr/fixed_string.hpp"
#include "steep/expr/matrix.hpp"
#include "steep/expr/sliced_state.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace steep::norms {
struct spectral; // norms/spectral.hpp: what a polar form declares it approximates (below)
} // namespace steep::norms

namespace steep::precond {

// ---- the pieces ---------------------------------------------------------------------------------

struct matrix_piece { // the base of every piece: what makes a type one (matrix_expression)
  bool operator==(const matrix_piece&) const = default;
};

template <class E>
concept matrix_expression = std::is_base_of_v<matrix_piece, std::remove_cvref_t<E>>;

// Operand J of the stage (precondition(value, x, y, ...)): arg<0> is x, which the stage maps,
// arg<1> is y, and so on, each a rows x cols block. (x keeps a type of its own, so a rule's id,
// which its checkpoints carry, is the one it had before stages took several operands.)
struct operand_t : matrix_piece {
  bool operator==(const operand_t&) const = default;
};
template <std::size_t J>
struct input_t : matrix_piece {
  static_assert(J >= 1);
  bool operator==(const input_t&) const = default;
};
template <std::size_t J>
using arg_t = std::conditional_t<J == 0, operand_t, input_t<(J == 0 ? 1 : J)>>;
inline constexpr operand_t x{};
template <std::size_t J>
inline constexpr arg_t<J> arg{};

template <class E>
struct gram_rows_t : matrix_piece {
  E e;
  bool operator==(const gram_rows_t&) const = default;
};
template <class E>
struct gram_cols_t : matrix_piece {
  E e;
  bool operator==(const gram_cols_t&) const = default;
};
template <class A, class B>
struct product_t : matrix_piece {
  A a;
  B b;
  bool operator==(const product_t&) const = default;
};
template <class E>
struct power_t : matrix_piece {
  E e;
  double exponent, eps;
  bool relative = false; // eps times e's largest eigenvalue (relative_eps)
  bool operator==(const power_t&) const = default;
};
struct relative_eps_t {
  double value;
};
template <int K, class E>
struct pinv_root_t : matrix_piece {
  static constexpr int root = K;
  E e;
  bool operator==(const pinv_root_t&) const = default;
};
// A named piece: a state slot. Kind: an EMA (beta in [0, 1)), a sum, or a cached value (every k).
enum class slot_kind { ema, sum, every };
template <fixed_string Name, slot_kind Kind, class E>
struct slot_t : matrix_piece {
  static constexpr std::string_view name = Name.view();
  static constexpr slot_kind kind = Kind;
  E e;
  double beta = 0; // ema
  int k = 1;       // every
  bool operator==(const slot_t&) const = default;
};

template <matrix_expression E>
constexpr auto gram_rows(E e) {
  return gram_rows_t<E>{ {}, e };
}
template <matrix_expression E>
constexpr auto gram_cols(E e) {
  return gram_cols_t<E>{ {}, e };
}
template <matrix_expression A, matrix_expression B>
constexpr auto operator*(A a, B b) {
  return product_t<A, B>{ {}, a, b };
}
template <matrix_expression E>
constexpr auto matrix_power(E e, double exponent, double eps) {
  return power_t<E>{ {}, e, exponent, eps };
}
template <matrix_expression E>
constexpr auto inverse_root(E e, double k, double eps) {
  return power_t<E>{ {}, e, -1.0 / k, eps };
}
constexpr relative_eps_t relative_eps(double eps) { return { eps }; }
template <matrix_expression E>
constexpr auto matrix_power(E e, double exponent, relative_eps_t eps) {
  return power_t<E>{ {}, e, exponent, eps.value, true };
}
template <matrix_expression E>
constexpr auto inverse_root(E e, double k, relative_eps_t eps) {
  return power_t<E>{ {}, e, -1.0 / k, eps.value, true };
}
template <int K, matrix_expression E>
constexpr auto pinv_root(E e) {
  static_assert(K >= 1, "pinv_root<K>(e): the root K must be 1 or more");
  return pinv_root_t<K, std::remove_cvref_t<E>>{ {}, e };
}
template <fixed_string Name, matrix_expression E>
constexpr auto ema(E e, double beta) {
  return slot_t<Name, slot_kind::ema, E>{ {}, e, beta, 1 };
}
template <fixed_string Name, matrix_expression E>
constexpr auto accumulate(E e) {
  return slot_t<Name, slot_kind::sum, E>{ {}, e, 1, 1 };
}
template <fixed_string Name, matrix_expression E>
constexpr auto every(E e, int k) {
  return slot_t<Name, slot_kind::every, E>{ {}, e, 0, k };
}

// ---- what the compiler derives: the slots and the shapes ---------------------------------------

namespace detail {
using expr::detail::concat_t;
using expr::detail::type_list;

// How many of the stage's operands a composition reads: 1 + the largest J of an arg<J> in it.
template <class E>
struct operands_read : std::integral_constant<std::size_t, 1> {};
template <std::size_t J>
struct operands_read<input_t<J>> : std::integral_constant<std::size_t, J + 1> {};
template <template <class...> class Piece, class... E>
struct operands_read<Piece<E...>>
  : std::integral_constant<std::size_t, std::max({ std::size_t{ 1 }, operands_read<E>::value... })> {};
template <fixed_string N, slot_kind K, class E>
struct operands_read<slot_t<N, K, E>> : operands_read<E> {};
template <int K, class E>
struct operands_read<pinv_root_t<K, E>> : operands_read<E> {};

template <class E>
struct is_slot : std::false_type {};
template <fixed_string N, slot_kind K, class E>
struct is_slot<slot_t<N, K, E>> : std::true_type {};
template <class E>
struct is_power : std::false_type {};
template <class E>
struct is_power<power_t<E>> : std::true_type {};

// Every slot type under E, children before parents (duplicates kept).
template <class E>
struct slots_under {
  using type = type_list<>;
};
template <class E>
struct slots_under<gram_rows_t<E>> : slots_under<E> {};
template <class E>
struct slots_under<gram_cols_t<E>> : slots_under<E> {};
template <class E>
struct slots_under<power_t<E>> : slots_under<E> {};
template <int K, class E>
struct slots_under<pinv_root_t<K, E>> : slots_under<E> {};
template <class A, class B>
struct slots_under<product_t<A, B>> {
  using type = concat_t<typename slots_under<A>::type, typename slots_under<B>::type>;
};
template <fixed_string N, slot_kind K, class E>
struct slots_under<slot_t<N, K, E>> {
  using type = concat_t<typename slots_under<E>::type, type_list<slot_t<N, K, E>>>;
};

template <class L>
struct names_unique;
template <class... S>
struct names_unique<type_list<S...>> {
  static constexpr bool value = [] {
    constexpr std::array<std::string_view, sizeof...(S)> n{ S::name... };
    for (std::size_t i = 0; i < n.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (n[i] == n[j])
          return false;
    return true;
  }();
};

template <class S, class L>
struct index_in;
template <class S, class... A>
struct index_in<S, type_list<A...>> {
  static constexpr std::size_t value = [] {
    constexpr std::array<bool, sizeof...(A)> same{ std::is_same_v<S, A>... };
    for (std::size_t i = 0; i < same.size(); ++i)
      if (same[i])
        return i;
    return same.size();
  }();
};

// A piece's shape for a rows x cols block, from its type alone, or what does not fit.
struct dims {
  std::size_t r = 0, c = 0;
  std::string problem; // empty: the shapes fit
};
inline std::string text(const dims& d) { return std::to_string(d.r) + " x " + std::to_string(d.c); }

template <class N>
struct shape {
  static dims of(std::size_t rows, std::size_t cols) { return { rows, cols, {} }; } // x
};
template <class E>
struct shape<gram_rows_t<E>> {
  static dims of(std::size_t rows, std::size_t cols) {
    const dims d = shape<E>::of(rows, cols);
    return { d.r, d.r, d.problem };
  }
};
template <class E>
struct shape<gram_cols_t<E>> {
  static dims of(std::size_t rows, std::size_t cols) {
    const dims d = shape<E>::of(rows, cols);
    return { d.c, d.c, d.problem };
  }
};
template <class A, class B>
struct shape<product_t<A, B>> {
  static dims of(std::size_t rows, std::size_t cols) {
    const dims a = shape<A>::of(rows, cols), b = shape<B>::of(rows, cols);
    if (!a.problem.empty() || !b.problem.empty())
      return { 0, 0, a.problem.empty() ? b.problem : a.problem };
    if (a.c != b.r)
      return { 0, 0, "a product of a " + text(a) + " and a " + text(b) + " matrix" };
    return { a.r, b.c, {} };
  }
};
// A function of a symmetric matrix (a power, a pseudo-inverse root) keeps its operand's shape,
// which must be square.
inline dims square(const dims& d, const char* what) {
  if (d.problem.empty() && d.r != d.c)
    return { 0, 0, std::string(what) + " of a " + text(d) + " matrix, which is not square" };
  return d;
}
template <class E>
struct shape<power_t<E>> {
  static dims of(std::size_t rows, std::size_t cols) {
    return square(shape<E>::of(rows, cols), "a matrix power");
  }
};
template <int K, class E>
struct shape<pinv_root_t<K, E>> {
  static dims of(std::size_t rows, std::size_t cols) {
    return square(shape<E>::of(rows, cols), "a pinv_root");
  }
};
template <fixed_string N, slot_kind K, class E>
struct shape<slot_t<N, K, E>> : shape<E> {};

// f(piece) for every piece under (and including) n, children first.
template <class N, class F>
void visit(const N& n, F&& f) {
  if constexpr (requires { n.a, n.b; }) {
    visit(n.a, f);
    visit(n.b, f);
  } else if constexpr (requires { n.e; }) {
    visit(n.e, f);
  }
  f(n);
}

// Whether a composition's value is x's polar factor U V^T, whatever x: Shampoo without
// accumulation and without eps, two-sided or one-sided (Gupta et al. 2018 with beta2 = 0;
// Bernstein & Newhouse 2024, arXiv:2409.20325): for x = U S V^T of rank r,
//   (x x^T)^(+1/4) x (x^T x)^(+1/4) = U_r S^(-1/2) S S^(-1/2) V_r^T = U_r V_r^T,
//   (x x^T)^(+1/2) x = x (x^T x)^(+1/2) = U_r V_r^T.
// Only these forms, with exactly these roots and no state: any eps, an EMA or a sum of factors
// makes another map (docs/implicit-bias.md, "Beyond the paper: Shampoo").
template <class E>
struct polar_form : std::false_type {};
template <>
struct polar_form<product_t<product_t<pinv_root_t<4, gram_rows_t<operand_t>>, operand_t>,
                            pinv_root_t<4, gram_cols_t<operand_t>>>> : std::true_type {};
template <>
struct polar_form<product_t<pinv_root_t<4, gram_rows_t<operand_t>>,
                            product_t<operand_t, pinv_root_t<4, gram_cols_t<operand_t>>>>>
  : std::true_type {};
template <>
struct polar_form<product_t<pinv_root_t<2, gram_rows_t<operand_t>>, operand_t>> : std::true_type {};
template <>
struct polar_form<product_t<operand_t, pinv_root_t<2, gram_cols_t<operand_t>>>> : std::true_type {};

// What a composition declares it is the dual map of (train/implied_norm.hpp reads `approximates`,
// as it does a norm's map's: norms/polar.hpp): the spectral norm's, exactly, for a polar form.
template <class E, bool = polar_form<E>::value>
struct declared_norm {
  bool operator==(const declared_norm&) const = default;
};
template <class E>
struct declared_norm<E, true> {
  using approximates = norms::spectral;
  static constexpr bool exact = true;
  bool operator==(const declared_norm&) const = default;
};
} // namespace detail

// The map a composition makes (expr::stateful_matrix_map); precondition(e, x) below builds it.
template <matrix_expression E>
struct composed : detail::declared_norm<E> {
  using slots = typename expr::detail::unique_types<typename detail::slots_under<E>::type>::type;
  static_assert(
    detail::names_unique<slots>::value,
    "two different matrix pieces share a state name: give each ema, accumulate and every its own");
  static constexpr std::size_t state_count = expr::detail::list_size<slots>::value;
  static constexpr std::size_t operands_read = detail::operands_read<E>::value;
  static constexpr bool needs_matrix = true;
  template <class S>
  static constexpr std::size_t slot_index = detail::index_in<S, slots>::value;

  E e;

  std::string state_name(std::size_t j) const {
    std::string out;
    for_each_slot([&]<class S>(std::size_t k) {
      if (k == j)
        out = std::string(S::name);
    });
    return out;
  }
  // Each slot in the shape of its value for a rows x cols block ({0, 0} where the shapes do not
  // fit: check_block refuses such a block first).
  shape_t state_shape(std::size_t j, std::size_t rows, std::size_t cols) const {
    shape_t out{ 0, 0 };
    for_each_slot([&]<class S>(std::size_t k) {
      if (k == j)
        if (const detail::dims d = detail::shape<S>::of(rows, cols); d.problem.empty())
          out = { d.r, d.c };
    });
    return out;
  }

  // Empty if the settings make a preconditioner; otherwise what is wrong with them.
  std::string check_settings() const {
    std::string problem;
    detail::visit(e, [&]<class N>(const N& n) {
      if (!problem.empty())
        return;
      if constexpr (detail::is_power<N>::value) {
        if (!std::isfinite(n.exponent) || !(n.eps >= 0) || !std::isfinite(n.eps))
          problem = "matrix_power: the exponent must be finite, and eps finite and >= 0";
      } else if constexpr (detail::is_slot<N>::value) {
        if (N::kind == slot_kind::ema && !(n.beta >= 0 && n.beta < 1))
          problem =
            "ema<\"" + std::string(N::name) + "\">: beta must be in [0, 1), got " + std::to_string(n.beta);
        if (N::kind == slot_kind::every && n.k < 1)
          problem = "every<\"" + std::string(N::name) + "\">: k must be >= 1, got " + std::to_string(n.k);
        // One name, one slot: the same piece written twice must carry the same settings.
        detail::visit(e, [&]<class M>(const M& m) {
          if constexpr (std::is_same_v<M, N>)
            if (!(m == n) && problem.empty())
              problem = "the state '" + std::string(N::name) + "' is written twice with different settings";
        });
      }
    });
    return problem;
  }
  // Empty if a rows x cols block fits the composition; otherwise what does not.
  std::string check_block(std::size_t rows, std::size_t cols) const {
    const detail::dims d = detail::shape<E>::of(rows, cols);
    if (!d.problem.empty())
      return d.problem;
    if (d.r != rows || d.c != cols)
      return "the composition's value is " + detail::text(d) + ", not the block's " + std::to_string(rows) +
             " x " + std::to_string(cols);
    return {};
  }

  // x (row-major rows x cols) <- the composition's value, every slot's new value into st.next
  // (compose_apply.hpp).
  template <class T>
  void apply(T* x, std::size_t rows, std::size_t cols, expr::matrix_state<T> st) const;

  bool operator==(const composed&) const = default;

private:
  template <class F>
  static void for_each_slot(F&& f) {
    [&]<class... S>(expr::detail::type_list<S...>) {
      std::size_t k = 0;
      (f.template operator()<S>(k++), ...);
    }(slots{});
  }
};

// The map a composition makes for a stage of N operands; refused at compile time if it reads an
// arg<J> past them.
template <std::size_t N, matrix_expression E>
constexpr composed<E> composition_of(E value) {
  static_assert(composed<E>::operands_read <= N,
                "the composition reads pc::arg<J> for a J past precondition's operands: "
                "precondition(value, x, y, ...) gives arg<0> = x, arg<1> = y, ...");
  return { {}, value };
}

// The stage: `value` (a composition of the pieces above) of each block of `operand` (x); with
// more operands, value reads them as arg<1>, arg<2>, ..., block by block, e.g. Shampoo's factors
// from the gradient applied to a momentum:
//   auto L = pc::ema<"L">(pc::gram_rows(pc::arg<1>), 0.99);
//   auto u = pc::precondition(pc::inverse_root(L, 2, 1e-6) * pc::x, ema<"m">(grad, 0.9), grad);
template <matrix_expression E, expr::operand X, expr::operand... Y>
constexpr auto precondition(E value, X&& operand, Y&&... others) {
  return expr::precondition(composition_of<1 + sizeof...(Y)>(value), std::forward<X>(operand),
                            std::forward<Y>(others)...);
}

// A composition per slice_rows x slice_cols slice of each block (stacked experts, heads), each
// slice with its own state (expr/sliced_state.hpp):
//   pc::precondition(pc::slices(pc::inverse_root(L, 4, eps) * pc::x * pc::inverse_root(R, 4, eps), out, in),
//   grad)
template <matrix_expression E>
struct sliced_value {
  E value;
  std::size_t slice_rows, slice_cols;
};
template <matrix_expression E>
constexpr sliced_value<E> slices(E value, std::size_t slice_rows, std::size_t slice_cols) {
  return { value, slice_rows, slice_cols };
}
template <matrix_expression E, expr::operand X, expr::operand... Y>
constexpr auto precondition(sliced_value<E> v, X&& operand, Y&&... others) {
  return expr::precondition(
    expr::slices(composition_of<1 + sizeof...(Y)>(v.value), v.slice_rows, v.slice_cols),
    std::forward<X>(operand), std::forward<Y>(others)...);
}

} // namespace steep::precond
