#pragma once
// The engine: runs a compiled rule over a param_store — plain, routed and type-erased
// optimizers behind one interface, with the non-finite guard on every step.
//
// Checkpoints (steep/engine/checkpoint.hpp) are not included here: they bring a JSON parser and
// the safetensors reader, which a translation unit that only steps optimizers should not pay
// to compile (docs/compile-time.md). steep/steep.hpp includes everything.
#include "steep/engine/any_optimizer.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/interface.hpp"
#include "steep/engine/optimizer.hpp"
#include "steep/engine/options.hpp"
#include "steep/engine/routed.hpp"
#include "steep/engine/slots.hpp"

namespace steep {
// The engine's public names are spelled steep::optimizer, steep::optimizer_options, ...
using engine::any_optimizer;
using engine::make_any_optimizer;
using engine::nonfinite_error;
using engine::nonfinite_policy;
using engine::optimizer;
using engine::optimizer_interface;
using engine::optimizer_options;
using engine::slot_bytes;
using engine::slot_info;
using engine::step_outcome;
using engine::step_result;
} // namespace steep
