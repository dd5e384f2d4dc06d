#pragma once
// operands<C...>: the operands of an expression node, stored as a plain aggregate.
//
//   get<I>(ops)            the I-th operand (found by argument-dependent lookup, or expr::get)
//   operands<C...>::size   how many
//   operand_t<I, Ops>      the type of the I-th operand
//
//   steep::expr::operands<grad_t, constant> k{ { grad }, { constant(2.0) } };
//   steep::expr::get<1>(k).value == 2.0;
//
// Why not std::tuple: every node of every rule stores its operands, and each std::tuple type
// instantiates a recursive chain of base classes with a set of constructors, accessors and
// helpers per level. Across the catalogue those were a fifth of the functions a translation
// unit compiled (docs/compile-time.md). An aggregate with one base per operand
// instantiates no constructor at all, and get<I> is one function per operand type and index.

#include <cstddef>
#include <type_traits>
#include <utility>

namespace steep::expr {

template <std::size_t I, class T>
struct operand_slot {
  T value;
  bool operator==(const operand_slot&) const = default;
};

template <class Seq, class... C>
struct operands_of;
template <std::size_t... I, class... C>
struct operands_of<std::index_sequence<I...>, C...> : operand_slot<I, C>... {
  static constexpr std::size_t size = sizeof...(C);
  bool operator==(const operands_of&) const = default;
};

template <class... C>
using operands = operands_of<std::index_sequence_for<C...>, C...>;

// (Deduced from the one base operand_slot<I, T> of the operands.)
template <std::size_t I, class T>
constexpr T& get(operand_slot<I, T>& s) noexcept {
  return s.value;
}
template <std::size_t I, class T>
constexpr const T& get(const operand_slot<I, T>& s) noexcept {
  return s.value;
}

template <std::size_t I, class Ops>
using operand_t = std::remove_cvref_t<decltype(get<I>(std::declval<Ops&>()))>;

} // namespace steep::expr
