#pragma once
// DLPack in both directions, for steep._C (python/README.md), with no copy and no libtorch:
//
//   borrowed_tensor t = borrow(capsule, "parameter 'fc.weight'");   // a producer's tensor
//   py::capsule c = lend(data, dtype::f32, {4, 3}, keep_alive);      // steep's memory, to torch
//
// borrow() reads a "dltensor" capsule (torch.utils.dlpack.to_dlpack(t), numpy's __dlpack__())
// without consuming it: the producer's own capsule destructor releases the tensor when the
// capsule dies, and the caller keeps the tensor object alive for as long as it uses the address.
// It refuses, naming the tensor, memory that is not the CPU's, a dtype other than float32 or
// float64, and strides that are not row-major contiguous: steep writes through the tensor's own
// memory, so a copy (.contiguous(), .float()) would be updated instead of the tensor.
//
// lend() makes a capsule over steep's memory (an optimizer's state slot); its deleter drops
// `keep`, which owns that memory, so a torch tensor made from it stays valid after the optimizer
// is gone. The DLPack 0.6 header is Debian's libdlpack-dev (the version torch 1.13 speaks).

#include "steep/core/shape.hpp"

#include <cstdint>
#include <dlpack/dlpack.h>
#include <memory>
#include <pybind11/pybind11.h>
#include <string>
#include <type_traits>
#include <vector>

namespace steep::python {

namespace py = pybind11;

enum class dtype { f32, f64 };

inline const char* name(dtype d) { return d == dtype::f32 ? "float32" : "float64"; }
inline std::size_t size_of(dtype d) { return d == dtype::f32 ? 4 : 8; }

struct borrowed_tensor {
  void* data;
  dtype type;
  shape_t shape;
  std::size_t elements;
};

namespace detail {
inline std::string describe_dtype(const DLDataType& t) {
  const char* names[] = { "int", "uint", "float", "opaque handle ", "bfloat" };
  std::string s = t.code < 5
                    ? names[t.code] + std::to_string(t.bits)
                    : "type code " + std::to_string(t.code) + " of " + std::to_string(t.bits) + " bits";
  return t.lanes == 1 ? s : s + " x " + std::to_string(t.lanes) + " lanes";
}
} // namespace detail

// The tensor a DLPack capsule describes, checked; `what()` names it in every refusal (called
// only then: a step borrows every tensor of a group, and a name built per tensor would cost
// more than the check).
template <class Name>
requires std::is_invocable_r_v<std::string, const Name&> borrowed_tensor borrow(py::handle capsule,
                                                                                const Name& what) {
  if (!PyCapsule_IsValid(capsule.ptr(), "dltensor"))
    throw py::type_error(what() +
                         ": expected a DLPack capsule named 'dltensor' (from __dlpack__() or "
                         "torch.utils.dlpack.to_dlpack), got " +
                         std::string(py::str(py::type::handle_of(capsule))));
  const auto* m = static_cast<const DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
  const DLTensor& t = m->dl_tensor;
  if (t.device.device_type != kDLCPU)
    throw py::value_error(what() + " is not in CPU memory (DLPack device type " +
                          std::to_string(t.device.device_type) +
                          "); steep steps CPU tensors in place and never copies one");
  const bool f32 = t.dtype.code == kDLFloat && t.dtype.bits == 32 && t.dtype.lanes == 1;
  const bool f64 = t.dtype.code == kDLFloat && t.dtype.bits == 64 && t.dtype.lanes == 1;
  if (!f32 && !f64)
    throw py::value_error(what() + " has dtype " + detail::describe_dtype(t.dtype) +
                          "; steep steps float32 or float64 tensors and never converts one");
  borrowed_tensor out{ static_cast<char*>(t.data) + t.byte_offset, f32 ? dtype::f32 : dtype::f64, {}, 1 };
  for (int d = 0; d < t.ndim; ++d) {
    if (t.shape[d] < 0)
      throw py::value_error(what() + " has a negative extent in its DLPack shape");
    out.shape.push_back(static_cast<std::size_t>(t.shape[d]));
    out.elements *= static_cast<std::size_t>(t.shape[d]);
  }
  // Row-major and dense: each stride the product of the extents after it, except where an
  // extent is 1 (any stride addresses the same element) or the tensor is empty.
  if (t.strides != nullptr && out.elements > 1) {
    std::int64_t expected = 1;
    for (int d = t.ndim - 1; d >= 0; --d) {
      if (t.shape[d] != 1 && t.strides[d] != expected) {
        std::string strides;
        for (int k = 0; k < t.ndim; ++k)
          strides += (k ? ", " : "") + std::to_string(t.strides[k]);
        throw py::value_error(what() + " is not contiguous (shape " + to_string(out.shape) + ", strides (" +
                              strides +
                              ") in elements); steep steps a tensor's own memory and never copies "
                              "one (a contiguous copy of a parameter would be updated instead of it)");
      }
      expected *= t.shape[d];
    }
  }
  return out;
}
inline borrowed_tensor borrow(py::handle capsule, const std::string& what) {
  return borrow(capsule, [&] { return what; });
}

namespace detail {
struct lent {
  std::shared_ptr<void> keep;
  std::vector<std::int64_t> shape;
  DLManagedTensor managed{};
};
inline void delete_lent(DLManagedTensor* m) { delete static_cast<lent*>(m->manager_ctx); }
// A capsule nobody consumed still owns its tensor (the DLPack protocol: a consumer renames it).
inline void delete_capsule(PyObject* capsule) {
  if (PyCapsule_IsValid(capsule, "dltensor")) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
    m->deleter(m);
  }
}
} // namespace detail

// A "dltensor" capsule over `data` (row-major, `shape`), which `keep` keeps alive.
inline py::capsule lend(void* data, dtype type, const shape_t& shape, std::shared_ptr<void> keep) {
  auto* l = new detail::lent{ std::move(keep), {}, {} };
  for (auto d : shape)
    l->shape.push_back(static_cast<std::int64_t>(d));
  DLTensor& t = l->managed.dl_tensor;
  t.data = data;
  t.device = { kDLCPU, 0 };
  t.ndim = static_cast<int>(l->shape.size());
  t.dtype = { kDLFloat, static_cast<std::uint8_t>(8 * size_of(type)), 1 };
  t.shape = l->shape.data();
  t.strides = nullptr; // compact row-major
  t.byte_offset = 0;
  l->managed.manager_ctx = l;
  l->managed.deleter = &detail::delete_lent;
  return py::capsule(&l->managed, "dltensor", &detail::delete_capsule);
}

} // namespace steep::python
