#pragma once
// bfloat16_state<"name", ...>(map): a matrix stage's state stored as bfloat16, by slot name (every
// slot when none is named).
//
//   template <fixed_string... Names, stateful_matrix_map Map>
//   constexpr bfloat16_slots<Map, Names...> bfloat16_state(Map map);
//
//   precondition(bfloat16_state(steep::precond::dion<>{}), grad)         // Dion's momentum and Q
//   precondition(bfloat16_state<"Q">(steep::precond::dion<>{}), grad)    // Q only
//   precondition(slices(bfloat16_state(steep::precond::shampoo<>{}), 64, 512), grad)  // per head
//
// Storage only, as an element slot's bfloat16 (ema<"m", steep::bfloat16>, core/bfloat16.hpp):
// the map computes in the parameters' type. Each step the engine hands it the committed slot
// widened (exactly: every bfloat16 is a float) and rounds the new value it writes once, to
// nearest even, when it stores it (engine/passes/matrix_phase.hpp); the step's own result is
// what the map computed. A slot then takes 2 bytes per value (float32: 4, float64: 8), in
// describe(), slots() ("bfloat16"), state<steep::bfloat16>(...) and checkpoints ("BF16").
//
// The authors of Dion allow its momentum and Q in bfloat16 (Ahn et al. 2025, arXiv:2504.05295;
// DionMixedPrecisionConfig's momentum_dtype and Q_dtype in their code), which rules::dion_bf16
// is. Their update rounds in place after each operation on M; steep rounds each slot once per
// step, the storage convention of every bfloat16 slot in steep (docs/dsl.md).
//
// The wrapper is the map (it derives from it), with one more declaration: which slots are
// narrow. A name the map keeps no slot of is refused when the optimizer is built.

#include "steep/expr/fixed_string.hpp"
#include "steep/expr/matrix.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace steep::expr {

template <class Map, fixed_string... Names>
struct bfloat16_slots : Map {
  static_assert(stateful_matrix_map<Map>,
                "bfloat16_state: the map must keep state (expr::stateful_matrix_map) for it to be stored");

  bool state_bfloat16(std::size_t j) const {
    if constexpr (sizeof...(Names) == 0)
      return true;
    else {
      const std::string name = this->state_name(j);
      return ((name == Names.view()) || ...);
    }
  }
  // The map's own settings problem, or a name it keeps no slot of.
  std::string check_settings() const {
    std::string problem;
    (
      [&](std::string_view want) {
        bool found = false;
        std::string slots;
        for (std::size_t j = 0; j < Map::state_count; ++j) {
          found = found || this->state_name(j) == want;
          slots += (j ? ", " : "") + this->state_name(j);
        }
        if (!found && problem.empty())
          problem = "bfloat16_state: the matrix stage keeps no slot named '" + std::string(want) +
                    "' (its slots: " + slots + ")";
      }(Names.view()),
      ...);
    return problem.empty() ? settings_problem(static_cast<const Map&>(*this)) : problem;
  }
  bool operator==(const bfloat16_slots&) const = default;
};

template <fixed_string... Names, stateful_matrix_map Map>
constexpr bfloat16_slots<Map, Names...> bfloat16_state(Map map) {
  return { std::move(map) };
}

} // namespace steep::expr
