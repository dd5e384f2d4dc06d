#pragma once
// Shapes and block roles: the metadata every parameter block carries.
//
//   steep::shape_t s{48, 32};            // row-major (out, in), as torch stores a Linear weight
//   steep::element_count(s) == 1536;
//   steep::default_role(s) == steep::block_role::hidden_matrix;
//
// The role tells hybrid rules (Muon on hidden matrices, Adam elsewhere) where a block
// belongs. A rank-2 block is a hidden matrix unless the user says it is an embedding or a head,
// because Muon's spectral map is only meant for hidden layers (Jordan et al. 2024).

#include <cstddef>
#include <limits>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace steep {

using shape_t = std::vector<std::size_t>;

enum class block_role { hidden_matrix, embedding, head, vector, scalar };

// Which axis of a weight is its fan-out (a block carries its fan-in/fan-out axes).
// torch stores a Linear weight as (out, in); JAX/flax as (in, out). Rank > 2: out_in is
// (out, in, k...) as torch's Conv (fan_in = the product of the rest); in_out is (k..., in, out)
// as flax's Conv (fan_out = the last axis).
enum class weight_layout { out_in, in_out };

struct fans_t {
  std::size_t fan_in = 1, fan_out = 1;
};

inline std::size_t element_count(const shape_t& s) {
  return std::accumulate(s.begin(), s.end(), std::size_t{ 1 },
                         [](std::size_t a, std::size_t b) { return a * b; });
}

// The element count, or nothing if it overflows size_t (a shape like {2^32, 2^32}).
inline std::optional<std::size_t> element_count_checked(const shape_t& s) {
  std::size_t n = 1;
  for (std::size_t d : s) {
    if (d != 0 && n > std::numeric_limits<std::size_t>::max() / d)
      return std::nullopt;
    n *= d;
  }
  return n;
}

inline block_role default_role(const shape_t& s) {
  if (s.size() >= 2)
    return block_role::hidden_matrix;
  return s.size() == 1 ? block_role::vector : block_role::scalar;
}

inline fans_t fans(const shape_t& s, weight_layout layout) {
  const std::size_t n =
    std::accumulate(s.begin(), s.end(), std::size_t{ 1 }, [](std::size_t a, std::size_t b) { return a * b; });
  if (s.size() < 2)
    return { n, 1 };
  if (layout == weight_layout::out_in)
    return { s[0] ? n / s[0] : 0, s[0] };
  return { s.back() ? n / s.back() : 0, s.back() };
}

inline std::string_view to_string(weight_layout l) {
  return l == weight_layout::out_in ? "out_in" : "in_out";
}

inline std::string_view to_string(block_role r) {
  switch (r) {
    case block_role::hidden_matrix:
      return "hidden_matrix";
    case block_role::embedding:
      return "embedding";
    case block_role::head:
      return "head";
    case block_role::vector:
      return "vector";
    case block_role::scalar:
      return "scalar";
  }
  return "unknown";
}

inline std::string to_string(const shape_t& s) {
  std::ostringstream os;
  os << '(';
  for (std::size_t i = 0; i < s.size(); ++i)
    os << (i ? ", " : "") << s[i];
  os << (s.size() == 1 ? ",)" : ")");
  return os.str();
}

} // namespace steep
