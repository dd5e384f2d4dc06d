#pragma once
// The hand-written references of steep-bench: fused xsimd + TBB loops for every elementwise rule
// of the catalogue (SGD, momentum, Nesterov, Adam, AdamW, Adam with eps = 0, AMSGrad, Adagrad,
// RMSprop, Lion, Signum, optax's Adam and NAdamW), written as a careful person writes them by
// hand, and the memory rooflines with the same stream mixes.
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
#include <type_traits>
#include <utility>
#include <vector>
#include <xsimd/xsimd.hpp>

namespace steep::bench::hw {

// One chunk of one block: the parameter, the gradient and up to three state arrays.
template <class T>
struct streams {
  T* p;
  const T* g;
  T* s0;
  T* s1;
  std::size_t n;
  T* s2 = nullptr;
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

// Every kernel writes its math once, for a batch and for the scalar tail alike: `lanes`
// calls body(V, i) on full batches, then body(T, i) on the tail (xsimd's math functions take
// scalars too). ld and st are a batch's unaligned load and store, or a plain read and write.
template <class V, class T>
V ld(const T* p) {
  if constexpr (std::is_same_v<V, T>)
    return *p;
  else
    return V::load_unaligned(p);
}
template <class V, class T>
void st(T* p, const V& v) {
  if constexpr (std::is_same_v<V, T>)
    *p = v;
  else
    v.store_unaligned(p);
}
// xsimd::select, or ?: on a scalar.
template <class M, class V>
V pick(const M& where, const V& a, const V& b) {
  if constexpr (std::is_arithmetic_v<V>)
    return where ? a : b;
  else
    return xsimd::select(where, a, b);
}
template <class T, class Body>
[[gnu::always_inline]] inline void lanes(std::size_t n, Body body) {
  using V = xsimd::batch<T>;
  std::size_t i = 0;
  for (; i + V::size <= n; i += V::size)
    body.template operator()<V>(i);
  for (; i < n; ++i)
    body.template operator()<T>(i);
}

// Adam (torch.optim.Adam), AdamW when Decoupled: p <- p (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps).
template <int Copy, bool Decoupled, class T>
[[gnu::noinline]] void adam_like(const streams<T>& c, const adam_scalars<T>& s) {
  T* const p = c.p;
  const T* const g = c.g;
  T* const m = c.s0;
  T* const v = c.s1;
  const T b1 = s.b1, a1 = s.one_minus_b1, b2 = s.b2, a2 = s.one_minus_b2, neg_lr = s.neg_lr, bc1 = s.inv_bc1,
          bc2 = s.inv_bc2, eps = s.eps, decay = s.decay;
  lanes<T>(c.n, [=]<class V>(std::size_t i) {
    const V gi = ld<V>(g + i);
    const V mi = V(b1) * ld<V>(m + i) + V(a1) * gi;
    const V vi = V(b2) * ld<V>(v + i) + V(a2) * (gi * gi);
    const V step = V(neg_lr) * (mi * V(bc1)) / (xsimd::sqrt(vi * V(bc2)) + V(eps));
    const V pi = ld<V>(p + i);
    st(p + i, Decoupled ? pi * V(decay) + step : pi + step);
    st(m + i, mi);
    st(v + i, vi);
  });
}

// sign with sign(0) = 0 (torch.sign), for finite x: a batch of T or a T.
template <class T, class V>
V sign_of(const V& x) {
  return pick(x > V(T(0)), V(T(1)), V(T(0))) - pick(x < V(T(0)), V(T(1)), V(T(0)));
}

// Per-step scalars of the momentum-type rules.
template <class T>
struct ema_scalars {
  T b1, one_minus_b1, b2, one_minus_b2, neg_lr, wd;
};

// Lion (Chen et al. 2023): p <- p - lr (sign(b1 m + (1 - b1) g) + wd p); m <- b2 m + (1 - b2) g.
template <int Copy, class T>
[[gnu::noinline]] void lion(const streams<T>& c, const ema_scalars<T>& s) {
  T* const p = c.p;
  const T* const g = c.g;
  T* const m = c.s0;
  const T b1 = s.b1, a1 = s.one_minus_b1, b2 = s.b2, a2 = s.one_minus_b2, neg_lr = s.neg_lr, wd = s.wd;
  lanes<T>(c.n, [=]<class V>(std::size_t i) {
    const V gi = ld<V>(g + i), mi = ld<V>(m + i), pi = ld<V>(p + i);
    st(p + i, pi + V(neg_lr) * (sign_of<T>(V(b1) * mi + V(a1) * gi) + V(wd) * pi));
    st(m + i, V(b2) * mi + V(a2) * gi);
  });
}

// Signum (Bernstein et al. 2018): m <- b m + (1 - b) g; p <- p - lr sign(m).
template <int Copy, class T>
[[gnu::noinline]] void signum(const streams<T>& c, const ema_scalars<T>& s) {
  T* const p = c.p;
  const T* const g = c.g;
  T* const m = c.s0;
  const T b = s.b1, a = s.one_minus_b1, neg_lr = s.neg_lr;
  lanes<T>(c.n, [=]<class V>(std::size_t i) {
    const V mi = V(b) * ld<V>(m + i) + V(a) * ld<V>(g + i);
    st(p + i, ld<V>(p + i) + V(neg_lr) * sign_of<T>(mi));
    st(m + i, mi);
  });
}

// SGD with heavy-ball momentum (torch.optim.SGD, dampening 0): buf <- mu buf + g; p <- p - lr buf.
template <int Copy, class T>
[[gnu::noinline]] void momentum(const streams<T>& c, const ema_scalars<T>& s) {
  T* const p = c.p;
  const T* const g = c.g;
  T* const m = c.s0;
  const T mu = s.b1, neg_lr = s.neg_lr;
  lanes<T>(c.n, [=]<class V>(std::size_t i) {
    const V bi = V(mu) * ld<V>(m + i) + ld<V>(g + i);
    st(p + i, ld<V>(p + i) + V(neg_lr) * bi);
    st(m + i, bi);
  });
}

// Per-step scalars of the kernels below, computed in double and rounded to T once per step.
template <class T>
struct scalars {
  T a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, h = 0; // named per kernel, in its comment
};

// SGD (torch.optim.SGD): p <- p - lr g.  a = -lr.
template <int Copy, class T>
[[gnu::noinline]] void sgd(const streams<T>& c, const scalars<T>& s) {
  T* const p = c.p;
  const T* const g = c.g;
  const T neg_lr = s.a;
  lanes<T>(c.n, [=]<class V>(std::size_t i) { st(p + i, ld<V>(p + i) + V(neg_lr) * ld<V>(g + i)); });
}

// Nesterov momentum (torch.optim.SGD, nesterov=True): b <- mu b + g; p <- p - lr (g + mu b).
// a = -lr, b = mu.
template <int Copy, class T>
[[gnu::noinline]] void nesterov(const streams<T>& c, const scalars<T>& s) {
  T* const p = c.p;
  const T* const g = c.g;
  T* const m = c.s0;
  const T neg_lr = s.a, mu = s.b;
  lanes<T>(c.n, [=]<class V>(std::size_t i) {
    const V gi = ld<V>(g + i);
    const V bi = V(mu) * ld<V>(m + i) + gi;
    st(p + i, ld<V>(p + i) + V(neg_lr) * (gi + V(mu) * bi));
    st(m + i, bi);
  });
}

// RMSprop (torch.optim.RMSprop): s <- alpha s + (1 - alpha) g^2; p <- p - lr g / (sqrt(s) + eps).
// Adagrad (torch.optim.Adagrad) when Sum: s <- s + g^2 and lr / (1 + (t - 1) lr_decay) for lr.
// a = -lr (Adagrad: its decayed lr), b = alpha, c = 1 - alpha, d = eps.
template <int Copy, bool Sum, class T>
[[gnu::noinline]] void rms_like(const streams<T>& c, const scalars<T>& s) {
  T* const p = c.p;
  const T* const g = c.g;
  T* const sq = c.s0;
  const T neg_lr = s.a, alpha = s.b, one_minus_alpha = s.c, eps = s.d;
  lanes<T>(c.n, [=]<class V>(std::size_t i) {
    const V gi = ld<V>(g + i);
    const V si = Sum ? ld<V>(sq + i) + gi * gi : V(alpha) * ld<V>(sq + i) + V(one_minus_alpha) * (gi * gi);
    st(p + i, ld<V>(p + i) + V(neg_lr) * gi / (xsimd::sqrt(si) + V(eps)));
    st(sq + i, si);
  });
}

// Adam's moments at one group, not stored: m b1 + (1 - b1) g and v b2 + (1 - b2) g^2.
template <class V, class T>
std::pair<V, V> moments(const V& gi, const T* m, const T* v, T b1, T a1, T b2, T a2) {
  return { V(b1) * ld<V>(m) + V(a1) * gi, V(b2) * ld<V>(v) + V(a2) * (gi * gi) };
}

// AMSGrad (torch.optim.Adam, amsgrad=True): Adam's m and v, r <- max(r, v),
// p <- p - lr m / (1 - b1^t) / (sqrt(r / (1 - b2^t)) + eps).
// a = -lr, b = b1, c = 1 - b1, d = b2, e = 1 - b2, f = 1 / (1 - b1^t), h = 1 - b2^t; eps below.
template <int Copy, class T>
[[gnu::noinline]] void amsgrad(const streams<T>& c, const scalars<T>& s, T eps) {
  T* const p = c.p;
  const T* const g = c.g;
  T* const m = c.s0;
  T* const v = c.s1;
  T* const r = c.s2;
  const T neg_lr = s.a, b1 = s.b, a1 = s.c, b2 = s.d, a2 = s.e, bc1 = s.f, bc2 = s.h;
  lanes<T>(c.n, [=]<class V>(std::size_t i) {
    const V gi = ld<V>(g + i);
    const auto [mi, vi] = moments(gi, m + i, v + i, b1, a1, b2, a2);
    const V ri = xsimd::max(ld<V>(r + i), vi);
    st(p + i, ld<V>(p + i) + V(neg_lr) * (mi * V(bc1)) / (xsimd::sqrt(ri / V(bc2)) + V(eps)));
    st(m + i, mi);
    st(v + i, vi);
    st(r + i, ri);
  });
}

// Adam with eps = 0 and 0/0 := 0 (the paper's Adam: Gronich & Vardi 2026):
// p <- p - lr m_hat / sqrt(v_hat), and no step where sqrt(v_hat) = 0.
// a = -lr, b = b1, c = 1 - b1, d = b2, e = 1 - b2, f = 1 / (1 - b1^t), h = 1 / (1 - b2^t).
template <int Copy, class T>
[[gnu::noinline]] void adam_eps0(const streams<T>& c, const scalars<T>& s) {
  T* const p = c.p;
  const T* const g = c.g;
  T* const m = c.s0;
  T* const v = c.s1;
  const T neg_lr = s.a, b1 = s.b, a1 = s.c, b2 = s.d, a2 = s.e, bc1 = s.f, bc2 = s.h;
  lanes<T>(c.n, [=]<class V>(std::size_t i) {
    const V gi = ld<V>(g + i);
    const auto [mi, vi] = moments(gi, m + i, v + i, b1, a1, b2, a2);
    const V den = xsimd::sqrt(vi * V(bc2));
    st(p + i, ld<V>(p + i) + V(neg_lr) * pick(den == V(T(0)), V(T(0)), (mi * V(bc1)) / den));
    st(m + i, mi);
    st(v + i, vi);
  });
}

// optax.adamw (Adam when wd = 0), and optax.nadamw when Nesterov:
//   p <- p - lr (m' / (sqrt(v_hat + eps_root) + eps) + wd p),
// m' = m_hat, or b1 m / (1 - b1^{t+1}) + (1 - b1) g / (1 - b1^t) (Nesterov).
// a = -lr, b = b1, c = 1 - b1, d = b2, e = 1 - b2, f = 1 / (1 - b1^t) (Nesterov: the factor of m),
// h = 1 / (1 - b2^t); the rest in optax_scalars.
template <class T>
struct optax_scalars {
  T g_factor, eps, eps_root, wd; // g_factor: Nesterov's (1 - b1) / (1 - b1^t)
};
template <int Copy, bool Nesterov, class T>
[[gnu::noinline]] void optax_adam(const streams<T>& c, const scalars<T>& s, const optax_scalars<T>& o) {
  T* const p = c.p;
  const T* const g = c.g;
  T* const m = c.s0;
  T* const v = c.s1;
  const T neg_lr = s.a, b1 = s.b, a1 = s.c, b2 = s.d, a2 = s.e, mf = s.f, bc2 = s.h;
  const T gf = o.g_factor, eps = o.eps, eps_root = o.eps_root, wd = o.wd;
  lanes<T>(c.n, [=]<class V>(std::size_t i) {
    const V gi = ld<V>(g + i), pi = ld<V>(p + i);
    const auto [mi, vi] = moments(gi, m + i, v + i, b1, a1, b2, a2);
    const V mh = Nesterov ? V(mf) * mi + V(gf) * gi : mi * V(mf);
    st(p + i, pi + V(neg_lr) * (mh / (xsimd::sqrt(vi * V(bc2) + V(eps_root)) + V(eps)) + V(wd) * pi));
    st(m + i, mi);
    st(v + i, vi);
  });
}

// The rooflines: a rule's loads and stores with no arithmetic worth the name. `zero` is 0 at run
// time (the compiler cannot know it), so every array keeps its value and the variants sharing
// these arrays see the same data; the stores still dirty every line. States: how many state
// arrays besides p and g (roofline_name gives the mix: 3r2w for one, 28 B/param in float32 for
// Adam's 4r3w).
template <int States, class T>
[[gnu::noinline]] void roofline(const streams<T>& c, T zero) {
  T* const p = c.p;
  const T* const g = c.g;
  T* const s0 = c.s0;
  T* const s1 = c.s1;
  T* const s2 = c.s2;
  lanes<T>(c.n, [=]<class V>(std::size_t i) {
    const V dg = ld<V>(g + i) * V(zero);
    st(p + i, ld<V>(p + i) + dg);
    if constexpr (States >= 1)
      st(s0 + i, ld<V>(s0 + i) + dg);
    if constexpr (States >= 2)
      st(s1 + i, ld<V>(s1 + i) + dg);
    if constexpr (States >= 3)
      st(s2 + i, ld<V>(s2 + i) + dg);
  });
}
inline const char* roofline_name(std::size_t states) {
  constexpr const char* names[] = { "2r1w", "3r2w", "4r3w", "5r4w" };
  return names[std::min<std::size_t>(states, 3)];
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
                      std::min(chunk_elements, b.n - i), b.s2 ? b.s2 + i : nullptr });
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
