#pragma once
// The C ABI of one rule compiled from Python (steep.compile_rule, python/README.md): a shared
// object that ctypes loads, with no pybind11 or torch in it, so a rule compiles in seconds
// (precompiled, this header is most of its parse).
//
//   // the unit steep/_jit_build.py generates for '-lr * sign(ema<"m">(grad, 0.9))', hyper={"lr": ...}:
//   #include "steep_jit.hpp"
//   namespace steep_jit_rule {
//   using namespace steep::rules;
//   inline auto make(const double* h) {
//     const auto lr = named<"lr", range::nonnegative>(h[0]);
//     return -lr * sign(ema<"m">(grad, 0.9));
//   }
//   } // namespace steep_jit_rule
//   STEEP_JIT_EXPORT(steep_jit_rule::make, float)    // one element type per object: half the compile
//
// Every function returns a status (or null) and never throws: an error's text is
// steep_jit_error() until the next failing call of this thread. A handle is one optimizer over
// caller-owned parameters and gradients, re-pointed at every step (torch replaces a gradient
// after zero_grad(set_to_none=True)); its state lives in the handle, and steep_jit_slot() lends it.

#include "steep/engine.hpp"
#include "steep/engine/any_optimizer.hpp"
#include "steep/rules.hpp"
#include "steep/train/implied_norm.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace steep::jit {

inline std::string& last_error() {
  thread_local std::string e;
  return e;
}

// Runs f, turning an exception into a status: -2 for a non-finite gradient (refuse), -1 else.
template <class F>
int guarded(F&& f) {
  try {
    return f();
  } catch (const engine::nonfinite_error& e) {
    last_error() = e.what();
    return -2;
  } catch (const std::exception& e) {
    last_error() = e.what();
    return -1;
  }
}

// A norm type's name; a route's implied norm, max_composite<N...>, has none of its own: "max(N, ...)"
// (the arms' weights are their learning rates' ratio, a run-time value: train/implied_norm_of.hpp).
template <class N>
struct norm_name {
  static std::string get() { return std::string(N::name); }
};
template <class... Ns>
struct norm_name<norms::max_composite<Ns...>> {
  static std::string get() {
    std::string out;
    ((out += (out.empty() ? "" : ", ") + norm_name<Ns>::get()), ...);
    return "max(" + out + ")";
  }
};

// One optimizer and its store; the rule's type is erased by any_optimizer, the element type here.
class session {
public:
  virtual ~session() = default;
  // 0 applied, 1 held back, 2 refused (nonfinite = skip).
  virtual int step(void* const* params, void* const* grads) = 0;
  virtual void check(const char* name, double v) = 0;
  virtual void set(const char* name, double v) = 0;
  virtual double get(const char* name) = 0;
  virtual std::int64_t steps() const = 0;
  virtual void restore_steps(std::int64_t t) = 0;
  // "name=value\n" per named hyperparameter.
  std::string hypers;
  std::string describe;
  std::vector<engine::slot_bytes> slots;
  std::vector<std::size_t> slot_block;
};

template <class T>
class typed_session final : public session {
public:
  template <class Rule>
  typed_session(Rule rule, std::vector<block_spec<T>> specs, const engine::optimizer_options& opts)
    : store_(std::move(specs))
    , opt_(std::move(rule), store_, opts) {
    const auto& blocks = store_.blocks();
    opt_.visit_slots([&](const engine::slot_bytes& s) {
      if (s.dtype != "F32" && s.dtype != "F64")
        throw error(s.block, "slot '" + s.slot + "' is stored as " + s.dtype +
                               "; steep.compile_rule lends float32 and float64 state only");
      slots.push_back(s);
      for (std::size_t i = 0; i < blocks.size(); ++i)
        if (blocks[i].name == s.block)
          slot_block.push_back(i);
    });
    for (const auto& [name, value] : opt_.hyperparameters())
      hypers += name + "=" + std::to_string(value) + "\n";
    describe = opt_.describe();
  }

  int step(void* const* params, void* const* grads) override {
    const auto& blocks = store_.blocks();
    // As param_store's constructor checks: every parameter and gradient has memory of its own.
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      const std::size_t bytes = element_count(blocks[i].shape) * sizeof(T);
      if (!params[i] || !grads[i])
        throw error(blocks[i].name, "a null parameter or gradient; nothing was written");
      for (void* p : { params[i], grads[i] })
        if (bytes)
          ranges.emplace_back(reinterpret_cast<std::uintptr_t>(p),
                              reinterpret_cast<std::uintptr_t>(p) + bytes);
    }
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t k = 1; k < ranges.size(); ++k)
      if (ranges[k].first < ranges[k - 1].second)
        throw usage_error("two of the parameters and gradients share memory; nothing was written");
    for (std::size_t i = 0; i < blocks.size(); ++i)
      opt_.rebind(i, static_cast<T*>(params[i]), static_cast<T*>(grads[i]));
    const auto r = opt_.step();
    return r.applied() ? 0 : r.held_back() ? 1 : 2;
  }
  void check(const char* name, double v) override { opt_.check(name, v); }
  void set(const char* name, double v) override { opt_.set(name, v); }
  double get(const char* name) override { return opt_.get(name); }
  std::int64_t steps() const override { return opt_.steps(); }
  void restore_steps(std::int64_t t) override { opt_.restore_steps(t); }

private:
  param_store<T> store_;
  engine::any_optimizer<T> opt_;
};

// Builds a session of rule `make(hypers)` over the caller's blocks of element type T. `roles`:
// per block a steep::block_role's value, or null for the role of each block's shape.
template <class T, class Make>
session* create(Make make, std::size_t n, const char* const* names, const std::size_t* ndims,
                const std::size_t* dims, const int* roles, void* const* params, void* const* grads,
                const double* hypers, int threads, int nonfinite) {
  engine::optimizer_options opts;
  opts.threads = threads;
  constexpr engine::nonfinite_policy policies[] = { engine::nonfinite_policy::refuse,
                                                    engine::nonfinite_policy::skip,
                                                    engine::nonfinite_policy::mask,
                                                    engine::nonfinite_policy::off };
  if (nonfinite < 0 || nonfinite > 3)
    throw usage_error("nonfinite policy " + std::to_string(nonfinite) + " is not 0-3");
  opts.nonfinite = policies[nonfinite];
  std::vector<block_spec<T>> specs;
  for (std::size_t i = 0, at = 0; i < n; at += ndims[i], ++i) {
    shape_t shape(dims + at, dims + at + ndims[i]);
    const std::size_t count = element_count(shape);
    if (!params[i] || !grads[i])
      throw error(names[i], "a null parameter or gradient");
    if (roles && (roles[i] < 0 || roles[i] > static_cast<int>(block_role::scalar)))
      throw error(names[i], "role " + std::to_string(roles[i]) + " is not a steep::block_role");
    const block_role role = roles ? static_cast<block_role>(roles[i]) : default_role(shape);
    specs.emplace_back(names[i], shape, role, std::span<T>(static_cast<T*>(params[i]), count),
                       std::span<T>(static_cast<T*>(grads[i]), count));
  }
  return new typed_session<T>(make(hypers), std::move(specs), opts);
}

} // namespace steep::jit

// The exported functions of a rule's shared object (python/steep/_jit_abi.py declares them).
#define STEEP_JIT_EXPORT(MAKE, T)                                                                            \
  using steep_jit_rule_t = decltype(MAKE(static_cast<const double*>(nullptr)));                              \
  using steep_jit_norm = steep::implied_norm<steep_jit_rule_t>;                                              \
  extern "C" {                                                                                               \
  [[gnu::visibility("default")]] int steep_jit_abi() { return 2; }                                           \
  [[gnu::visibility("default")]] const char* steep_jit_error() { return steep::jit::last_error().c_str(); }  \
  [[gnu::visibility("default")]] const char* steep_jit_norm_name() {                                         \
    static const std::string s = steep::jit::norm_name<steep_jit_norm::type>::get();                         \
    return s.c_str();                                                                                        \
  }                                                                                                          \
  [[gnu::visibility("default")]] int steep_jit_norm_known() { return steep_jit_norm::known; }                \
  [[gnu::visibility("default")]] const char* steep_jit_norm_reason() {                                       \
    static const std::string s(steep_jit_norm::reason);                                                      \
    return s.c_str();                                                                                        \
  }                                                                                                          \
  [[gnu::visibility("default")]] int steep_jit_dtype_size() { return sizeof(T); }                            \
  [[gnu::visibility("default")]] void* steep_jit_create(std::size_t n, const char* const* names,             \
                                                        const std::size_t* ndims, const std::size_t* dims,   \
                                                        const int* roles, void* const* params,               \
                                                        void* const* grads, const double* hypers,            \
                                                        int threads, int nonfinite) {                        \
    steep::jit::session* s = nullptr;                                                                        \
    steep::jit::guarded([&] {                                                                                \
      s = steep::jit::create<T>(MAKE, n, names, ndims, dims, roles, params, grads, hypers, threads,          \
                                nonfinite);                                                                  \
      return 0;                                                                                              \
    });                                                                                                      \
    return s;                                                                                                \
  }                                                                                                          \
  [[gnu::visibility("default")]] void steep_jit_destroy(void* h) {                                           \
    delete static_cast<steep::jit::session*>(h);                                                             \
  }                                                                                                          \
  [[gnu::visibility("default")]] int steep_jit_step(void* h, void* const* params, void* const* grads) {      \
    return steep::jit::guarded([&] { return static_cast<steep::jit::session*>(h)->step(params, grads); });   \
  }                                                                                                          \
  [[gnu::visibility("default")]] int steep_jit_check(void* h, const char* name, double v) {                  \
    return steep::jit::guarded([&] { return static_cast<steep::jit::session*>(h)->check(name, v), 0; });     \
  }                                                                                                          \
  [[gnu::visibility("default")]] int steep_jit_set(void* h, const char* name, double v) {                    \
    return steep::jit::guarded([&] { return static_cast<steep::jit::session*>(h)->set(name, v), 0; });       \
  }                                                                                                          \
  [[gnu::visibility("default")]] int steep_jit_get(void* h, const char* name, double* out) {                 \
    return steep::jit::guarded([&] { return *out = static_cast<steep::jit::session*>(h)->get(name), 0; });   \
  }                                                                                                          \
  [[gnu::visibility("default")]] const char* steep_jit_hyperparameters(void* h) {                            \
    return static_cast<steep::jit::session*>(h)->hypers.c_str();                                             \
  }                                                                                                          \
  [[gnu::visibility("default")]] const char* steep_jit_describe(void* h) {                                   \
    return static_cast<steep::jit::session*>(h)->describe.c_str();                                           \
  }                                                                                                          \
  [[gnu::visibility("default")]] std::int64_t steep_jit_steps(void* h) {                                     \
    return static_cast<steep::jit::session*>(h)->steps();                                                    \
  }                                                                                                          \
  [[gnu::visibility("default")]] int steep_jit_restore_steps(void* h, std::int64_t t) {                      \
    return steep::jit::guarded([&] { return static_cast<steep::jit::session*>(h)->restore_steps(t), 0; });   \
  }                                                                                                          \
  [[gnu::visibility("default")]] std::size_t steep_jit_slot_count(void* h) {                                 \
    return static_cast<steep::jit::session*>(h)->slots.size();                                               \
  }                                                                                                          \
  /* slot i: its block's index, its name, its memory and its shape */                                        \
  [[gnu::visibility("default")]] void steep_jit_slot(void* h, std::size_t i, std::size_t* block,             \
                                                     const char** name, void** data, std::size_t* ndim,      \
                                                     const std::size_t** dims) {                             \
    auto* s = static_cast<steep::jit::session*>(h);                                                          \
    const auto& b = s->slots[i];                                                                             \
    *block = s->slot_block[i], *name = b.slot.c_str(), *data = b.bytes.data(), *ndim = b.shape.size();       \
    *dims = b.shape.data();                                                                                  \
  }                                                                                                          \
  }
