#pragma once
// steep::compiled: the whole catalogue's optimizers, compiled once into a library instead of in
// every translation unit that steps them (steep/compiled/instance.hpp; docs/compile-time.md).
//
//   target_link_libraries(app PRIVATE steep::compiled)   // CMake: STEEP_COMPILED, so this header
//   #include <steep/steep.hpp>                           // comes with steep.hpp (same -march)
//   steep::optimizer opt(steep::rules::adam(1e-3), store); // compiled in the library
//
// A unit that steps a few rules includes only their headers under steep/compiled/.
#include "steep/compiled/adagrad.hpp"
#include "steep/compiled/adam.hpp"
#include "steep/compiled/adam_mini.hpp"
#include "steep/compiled/adamuon.hpp"
#include "steep/compiled/adamw.hpp"
#include "steep/compiled/dion.hpp"
#include "steep/compiled/hybrids.hpp"
#include "steep/compiled/implicit_bias.hpp"
#include "steep/compiled/lion.hpp"
#include "steep/compiled/muon.hpp"
#include "steep/compiled/normalized_gd.hpp"
#include "steep/compiled/normuon.hpp"
#include "steep/compiled/optax.hpp"
#include "steep/compiled/rmsprop.hpp"
#include "steep/compiled/scion.hpp"
#include "steep/compiled/sgd.hpp"
#include "steep/compiled/shampoo.hpp"
#include "steep/compiled/signum.hpp"
#include "steep/compiled/soap.hpp"
#include "steep/compiled/torch_order.hpp"
