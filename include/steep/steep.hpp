#pragma once
// steep: optimizers as compositions of momentum, normalization and dual maps, compiled into
// one fused SIMD + TBB loop.
//
//   #include <steep/steep.hpp>
//   using namespace steep::expr;
//   steep::param_store<float> store({{"W", {64, 32}}, {"b", {64}}});
//   auto my_rule = -1e-3 * sign(ema<"m">(grad, 0.9)) / (1.0 + abs(param));  // a new variant
//   steep::optimizer opt(my_rule, store);
//   opt.step();
#include "steep/core/param_store.hpp"
#include "steep/engine.hpp"
#include "steep/engine/checkpoint.hpp"
#include "steep/expr.hpp"
#include "steep/precond.hpp"
#include "steep/rules.hpp"
#ifdef STEEP_COMPILED
// Linked with steep::compiled (docs/compile-time.md): the catalogue's optimizers come
// from the library instead of being compiled in this unit.
#include "steep/compiled.hpp"
#endif
