#pragma once
// The checks the preconditioners' settings share (check_settings() of shampoo.hpp, soap.hpp,
// dion.hpp): an empty string if a value is acceptable, else the message the optimizer's
// constructor refuses with.
//
//   if (auto bad = steep::precond::finite_nonnegative("shampoo", "eps", s.eps); !bad.empty()) return bad;

#include <cmath>
#include <string>
#include <string_view>

namespace steep::precond {

// "<map>: <name> must be finite and >= 0, got <value>" unless value is finite and >= 0.
inline std::string finite_nonnegative(std::string_view map, std::string_view name, double value) {
  if (value >= 0 && std::isfinite(value))
    return {};
  return std::string(map) + ": " + std::string(name) + " must be finite and >= 0, got " +
         std::to_string(value);
}

} // namespace steep::precond
