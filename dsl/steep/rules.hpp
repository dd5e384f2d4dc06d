#pragma once
// The whole rule catalogue. Each rule is a few lines in its own header under steep/rules/.
#include "steep/rules/adagrad.hpp"
#include "steep/rules/adam.hpp"
#include "steep/rules/adamw.hpp"
#include "steep/rules/hybrids.hpp"
#include "steep/rules/lion.hpp"
#include "steep/rules/muon.hpp"
#include "steep/rules/normalized_gd.hpp"
#include "steep/rules/optax.hpp"
#include "steep/rules/rmsprop.hpp"
#include "steep/rules/sgd.hpp"
#include "steep/rules/signum.hpp"
#include "steep/rules/weight_decay.hpp"
