#pragma once
// optimizer_facade<T>: the whole optimizer_interface (interface.hpp), written once over a list of
// parts (detail::part<T>, engine/part.hpp): one for a plain optimizer, one per arm that got
// blocks for a route (routed.hpp). Nothing here depends on the rule, so it is compiled once per
// parameter type, and any_optimizer<T> (any_optimizer.hpp) is this class itself: erasing a rule
// costs no forwarding layer.
//
//   steep::optimizer opt(steep::rules::adam(1e-3), store);   // an optimizer_facade<float>
//   steep::any_optimizer<float> any = std::move(opt);          // the same object, rule erased
//   any.step();  any.set("lr", 1e-4);  any.state("W", "exp_avg");
//
// The typed optimizers only build their parts (and fill `owner_`, each block's part in the
// store's order, the policy, the store token, the rule's id, slots and bytes per parameter), and
// say what the compiler made of the rule (describe(): per rule, so it is compiled only where it
// is called, or where a rule is erased into an any_optimizer). Stepping, state, slots,
// hyperparameters and counters are here. A step prepares
// every part (read-only) before any part commits, so a non-finite gradient in any block refuses
// the step for all of them (guard.hpp).

#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/engine/arm_names.hpp"
#include "steep/engine/call_guard.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/interface.hpp"
#include "steep/engine/part.hpp"
#include "steep/engine/slots.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

namespace steep::engine {

template <class T>
class optimizer_facade {
public:
  using value_type = T;

  optimizer_facade(optimizer_facade&&) noexcept = default;
  optimizer_facade& operator=(optimizer_facade&&) noexcept = default;
  ~optimizer_facade() = default;

  // One optimizer step with the gradients currently in the store: prepare_step() (read-only)
  // then, if it found nothing, commit_step(). Says what it did (step_result, guard.hpp):
  // applied; held_back (applied, some coordinates kept: a non-finite gradient under mask, or a
  // new value that would not be finite); refused (a non-finite gradient under skip: nothing
  // written). Under refuse a non-finite gradient throws nonfinite_error instead, nothing written.
  step_result step() {
    const entry e(*this, "step()");
    if (auto bad = prepare())
      return on_nonfinite(policy_, *bad, skipped_);
    commit();
    if (any_held_back()) {
      ++skipped_;
      return { step_outcome::held_back };
    }
    return {};
  }

  // The two halves of step(), for a caller that prepares several optimizers before committing
  // any (a route does so inside): prepare_step() is read-only (per-step and per-block scalars,
  // the guard, the reduction passes, the matrix phase: it writes only tables and scratch) and
  // returns the first non-finite gradient entry if the guard found one; commit_step() is the
  // update pass. A commit needs a prepare_step() that found nothing, with no commit, load,
  // set(), restore_steps() or set_threads() since: anything else is a usage_error, and nothing
  // is written (a stale prepare would mix two steps' tables, a refused one bypass the guard).
  std::optional<nonfinite_entry> prepare_step() {
    const entry e(*this, "prepare_step()");
    return prepare();
  }
  void commit_step() {
    const entry e(*this, "commit_step()");
    commit();
  }

  std::int64_t steps() const noexcept { return t_; }
  // Steps skipped for a non-finite gradient (nonfinite_policy::skip), or applied with some
  // coordinates held back (a non-finite gradient under nonfinite_policy::mask, or a new value
  // that would not be finite under any policy but off).
  std::int64_t skipped_steps() const noexcept { return skipped_; }
  nonfinite_policy nonfinite() const noexcept { return policy_; }
  // Sets the step counters (a checkpoint's load: engine/checkpoint.hpp).
  // Refuses a count outside [0, max_steps] (interface.hpp), or more skipped steps than steps.
  [[gnu::cold, gnu::noinline]] void restore_steps(std::int64_t t, std::int64_t skipped = 0) {
    const entry e(*this, "restore_steps()");
    if (t < 0 || t > max_steps || skipped < 0 || skipped > t)
      throw usage_error("restore_steps(" + std::to_string(t) + ", " + std::to_string(skipped) +
                        "): a step count must lie in [0, 2^53] and the skipped steps in [0, steps]; "
                        "nothing was changed");
    for_built([&](std::size_t, detail::part<T>& part) { part.t_ = t; });
    t_ = t, skipped_ = skipped;
    prepared_ = false;
  }
  // The rule's structural hash (slots.hpp, rule_hash): checkpoints refuse another rule's state.
  std::string rule_id() const {
    require_live("rule_id()");
    return rule_hash(*rule_type_);
  }
  // Bytes the update pass moves per parameter (a route: its largest arm's).
  std::size_t bytes_per_param() const noexcept { return bytes_per_param_; }
  // The update's degree in the gradient (expr/degree.hpp): 0 for a scale-invariant rule (Signum,
  // Adam with eps = 0, Muon), 1 for (momentum) GD; NaN where it is not homogeneous or a route's
  // arms differ. With slot_info::degree, what rescaling the gradient needs (train/rescale.hpp).
  double gradient_degree() const noexcept { return gradient_degree_; }

  // The last step's first held-back coordinate in the store's block order (its cause in
  // `output`, guard.hpp) and, in its count, how many were held back in all parts; empty if none.
  [[gnu::noinline]] std::optional<nonfinite_entry> held_back() const {
    require_live("held_back()");
    std::optional<nonfinite_entry> out;
    std::size_t count = 0;
    auto position = [&](const std::string& name) {
      return std::find_if(owner_.begin(), owner_.end(), [&](const auto& o) { return o.first == name; });
    };
    for_built([&](std::size_t, const detail::part<T>& part) {
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

  // Whether the last step held any coordinate back (what step() returns; held_back() says where).
  bool any_held_back() const noexcept {
    for (const auto& p : parts_)
      if (p && p->held_)
        return true;
    return false;
  }

  int threads() const noexcept {
    int n = threads_;
    for_built([&](std::size_t, const detail::part<T>& part) { n = part.exec_.threads(); });
    return n;
  }
  [[gnu::cold, gnu::noinline]] void set_threads(int n) {
    const entry e(*this, "set_threads()");
    prepared_ = false;
    for_built([&](std::size_t, detail::part<T>& part) {
      part.exec_ = kernel::executor(part.checked_threads(n), part.exec_.serial_below());
    });
    threads_ = threads();
  }

  // Points block `index` (the store's order) at other memory from the next step on. `param` and
  // `grad` must each hold the block's elements, and no two blocks' buffers may overlap: the caller
  // checks, as the store's constructor does for adopted memory. The store's own table is not
  // changed (its views still show the old memory). For a caller whose tensors move between steps:
  // torch allocates a new gradient after zero_grad(set_to_none=True) (python/, steep.torch).
  // An optimizer keeps its own copy of the block table (tables.hpp) and reads every address
  // from it at each step, so the copy is all a re-bind writes.
  [[gnu::cold, gnu::noinline]] void rebind(std::size_t index, T* param, T* grad) {
    const entry e(*this, "rebind()");
    if (index >= owner_.size())
      throw usage_error("rebind(" + std::to_string(index) + "): the store has " +
                        std::to_string(owner_.size()) + " blocks; nothing was changed");
    if (!param || !grad)
      throw error(owner_[index].first, "rebind(): a null parameter or gradient address; nothing was changed");
    // (A part holds its blocks in the store's order: routed.hpp, split_by_arm.)
    const std::size_t part = owner_[index].second;
    std::size_t at = 0;
    for (std::size_t k = 0; k < index; ++k)
      at += owner_[k].second == part;
    auto& b = parts_[part]->blocks_[at];
    b.param = param;
    b.grad = grad;
    prepared_ = false;
  }

  // How every reduction over all blocks (a global norm) folds the blocks' results, for an
  // optimizer that holds some of a model's blocks: `fold` gets this optimizer's blocks' results in
  // the store's order and returns the whole model's (dist/sharded_optimizer.hpp: every rank's,
  // folded in the model's block order, so the result does not depend on the rank count). A plain
  // rule only: a route's arms each fold their own blocks.
  [[gnu::cold, gnu::noinline]] void fold_all_blocks_with(all_blocks_fold fold) {
    const entry e(*this, "fold_all_blocks_with()");
    if (is_route_)
      throw usage_error(
        "fold_all_blocks_with(): a route's arms each reduce over their own blocks; a plain rule only");
    parts_[0]->fold_all_blocks_ = std::move(fold);
    prepared_ = false;
  }
  // How many reductions over all blocks a step folds (each calls the fold once, in rule order).
  std::size_t all_blocks_reductions() const noexcept {
    std::size_t n = 0;
    for (const auto& p : parts_)
      n += p ? p->all_blocks_reductions_ : 0;
    return n;
  }

  // ---- named hyperparameters (hyper<"lr">(...), hyper_table.hpp) ------------------------------
  // A plain name addresses every part that has it: set() sets all of them, get() reads them when
  // they agree and throws when they differ. On a route "arm<k>/<name>" addresses arm k alone
  // (arms count from 0 in route order), e.g. a route of Muon and AdamW whose weight decays
  // differ: opt.set("arm1/weight_decay", 0.01).

  // Whether some part has a named hyperparameter `name`.
  [[gnu::cold, gnu::noinline]] bool has(std::string_view name) const {
    require_live("has()");
    bool found = false;
    for_named(name, [&](std::size_t, const detail::part<T>& part, std::string_view n) {
      found = found || part.hypers_.has(n);
    });
    return found;
  }
  // Throws, naming it, if some part's hyperparameter `name` would refuse `value`.
  [[gnu::cold, gnu::noinline]] void check(std::string_view name, double value) const {
    require_live("check()");
    for_named(name, [&](std::size_t, const detail::part<T>& part, std::string_view n) {
      part.hypers_.check(n, value);
    });
  }
  // Sets the hyperparameter in every part that has one of that name; every part accepts the
  // value, or none changes.
  [[gnu::cold, gnu::noinline]] void set(std::string_view name, double value) {
    const entry e(*this, "set()");
    prepared_ = false;
    if (!is_route_)
      return parts_[0]->hypers_.set(parts_[0]->roots_ptr_, name, value);
    check(name, value);
    bool found = false;
    for_named(name, [&](std::size_t, detail::part<T>& part, std::string_view n) {
      if (part.hypers_.has(n))
        part.hypers_.set(part.roots_ptr_, n, value), found = true;
    });
    if (!found)
      no_hyper(name);
  }
  [[gnu::cold, gnu::noinline]] double get(std::string_view name) const {
    require_live("get()");
    if (!is_route_)
      return parts_[0]->hypers_.get(parts_[0]->roots_ptr_, name);
    std::vector<std::pair<std::size_t, double>> values;
    for_named(name, [&](std::size_t k, const detail::part<T>& part, std::string_view n) {
      if (part.hypers_.has(n))
        values.emplace_back(k, part.hypers_.get(part.roots_ptr_, n));
    });
    if (values.empty())
      no_hyper(name);
    return detail::agreed_value(name, values);
  }
  // Every named hyperparameter with its value (checkpoints save them): once per name where the
  // parts agree, else once per arm as "arm<k>/<name>" (so a checkpoint restores each arm's own).
  [[gnu::cold, gnu::noinline]] std::vector<std::pair<std::string, double>> hyperparameters() const {
    require_live("hyperparameters()");
    if (!is_route_)
      return parts_[0]->hypers_.hyperparameters(parts_[0]->roots_ptr_);
    std::vector<std::pair<std::string, double>> all; // (name, value) per part, with the part's index
    std::vector<std::size_t> arm;
    for_built([&](std::size_t k, const detail::part<T>& part) {
      for (auto& e : part.hypers_.hyperparameters(part.roots_ptr_))
        all.push_back(e), arm.push_back(k);
    });
    return detail::merge_arm_values(all, arm);
  }

  // ---- state slots (the parts' slot directories, part.hpp) -----------------------------------

  // Every part's slots, each name once (a route's arms without blocks included).
  std::vector<slot_info> slots() const {
    require_live("slots()");
    return slot_info_;
  }
  // Whether `block`'s part has a state slot named `slot` (a route's arms hold different slots).
  [[gnu::cold, gnu::noinline]] bool has_slot(const std::string& block, std::string_view slot) const {
    return part_of(block).has_slot(block, slot);
  }
  // A view of slot `slot` of block `block` (S must be the slot's storage dtype): in the block's
  // shape, of shape (lines) for a per-line slot, or (1) for a per-block slot.
  template <class S = T>
  tensor_view<S> state(const std::string& block, const std::string& slot) {
    return part_of(block).template state<S>(block, slot);
  }
  // f(slot_bytes) for every slot of every block, part by part, in slot order then block order.
  [[gnu::cold, gnu::noinline]] void visit_slots(const std::function<void(const slot_bytes&)>& f) {
    require_live("visit_slots()");
    for_built([&](std::size_t, detail::part<T>& part) { part.visit_slots(f); });
  }

  // The index of the part (a route's arm) that updates `block`.
  std::size_t arm_of(const std::string& block) const {
    require_live("a block's state");
    for (auto& [name, arm] : owner_)
      if (name == block)
        return arm;
    throw error(block, "no block of that name is updated by this optimizer");
  }

protected:
  optimizer_facade() = default;
  template <class, class>
  friend class optimizer; // a route takes its arms' parts (routed.hpp)

  // Adds a part's slots to slots(), each name once; a name two arms give different degrees has
  // none (NaN).
  [[gnu::cold, gnu::noinline]] void add_slots(std::span<const slot_meta> metas) {
    for (const auto& m : metas) {
      auto it = std::find_if(slot_info_.begin(), slot_info_.end(),
                             [&](const slot_info& o) { return o.name == m.name; });
      if (it == slot_info_.end())
        slot_info_.push_back(m.info());
      else if (!(it->degree == m.degree))
        it->degree = std::numeric_limits<double>::quiet_NaN();
    }
  }

  // describe() of a route, given each arm's account (empty for an arm without blocks): which arm
  // runs which blocks and what each arm compiled to.
  [[gnu::cold, gnu::noinline]] std::string describe_route(const std::vector<std::string>& arms) const {
    std::ostringstream os;
    os << "route with " << parts_.size() << " arms\n";
    for (std::size_t k = 0; k < parts_.size(); ++k) {
      os << "arm " << k << ": blocks";
      for (auto& [name, arm] : owner_)
        if (arm == k)
          os << ' ' << name;
      os << '\n' << (parts_[k] ? arms[k] : std::string("(no blocks)\n"));
    }
    return os.str();
  }

  // What the typed optimizers fill when they build one (optimizer.hpp, routed.hpp).
  std::vector<std::unique_ptr<detail::part<T>>> parts_;     // per arm; empty where an arm got no blocks
  std::vector<std::unique_ptr<param_store<T>>> arm_stores_; // a route's: each arm's view of the store
  std::vector<std::pair<std::string, std::size_t>> owner_;  // each block's part, in store order
  bool is_route_ = false;
  nonfinite_policy policy_ = nonfinite_policy::refuse;
  std::weak_ptr<const bool> store_alive_; // param_store::lifetime() of the user's store
  int threads_ = 0;                       // optimizer_options::threads, where no part is built
  const std::type_info* rule_type_ = nullptr;
  std::size_t bytes_per_param_ = 0;
  double gradient_degree_ = 0;
  std::vector<slot_info> slot_info_;

  // The typed optimizers' constructors set it once they are built.
  void set_live() noexcept { live_.on = true; }

  // How the typed optimizers end their constructors (optimizer.hpp, routed.hpp), out of line so it
  // is compiled once per T, not once per rule (docs/compile-time.md). A plain optimizer adopts
  // its one part, which has every block; then each finishes with what the rule's type says.
  [[gnu::cold, gnu::noinline]] void adopt(std::unique_ptr<detail::part<T>> part,
                                          std::span<const slot_meta> metas) {
    parts_.push_back(std::move(part));
    for (const auto& b : parts_[0]->blocks_)
      owner_.emplace_back(b.name, 0);
    threads_ = parts_[0]->exec_.threads();
    add_slots(metas);
  }
  [[gnu::cold, gnu::noinline]] void finish(const param_store<T>& store, const optimizer_options& opts,
                                           const std::type_info& rule_type, std::size_t bytes,
                                           double degree) {
    policy_ = opts.nonfinite;
    store_alive_ = store.lifetime();
    rule_type_ = &rule_type;
    bytes_per_param_ = bytes;
    gradient_degree_ = degree;
    for (const auto& p : parts_)
      if (p)
        add_slots(p->map_slot_metas());
    set_live();
  }

  // Throws if this optimizer was moved from (its parts went with the move).
  void require_live(const char* what) const { live_.require(what); }

private:
  std::int64_t t_ = 0;
  std::int64_t skipped_ = 0;
  bool prepared_ = false; // a prepare_step() found nothing, and nothing came between it and now

  live_flag live_;
  busy_flag busy_;
  // For the length of one writing call: refuses a moved-from optimizer, or a second thread.
  struct entry : call_entry {
    entry(optimizer_facade& o, const char* what)
      : call_entry((o.require_live(what), o.busy_), what) {}
  };

  [[gnu::noinline]] std::optional<nonfinite_entry> prepare() {
    require_live_store(store_alive_); // a route's parts ask about their own stores
    if (t_ >= max_steps)
      throw usage_error("step " + std::to_string(t_ + 1) +
                        " would pass the largest step count an optimizer keeps (2^53); nothing was written");
    prepared_ = false;
    std::optional<nonfinite_entry> bad;
    for (auto& p : parts_)
      if (p) {
        p->held_.reset(); // held_back() speaks of the last step that was written
        if (!bad)
          bad = p->prepare();
      }
    prepared_ = !bad;
    return bad;
  }
  [[gnu::noinline]] void commit() {
    if (!prepared_)
      throw usage_error("commit_step() needs a prepare_step() that found nothing, with no commit, load, "
                        "set(), restore_steps() or set_threads() since; nothing was written");
    prepared_ = false;
    for (auto& p : parts_)
      if (p)
        p->commit();
    ++t_;
  }

  // f(k, part) for every part that has blocks, in order.
  template <class F>
  void for_built(F&& f) {
    for (std::size_t k = 0; k < parts_.size(); ++k)
      if (parts_[k])
        f(k, *parts_[k]);
  }
  template <class F>
  void for_built(F&& f) const {
    for (std::size_t k = 0; k < parts_.size(); ++k)
      if (parts_[k])
        f(k, std::as_const(*parts_[k]));
  }
  detail::part<T>& part_of(const std::string& block) const { return *parts_[arm_of(block)]; }

  // f(k, part, the name within it) for every built part `name` addresses: all of them for a
  // plain name, arm k alone for "arm<k>/<name>" on a route.
  template <class F>
  void for_named(std::string_view name, F&& f) {
    const std::size_t only = addressed(name);
    for_built([&](std::size_t k, detail::part<T>& part) {
      if (only == parts_.size() || only == k)
        f(k, part, name);
    });
  }
  template <class F>
  void for_named(std::string_view name, F&& f) const {
    const std::size_t only = addressed(name);
    for_built([&](std::size_t k, const detail::part<T>& part) {
      if (only == parts_.size() || only == k)
        f(k, part, name);
    });
  }
  // The arm "arm<k>/" names (removing the prefix from `name`), or the part count for every part.
  std::size_t addressed(std::string_view& name) const {
    return is_route_ ? detail::addressed_arm(name, parts_.size()) : parts_.size();
  }
  [[noreturn]] void no_hyper(std::string_view name) const {
    throw usage_error((is_route_ ? "no arm of the route has a hyperparameter named '"
                                 : "the rule has no hyperparameter named '") +
                      std::string(name) + "'");
  }
};

} // namespace steep::engine
