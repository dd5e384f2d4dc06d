#pragma once
// steep::compiled's optimizers, float and double, for the rule of steep/rules/soap.hpp:
// STEEP_COMPILED_RULE, steep/compiled/instance.hpp. soap(lr, settings) is soap(lr)'s type (the
// settings are values), so one instance serves every setting.
//
//   #include <steep/compiled/soap.hpp>   // for the rule header, with steep::compiled linked

#include "steep/compiled/instance.hpp"
#include "steep/rules/soap.hpp"

STEEP_COMPILED_RULE(steep::rules::soap(0.02))
