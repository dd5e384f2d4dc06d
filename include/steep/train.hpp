#pragma once
// steep/train.hpp: datasets, full-batch training, margins under any norm, KKT certificates and
// the implied norm of a rule (README, "The main job").
//
//   auto data = steep::train::synthetic_separable<double>({.samples = 100, .dim = 20});
//   steep::train::full_batch<net_t, double> task(net, data, loss);
//   steep::optimizer opt(steep::rules::signum(steep::expr::inv_power(0.1, 0.8)), net.store());
//   auto h = steep::train::fit(task, opt, {.steps = 100000, .norms = {steep::train::model_norm::linf()}});
//   using signum_t = decltype(steep::rules::signum(0.1));
//   static_assert(std::is_same_v<steep::implied_norm_t<signum_t>, steep::norms::linf>);
#include "steep/model.hpp"
#include "steep/train/data.hpp"
#include "steep/train/implied_norm.hpp"
#include "steep/train/implied_norm_of.hpp"
#include "steep/train/margins.hpp"
#include "steep/train/model_norm.hpp"
#include "steep/train/rescale.hpp"
#include "steep/train/trainer.hpp"
