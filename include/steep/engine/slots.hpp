#pragma once
// State slots as the engine stores them: one buffer per slot, laid out like the parameter arena.
//
//   steep::engine::slot_buffer<float> m;
//   m.lay_out(store.blocks(), 0.f);     // each block at a 64-byte aligned position, all zero
//   float* m_of_block_2 = m.at(2);
//
// A slot's name and dtype come from the rule's type (expr/state.hpp); `slot_info` is what an
// optimizer reports of them at run time (describe(), checkpoints, the implied-norm analysis).

#include "steep/core/aligned_buffer.hpp"
#include "steep/core/bfloat16.hpp"
#include "steep/core/fnv.hpp"
#include "steep/core/shape.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace steep::engine {

struct slot_info {
  std::string name;
  std::string dtype;
  std::size_t element_size;
  std::string granularity = "element"; // or "block", "row", "column": one value per block, row or column
  // Its degree in the gradient (expr/degree.hpp): 1 for momentum, 2 for a second moment; NaN
  // where it is not homogeneous. What rescaling the gradient needs (train/rescale.hpp).
  double degree = std::numeric_limits<double>::quiet_NaN();
};

// What a rule's type says of one of its slots: compile-time data (a rule's list of them is a
// constexpr array), made a slot_info once, by code that is the same for every rule.
struct slot_meta {
  std::string_view name, dtype;
  std::size_t element_size;
  std::string_view granularity;
  double degree;
  slot_info info() const {
    return { std::string(name), std::string(dtype), element_size, std::string(granularity), degree };
  }
};

// One slot of one block as raw bytes, for checkpoints (engine/checkpoint.hpp).
struct slot_bytes {
  std::string block, slot;
  std::string dtype; // safetensors' name: F32, F64, BF16
  shape_t shape;     // the block's, (rows), (cols) or (1)
  std::span<std::byte> bytes;
};

// A structural hash of a rule's composition: FNV-1a of its C++ type's mangled name, which spells
// out every node, stage name and dtype (stable for one compiler; checkpoints record it).
// (Its starting value is not FNV's offset basis, a digit short; checkpoints record the hash, so
// it stays.)
inline std::string rule_hash(const std::type_info& rule) {
  fnv1a h(1469598103934665603ull);
  h.add_bytes(rule.name(), std::strlen(rule.name()));
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h.value()));
  return out;
}
template <class Rule>
std::string rule_hash() {
  return rule_hash(typeid(Rule));
}

// The names of a storage dtype: steep's (describe(), slots()) and safetensors' (checkpoints).
struct dtype_names {
  std::string_view name, safetensors;
};
template <class T>
constexpr dtype_names dtype_of() {
  if constexpr (std::is_same_v<T, float>)
    return { "float32", "F32" };
  else if constexpr (std::is_same_v<T, double>)
    return { "float64", "F64" };
  else if constexpr (std::is_same_v<T, bfloat16>)
    return { "bfloat16", "BF16" };
  else
    return { "unknown", "unknown" };
}
template <class T>
constexpr std::string_view dtype_name() {
  return dtype_of<T>().name;
}
template <class T>
constexpr std::string_view safetensors_dtype() {
  return dtype_of<T>().safetensors;
}

// One value per parameter, laid out like the parameter arena: a state slot or a matrix stage's
// scratch.
template <class S>
struct slot_buffer {
  aligned_buffer<S> data;
  std::vector<std::size_t> offset; // per block
  S* at(std::size_t b) noexcept { return data.data() + offset[b]; }
  const S* at(std::size_t b) const noexcept { return data.data() + offset[b]; }

  // counts[b] values for block b (a per-row or per-column slot), every value `init`.
  void lay_out_counts(const std::vector<std::size_t>& counts, S init) {
    std::size_t n = 0;
    for (std::size_t c : counts) {
      offset.push_back(n);
      n += c;
    }
    data.assign(n, init);
  }

  // One value per block (a per-block slot), every value `init`.
  void lay_out_per_block(std::size_t blocks, S init) {
    for (std::size_t b = 0; b < blocks; ++b)
      offset.push_back(b);
    data.assign(blocks, init);
  }

  // Each block at a 64-byte aligned position, every value `init`.
  template <class Blocks>
  void lay_out(const Blocks& blocks, S init) {
    std::size_t n = 0;
    for (auto& b : blocks) {
      offset.push_back(n);
      n += padded_count<S>(b.size);
    }
    data.assign(n, init);
  }
};

} // namespace steep::engine
