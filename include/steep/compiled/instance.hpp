#pragma once
// STEEP_COMPILED_RULE(rule): the catalogue's optimizers compiled once, in the library
// steep::compiled, instead of in every translation unit that steps them.
//
//   STEEP_COMPILED_RULE(steep::rules::adam(1e-3))   // optimizer<that rule's type, float|double>
//   static_assert(steep::compiled::has_instance<decltype(steep::rules::adam(3e-4)), float>);
//
// In a user's translation unit the macro is an explicit instantiation declaration (`extern
// template`) of optimizer<decltype(rule), float> and <..., double>: the unit instantiates the
// class (its compile-time analysis) but not its constructor or step, whose fused loops are most
// of a rule's compile time (docs/compile-time.md, "The compiled catalogue"). steep::compiled's
// sources define STEEP_COMPILED_DEFINE and include the same headers, which makes the macro the
// explicit instantiation definition: one list serves both sides.
//
// A rule's type is its expression's: the values of its hyperparameters are run-time doubles, so
// adam(1e-3), adam(3e-4f) and adam(1e-3, 0.95) are one type, but a schedule is a node of its own
// (adam(inv_power(1e-3, 0.5)) is another type), and so is every new composition. A rule the
// library does not hold is compiled in the user's unit, as without it: correct, not faster.
// has_instance<Rule, T> says which.

// The library's loops are compiled for one SIMD architecture (xsimd's default_arch, from -march)
// and one kind of thread (TBB's, or std::threads with STEEP_STD_THREAD_EXECUTOR). A unit
// compiled for another cannot use them: each unit that declares instances refers to a symbol
// only a library compiled like it defines, so a mismatch is a link error that names what the
// unit wanted (built_for<xsimd::sse2, steep::kernel::tbb_threads> undefined, say), not a wrong
// batch width or another thread pool at run time.

#include "steep/engine.hpp"
#include "steep/kernel/executor.hpp"
#include "steep/kernel/simd.hpp"

#include <type_traits>

namespace steep::compiled {

namespace detail {
template <class Rule, class T>
struct tag {};
} // namespace detail

// Whether steep::compiled holds optimizer<Rule, T>: STEEP_COMPILED_RULE declares an
// instance_of(tag<Rule, T>) for each (a declaration, which may repeat: two headers that name the
// same rule type do not clash).
template <class Rule, class T>
inline constexpr bool has_instance = requires {
  instance_of(detail::tag<Rule, T>{});
};

namespace detail {
// Defined only in the library, for the architecture and threads it was compiled for (below).
template <class Arch, class Threads>
struct built_for {
  static const bool value;
};
} // namespace detail
} // namespace steep::compiled

// Declared in every unit (an explicit specialization must be declared before it is used), and
// defined once, in the library's source that defines STEEP_COMPILED_DEFINE_BUILD_CHECK: a small
// object of its own, so a program that references it pulls in no rule it does not use.
template <>
const bool steep::compiled::detail::built_for<xsimd::default_arch, steep::kernel::executor_threads>::value;
#ifdef STEEP_COMPILED_DEFINE_BUILD_CHECK
template <>
const bool steep::compiled::detail::built_for<xsimd::default_arch, steep::kernel::executor_threads>::value =
  true;
#endif

#if defined(STEEP_COMPILED_DEFINE) || defined(STEEP_COMPILED_DEFINE_BUILD_CHECK)
#define STEEP_COMPILED_EXTERN_
#else
#define STEEP_COMPILED_EXTERN_ extern
namespace steep::compiled::detail {
// Every unit that declares instances needs a library compiled for its architecture and threads.
[[gnu::used]] static const bool* const build_check =
  &built_for<xsimd::default_arch, steep::kernel::executor_threads>::value;
} // namespace steep::compiled::detail
#endif

// At global scope, with qualified names (steep::rules::adam(1e-3)): the rule's type is worked out
// twice, for the instantiation and for has_instance, and must name the same type both times.
#define STEEP_COMPILED_RULE_T_(extern_, rule, T)                                                             \
  extern_ template class steep::engine::optimizer<std::remove_cvref_t<decltype(rule)>, T>;                   \
  namespace steep::compiled::detail {                                                                        \
  void instance_of(tag<std::remove_cvref_t<decltype(rule)>, T>);                                             \
  }
#define STEEP_COMPILED_RULE_BOTH_(extern_, rule)                                                             \
  STEEP_COMPILED_RULE_T_(extern_, rule, float) STEEP_COMPILED_RULE_T_(extern_, rule, double)
// The instances of a rule listed in this header: declared, or defined in the library's source.
#define STEEP_COMPILED_RULE(...) STEEP_COMPILED_RULE_BOTH_(STEEP_COMPILED_EXTERN_, (__VA_ARGS__))
// A rule whose type another header's STEEP_COMPILED_RULE already lists (the same expression
// under two names): declared here, defined there. The header says which, with a static_assert
// that the two are one type, so has_instance cannot claim an instance nothing defines.
#define STEEP_COMPILED_RULE_LISTED(...) STEEP_COMPILED_RULE_BOTH_(extern, (__VA_ARGS__))
