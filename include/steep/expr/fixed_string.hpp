#pragma once
// fixed_string<N>: a string literal usable as a template argument, so that a state slot's or a
// hyperparameter's name is part of its type.
//
//   template <steep::fixed_string Name> struct tag {};
//   tag<"exp_avg"> t;                          // Name.view() == "exp_avg"
//
// Names in types are what let the compiler give every slot a stable identity (the same name is
// the same buffer) and let checkpoints key state by name.

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace steep {

template <std::size_t N>
struct fixed_string {
  char chars[N]{};
  constexpr fixed_string(const char (&s)[N]) { std::copy_n(s, N, chars); }
  constexpr std::string_view view() const { return { chars, N - 1 }; }
  template <std::size_t M>
  constexpr bool operator==(const fixed_string<M>& o) const {
    return view() == o.view();
  }
};

} // namespace steep
