#pragma once
// Gradient rescaling for the margin regime: train at losses of 1e-300 and below without underflow,
// with exactly the trajectory of the unscaled run.
//
//   steep::train::gradient_scale scale(opt);   // any optimizer_interface, any_optimizer included
//   if (scale.wants_move(r.max_log_weight) && scale.move(opt, store, r.max_log_weight))
//     r = task.gradient(scale.log_shift());               // recompute in the new scale
//
// Why (docs/implicit-bias.md §6): late in training the gradient is ~ Loss * |grad f|, so at a loss
// of 1e-300 it is subnormal and its square (Adam's v) is 0; an SVD of a subnormal matrix (Muon's
// exact polar factor) loses every digit. Multiplying every gradient by one constant e^S changes
// nothing for a rule whose update is scale invariant (a dual map of momentum: normalized GD,
// Signum, Adam with eps = 0, Muon) -- but S must follow the loss down, and an EMA mixes gradients
// of many steps. So S changes rarely (when the gradient's log-scale has moved by more than
// `hysteresis` nats), and when it does every state slot is multiplied by e^{(S_old - S_new) k},
// where k is the slot's degree in the gradient as the optimizer reports it (slot_info::degree,
// expr/degree.hpp): 1 for momentum (ema, trace of grad), 2 for a second moment (ema of grad^2).
// The rescaled run then equals the unscaled one in exact arithmetic. Rules whose update is not
// scale invariant (gradient_degree() != 0: plain GD, a run-time eps) or that have a slot of no
// degree are not rescaled (available() is false). No rule type is read: the type-erased
// any_optimizer rescales as its typed optimizer does.
// Zero guards count as scale invariant: dual<l2>'s compile-time floor of 1e-30 and Newton-Schulz's
// Frobenius floor of 1e-7 only bind when the gradient is that small, which the rescaled gradient
// (of order 1) never is. There the rescaled run follows the floor-free dynamics, which is the
// point; an unscaled run of such a rule would, late in training, start taking shorter steps.

#include "steep/core/param_store.hpp"
#include "steep/engine/interface.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <map>
#include <string>
#include <utility>

namespace steep::train {

class gradient_scale {
public:
  template <engine::optimizer_interface Opt>
  explicit gradient_scale(const Opt& opt, double hysteresis = 30)
    : hysteresis_(hysteresis)
    , available_(opt.gradient_degree() == 0) {
    for (const auto& s : opt.slots()) {
      degrees_.emplace(s.name, s.degree);
      ok_ = ok_ && s.degree > 0; // NaN: a slot of no degree
    }
  }

  // Whether this optimizer's update is scale invariant (gradient_degree() == 0), so rescaling
  // its gradient changes nothing.
  bool available() const noexcept { return available_; }
  bool enabled() const noexcept { return available_ && ok_; }
  double log_shift() const noexcept { return shift_; }
  int rescales() const noexcept { return count_; }

  // Whether to look at the scale now: at once when the gradient has grown past the hysteresis
  // (overflow ahead), every `period` steps when it has shrunk past it.
  bool wants_move(double max_log_weight) {
    if (!enabled())
      return false;
    ++since_;
    const double drift = max_log_weight - shift_;
    return drift > hysteresis_ || (since_ >= period && drift < -hysteresis_);
  }

  // Moves the shift to the scale of the larger of the gradient and the state (by at most max_move
  // nats) and rescales every slot to it; true when it moved, and the caller then recomputes the
  // gradient with the new log_shift(). The state matters: when the loss falls faster than the
  // momentum forgets (by more than -log(beta) nats a step), the momentum is dominated by old
  // gradients, and the new gradient is negligible beside it (it may then underflow in the state's
  // scale, losing only what rounding would).
  template <class Opt, class T>
  bool move(Opt& opt, param_store<T>& store, double max_log_weight) {
    since_ = 0;
    double state_scale = -std::numeric_limits<double>::infinity(); // log of the largest |slot|^(1/k)
    for_each_slot(opt, store, [&](auto& v, double k) {
      double largest = 0;
      for (auto x : v)
        largest = std::max(largest, std::abs(static_cast<double>(x)));
      if (largest > 0)
        state_scale = std::max(state_scale, std::log(largest) / k);
    });
    const double want = std::max(max_log_weight, shift_ + state_scale);
    // A slot of degree 2 is multiplied by e^{2 move}: keep that finite in T (float: |move| <= 35).
    const double limit =
      std::min(max_move, 0.4 * std::log(static_cast<double>(std::numeric_limits<T>::max())));
    const double target = shift_ + std::clamp(want - shift_, -limit, limit);
    if (std::abs(target - shift_) < 1)
      return false;
    const double delta = shift_ - target; // a slot of degree k is multiplied by e^{delta k}
    for_each_slot(opt, store, [&](auto& v, double k) {
      const T f = static_cast<T>(std::exp(delta * k));
      for (auto& x : v)
        x *= f;
    });
    shift_ = target;
    ++count_;
    return true;
  }

  static constexpr double max_move = 200;
  static constexpr int period = 8;

private:
  // f(state view, degree) for every slot of every block (a route's block has its arm's slots).
  template <class Opt, class T, class F>
  void for_each_slot(Opt& opt, param_store<T>& store, F&& f) const {
    for (const auto& b : store.blocks())
      for (const auto& [name, k] : degrees_)
        if (opt.has_slot(b.name, name)) {
          auto v = opt.state(b.name, name);
          f(v, k);
        }
  }

  double hysteresis_;
  double shift_ = 0;
  int count_ = 0;
  int since_ = 0;
  bool available_;
  bool ok_ = true;
  std::map<std::string, double> degrees_;
};

} // namespace steep::train
