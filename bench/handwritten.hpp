#pragma once
// The hand-written references of steep-bench: fused xsimd + TBB loops for Adam, AdamW, Lion,
// Signum and SGD momentum, written as a careful person writes them by hand, and the memory
// rooflines with the same stream mixes.
//
//   steep::bench::hw::run(arena, chunks, [&](const hw::streams<float>& c) { hw::adam<0>(c, s); });
//
// Every kernel copies its pointers and its per-step scalars into locals before the loop (so the
// compiler keeps them in registers instead of reloading them through a struct on each
// iteration), loads each input once, and ends in a scalar tail written with the same
// expression, as most hand-written kernels do (steep ends a coordinate-wise rule's chunk in one
// masked batch instead: docs/design.md). Each is a template on `Copy`: Copy = 0 and Copy = 1 are two
// identical copies of the machine code (bench/CMakeLists.txt turns off GCC's identical-code folding for this
// target), and the run times the second against the first as the noise floor of a ratio.
// The math follows the operation order of steep's rules (dsl/steep/rules/), so steep-bench can
// check each kernel against steep on the same inputs before anything is timed.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>
#include <vector>
#include <xsimd/xsimd.hpp>

namespace steep::bench::hw {

// One chunk of one block: the parameter, the gradient and up to two state arrays.
template <class T>
struct streams {
  T* p;
  const T* g;
  T* s0;
  T* s1;
  std::size_t n;
};

// Per-step scalars, computed in double and rounded to T once per step, as steep does.
template <class T>
struct adam_scalars {
  T b1, one_minus_b1, b2, one_minus_b2, neg_lr, inv_bc1, inv_bc2, eps, decay; // decay: 1 - lr wd
};
template <class T>
adam_scalars<T> adam_step(double lr, double b1, double b2, double eps, double wd, std::int64_t t) {
  const double td = static_cast<double>(t);
  return { T(b1),
           T(1.0 - b1),
           T(b2),
           T(1.0 - b2),
           T(-lr),
           T(1.0 / (1.0 - std::pow(b1, td))),
           T(1.0 / (1.0 - std::pow(b2, td))),
           T(eps),
           T(1.0 - lr * wd) };
}

// Adam (torch.optim.Adam), AdamW when Decoupled: p <- p (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps).
template <int Copy, bool Decoupled, class T>
[[gnu::noinline]] void adam_like(const streams<T>& c, const adam_scalars<T>& s) {
  using V = xsimd::batch<T>;
  T* const p = c.p;
  const T* const g = c.g;
  T* const m = c.s0;
  T* const v = c.s1;
  const std::size_t n = c.n;
  const T b1 = s.b1, a1 = s.one_minus_b1, b2 = s.b2, a2 = s.one_minus_b2, neg_lr = s.neg_lr, bc1 = s.inv_bc1,
          bc2 = s.inv_bc2, eps = s.eps, decay = s.decay;
  const V vb1(b1), va1(a1), vb2(b2), va2(a2), vlr(neg_lr), vbc1(bc1), vbc2(bc2), veps(eps), vdecay(decay);
  std::size_t i = 0;
  for (; i + V::size <= n; i += V::size) {
    const V gi = V::load_unaligned(g + i);
    const V mi = vb1 * V::load_unaligned(m + i) + va1 * gi;
    const V vi = vb2 * V::load_unaligned(v + i) + va2 * (gi * gi);
    const V step = vlr * (mi * vbc1) / (xsimd::sqrt(vi * vbc2) + veps);
    const V pi = V::load_unaligned(p + i);
    (Decoupled ? pi * vdecay + step : pi + step).store_unaligned(p + i);
    mi.store_unaligned(m + i);
    vi.store_unaligned(v + i);
  }
  for (; i < n; ++i) {
    const T gi = g[i];
    const T mi = b1 * m[i] + a1 * gi;
    const T vi = b2 * v[i] + a2 * (gi * gi);
    const T step = neg_lr * (mi * bc1) / (std::sqrt(vi * bc2) + eps);
    p[i] = Decoupled ? p[i] * decay + step : p[i] + step;
    m[i] = mi;
    v[i] = vi;
  }
}

// sign with sign(0) = 0 (torch.sign), for finite x.
template <class V>
V sign_of(const V& x) {
  using T = typename V::value_type;
  return xsimd::select(x > V(T(0)), V(T(1)), V(T(0))) - xsimd::select(x < V(T(0)), V(T(1)), V(T(0)));
}
template <class T>
T sign_of_scalar(T x) {
  return T((x > T(0)) - (x < T(0)));
}

// Per-step scalars of the momentum-type rules.
template <class T>
struct ema_scalars {
  T b1, one_minus_b1, b2, one_minus_b2, neg_lr, neg_lr_wd;
};

// Lion (Chen et al. 2023): p <- p - lr (sign(b1 m + (1 - b1) g) + wd p); m <- b2 m + (1 - b2) g.
template <int Copy, class T>
[[gnu::noinline]] void lion(const streams<T>& c, const ema_scalars<T>& s) {
  using V = xsimd::batch<T>;
  T* const p = c.p;
  const T* const g = c.g;
  T* const m = c.s0;
  const std::size_t n = c.n;
  const T b1 = s.b1, a1 = s.one_minus_b1, b2 = s.b2, a2 = s.one_minus_b2, neg_lr = s.neg_lr;
  const V vb1(b1), va1(a1), vb2(b2), va2(a2), vlr(neg_lr);
  std::size_t i = 0;
  for (; i + V::size <= n; i += V::size) {
    const V gi = V::load_unaligned(g + i), mi = V::load_unaligned(m + i);
    const V pi = V::load_unaligned(p + i);
    (pi + vlr * sign_of(vb1 * mi + va1 * gi)).store_unaligned(p + i);
    (vb2 * mi + va2 * gi).store_unaligned(m + i);
  }
  for (; i < n; ++i) {
    const T gi = g[i], mi = m[i];
    p[i] = p[i] + neg_lr * sign_of_scalar(b1 * mi + a1 * gi);
    m[i] = b2 * mi + a2 * gi;
  }
}

// Signum (Bernstein et al. 2018): m <- b m + (1 - b) g; p <- p - lr sign(m).
template <int Copy, class T>
[[gnu::noinline]] void signum(const streams<T>& c, const ema_scalars<T>& s) {
  using V = xsimd::batch<T>;
  T* const p = c.p;
  const T* const g = c.g;
  T* const m = c.s0;
  const std::size_t n = c.n;
  const T b = s.b1, a = s.one_minus_b1, neg_lr = s.neg_lr;
  const V vb(b), va(a), vlr(neg_lr);
  std::size_t i = 0;
  for (; i + V::size <= n; i += V::size) {
    const V mi = vb * V::load_unaligned(m + i) + va * V::load_unaligned(g + i);
    (V::load_unaligned(p + i) + vlr * sign_of(mi)).store_unaligned(p + i);
    mi.store_unaligned(m + i);
  }
  for (; i < n; ++i) {
    const T mi = b * m[i] + a * g[i];
    p[i] = p[i] + neg_lr * sign_of_scalar(mi);
    m[i] = mi;
  }
}

// SGD with heavy-ball momentum (torch.optim.SGD, dampening 0): buf <- mu buf + g; p <- p - lr buf.
template <int Copy, class T>
[[gnu::noinline]] void momentum(const streams<T>& c, const ema_scalars<T>& s) {
  using V = xsimd::batch<T>;
  T* const p = c.p;
  const T* const g = c.g;
  T* const m = c.s0;
  const std::size_t n = c.n;
  const T mu = s.b1, neg_lr = s.neg_lr;
  const V vmu(mu), vlr(neg_lr);
  std::size_t i = 0;
  for (; i + V::size <= n; i += V::size) {
    const V bi = vmu * V::load_unaligned(m + i) + V::load_unaligned(g + i);
    (V::load_unaligned(p + i) + vlr * bi).store_unaligned(p + i);
    bi.store_unaligned(m + i);
  }
  for (; i < n; ++i) {
    const T bi = mu * m[i] + g[i];
    p[i] = p[i] + neg_lr * bi;
    m[i] = bi;
  }
}

// The rooflines: a rule's loads and stores with no arithmetic worth the name. `zero` is 0 at run
// time (the compiler cannot know it), so every array keeps its value and the variants sharing
// these arrays see the same data; the stores still dirty every line.
//   4r3w: read p, g, s0, s1; write p, s0, s1 (Adam, AdamW: 28 B/param in float32)
//   3r2w: read p, g, s0; write p, s0 (Lion, Signum, momentum: 20 B/param in float32)
template <int States, class T>
[[gnu::noinline]] void roofline(const streams<T>& c, T zero) {
  using V = xsimd::batch<T>;
  T* const p = c.p;
  const T* const g = c.g;
  T* const s0 = c.s0;
  T* const s1 = c.s1;
  const std::size_t n = c.n;
  const V z(zero);
  std::size_t i = 0;
  for (; i + V::size <= n; i += V::size) {
    const V dg = V::load_unaligned(g + i) * z;
    (V::load_unaligned(p + i) + dg).store_unaligned(p + i);
    (V::load_unaligned(s0 + i) + dg).store_unaligned(s0 + i);
    if constexpr (States == 2)
      (V::load_unaligned(s1 + i) + dg).store_unaligned(s1 + i);
  }
  for (; i < n; ++i) {
    const T dg = g[i] * zero;
    p[i] = p[i] + dg;
    s0[i] = s0[i] + dg;
    if constexpr (States == 2)
      s1[i] = s1[i] + dg;
  }
}

// Chunks over every block, chunk starts at multiples of the chunk size inside a block: the same
// cut as steep's work list (16384 entries, or about a 16th of a small model, a multiple of 64
// and at least 1024), written out independently.
inline std::size_t chunk_elements_for(std::size_t total) {
  return std::min<std::size_t>(16384, std::max<std::size_t>(1024, (total / 16 + 63) / 64 * 64));
}

template <class T>
std::vector<streams<T>> make_chunks(const std::vector<streams<T>>& blocks) {
  std::vector<streams<T>> out;
  std::size_t total = 0;
  for (const auto& b : blocks)
    total += b.n;
  const std::size_t chunk_elements = chunk_elements_for(total);
  for (const auto& b : blocks)
    for (std::size_t i = 0; i < b.n; i += chunk_elements)
      out.push_back({ b.p + i, b.g + i, b.s0 ? b.s0 + i : nullptr, b.s1 ? b.s1 + i : nullptr,
                      std::min(chunk_elements, b.n - i) });
  return out;
}

// The chunks over a task_arena with the static partitioner: the structure of steep's executor
// and of a fused xsimd + TBB loop (equal chunks, so stealing buys nothing). On one thread, or
// for one chunk, a plain loop without a fork-join, as steep's executor does.
template <class T, class Body>
void run(oneapi::tbb::task_arena& arena, const std::vector<streams<T>>& chunks, Body&& body) {
  if (arena.max_concurrency() == 1 || chunks.size() < 2) {
    for (const auto& c : chunks)
      body(c);
    return;
  }
  arena.execute([&] {
    oneapi::tbb::parallel_for(
      oneapi::tbb::blocked_range<std::size_t>(0, chunks.size(), 1),
      [&](const oneapi::tbb::blocked_range<std::size_t>& r) {
        for (std::size_t c = r.begin(); c != r.end(); ++c)
          body(chunks[c]);
      },
      oneapi::tbb::static_partitioner{});
  });
}

} // namespace steep::bench::hw
