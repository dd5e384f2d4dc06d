#pragma once
// Checkpoints: an optimizer's whole state and the model's parameters in one safetensors file.
//
//   steep::save_checkpoint(opt, store, "run.ckpt");   // atomic: the old file survives a crash
//   steep::load_checkpoint(opt, store, "run.ckpt");   // everything checked before anything changes
//
// The file (io/safetensors.hpp) holds "param/<block>" for every block of the store and
// "state/<block>/<slot>" for every slot of every block (per element, per row or column, per
// block; in the slot's dtype: F32, F64 or BF16), keyed by name, with the step count, the
// skipped-step count, the named hyperparameters and the rule's structural hash in the
// metadata. Loading matches by name, never by position (blocks may come in another order), and
// refuses — naming the block and slot — a missing or extra tensor, another shape or dtype,
// another rule, a corrupt or truncated file; then parameters and state are as they were.
// Save, load and continue is bitwise the run that never stopped (tests/unit/test_checkpoint.cpp).

#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/engine/interface.hpp"
#include "steep/engine/slots.hpp"
#include "steep/io/safetensors.hpp"

#include <cstring>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace steep::engine {

namespace detail {
template <class T>
std::span<std::byte> param_bytes(const block<T>& b) {
  return std::as_writable_bytes(std::span<T>(b.param, b.size));
}
} // namespace detail

template <optimizer_interface Opt, class T>
void save_checkpoint(Opt& opt, const param_store<T>& store, const std::string& path) {
  io::tensor_file f;
  f.metadata["rule"] = opt.rule_id();
  f.metadata["step"] = std::to_string(opt.steps());
  f.metadata["skipped_steps"] = std::to_string(opt.skipped_steps());
  for (std::size_t k = 0; k < store.size(); ++k) {
    const auto& b = store.block_at(k);
    f.add("param/" + b.name, std::string(safetensors_dtype<T>()), b.shape, detail::param_bytes(b));
  }
  opt.visit_slots(
    [&](const slot_bytes& s) { f.add("state/" + s.block + "/" + s.slot, s.dtype, s.shape, s.bytes); });
  io::save_atomic(f, path);
}

// From a file image already parsed (io::parse); `path` names it in errors.
template <optimizer_interface Opt, class T>
void load_checkpoint(Opt& opt, param_store<T>& store, const io::tensor_file& f, const std::string& path) {
  auto meta = [&](const std::string& key) {
    const auto it = f.metadata.find(key);
    if (it == f.metadata.end())
      throw usage_error("checkpoint '" + path + "': its metadata has no '" + key + "'; nothing was loaded");
    return it->second;
  };
  if (meta("rule") != opt.rule_id())
    throw usage_error("checkpoint '" + path + "' holds the state of another rule (structural hash " +
                      meta("rule") + ", this optimizer's is " + opt.rule_id() + "); nothing was loaded");
  // Every check first: each tensor the optimizer and the store need, by name, shape and dtype.
  std::set<std::string> used;
  auto check = [&](const std::string& name, const std::string& block, const std::string& dtype,
                   const shape_t& shape, std::size_t bytes) -> const io::tensor_entry& {
    const auto it = f.tensors.find(name);
    if (it == f.tensors.end())
      throw error(block, "checkpoint '" + path + "' has no '" + name + "'; nothing was loaded");
    if (it->second.dtype != dtype || it->second.shape != shape || it->second.data.size() != bytes)
      throw error(block, "checkpoint '" + path + "': '" + name + "' is " + it->second.dtype + " " +
                           to_string(it->second.shape) + ", this optimizer needs " + dtype + " " +
                           to_string(shape) + "; nothing was loaded");
    used.insert(name);
    return it->second;
  };
  std::vector<std::pair<std::span<std::byte>, const io::tensor_entry*>> copies;
  for (std::size_t k = 0; k < store.size(); ++k) {
    const auto& b = store.block_at(k);
    const auto dst = detail::param_bytes(b);
    copies.emplace_back(
      dst, &check("param/" + b.name, b.name, std::string(safetensors_dtype<T>()), b.shape, dst.size()));
  }
  opt.visit_slots([&](const slot_bytes& s) {
    copies.emplace_back(s.bytes,
                        &check("state/" + s.block + "/" + s.slot, s.block, s.dtype, s.shape, s.bytes.size()));
  });
  for (const auto& [name, t] : f.tensors)
    if (!used.count(name))
      throw usage_error("checkpoint '" + path + "' has '" + name +
                        "', which this optimizer and store do not (another model?); nothing was loaded");
  auto count = [&](const std::string& key) {
    const auto v = io::parse_count(meta(key));
    if (!v)
      throw usage_error("checkpoint '" + path + "': its '" + key + "' is '" + meta(key) +
                        "', not a whole number; nothing was loaded");
    return *v;
  };
  const std::int64_t step = count("step"), skipped = count("skipped_steps");
  // Then the writes.
  for (const auto& [dst, src] : copies)
    std::memcpy(dst.data(), src->data.data(), dst.size());
  opt.restore_steps(step, skipped);
}

template <optimizer_interface Opt, class T>
void load_checkpoint(Opt& opt, param_store<T>& store, const std::string& path) {
  load_checkpoint(opt, store, io::load(path), path);
}

} // namespace steep::engine

namespace steep {
using engine::load_checkpoint;
using engine::save_checkpoint;
} // namespace steep
