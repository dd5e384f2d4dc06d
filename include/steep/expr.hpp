#pragma once
// The DSL: grammar (node, state, reduce, schedules), compiler (program) and optimizer.
#include "steep/expr/any_optimizer.hpp"
#include "steep/expr/dual.hpp"
#include "steep/expr/matrix.hpp"
#include "steep/expr/node.hpp"
#include "steep/expr/optimizer.hpp"
#include "steep/expr/program.hpp"
#include "steep/expr/reduce.hpp"
#include "steep/expr/route.hpp"
#include "steep/expr/schedules.hpp"
#include "steep/expr/state.hpp"
