#pragma once
// param_store<T>: a model's parameters and gradients as named blocks in one flat, aligned arena.
//
//   steep::param_store<float> store({{"W1", {48, 32}}, {"W2", {16, 48}}, {"v", {16}}});
//   store.param("W1")(0, 0) = 0.5f;      // views over the arena (core/tensor_view.hpp)
//   store.grad("W1").fill(1.f);
//   float* p = store.block(0).param;     // raw pointers for other frameworks
//
// Layout: block b's parameters live at arena[offset_b, offset_b + size_b), every offset a
// multiple of 64 bytes; gradients live in a second arena with the same offsets. A block may
// instead adopt external memory (a torch tensor, an mmapped checkpoint): give its spec the
// parameter and gradient as std::spans and it takes no arena space; such buffers need no
// alignment, but each must hold exactly the shape's element count, and no two buffers of a
// store may overlap (a gradient that is also a parameter would be read after it was updated).
//
//   std::vector<float> w(12), g(12);
//   steep::param_store<float> s({ {"W", {4, 3}, std::span(w), std::span(g)} });
//
// The layout is fixed at construction: optimizers size their state slots from it, so a store
// whose blocks could change under them would silently desynchronise the two.

#include "steep/core/aligned_buffer.hpp"
#include "steep/core/error.hpp"
#include "steep/core/shape.hpp"
#include "steep/core/tensor_view.hpp"
#include "steep/core/xsimd_fence.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace steep {

// What a block is before the store exists. `param`/`grad` non-null: adopt external memory.
template <class T>
struct block_spec {
  std::string name;
  shape_t shape;
  block_role role = default_role(shape);
  T* param = nullptr;
  T* grad = nullptr;
  weight_layout layout = weight_layout::out_in; // torch's (out, in); JAX's is in_out

  // block_spec<float>("W", {784, 256}).with_layout(weight_layout::in_out)
  block_spec& with_layout(weight_layout l) & {
    layout = l;
    return *this;
  }
  block_spec&& with_layout(weight_layout l) && {
    layout = l;
    return std::move(*this);
  }

  block_spec(std::string n, shape_t s)
    : name(std::move(n))
    , shape(std::move(s))
    , role(default_role(shape)) {}
  block_spec(std::string n, shape_t s, block_role r)
    : name(std::move(n))
    , shape(std::move(s))
    , role(r) {}
  // External memory: checked against the shape when the store is built.
  block_spec(std::string n, shape_t s, std::span<T> p, std::span<T> g)
    : block_spec(std::move(n), std::move(s), block_role{}, p, g) {
    role = default_role(shape);
  }
  block_spec(std::string n, shape_t s, block_role r, std::span<T> p, std::span<T> g)
    : name(std::move(n))
    , shape(std::move(s))
    , role(r)
    , param(p.data())
    , grad(g.data())
    , param_size(p.size())
    , grad_size(g.size()) {}

  std::size_t param_size = 0, grad_size = 0; // external buffers' element counts
};

// A block as the store holds it: metadata plus where its memory is.
template <class T>
struct block {
  std::string name;
  shape_t shape;
  block_role role;
  weight_layout layout;
  std::size_t size;   // element count
  std::size_t offset; // position in the arena (owned blocks); padded to 64 bytes
  bool external;
  T* param;
  T* grad;
};

template <class T>
class param_store {
public:
  using value_type = T;

  explicit param_store(std::vector<block_spec<T>> specs) {
    std::unordered_map<std::string, std::size_t> seen;
    std::size_t arena_size = 0;
    blocks_.reserve(specs.size());
    for (auto& s : specs) {
      if (s.name.empty())
        throw error("<unnamed>", "every block needs a name");
      if (!seen.emplace(s.name, blocks_.size()).second)
        throw error(s.name, "block name used twice in one store");
      const auto counted = element_count_checked(s.shape);
      if (!counted || *counted > std::numeric_limits<std::ptrdiff_t>::max() / sizeof(T) / 2)
        throw error(s.name, "shape " + to_string(s.shape) + " has more elements than memory can address");
      const std::size_t n = *counted;
      const bool ext = s.param != nullptr || s.grad != nullptr;
      if (ext && n > 0 && (s.param == nullptr || s.grad == nullptr))
        throw error(s.name, "an external block needs both a parameter and a gradient buffer");
      if (ext && (s.param_size != n || s.grad_size != n))
        throw error(s.name, "its " + std::string(s.param_size != n ? "parameter" : "gradient") +
                              " buffer holds " +
                              std::to_string(s.param_size != n ? s.param_size : s.grad_size) +
                              " elements; shape " + to_string(s.shape) + " needs " + std::to_string(n));
      blocks_.push_back({ s.name, s.shape, s.role, s.layout, n, ext ? 0 : arena_size, ext, s.param, s.grad });
      if (!ext)
        arena_size += padded_count<T>(n);
    }
    check_no_overlap();
    params_.assign(arena_size, T{ 0 });
    grads_.assign(arena_size, T{ 0 });
    for (auto& b : blocks_)
      if (!b.external) {
        b.param = params_.data() + b.offset;
        b.grad = grads_.data() + b.offset;
      }
    index_ = std::move(seen);
  }

  // Optimizers hold pointers into the store; through this token they can tell that it is gone
  // (destroyed, or moved from: the token moves with the memory) instead of reading freed memory.
  std::weak_ptr<const bool> lifetime() const noexcept { return alive_; }

  // The store owns pointers into itself: copying would alias them, so it is move-only.
  param_store(const param_store&) = delete;
  param_store& operator=(const param_store&) = delete;
  param_store(param_store&&) noexcept = default;
  param_store& operator=(param_store&&) noexcept = default;

  std::size_t size() const noexcept { return blocks_.size(); }
  std::size_t total_elements() const noexcept {
    std::size_t n = 0;
    for (auto& b : blocks_)
      n += b.size;
    return n;
  }
  const block<T>& block_at(std::size_t i) const { return blocks_.at(i); }
  const std::vector<block<T>>& blocks() const noexcept { return blocks_; }

  std::size_t index_of(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end())
      throw error(name, "no block of that name in this store");
    return it->second;
  }
  const block<T>& block_named(const std::string& name) const { return blocks_[index_of(name)]; }

  tensor_view<T> param(const std::string& name) { return view(block_named(name).param, block_named(name)); }
  tensor_view<T> grad(const std::string& name) { return view(block_named(name).grad, block_named(name)); }
  tensor_view<T> param(const std::string& name) const {
    return view(block_named(name).param, block_named(name));
  }
  tensor_view<T> grad(const std::string& name) const {
    return view(block_named(name).grad, block_named(name));
  }

  // The whole arena, for checkpointing and bulk copies (owned blocks only).
  T* arena_params() noexcept { return params_.data(); }
  T* arena_grads() noexcept { return grads_.data(); }
  std::size_t arena_size() const noexcept { return params_.size(); }

private:
  static tensor_view<T> view(T* p, const block<T>& b) { return { p, b.shape }; }

  // External buffers (parameters and gradients of every block) must not share an element: a
  // rule would update the shared memory twice, or read a gradient it already overwrote.
  [[gnu::cold]] void check_no_overlap() const {
    struct range {
      std::uintptr_t begin, end;
      const block<T>* owner;
      const char* what;
    };
    std::vector<range> ranges;
    for (const auto& b : blocks_)
      if (b.external && b.size > 0)
        for (auto [p, what] : { std::pair{ b.param, "parameter" }, std::pair{ b.grad, "gradient" } }) {
          const auto at = reinterpret_cast<std::uintptr_t>(p);
          ranges.push_back({ at, at + b.size * sizeof(T), &b, what });
        }
    std::sort(ranges.begin(), ranges.end(), [](const range& a, const range& b) { return a.begin < b.begin; });
    for (std::size_t i = 1; i < ranges.size(); ++i)
      if (ranges[i].begin < ranges[i - 1].end) {
        const range &a = ranges[i - 1], &b = ranges[i];
        throw error(b.owner->name,
                    std::string("its ") + b.what + " buffer overlaps the " + a.what + " buffer of " +
                      (a.owner == b.owner ? "the same block" : "block '" + a.owner->name + "'") +
                      "; every parameter and gradient needs memory of its own");
      }
  }

  std::vector<block<T>> blocks_;
  std::unordered_map<std::string, std::size_t> index_;
  aligned_buffer<T> params_;
  aligned_buffer<T> grads_;
  std::shared_ptr<const bool> alive_ = std::make_shared<const bool>(true);
};

// What an optimizer does before it touches a store's memory: a store that is gone (destroyed,
// or the optimizer itself moved from, which empties its token) is a clear error, not a crash.
inline void require_live_store(const std::weak_ptr<const bool>& lifetime) {
  if (lifetime.expired())
    throw usage_error(
      "this optimizer's param_store no longer exists (it was destroyed), or this optimizer was "
      "moved from: the blocks' memory is gone. Build an optimizer on a live store");
}

} // namespace steep
