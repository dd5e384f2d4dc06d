#pragma once
// layout_of(store, whole): a param_store's arena as plan_shards reads it.
//
//   steep::param_store<float> store({{"W1", {48, 32}}, {"b1", {48}}});
//   auto layout = steep::dist::layout_of(store);   // hidden matrices whole (Muon's blocks)
//   auto plan = steep::dist::plan_shards(layout, comm.size());
//   auto custom = steep::dist::layout_of(store, [](const steep::block<float>& b) { return false; });
//
// `whole(block)` says whether a matrix stage needs the block whole on one rank; by default the
// blocks whose role is hidden_matrix (where a hybrid rule runs its matrix stage). A matrix's
// view is rows = shape[0], cols = the rest, as the matrix stages see it. A block that adopted
// external memory is not in the arena, so a store with one is refused, naming it.

#include "steep/core/param_store.hpp"
#include "steep/dist/shard_plan.hpp"

#include <vector>

namespace steep::dist {

template <class T>
bool needs_whole_by_role(const block<T>& b) {
  return b.role == block_role::hidden_matrix;
}

template <class T, class Whole = bool (*)(const block<T>&)>
std::vector<block_layout> layout_of(const param_store<T>& store, Whole whole = &needs_whole_by_role<T>) {
  std::vector<block_layout> layout;
  layout.reserve(store.size());
  for (const auto& b : store.blocks()) {
    if (b.external)
      throw error(b.name, "it adopted external memory, so it is not in the arena that plan_shards divides; "
                          "sharding needs every block in the store's arena");
    const std::size_t rows = b.shape.empty() ? 1 : b.shape[0];
    const std::size_t cols = rows == 0 ? 0 : b.size / rows;
    layout.push_back({ b.name, b.size, rows, cols, static_cast<bool>(whole(b)), sizeof(T), b.offset });
  }
  return layout;
}

} // namespace steep::dist
