#pragma once
// steep::compiled's optimizers, float and double, for the rules of steep/rules/shampoo.hpp:
// STEEP_COMPILED_RULE, steep/compiled/instance.hpp. shampoo_one_sided(lr) and shampoo(lr, settings)
// are shampoo(lr)'s type (the settings are values), so one instance serves them all;
// shampoo_unaccumulated(lr) is a composition of the matrix grammar, a type of its own.
//
//   #include <steep/compiled/shampoo.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/shampoo.hpp"

#include <type_traits>

STEEP_COMPILED_RULE(steep::rules::shampoo(0.02))
STEEP_COMPILED_RULE(steep::rules::shampoo_unaccumulated(0.02))
static_assert(
  std::is_same_v<decltype(steep::rules::shampoo(0.02)), decltype(steep::rules::shampoo_one_sided(0.02))>,
  "shampoo_one_sided is shampoo's type: the instance above serves it");
