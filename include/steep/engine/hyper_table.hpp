#pragma once
// hyper_table: a rule's named hyperparameters (hyper<"lr">(...), expr/node.hpp) as one flat
// table, built once when the optimizer is built. set, get, has and check are lookups in it: one
// range check per entry of the name, then one write; no walk of the rule's tree per call.
//
//   auto h = detail::hyper_table::of(view);      // view: a rule_view (engine/rule_view.hpp)
//   h.set(&view.roots_, "lr", 1e-4);             // range-checked, every "lr" of the rule
//   h.get(&view.roots_, "lr");  h.hyperparameters(&view.roots_);
//
// An entry holds where its value sits inside the roots object (a byte offset), not a pointer,
// so the table stays right when the optimizer is moved. Its functions are not templates: they
// are compiled once, not once per rule.

#include "steep/core/error.hpp"
#include "steep/expr/program.hpp"

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace steep::engine::detail {

// A named hyperparameter outside its range (the check itself is the range's, per type).
[[noreturn, gnu::cold]] inline void hyper_out_of_range(std::string_view name, double value,
                                                       std::string_view range) {
  throw usage_error("hyperparameter '" + std::string(name) + "' is " + std::to_string(value) +
                    "; it must be " + std::string(range) + " (nothing was changed)");
}

// Throws, naming it, if `value` is outside the range of hyperparameter node H's.
template <class H>
void check_hyper(const H&, double value) {
  using R = typename H::range_type;
  if (!R::ok(value))
    hyper_out_of_range(H::name.view(), value, R::text);
}

class hyper_table {
public:
  struct entry {
    std::string_view name, range; // static storage: the node type's
    bool (*ok)(double);
    std::size_t offset; // of the node's value in the roots object
  };

  // Every named hyperparameter of the view's roots, in the rule's order (a name may repeat: a
  // learning rate in two terms is two entries of one name).
  template <class View>
  [[gnu::cold, gnu::noinline]] static hyper_table of(const View& v) {
    hyper_table t;
    const auto* base = reinterpret_cast<const char*>(&v.roots_);
    v.for_roots([&]<std::size_t>(const auto& root) {
      expr::visit_hypers(root, [&](const auto& hp) {
        using H = std::remove_cvref_t<decltype(hp)>;
        using R = typename H::range_type;
        t.add(H::name.view(), R::text, &R::ok,
              static_cast<std::size_t>(reinterpret_cast<const char*>(&hp.value) - base));
      });
    });
    return t;
  }

  // Throws, naming it, if `value` is outside the range of hyperparameter `name`.
  void check(std::string_view name, double value) const {
    for (const entry& e : entries_)
      if (e.name == name && !e.ok(value))
        hyper_out_of_range(e.name, value, e.range);
  }
  // Checks, then sets every entry of the name; throws if the rule has none.
  void set(void* roots, std::string_view name, double value) const {
    check(name, value);
    bool found = false;
    for (const entry& e : entries_)
      if (e.name == name)
        value_at(roots, e) = value, found = true;
    if (!found)
      no_such(name);
  }
  double get(const void* roots, std::string_view name) const {
    double v = 0;
    bool found = false;
    for (const entry& e : entries_)
      if (e.name == name)
        v = value_at(roots, e), found = true;
    if (!found)
      no_such(name);
    return v;
  }
  bool has(std::string_view name) const {
    return std::any_of(entries_.begin(), entries_.end(), [&](const entry& e) { return e.name == name; });
  }
  // Every name once, with its (first entry's) value: what checkpoints save.
  std::vector<std::pair<std::string, double>> hyperparameters(const void* roots) const {
    std::vector<std::pair<std::string, double>> out;
    for (const entry& e : entries_)
      if (std::none_of(out.begin(), out.end(), [&](const auto& o) { return o.first == e.name; }))
        out.emplace_back(std::string(e.name), value_at(roots, e));
    return out;
  }

private:
  // (Out of line: the vector's growth is compiled once, not once per hyperparameter of each rule.)
  [[gnu::cold, gnu::noinline]] void add(std::string_view name, std::string_view range, bool (*ok)(double),
                                        std::size_t offset) {
    entries_.push_back({ name, range, ok, offset });
  }
  static double& value_at(void* roots, const entry& e) {
    return *reinterpret_cast<double*>(static_cast<char*>(roots) + e.offset);
  }
  static double value_at(const void* roots, const entry& e) {
    return *reinterpret_cast<const double*>(static_cast<const char*>(roots) + e.offset);
  }
  [[noreturn, gnu::cold]] static void no_such(std::string_view name) {
    throw usage_error("the rule has no hyperparameter named '" + std::string(name) + "'");
  }

  std::vector<entry> entries_;
};

} // namespace steep::engine::detail
