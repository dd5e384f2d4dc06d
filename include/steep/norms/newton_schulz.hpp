#pragma once
// Newton–Schulz: Muon's approximate spectral dual map (polar factor) of one matrix block, in place.
//
//   steep::norms::newton_schulz ns;                    // 5 steps of (3.4445, -4.7750, 2.0315), torch's eps
//   ns.apply(x, rows, cols);                           // x (row-major rows x cols) <- NS(x)
//   steep::norms::newton_schulz{ .steps = 10 };        // more steps
//   steep::norms::newton_schulz{ .schedule = {{4, -5, 2}, {3.4, -4.7, 2}} };  // one triple per step
//   steep::norms::newton_schulz{ .eps = 1e-8, .guard = frobenius_guard::additive };  // optax's form
//   steep::norms::polar_express(5)                     // Amsel et al. 2025: optimal per-step triples
//
// The math (Jordan et al. 2024; torch 2.11 torch.optim._muon._zeropower_via_newtonschulz):
//   X = G, transposed if rows > cols so that X is wide (m = min(rows, cols) <= n);
//   X <- X / max(s ||X||_F, eps)       (torch: clamp)   or   X / (s ||X||_F + eps)   (optax: additive),
//        s = norm_scale (1; Polar Express: 1.01, a safety margin that keeps every singular value < 1);
//   repeat: A = X X^T;  B = b A + c A A;  X <- a X + B X;
//   transpose back.
// The quintic p(s) = a s + b s^3 + c s^5 pushes every singular value of X into roughly
// [0.7, 1.2]; it is not the exact polar factor (exact_polar in polar.hpp is). Zero in, zero out.
//
// Symmetry: A and B are symmetric, so A = X X^T is one SYRK (m^2 n flops instead of
// 2 m^2 n), A A = A A^T another (m^3 instead of 2 m^3), and a X + B X = (B + a I) X one SYMM. The tall case
// never transposes: it works with X^T X and X B instead. `symmetric = false` runs the textbook GEMM sequence
// instead (the benchmark's "plain" baseline, and a cross-check in the tests). Nominal cost, by which
// benchmarks count: (4 m^2 n + 2 m^3) flops per step.

#include "steep/core/error.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <string>

namespace steep::norms {

struct ns_coefficients {
  double a = 3.4445, b = -4.7750, c = 2.0315;
  bool operator==(const ns_coefficients&) const = default;
};

// Muon's quintic (Jordan et al. 2024), torch 2.11's and optax 0.2.8's default.
inline constexpr ns_coefficients muon_quintic{ 3.4445, -4.7750, 2.0315 };

// How the Frobenius pre-normalization avoids dividing by zero.
enum class frobenius_guard {
  clamp,   // X / max(||X||, eps)  — torch.optim.Muon, eps = 1e-7
  additive // X / (||X|| + eps)    — optax.contrib.muon, eps = 1e-8
};

// A schedule: one triple per step, at most `capacity` steps, held in place.
//
//   ns_schedule{ { 4, -5, 2 }, { 3.4, -4.7, 2 } };   ns_schedule(60, { 1.5, -0.5, 0 });
//
// Why not std::vector: a rule is a value, copied through every stage of its construction and
// into its optimizer. A member that owns heap memory made every rule with a Newton-Schulz stage
// non-trivially copyable, so each of those copies compiled to a call with unwinding paths; the
// catalogue's translation unit spent about 4% of its compile time on them
// (docs/compile-time.md). This is C++26's std::inplace_vector, which the toolchain lacks. A
// longer constant schedule is `steps` with `coefficients`.
class ns_schedule {
public:
  static constexpr std::size_t capacity = 64;

  constexpr ns_schedule() = default;
  constexpr ns_schedule(std::initializer_list<ns_coefficients> steps) {
    for (const ns_coefficients& c : steps)
      push_back(c);
  }
  constexpr ns_schedule(std::size_t n, const ns_coefficients& c) {
    for (std::size_t k = 0; k < n; ++k)
      push_back(c);
  }

  constexpr void push_back(const ns_coefficients& c) {
    if (size_ == capacity)
      throw usage_error("newton_schulz: a schedule holds at most " + std::to_string(capacity) +
                        " steps; for more steps of one triple, set `steps` and `coefficients`");
    steps_[size_++] = c;
  }
  constexpr std::size_t size() const noexcept { return size_; }
  constexpr bool empty() const noexcept { return size_ == 0; }
  constexpr const ns_coefficients& operator[](std::size_t k) const noexcept { return steps_[k]; }
  constexpr const ns_coefficients* begin() const noexcept { return steps_.data(); }
  constexpr const ns_coefficients* end() const noexcept { return steps_.data() + size_; }
  constexpr bool operator==(const ns_schedule& o) const noexcept { return std::ranges::equal(*this, o); }

private:
  std::array<ns_coefficients, capacity> steps_{};
  std::size_t size_ = 0;
};

struct spectral; // spectral.hpp

struct newton_schulz {
  // What the map approximates: the spectral norm's dual map (the polar factor), not exactly
  // (train/implied_norm.hpp reads these).
  using approximates = spectral;
  static constexpr bool exact = false;
  int steps = 5;
  ns_coefficients coefficients = muon_quintic;
  ns_schedule schedule = {}; // when not empty: one triple per step; `steps` is ignored
  double eps = 1e-7;
  frobenius_guard guard = frobenius_guard::clamp;
  bool symmetric = true; // SYRK/SYMM products; false: plain GEMMs
  double norm_scale = 1; // the Frobenius norm is multiplied by this before dividing (Polar Express: 1.01)

  bool operator==(const newton_schulz&) const = default;

  static constexpr int max_steps = 100;
  static constexpr double max_coefficient = 100;

  int step_count() const noexcept { return schedule.empty() ? steps : static_cast<int>(schedule.size()); }

  // Empty if the settings make a map; otherwise why not (the optimizer refuses it when built).
  std::string check_settings() const {
    if (step_count() < 1)
      return "newton_schulz needs at least one step (steps = " + std::to_string(steps) + ")";
    // A polar factor converges in far fewer (Muon runs 5); more is a typo that would hang.
    if (step_count() > max_steps)
      return "newton_schulz's steps is " + std::to_string(steps) + ", more than " + std::to_string(max_steps);
    // Published coefficients stay under 25 in magnitude (Polar Express's first step: 23.6).
    for (int k = 0; k < step_count(); ++k)
      for (double x : { at(k).a, at(k).b, at(k).c })
        if (!(std::abs(x) <= max_coefficient))
          return "newton_schulz's coefficients of step " + std::to_string(k) + " are (" +
                 std::to_string(at(k).a) + ", " + std::to_string(at(k).b) + ", " + std::to_string(at(k).c) +
                 "): each must be finite and at most " + std::to_string(static_cast<int>(max_coefficient)) +
                 " in magnitude";
    if (!(eps > 0) || eps - eps != 0)
      return "newton_schulz's eps must be finite and > 0 (a zero block would divide 0 by 0)";
    if (!(norm_scale > 0) || norm_scale - norm_scale != 0)
      return "newton_schulz's norm_scale must be finite and > 0";
    return {};
  }
  ns_coefficients at(int k) const noexcept { return schedule.empty() ? coefficients : schedule[k]; }

  // Nominal flops of one application to a rows x cols block.
  double flops(std::size_t rows, std::size_t cols) const noexcept {
    const double m = static_cast<double>(std::min(rows, cols)), n = static_cast<double>(std::max(rows, cols));
    return (4 * m * m * n + 2 * m * m * m) * step_count();
  }

  // x <- NS(x) for a row-major rows x cols block (defined in newton_schulz_apply.hpp, which the
  // engine includes: a rule that names this map needs only its settings, not BLAS).
  template <class T>
  void apply(T* x, std::size_t rows, std::size_t cols) const;
};

// Polar Express (Amsel, Persson, Musco, Gower 2025, "The Polar Express: Optimal Matrix Sign Methods
// and Their Application to the Muon Algorithm", Algorithm 1): the degree-5 polynomial of each step
// is the minimax-optimal one for the interval the previous steps leave, so the composition
// converges to the polar factor (unlike Muon's fixed quintic) and fast in its first steps. The
// first seven triples are divided by (1.01, 1.01^3, 1.01^5) for stability, as published; steps past
// the eighth repeat the eighth, (15/8, -10/8, 3/8), the classical quintic Newton-Schulz step.
// Pre-normalization X / (1.01 ||X||_F + 1e-7).
inline newton_schulz polar_express(int steps = 5) {
  static constexpr ns_coefficients table[] = {
    { 8.28721201814563, -23.595886519098837, 17.300387312530933 },
    { 4.107059111542203, -2.9478499167379106, 0.5448431082926601 },
    { 3.9486908534822946, -2.908902115962949, 0.5518191394370137 },
    { 3.3184196573706015, -2.488488024314874, 0.51004894012372 },
    { 2.300652019954817, -1.6689039845747493, 0.4188073119525673 },
    { 1.891301407787398, -1.2679958271945868, 0.37680408948524835 },
    { 1.8750014808534479, -1.2500016453999487, 0.3750001645474248 },
    { 1.875, -1.25, 0.375 },
  };
  constexpr int n = static_cast<int>(std::size(table));
  newton_schulz ns;
  for (int k = 0; k < steps; ++k) {
    const ns_coefficients t = table[std::min(k, n - 1)];
    const double s = k < n - 1 ? 1.01 : 1.0;
    ns.schedule.push_back({ t.a / s, t.b / (s * s * s), t.c / (s * s * s * s * s) });
  }
  ns.eps = 1e-7;
  ns.guard = frobenius_guard::additive;
  ns.norm_scale = 1.01;
  return ns;
}

} // namespace steep::norms
