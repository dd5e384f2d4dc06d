// steep._C: the pybind11 module under steep.torch and steep.numpy (python/README.md). Tensors
// cross as DLPack capsules (dlpack.hpp), so it links no libtorch and serves any torch or NumPy
// that speaks DLPack 0.6.
#include "dlpack.hpp"
#include "group.hpp"
#include "rules.hpp"
#include "steep/engine/guard.hpp"

#include <pybind11/stl.h>
#include <stdexcept>

namespace py = pybind11;
namespace sp = steep::python;

namespace {

steep::engine::nonfinite_policy policy_named(const std::string& s) {
  using p = steep::engine::nonfinite_policy;
  if (s == "refuse")
    return p::refuse;
  if (s == "skip")
    return p::skip;
  if (s == "mask")
    return p::mask;
  if (s == "off")
    return p::off;
  throw py::value_error("nonfinite='" + s + "': expected 'refuse', 'skip', 'mask' or 'off'");
}

sp::dtype dtype_named(const std::string& s) {
  if (s == "float32")
    return sp::dtype::f32;
  if (s == "float64")
    return sp::dtype::f64;
  throw py::value_error("dtype '" + s + "': steep steps float32 or float64");
}

} // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "steep's optimizers over tensors passed by DLPack (python/README.md)";
  py::register_exception<steep::engine::nonfinite_error>(m, "NonFiniteError", PyExc_ValueError);

  m.def("rule_names", &sp::rule_names);

  py::class_<sp::group, std::shared_ptr<sp::group>>(m, "Group")
    .def(
      py::init([](const std::string& dtype,
                  const std::vector<std::pair<std::string, std::map<std::string, double>>>& rules,
                  const std::vector<std::tuple<std::string, std::vector<std::size_t>, std::size_t>>& blocks,
                  const py::list& params, const py::list& grads, int threads, const std::string& nonfinite,
                  std::size_t serial_below) {
        std::vector<sp::arm_spec> arms;
        for (const auto& [rule, settings] : rules)
          arms.push_back({ rule, settings });
        std::vector<sp::block_info> infos;
        for (const auto& [name, shape, arm] : blocks)
          infos.push_back({ name, steep::shape_t(shape.begin(), shape.end()), arm });
        steep::engine::optimizer_options opts;
        opts.threads = threads;
        opts.nonfinite = policy_named(nonfinite);
        opts.serial_below = serial_below;
        return sp::make_group(dtype_named(dtype), arms, std::move(infos), opts, params, grads);
      }),
      py::arg("dtype"), py::arg("rules"), py::arg("blocks"), py::arg("params"), py::arg("grads"),
      py::arg("threads") = 0, py::arg("nonfinite") = "refuse", py::arg("serial_below") = 0,
      "rules: [(rule name, construction settings)]; blocks: [(name, shape, index of its rule)]; "
      "params, grads: one DLPack capsule per block (a gradient may be None); serial_below: a pass over "
      "fewer parameters runs on the calling thread (optimizer_options::serial_below)")
    .def("step", &sp::group::step, py::arg("params"), py::arg("grads"), py::arg("hypers") = py::none(),
         "One step over the tensors' own memory, without the GIL: 'applied', 'held_back' or 'refused'; "
         "hypers: per rule, {name: value} (None: the values set last)")
    .def("prepare", &sp::group::prepare, py::arg("params"), py::arg("grads"), py::arg("hypers") = py::none(),
         "The read-only half of a step: False if a non-finite gradient refused it (nonfinite='skip')")
    .def("commit", &sp::group::commit, "The writing half, after a prepare() that returned True")
    .def("step_bound", &sp::group::step_bound, py::arg("hypers") = py::none(),
         "step() over the tensors the last step() or prepare() read, which the caller vouches are the same "
         "tensors at the same addresses: no capsule is read")
    .def("prepare_bound", &sp::group::prepare_bound, py::arg("hypers") = py::none(),
         "prepare() over the tensors the last step() or prepare() read (as step_bound)")
    .def("state", &sp::group::state, "[(block index, slot name, DLPack capsule over steep's memory)]")
    .def("step_counts", &sp::group::step_counts, "one float32 per block: the step count")
    .def_property_readonly("steps", &sp::group::steps)
    .def_property_readonly("skipped_steps", &sp::group::skipped_steps)
    .def("restore_steps", &sp::group::restore_steps, py::arg("steps"), py::arg("skipped") = 0)
    .def("hyperparameters", &sp::group::hyperparameters, py::arg("rule") = 0)
    .def("held_back", &sp::group::held_back)
    .def("describe", &sp::group::describe);
}
