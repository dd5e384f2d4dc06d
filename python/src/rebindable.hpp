#pragma once
// rebindable<T>: an any_optimizer<T> whose blocks can be pointed at other memory between steps,
// for a caller whose tensors move: torch allocates a fresh gradient after
// zero_grad(set_to_none=True), and a parameter's memory can be replaced (p.data = ...).
//
//   steep::python::rebindable<float> opt(steep::optimizer(steep::rules::adamw(1e-3), store));
//   opt.rebind(i, p_i, g_i);   // block i of the store (its order), before a step
//   opt.step();
//
// Why here and not in the engine: an optimizer copies the store's block table when it is built
// (engine/tables.hpp: tables::blocks_), and its passes read every block's parameter and gradient
// address from that copy at each step, so writing the copy is all a re-bind needs; nothing else
// holds those addresses. The caller checks what the store's constructor would have (the element
// count, and that no two buffers overlap: python/src/checks.hpp) before it calls rebind().

#include "steep/engine/any_optimizer.hpp"

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace steep::python {

template <class T>
class rebindable : public engine::any_optimizer<T> {
public:
  template <class Rule>
  explicit rebindable(engine::optimizer<Rule, T>&& opt)
    : engine::any_optimizer<T>(std::move(opt)) {
    // Each block's part (a route's arm) and its position there: a part holds its blocks in the
    // store's order (engine/routed.hpp, split_by_arm).
    std::vector<std::size_t> seen(this->parts_.size(), 0);
    for (const auto& [name, part] : this->owner_)
      where_.emplace_back(part, seen[part]++);
  }

  std::size_t blocks() const noexcept { return where_.size(); }

  // Block `index` (the store's order) reads and writes `param` and `grad` from the next step on.
  // Its element count and shape stay the store's.
  void rebind(std::size_t index, T* param, T* grad) {
    const auto [part, at] = where_.at(index);
    auto& b = this->parts_[part]->blocks_[at];
    b.param = param;
    b.grad = grad;
  }

private:
  std::vector<std::pair<std::size_t, std::size_t>> where_; // per store block: (part, position)
};

} // namespace steep::python
