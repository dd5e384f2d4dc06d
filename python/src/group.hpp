#pragma once
// group: one torch parameter group (or one NumPy model) as steep steps it: one or more arms,
// each a steep optimizer (rules.hpp) over the group's blocks it routes there, all stepped by one
// call that releases the GIL.
//
//   auto g = make_group(dtype::f32, {{"adamw", {}}}, blocks, {.threads = 0});
//   g->step(param_capsules, grad_capsules, {{{"lr", 1e-3}}});   // "applied" | "held_back" | "refused"
//   g->step_bound(std::nullopt);     // the same tensors and hyperparameters again: no capsule read
//   g->state();                                                  // [(block, slot, capsule)]
//
// A step re-reads every tensor's address (torch may have replaced a gradient since the last
// step), checks it as the store's constructor would (dtype, shape, no two buffers overlapping),
// sets the hyperparameters that changed, and then steps: every arm prepares (read-only: the
// non-finite guard, reductions, matrix phases) before any commits, as a route does
// (engine/routed.hpp), so a refused step writes nothing in any arm. step_bound and
// prepare_bound step the tensors the last step bound, for a caller that has checked they are
// the same tensors at the same addresses (steep.torch compares their ids and data_ptr(): a
// capsule per tensor costs more than a small model's whole step; python/README.md, "Speed").

#include "dlpack.hpp"
#include "steep/core/shape.hpp"
#include "steep/engine/options.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <pybind11/pybind11.h>
#include <string>
#include <utility>
#include <vector>

namespace steep::python {

struct arm_spec {
  std::string rule;
  std::map<std::string, double> settings;
};

struct block_info {
  std::string name;
  shape_t shape;
  std::size_t arm = 0;
};

// Per rule of a group: its hyperparameters' values for a step; none: the values set last.
using hyper_sets = std::optional<std::vector<std::map<std::string, double>>>;

class group : public std::enable_shared_from_this<group> {
public:
  virtual ~group() = default;

  // One step: prepare() then, if it found nothing, commit(), without the GIL throughout.
  // `hypers[a]`: arm a's hyperparameters for it (only changed values are set).
  // "applied", "held_back" or "refused".
  virtual std::string step(const py::list& params, const py::list& grads, const hyper_sets& hypers) = 0;
  // The read-only half, for an optimizer of several groups that prepares all before committing
  // any: false if a non-finite gradient refused the step under nonfinite_policy::skip (it
  // throws nonfinite_error under refuse); commit() writes, and says what it did.
  virtual bool prepare(const py::list& params, const py::list& grads, const hyper_sets& hypers) = 0;
  virtual std::string commit() = 0;
  // step() and prepare() over the tensors the last step() or prepare() read (refused before
  // the first): the caller vouches that they are the same tensors, at the same addresses.
  virtual std::string step_bound(const hyper_sets& hypers) = 0;
  virtual bool prepare_bound(const hyper_sets& hypers) = 0;
  // Every state slot of every block: (block index, slot name, DLPack capsule over steep's memory).
  virtual py::list state() = 0;
  // One float32 per block, the step count, rewritten after every step (torch's state['step']).
  virtual py::capsule step_counts() = 0;
  virtual std::int64_t steps() const = 0;
  virtual std::int64_t skipped_steps() const = 0;
  virtual void restore_steps(std::int64_t t, std::int64_t skipped) = 0;
  virtual std::vector<std::pair<std::string, double>> hyperparameters(std::size_t arm) const = 0;
  virtual std::optional<std::string> held_back() const = 0;
  virtual std::string describe() const = 0;
};

// Builds the group; `params[i]` (and `grads[i]` where not None) are block i's tensors now.
std::shared_ptr<group> make_group(dtype type, const std::vector<arm_spec>& arms,
                                  std::vector<block_info> blocks, const engine::optimizer_options& opts,
                                  const py::list& params, const py::list& grads);

} // namespace steep::python
