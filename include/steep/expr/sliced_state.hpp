#pragma once
// A stateful matrix map per slice: a block that stacks several matrices (an (E, out, in) block
// of experts, the heads of a fused QKV) gets one map, and one copy of the map's state, per slice.
//
//   precondition(slices(precond::shampoo<"L", "R">{}, out, in), grad)   // L, R per expert
//   // state "L" of an (E, out, in) block: shape (E, out, out); "R": (E, in, in)
//
// Slice k is the k-th run of slice_rows x slice_cols consecutive entries (row-major), as for a
// stateless map (expr::sliced, matrix.hpp), and its state is the k-th run of each slot: slot j of
// a block is (slices, shape of slot j for one slice). The map runs on each slice with
// that slice's state and operands. A block that does not split into whole slices, or whose slice
// the map refuses, is refused when the optimizer is built, naming the block. Each slice is a task
// of the matrix phase of its own, so an (E, out, in) block's experts run in parallel.

#include "steep/core/shape.hpp"
#include "steep/expr/matrix.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace steep::expr {

template <class Map>
struct sliced_state {
  static_assert(stateful_matrix_map<Map>,
                "sliced_state: the map must keep state (expr::stateful_matrix_map)");
  Map map;
  std::size_t slice_rows = 1, slice_cols = 1;
  static constexpr std::size_t state_count = Map::state_count;
  static constexpr bool needs_matrix = map_needs_matrix<Map>();
  bool operator==(const sliced_state&) const = default;

  std::size_t slice_count(std::size_t rows, std::size_t cols) const {
    return rows * cols / (slice_rows * slice_cols);
  }
  std::string state_name(std::size_t j) const { return map.state_name(j); }
  bool state_bfloat16(std::size_t j) const { return expr::state_bfloat16(map, j); }
  // (slices, one slice's shape of slot j); empty where one slice keeps none of it.
  shape_t state_shape(std::size_t j, std::size_t rows, std::size_t cols) const {
    const shape_t one = map.state_shape(j, slice_rows, slice_cols);
    if (element_count(one) == 0 || slice_rows * slice_cols == 0)
      return one;
    shape_t out{ slice_count(rows, cols) };
    out.insert(out.end(), one.begin(), one.end());
    return out;
  }
  std::string check_settings() const { return settings_problem(map); }
  // Empty if a rows x cols block splits into whole slices that the map takes; otherwise why not.
  std::string check_block(std::size_t rows, std::size_t cols) const {
    if (std::string p = slice_split_problem(rows, cols, slice_rows, slice_cols); !p.empty())
      return p;
    if constexpr (requires { map.check_block(rows, cols); })
      if (std::string p = map.check_block(slice_rows, slice_cols); !p.empty())
        return "a " + std::to_string(slice_rows) + " x " + std::to_string(slice_cols) + " slice: " + p;
    return {};
  }

  // The engine runs each slice as a task of its own, scheduled with every other block's and slice's
  // (as a stateless sliced map's, matrix.hpp): the block splits into pieces(rows, cols) slices, and
  // apply_piece runs slice k with its part of each slot and operand (st holds the block's).
  std::size_t pieces(std::size_t rows, std::size_t cols) const { return slice_count(rows, cols); }
  template <class T>
  void apply_piece(T* x, std::size_t, std::size_t, std::size_t k, matrix_state<T> st) const {
    const std::size_t n = slice_rows * slice_cols;
    std::array<const T*, state_count> old{};
    std::array<T*, state_count> next{};
    for (std::size_t j = 0; j < state_count; ++j) {
      const std::size_t size = element_count(map.state_shape(j, slice_rows, slice_cols));
      old[j] = st.old[j] + k * size, next[j] = st.next[j] + k * size;
    }
    std::vector<const T*> operands(st.n_operands);
    for (std::size_t j = 0; j < st.n_operands; ++j)
      operands[j] = st.operands[j] + k * n;
    map.apply(x + k * n, slice_rows, slice_cols,
              matrix_state<T>{ old.data(), next.data(), st.step, operands.empty() ? nullptr : operands.data(),
                               st.n_operands });
  }
  template <class T>
  void apply(T* x, std::size_t rows, std::size_t cols, matrix_state<T> st) const {
    for (std::size_t k = 0; k < pieces(rows, cols); ++k)
      apply_piece(x, rows, cols, k, st);
  }
};

// The stateful map `map` per slice_rows x slice_cols slice of each block.
template <stateful_matrix_map Map>
constexpr sliced_state<Map> slices(Map map, std::size_t slice_rows, std::size_t slice_cols) {
  return { std::move(map), slice_rows, slice_cols };
}

} // namespace steep::expr
