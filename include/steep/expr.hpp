#pragma once
// The DSL: grammar (node, state, reduce, matrix, dual, route, schedules) and compiler (program).
// What runs a compiled rule is the engine (steep/engine.hpp).
#include "steep/expr/bfloat16_state.hpp"
#include "steep/expr/degree.hpp"
#include "steep/expr/dual.hpp"
#include "steep/expr/matrix.hpp"
#include "steep/expr/ops.hpp"
#include "steep/expr/program.hpp"
#include "steep/expr/reduce.hpp"
#include "steep/expr/route.hpp"
#include "steep/expr/schedules.hpp"
#include "steep/expr/state.hpp"
