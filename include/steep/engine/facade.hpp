#pragma once
// optimizer_facade<Derived, T>: the whole optimizer_interface (interface.hpp), written once over a
// list of parts. A part is one compiled rule's state (detail::engine_state, engine/state.hpp): a
// plain optimizer has one, a route (routed.hpp) one per arm that got blocks. What differs between
// them is only how they are built; stepping, state, slots, hyperparameters, counters and
// describe() are here.
//
//   template <class Rule, class T>
//   class optimizer : public optimizer_facade<optimizer<Rule, T>, T> {
//     template <class F> void visit_parts(F&& f) { f(0, &s_); }   // k, part (nullptr: no blocks)
//     static constexpr std::size_t n_parts = 1;  static constexpr bool is_route = false;
//     ...
//   };
//
// Derived supplies `n_parts`, `is_route`, `rule_type`, `part_t<k>` (its parts' types), visit_parts
// (const and not), prepare_step() and commit_step() (through prepare_parts() and commit_parts()),
// and fills the facade's `owner_` (each block's part, in the store's order), policy, store token
// and thread count when it is built. A step prepares every part (read-only) before any part
// commits, so a non-finite gradient in any block refuses the step for all of them (guard.hpp).

#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/plan.hpp"
#include "steep/engine/slot_set.hpp"
#include "steep/engine/slots.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace steep::engine {

namespace detail {
// What the facade keeps whatever the rule: its constructor and destructor are compiled once, not
// once per rule (docs/compile-time.md).
struct facade_state {
  [[gnu::noinline]] facade_state() = default;
  [[gnu::noinline]] ~facade_state() = default;
  facade_state(facade_state&&) noexcept = default;
  facade_state& operator=(facade_state&&) noexcept = default;

  std::vector<std::pair<std::string, std::size_t>> owner_; // each block's part, in store order
  nonfinite_policy policy_ = nonfinite_policy::refuse;
  std::weak_ptr<const bool> store_alive_; // param_store::lifetime() of the user's store
  int threads_ = 0;                       // optimizer_options::threads, where no part is built
  std::int64_t t_ = 0;
  std::int64_t skipped_ = 0;
};
} // namespace detail

template <class Derived, class T>
class optimizer_facade : protected detail::facade_state {
public:
  using value_type = T;

  // One optimizer step with the gradients currently in the store: Derived's prepare_step() (read-
  // only) then, if it found nothing, its commit_step(). Returns false if the step was skipped (a
  // non-finite gradient under nonfinite_policy::skip) or held coordinates back; under refuse a
  // non-finite gradient throws nonfinite_error instead. Nothing is written where it is refused.
  bool step() { return run_step(self(), policy_, skipped_); }

  std::int64_t steps() const noexcept { return t_; }
  // Steps skipped for a non-finite gradient (nonfinite_policy::skip), or applied with some
  // coordinates held back (a non-finite gradient under nonfinite_policy::mask, or a new value
  // that would not be finite under any policy but off).
  std::int64_t skipped_steps() const noexcept { return skipped_; }
  nonfinite_policy nonfinite() const noexcept { return policy_; }
  // Sets the step counters (a checkpoint's load: engine/checkpoint.hpp).
  void restore_steps(std::int64_t t, std::int64_t skipped = 0) {
    if (t < 0 || skipped < 0)
      throw usage_error("a step count cannot be negative");
    visit_built([&](std::size_t, auto& part) { part.t_ = t; });
    t_ = t, skipped_ = skipped;
  }
  // The rule's structural hash (slots.hpp, rule_hash): checkpoints refuse another rule's state.
  static std::string rule_id() { return rule_hash<typename Derived::rule_type>(); }

  // The last step's first held-back coordinate in the store's block order (its cause in
  // `output`, guard.hpp) and, in its count, how many were held back in all parts; empty if none.
  std::optional<nonfinite_entry> held_back() const {
    if constexpr (one_part) {
      std::optional<nonfinite_entry> out;
      visit_built([&](std::size_t, const auto& part) { out = part.held_; });
      return out;
    }
    std::optional<nonfinite_entry> out;
    std::size_t count = 0;
    auto position = [&](const std::string& name) {
      return std::find_if(owner_.begin(), owner_.end(), [&](const auto& o) { return o.first == name; });
    };
    visit_built([&](std::size_t, const auto& part) {
      if (const auto& h = part.held_) {
        count += h->count;
        if (!out || position(h->block) < position(out->block))
          out = h;
      }
    });
    if (out)
      out->count = count;
    return out;
  }

  int threads() const noexcept {
    int n = threads_;
    visit_built([&](std::size_t, const auto& part) { n = part.exec_.threads(); });
    return n;
  }
  void set_threads(int n) {
    visit_built([&](std::size_t, auto& part) {
      part.exec_ = kernel::executor(part.checked_threads(n), part.exec_.serial_below());
    });
    threads_ = threads();
  }

  // ---- named hyperparameters (hyper<"lr">(...), hyper_table.hpp) ------------------------------
  // A plain name addresses every part that has it: set() sets all of them, get() reads them when
  // they agree and throws when they differ. On a route "arm<k>/<name>" addresses arm k alone
  // (arms count from 0 in route order), e.g. a route of Muon and AdamW whose weight decays
  // differ: opt.set("arm1/weight_decay", 0.01).

  // Whether some part has a named hyperparameter `name`.
  bool has(std::string_view name) const {
    bool found = false;
    for_named(
      name, [&](std::size_t, const auto& part, std::string_view n) { found = found || part.hypers_.has(n); });
    return found;
  }
  // Throws, naming it, if some part's hyperparameter `name` would refuse `value`.
  void check(std::string_view name, double value) const {
    for_named(name, [&](std::size_t, const auto& part, std::string_view n) { part.hypers_.check(n, value); });
  }
  // Sets the hyperparameter in every part that has one of that name; every part accepts the
  // value, or none changes.
  void set(std::string_view name, double value) {
    if constexpr (one_part)
      return visit_built([&](std::size_t, auto& part) { part.hypers_.set(&part.roots_, name, value); });
    check(name, value);
    bool found = false;
    for_named(name, [&](std::size_t, auto& part, std::string_view n) {
      if (part.hypers_.has(n))
        part.hypers_.set(&part.roots_, n, value), found = true;
    });
    if (!found)
      no_hyper(name);
  }
  double get(std::string_view name) const {
    if constexpr (one_part) {
      double v = 0;
      visit_built([&](std::size_t, const auto& part) { v = part.hypers_.get(&part.roots_, name); });
      return v;
    }
    std::vector<std::pair<std::size_t, double>> values;
    for_named(name, [&](std::size_t k, const auto& part, std::string_view n) {
      if (part.hypers_.has(n))
        values.emplace_back(k, part.hypers_.get(&part.roots_, n));
    });
    if (values.empty())
      no_hyper(name);
    for (const auto& [k, v] : values)
      if (v != values.front().second)
        throw usage_error("hyperparameter '" + std::string(name) + "' differs between the route's arms (arm" +
                          std::to_string(values.front().first) + ": " +
                          std::to_string(values.front().second) + ", arm" + std::to_string(k) + ": " +
                          std::to_string(v) + "); read one arm's as 'arm" + std::to_string(k) + "/" +
                          std::string(name) + "'");
    return values.front().second;
  }
  // Every named hyperparameter with its value (checkpoints save them): once per name where the
  // parts agree, else once per arm as "arm<k>/<name>" (so a checkpoint restores each arm's own).
  std::vector<std::pair<std::string, double>> hyperparameters() const {
    if constexpr (one_part) {
      std::vector<std::pair<std::string, double>> out;
      visit_built([&](std::size_t, const auto& part) { out = part.hypers_.hyperparameters(&part.roots_); });
      return out;
    }
    std::vector<std::pair<std::string, double>> all; // (name, value) per part, with the part's index
    std::vector<std::size_t> arm;
    visit_built([&](std::size_t k, const auto& part) {
      for (auto& e : part.hypers_.hyperparameters(&part.roots_))
        all.push_back(e), arm.push_back(k);
    });
    std::vector<std::pair<std::string, double>> out;
    for (std::size_t i = 0; i < all.size(); ++i) {
      bool agree = true, first = true;
      for (std::size_t j = 0; j < all.size(); ++j)
        if (all[j].first == all[i].first) {
          agree = agree && all[j].second == all[i].second;
          first = first && j >= i;
        }
      if (!agree)
        out.emplace_back("arm" + std::to_string(arm[i]) + "/" + all[i].first, all[i].second);
      else if (first)
        out.push_back(all[i]);
    }
    return out;
  }

  // ---- state slots (slot_set.hpp) -------------------------------------------------------------

  // Every part's slots, each name once.
  static std::vector<slot_info> slots() {
    std::vector<slot_info> out;
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (
        [&] {
          for (auto& s : detail::slot_set<typename Derived::template part_t<K>>::info())
            if (std::none_of(out.begin(), out.end(), [&](const slot_info& o) { return o.name == s.name; }))
              out.push_back(s);
        }(),
        ...);
    }
    (std::make_index_sequence<Derived::n_parts>{});
    return out;
  }
  // Whether `block`'s part has a state slot named `slot` (a route's arms hold different slots).
  bool has_slot(const std::string& block, std::string_view slot) const {
    bool found = false;
    visit_part_of(block, [&](const auto& part) {
      found = detail::slot_set<std::remove_cvref_t<decltype(part)>>::has_slot(part, block, slot);
    });
    return found;
  }
  // A view of slot `slot` of block `block` (S must be the slot's storage dtype): in the block's
  // shape, of shape (lines) for a per-line slot, or (1) for a per-block slot.
  template <class S = T>
  state_view<S> state(const std::string& block, const std::string& slot) {
    std::optional<state_view<S>> v;
    visit_part_of(block, [&](auto& part) {
      v.emplace(detail::slot_set<std::remove_cvref_t<decltype(part)>>::template state<S>(part, block, slot));
    });
    return *v;
  }
  // f(slot_bytes) for every slot of every block, part by part, in slot order then block order.
  template <class F>
  void visit_slots(F&& f) {
    visit_built([&](std::size_t, auto& part) {
      detail::slot_set<std::remove_cvref_t<decltype(part)>>::visit(part, f);
    });
  }

  // A readable account of what the compiler made of the rule (plan.hpp); for a route, which arm
  // runs which blocks and what each arm compiled to.
  std::string describe() const {
    if constexpr (!Derived::is_route) {
      std::string out;
      visit_built([&](std::size_t, const auto& part) {
        out = detail::step_plan<std::remove_cvref_t<decltype(part)>>::describe(part);
      });
      return out;
    } else {
      std::ostringstream os;
      os << "route with " << Derived::n_parts << " arms\n";
      self().visit_parts([&](std::size_t k, const auto* part) {
        os << "arm " << k << ": blocks";
        for (auto& [name, arm] : owner_)
          if (arm == k)
            os << ' ' << name;
        os << '\n'
           << (part ? detail::step_plan<std::remove_cvref_t<decltype(*part)>>::describe(*part)
                    : std::string("(no blocks)\n"));
      });
      return os.str();
    }
  }

  // The index of the part (a route's arm) that updates `block`.
  std::size_t arm_of(const std::string& block) const {
    for (auto& [name, arm] : owner_)
      if (name == block)
        return arm;
    throw error(block, "no block of that name is updated by this optimizer");
  }

protected:
  optimizer_facade() = default;
  // (A plain optimizer has one part; its members below then need no merging across parts.)
  static constexpr bool one_part = Derived::n_parts == 1 && !Derived::is_route;

  // The two halves of a step, part by part, for Derived's prepare_step() and commit_step(). Those
  // are defined outside their classes, so a unit that declares an optimizer `extern template`
  // (steep/compiled/instance.hpp) instantiates none of the passes these reach.
  std::optional<nonfinite_entry> prepare_parts() {
    require_live_store(store_alive_);
    std::optional<nonfinite_entry> bad;
    visit_built([&](std::size_t, auto& part) {
      if (!bad)
        bad = detail::step_plan<std::remove_cvref_t<decltype(part)>>::prepare(part);
    });
    return bad;
  }
  void commit_parts() {
    visit_built(
      [](std::size_t, auto& part) { detail::step_plan<std::remove_cvref_t<decltype(part)>>::commit(part); });
    count_step();
  }
  void count_step() noexcept { ++t_; }

private:
  Derived& self() { return static_cast<Derived&>(*this); }
  const Derived& self() const { return static_cast<const Derived&>(*this); }

  // f(k, part) for every part that has blocks, in order.
  template <class F>
  void visit_built(F&& f) {
    self().visit_parts([&](std::size_t k, auto* part) {
      if (part)
        f(k, *part);
    });
  }
  template <class F>
  void visit_built(F&& f) const {
    self().visit_parts([&](std::size_t k, const auto* part) {
      if (part)
        f(k, *part);
    });
  }
  template <class F>
  void visit_part_of(const std::string& block, F&& f) {
    const std::size_t arm = arm_of(block);
    visit_built([&](std::size_t k, auto& part) {
      if (k == arm)
        f(part);
    });
  }
  template <class F>
  void visit_part_of(const std::string& block, F&& f) const {
    const std::size_t arm = arm_of(block);
    visit_built([&](std::size_t k, const auto& part) {
      if (k == arm)
        f(part);
    });
  }

  // f(k, part, the name within it) for every built part `name` addresses: all of them for a
  // plain name, arm k alone for "arm<k>/<name>" on a route.
  template <class F>
  void for_named(std::string_view name, F&& f) {
    const std::size_t only = addressed(name);
    visit_built([&](std::size_t k, auto& part) {
      if (only == Derived::n_parts || only == k)
        f(k, part, name);
    });
  }
  template <class F>
  void for_named(std::string_view name, F&& f) const {
    const std::size_t only = addressed(name);
    visit_built([&](std::size_t k, const auto& part) {
      if (only == Derived::n_parts || only == k)
        f(k, part, name);
    });
  }
  // The arm "arm<k>/" names (removing the prefix from `name`), or n_parts for every part.
  static std::size_t addressed(std::string_view& name) {
    if constexpr (Derived::is_route)
      if (name.rfind("arm", 0) == 0) {
        const auto slash = name.find('/');
        std::size_t k = 0;
        const auto [end, ec] =
          std::from_chars(name.data() + 3, name.data() + std::min(slash, name.size()), k);
        if (slash != std::string_view::npos && ec == std::errc{} && end == name.data() + slash) {
          if (k >= Derived::n_parts)
            throw usage_error("'" + std::string(name) + "': the route has " +
                              std::to_string(Derived::n_parts) + " arms, counted from 0");
          name = name.substr(slash + 1);
          return k;
        }
      }
    return Derived::n_parts;
  }
  [[noreturn]] static void no_hyper(std::string_view name) {
    throw usage_error((Derived::is_route ? "no arm of the route has a hyperparameter named '"
                                         : "the rule has no hyperparameter named '") +
                      std::string(name) + "'");
  }
};

} // namespace steep::engine
