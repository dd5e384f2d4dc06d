#pragma once
// part<T>: one compiled rule's state as the optimizer interface sees it, whatever the rule. A
// plain optimizer has one part, a route one per arm that got blocks; optimizer_facade<T>
// (facade.hpp) is written once over parts, so any_optimizer<T> is the facade itself.
//
//   std::unique_ptr<detail::part<float>> p(new engine_state<P, float>(...));
//   p->prepare();  p->commit();           // a step: its two halves (engine/plan.hpp)
//   p->hypers_.set(p->roots_ptr_, "lr", 1e-4);
//   p->state<float>("W", "exp_avg");      // a slot, found in the slot directory
//
// What is the same for every rule is here, compiled once per T: the tables, the guard's state,
// the line and matrix tables, the slots' arenas as a directory (name, dtype, granularity, where
// each block's values are), the named hyperparameters. What a rule compiles for it is two virtual
// functions (engine/state.hpp), the two halves of a step. (describe() is the typed optimizer's,
// compiled only where it is called or the optimizer's rule is erased: docs/compile-time.md.) A
// part lives on the heap and is never moved, so the pointers into it (the directory, the roots)
// stay right.

#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/core/shape.hpp"
#include "steep/core/tensor_view.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/hyper_table.hpp"
#include "steep/engine/options.hpp"
#include "steep/engine/passes/lines.hpp"
#include "steep/engine/passes/matrix_phase.hpp"
#include "steep/engine/slot_set.hpp"
#include "steep/engine/slots.hpp"
#include "steep/engine/tables.hpp"

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace steep::engine::detail {

// One state slot of a part, as the slot directory records it when the arenas are laid out.
struct slot_entry {
  slot_info info;
  std::string_view safetensors; // the storage dtype's safetensors name
  bool per_block;
  int line;                                     // not_a_line, or the line kind (rows, columns, slices)
  std::byte* data;                              // the arena
  const std::vector<std::size_t>* offsets;      // per block, in values
  const std::vector<shape_t>* shapes = nullptr; // per block, for a slot a matrix stage shapes
};

template <class T>
struct part
  : tables<T>
  , guard_state<T>
  , line_tables<T>
  , matrix_tables<T>
  , slot_tables<T> {
  [[gnu::cold, gnu::noinline]] part(param_store<T>& store, const optimizer_options& opts,
                                    const program_sizes& n)
    : tables<T>(store, opts, n)
    , guard_state<T>(opts, n.reads_grad, n.coordinatewise, this->wl_.size())
    , line_tables<T>(*this, n)
    , matrix_tables<T>(opts)
    , slot_tables<T>(this->blocks_.size(), n.slots) {}
  [[gnu::noinline]] virtual ~part() = default;
  part(const part&) = delete;
  part& operator=(const part&) = delete;

  // The read-only half of a step: the first non-finite gradient entry, if the guard found one.
  virtual std::optional<nonfinite_entry> prepare() = 0;
  // The update pass of a step prepare() accepted.
  virtual void commit() = 0;

  // ---- the slot directory ---------------------------------------------------------------------

  // Whether `block` (which must be this part's) has a slot named `slot`.
  [[gnu::noinline]] bool has_slot(const std::string& block, std::string_view slot) const {
    this->block_index(block);
    for (const auto& e : slots_)
      if (e.info.name == slot)
        return true;
    return false;
  }

  // Slot `slot` of block `block` as raw bytes, in the block's shape, (lines) for a per-line slot
  // or (1) for a per-block slot.
  [[gnu::noinline]] slot_bytes slot(const std::string& block, const std::string& slot) {
    const auto [k, b] = locate(block, slot);
    return bytes_of(k, b);
  }

  // A view of slot `slot` of block `block`; S must be the slot's storage dtype.
  template <class S>
  tensor_view<S> state(const std::string& block, const std::string& slot) {
    const auto [k, b] = locate(block, slot);
    if (slots_[k].safetensors != safetensors_dtype<S>())
      throw error(block, "slot '" + slot + "' is not stored as " + std::string(dtype_name<S>()));
    const slot_bytes raw = bytes_of(k, b);
    return { reinterpret_cast<S*>(raw.bytes.data()), shape_of(k, b) };
  }

  // f(slot_bytes) for every slot of every block, in slot order then block order.
  [[gnu::noinline]] void visit_slots(const std::function<void(const slot_bytes&)>& f) {
    for (std::size_t k = 0; k < slots_.size(); ++k)
      for (std::size_t b = 0; b < this->blocks_.size(); ++b)
        f(bytes_of(k, b));
  }

  // Records slot k's arena (slot_set<State>::lay_out, in slot order).
  template <class S>
  void add_slot(const slot_meta& meta, slot_buffer<S>& sb, bool per_block, int line) {
    add_slot(meta, safetensors_dtype<S>(), reinterpret_cast<std::byte*>(sb.data.data()), &sb.offset,
             per_block, line);
  }
  [[gnu::cold, gnu::noinline]] void add_slot(const slot_meta& meta, std::string_view safetensors,
                                             std::byte* data, const std::vector<std::size_t>* offsets,
                                             bool per_block, int line) {
    slots_.push_back({ meta.info(), safetensors, per_block, line, data, offsets });
  }
  // A slot whose value per block has a shape of its own (a matrix stage's state: Shampoo's L is
  // rows x rows), shapes[b] for block b.
  [[gnu::cold, gnu::noinline]] void add_shaped_slot(const slot_meta& meta, std::string_view safetensors,
                                                    std::byte* data, const std::vector<std::size_t>* offsets,
                                                    const std::vector<shape_t>* shapes) {
    slots_.push_back({ meta.info(), safetensors, false, expr::not_a_line, data, offsets, shapes });
  }

  hyper_table hypers_;
  void* roots_ptr_ = nullptr; // the rule's roots object (hyper_table's offsets are into it)

private:
  // (slot index, block index) of `slot` of `block`; throws naming the block if either is unknown.
  [[gnu::noinline]] std::pair<std::size_t, std::size_t> locate(const std::string& block,
                                                               const std::string& slot) const {
    const std::size_t b = this->block_index(block);
    for (std::size_t k = 0; k < slots_.size(); ++k)
      if (slots_[k].info.name == slot)
        return { k, b };
    throw error(block, "the rule has no state slot named '" + slot + "'");
  }
  const shape_t& shape_of(std::size_t k, std::size_t b) const {
    const slot_entry& e = slots_[k];
    if (e.shapes)
      return (*e.shapes)[b];
    if (e.per_block)
      return this->one_value_;
    if (e.line != expr::not_a_line)
      return this->line_slot_shapes_[k * this->blocks_.size() + b];
    return this->blocks_[b].shape;
  }
  slot_bytes bytes_of(std::size_t k, std::size_t b) {
    const slot_entry& e = slots_[k];
    const shape_t& shape = shape_of(k, b);
    const std::size_t count = e.shapes                     ? element_count(shape)
                              : e.per_block                ? 1
                              : e.line != expr::not_a_line ? shape[0]
                                                           : this->blocks_[b].size;
    return slot_bytes{ this->blocks_[b].name, e.info.name, std::string(e.safetensors), shape,
                       std::span<std::byte>(e.data + (*e.offsets)[b] * e.info.element_size,
                                            count * e.info.element_size) };
  }

  std::vector<slot_entry> slots_;
};

} // namespace steep::engine::detail
