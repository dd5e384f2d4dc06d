#pragma once
// bfloat16: a storage dtype for optimizer state — 8 exponent bits like float32, 8 significand
// bits — with float32 arithmetic and round-to-nearest-even on every store.
//
//   auto m = steep::expr::ema<"exp_avg", steep::bfloat16>(grad, 0.9);   // a bf16 slot
//   steep::bfloat16 h = 1.00390625f;   // the tie 1 + 2^-8 rounds to even: 1.0
//   float f = h;                       // exact: every bfloat16 is a float
//
// Why a type of its own and not a bare uint16_t: the engine loads a slot into the parameters'
// dtype and stores it back through static_cast, so a slot dtype only has to convert both ways.
// Arithmetic never runs in bfloat16 (no silent bf16 accumulation): a step reads m, computes in
// float (or double), and rounds once when it stores. Rounding: nearest, ties to even, as
// PyTorch's and JAX's float32 -> bfloat16 conversion; NaN stays a (quiet) NaN, and a finite
// value past the largest bfloat16 (3.39e38) becomes Inf.

#include <bit>
#include <cstdint>

namespace steep {

struct bfloat16 {
  std::uint16_t bits = 0;

  bfloat16() = default;
  bfloat16(float f) noexcept // NOLINT: implicit, as float -> double is
    : bits(round(f)) {}
  operator float() const noexcept { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }

  static constexpr bfloat16 from_bits(std::uint16_t b) noexcept {
    bfloat16 h;
    h.bits = b;
    return h;
  }
  friend bool operator==(bfloat16 a, bfloat16 b) noexcept { return float(a) == float(b); }

private:
  static std::uint16_t round(float f) noexcept {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) // NaN: keep the sign and top payload, make it quiet
      return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
    return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
};

} // namespace steep
