#pragma once
// Adam, AdamW and SGD's momentum in torch.optim's order of operations, so that a float32 step
// equals torch's bit for bit (steep.torch runs these; python/README.md, "Parity"). The
// mathematics are adam's, adamw's, momentum's and nesterov's (adam.hpp, adamw.hpp, sgd.hpp);
// only the rounding differs. torch's CPU Adam step (torch/optim/adam.py and adamw.py,
// _single_tensor_ and _multi_tensor_, which on the CPU make the same per-tensor calls) is, with
// every scalar computed in double and rounded once to the tensors' dtype:
//   p <- p (1 - lr wd)                                      (AdamW only, first)
//   m <- fma(g, 1 - b1, m b1)                               (mul_, then add_ with alpha: fused)
//   v <- fma((1 - b2) g, g, v b2)                           (mul_, then addcmul_: fused)
//   p <- p + ((-lr / (1 - b1^t)) m) / (sqrt(v) / sqrt(1 - b2^t) + eps)        (addcdiv_)
// The fused multiply-adds are torch's own: its vectorized add-with-alpha is vec::fmadd, and
// addcmul's `self + value * t1 * t2` is contracted to one by the compiler that built it (Debian's
// torch 1.13 on AVX2; tested against it in python/tests/test_torch_parity.py). adam's order
// rounds (1 - b) g^2 before adding, and multiplies by the bias corrections' reciprocals.
//
// AdamW's parameter is scaled and then stepped, two roundings. The rule is written
// (p (1 - lr wd) + u) - param, and a rule of the form X - param sets the parameter to X in the
// update pass (engine/passes/update.hpp), rather than adding X - p to p: torch's p exactly, also
// where a step moves a parameter to half or twice its value or across zero.
//
// Which roundings happen is spelled out, not left to the compiler: GCC contracts a * b + c into
// one fused multiply-add wherever it can in C++ (-ffp-contract=fast is its default outside ISO
// C), and xsimd 8 writes its AVX-512 fma as x * y + z, which GCC may then fuse the other way.
// So the fused steps call the instruction (fused_multiply_add), and the one product torch rounds
// before an addition is kept from being fused into it (rounded_product).
//
// torch's SGD with momentum mu (dampening 0, torch/optim/sgd.py):
//   b <- b mu + g          (mul_, then add_ with alpha 1: the product rounded first)
//   d <- fma(b, mu, g)     (Nesterov: add with alpha mu) or d <- b
//   p <- fma(d, -lr, p)    (add_ with alpha -lr)
// The last is steep's update p + (-lr d), which GCC fuses into that one instruction as it does
// for sgd (test_torch_parity.py checks both bitwise).
//
//   steep::optimizer opt(steep::rules::adamw_torch(1e-3, 0.9, 0.999, 1e-8, 0.01), store);
//   steep::optimizer sgd(steep::rules::nesterov_torch(0.1, 0.9), store);

#include "steep/rules/common.hpp"

#include <cmath>
#include <type_traits>

namespace steep::rules {

// x y + z rounded once, in a batch or a scalar: torch's fused multiply-add above.
struct fused_multiply_add {
  template <class V>
  V operator()(const V& x, const V& y, const V& z) const noexcept {
    if constexpr (kernel::is_batch_v<V>) {
#if defined(__AVX512F__)
      if constexpr (sizeof(V) == 64 && std::is_same_v<kernel::scalar_of<V>, float>)
        return V(_mm512_fmadd_ps(x, y, z));
      else if constexpr (sizeof(V) == 64)
        return V(_mm512_fmadd_pd(x, y, z));
      else
#endif
        return xsimd::fma(x, y, z); // FMA3's kernels call _mm256_fmadd_ps / _pd
    } else {
      return std::fma(x, y, z);
    }
  }
};

// x y rounded to the element type before whatever adds it: the empty asm statement hides the
// product's value from the compiler, which then cannot fuse it into the addition that follows.
struct rounded_product {
  template <class V>
  V operator()(const V& x, const V& y) const noexcept {
    V r = x * y;
#if defined(__x86_64__) || defined(__i386__)
    if constexpr (kernel::is_batch_v<V>) {
      typename V::register_type reg = r;
      __asm__("" : "+v"(reg));
      r = V(reg);
    } else {
      __asm__("" : "+v"(r));
    }
#endif
    return r;
  }
};

inline constexpr auto adam_torch =
  []<operand Lr, operand B1 = double, operand B2 = double, operand Eps = double>(
    Lr lr, B1 b1 = 0.9, B2 b2 = 0.999, Eps eps = 1e-8) {
  auto beta1 = hp::beta1(b1);
  auto beta2 = hp::beta2(b2);
  auto m =
    recur<"exp_avg">([&](auto prev) { return map(fused_multiply_add{}, grad, 1.0 - beta1, prev * beta1); });
  auto v = recur<"exp_avg_sq">(
    [&](auto prev) { return map(fused_multiply_add{}, (1.0 - beta2) * grad, grad, prev * beta2); });
  auto step_size = -hp::lr(lr) / (1.0 - pow(beta1, step));
  return step_size * m / (sqrt(v) / sqrt(1.0 - pow(beta2, step)) + hp::eps(eps));
};

inline constexpr auto adamw_torch =
  []<operand Lr, operand B1 = double, operand B2 = double, operand Eps = double, operand Wd = double>(
    Lr lr, B1 b1 = 0.9, B2 b2 = 0.999, Eps eps = 1e-8, Wd wd = 0.01) {
  auto decayed = map(rounded_product{}, param, 1.0 - hp::lr(lr) * hp::weight_decay(wd));
  return (decayed + adam_torch(hp::lr(lr), b1, b2, eps)) - param;
};

inline constexpr auto momentum_torch = []<operand Lr, operand Mu>(Lr lr, Mu mu) {
  auto m = named<"momentum", range::nonnegative>(mu);
  auto b = recur<"momentum_buffer">([&](auto prev) { return map(rounded_product{}, prev, m) + grad; });
  return -hp::lr(lr) * b;
};

inline constexpr auto nesterov_torch = []<operand Lr, operand Mu>(Lr lr, Mu mu) {
  auto m = named<"momentum", range::nonnegative>(mu);
  auto b = recur<"momentum_buffer">([&](auto prev) { return map(rounded_product{}, prev, m) + grad; });
  return -hp::lr(lr) * map(fused_multiply_add{}, b, m, grad);
};

} // namespace steep::rules
