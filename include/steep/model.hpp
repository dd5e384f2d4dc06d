#pragma once
// steep/model.hpp: the homogeneous layer graph (README, "The main job").
//
//   using net_t = steep::model::mlp_t<2, steep::model::relu_pow<2>>;   // linear, relu^2, linear
//   static_assert(steep::degree_v<net_t> == 3);
//   steep::model::network<net_t, double> net({784, 64, 1}, 1000);     // widths, batch capacity
//   steep::model::loss_fn loss{steep::model::loss_kind::logistic};
#include "steep/model/activation.hpp"
#include "steep/model/graph.hpp"
#include "steep/model/loss.hpp"
#include "steep/model/network.hpp"
