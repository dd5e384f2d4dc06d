// group (group.hpp): the arms, the per-step re-binding and checks, and the exported state.
#include "group.hpp"

#include "rules.hpp"
#include "steep/core/aligned_buffer.hpp"
#include "steep/core/error.hpp"
#include "steep/engine/guard.hpp"

#include <algorithm>
#include <cstdint>
#include <span>
#include <unordered_map>

namespace steep::python {

namespace {

template <class T>
constexpr dtype dtype_of = sizeof(T) == 4 ? dtype::f32 : dtype::f64;

template <class T>
class typed_group final : public group {
public:
  typed_group(const std::vector<arm_spec>& arms, std::vector<block_info> blocks,
              const engine::optimizer_options& opts, const py::list& params, const py::list& grads)
    : blocks_(std::move(blocks))
    , policy_(opts.nonfinite)
    , counts_(blocks_.size(), 0.f) {
    if (arms.empty())
      throw usage_error("a group needs at least one rule");
    if (params.size() != blocks_.size() || grads.size() != blocks_.size())
      throw usage_error("a group of " + std::to_string(blocks_.size()) + " blocks got " +
                        std::to_string(params.size()) + " parameters and " + std::to_string(grads.size()) +
                        " gradients");
    auto [p, g] = read(params, grads, true);
    // A block without a gradient yet gets a zero stand-in for the store's checks; every step
    // re-binds the real one first, so the stand-in is never read by a step.
    std::size_t missing = 0;
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      if (g[i] == nullptr)
        missing += padded_count<T>(elements(i));
    aligned_buffer<T> stand_in;
    stand_in.assign(missing, T{ 0 });
    std::vector<std::vector<block_spec<T>>> specs(arms.size());
    std::size_t used = 0;
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      const auto& b = blocks_[i];
      if (b.arm >= arms.size())
        throw error(b.name, "routed to rule " + std::to_string(b.arm) + " of a group of " +
                              std::to_string(arms.size()));
      T* grad = g[i];
      if (grad == nullptr)
        grad = stand_in.data() + used, used += padded_count<T>(elements(i));
      where_.emplace_back(b.arm, specs[b.arm].size());
      specs[b.arm].emplace_back(b.name, b.shape, std::span<T>(p[i], elements(i)),
                                std::span<T>(grad, elements(i)));
    }
    for (std::size_t a = 0; a < arms.size(); ++a) {
      if (specs[a].empty())
        continue; // an arm no block was routed to: nothing to step
      auto store = std::make_unique<param_store<T>>(std::move(specs[a]));
      auto opt = make_rule<T>(arms[a].rule, *store, opts, arms[a].settings);
      arms_.push_back({ a, std::move(store), std::move(opt), {} });
      for (auto& [name, value] : arms_.back().opt->hyperparameters())
        arms_.back().hypers[name] = value;
    }
    arm_index_.assign(arms.size(), arms_.size());
    for (std::size_t k = 0; k < arms_.size(); ++k)
      arm_index_[arms_[k].spec] = k;
  }

  std::string step(const py::list& params, const py::list& grads, const hyper_sets& hypers) override {
    bind(params, grads, hypers);
    return run_step();
  }

  bool prepare(const py::list& params, const py::list& grads, const hyper_sets& hypers) override {
    bind(params, grads, hypers);
    py::gil_scoped_release release;
    return prepared_ = run_prepare();
  }

  std::string commit() override {
    if (!prepared_)
      throw usage_error("commit() needs a prepare() that found nothing, with nothing between them; nothing "
                        "was written");
    prepared_ = false;
    bool held = false;
    {
      py::gil_scoped_release release;
      held = run_commit();
    }
    return held ? "held_back" : "applied";
  }

  std::string step_bound(const hyper_sets& hypers) override {
    rebound(hypers);
    return run_step();
  }

  bool prepare_bound(const hyper_sets& hypers) override {
    rebound(hypers);
    py::gil_scoped_release release;
    return prepared_ = run_prepare();
  }

  py::list state() override {
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      index.emplace(blocks_[i].name, i);
    py::list out;
    for (auto& arm : arms_)
      arm.opt->visit_slots([&](const engine::slot_bytes& s) {
        if (s.dtype != "F32" && s.dtype != "F64")
          throw error(s.block, "slot '" + s.slot + "' is stored as " + s.dtype +
                                 ", which steep._C does not export (float32 and float64 only)");
        out.append(py::make_tuple(
          index.at(s.block), s.slot,
          lend(s.bytes.data(), s.dtype == "F32" ? dtype::f32 : dtype::f64, s.shape, shared_from_this())));
      });
    return out;
  }

  py::capsule step_counts() override {
    return lend(counts_.data(), dtype::f32, { counts_.size() }, shared_from_this());
  }

  std::int64_t steps() const override { return arms_.front().opt->steps(); }
  // Counted here, not by the arms: a group steps them through prepare and commit.
  std::int64_t skipped_steps() const override { return skipped_; }
  void restore_steps(std::int64_t t, std::int64_t skipped) override {
    if (skipped < 0 || skipped > t)
      throw usage_error("restore_steps(" + std::to_string(t) + ", " + std::to_string(skipped) +
                        "): the skipped steps must lie in [0, steps]; nothing was changed");
    for (auto& arm : arms_)
      arm.opt->restore_steps(t);
    skipped_ = skipped, prepared_ = false;
    std::fill(counts_.begin(), counts_.end(), static_cast<float>(t));
  }
  std::vector<std::pair<std::string, double>> hyperparameters(std::size_t arm) const override {
    if (arm >= arm_index_.size() || arm_index_[arm] == arms_.size())
      return {};
    return arms_[arm_index_[arm]].opt->hyperparameters();
  }
  std::optional<std::string> held_back() const override {
    for (const auto& arm : arms_)
      if (auto h = arm.opt->held_back())
        return engine::describe_held_back(*h);
    return std::nullopt;
  }
  std::string describe() const override {
    std::string out;
    for (const auto& arm : arms_)
      out += arm.opt->describe();
    return out;
  }

private:
  struct arm {
    std::size_t spec; // its index among the rules the group was built with
    std::unique_ptr<param_store<T>> store;
    std::unique_ptr<engine::any_optimizer<T>> opt;
    std::map<std::string, double> hypers; // the values set last
  };

  std::size_t elements(std::size_t i) const { return element_count(blocks_[i].shape); }

  // Reads, checks and binds this step's tensors, and sets the hyperparameters (none: unchanged).
  void bind(const py::list& params, const py::list& grads, const hyper_sets& hypers) {
    prepared_ = false;
    auto [p, g] = read(params, grads, false);
    if (p != bound_p_ || g != bound_g_)
      check_no_overlap(p, g);
    if (hypers)
      set_hypers(*hypers);
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      arms_[arm_index_[blocks_[i].arm]].opt->rebind(where_[i].second, p[i], g[i]);
    bound_p_ = std::move(p), bound_g_ = std::move(g);
    bound_ = true;
  }

  // The tensors bound last, again (step_bound): only the hyperparameters may change.
  void rebound(const hyper_sets& hypers) {
    prepared_ = false;
    if (!bound_)
      throw usage_error("step_bound() and prepare_bound() step the tensors a step() or prepare() bound, and "
                        "this group has had none yet; nothing was written");
    if (hypers)
      set_hypers(*hypers);
  }

  // prepare and, if it found nothing, commit, with one release of the GIL.
  std::string run_step() {
    bool ok = false, held = false;
    {
      py::gil_scoped_release release;
      ok = run_prepare();
      if (ok)
        held = run_commit();
    }
    return !ok ? "refused" : held ? "held_back" : "applied";
  }

  // The read-only half of every arm (without the GIL): false if the guard refused the step
  // under nonfinite_policy::skip; throws nonfinite_error under refuse.
  bool run_prepare() {
    for (auto& arm : arms_)
      if (auto bad = arm.opt->prepare_step()) {
        engine::on_nonfinite(policy_, *bad, skipped_); // throws under refuse
        return false;
      }
    return true;
  }

  // The writing half of every arm (without the GIL): whether any coordinate was held back.
  bool run_commit() {
    bool held = false;
    for (auto& arm : arms_) {
      arm.opt->commit_step();
      held = held || arm.opt->any_held_back();
    }
    std::fill(counts_.begin(), counts_.end(), static_cast<float>(steps()));
    skipped_ += held;
    return held;
  }

  // Every block's parameter and gradient address, checked against the block; a missing
  // gradient (None) is refused unless `allow_missing`.
  std::pair<std::vector<T*>, std::vector<T*>> read(const py::list& params, const py::list& grads,
                                                   bool allow_missing) const {
    if (params.size() != blocks_.size() || grads.size() != blocks_.size())
      throw usage_error("this group has " + std::to_string(blocks_.size()) + " parameters; a step got " +
                        std::to_string(params.size()) + " parameters and " + std::to_string(grads.size()) +
                        " gradients");
    std::vector<T*> p(blocks_.size()), g(blocks_.size(), nullptr);
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      const auto& b = blocks_[i];
      p[i] = checked(
        params[i], [&] { return "parameter '" + b.name + "'"; }, b);
      if (grads[i].is_none()) {
        if (!allow_missing)
          throw py::value_error("parameter '" + b.name +
                                "' has no gradient (None) while others in its group have one; steep steps "
                                "a group's parameters together: give it a gradient (zeros), or put it in a "
                                "group of its own (python/README.md)");
        continue;
      }
      g[i] = checked(
        grads[i], [&] { return "the gradient of parameter '" + b.name + "'"; }, b);
    }
    return { std::move(p), std::move(g) };
  }

  template <class Name>
  T* checked(py::handle capsule, const Name& what, const block_info& b) const {
    const auto t = borrow(capsule, what);
    if (t.type != dtype_of<T>)
      throw py::value_error(what() + " has dtype " + name(t.type) + "; its group steps " + name(dtype_of<T>) +
                            " (steep never converts a tensor)");
    if (t.shape != b.shape)
      throw py::value_error(what() + " has shape " + to_string(t.shape) + "; the optimizer was built for " +
                            to_string(b.shape));
    return static_cast<T*>(t.data);
  }

  // As param_store's constructor checks: no element of any buffer is shared by another.
  void check_no_overlap(const std::vector<T*>& p, const std::vector<T*>& g) const {
    struct range {
      std::uintptr_t begin, end;
      std::size_t block;
      const char* what;
    };
    std::vector<range> r;
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      const std::size_t bytes = elements(i) * sizeof(T);
      if (bytes == 0)
        continue;
      r.push_back({ reinterpret_cast<std::uintptr_t>(p[i]), reinterpret_cast<std::uintptr_t>(p[i]) + bytes, i,
                    "parameter" });
      r.push_back({ reinterpret_cast<std::uintptr_t>(g[i]), reinterpret_cast<std::uintptr_t>(g[i]) + bytes, i,
                    "gradient" });
    }
    std::sort(r.begin(), r.end(), [](const range& a, const range& b) { return a.begin < b.begin; });
    for (std::size_t k = 1; k < r.size(); ++k)
      if (r[k].begin < r[k - 1].end)
        throw py::value_error("parameter '" + blocks_[r[k].block].name + "': its " + r[k].what +
                              " shares memory with the " + r[k - 1].what + " of parameter '" +
                              blocks_[r[k - 1].block].name +
                              "'; every parameter and gradient needs memory of its own");
  }

  // Checks every changed value in every arm before setting any, so a refusal changes nothing.
  void set_hypers(const std::vector<std::map<std::string, double>>& hypers) {
    if (hypers.size() != arm_index_.size())
      throw usage_error("a step of a group of " + std::to_string(arm_index_.size()) + " rules got " +
                        std::to_string(hypers.size()) + " sets of hyperparameters");
    for (int pass = 0; pass < 2; ++pass)
      for (std::size_t a = 0; a < hypers.size(); ++a) {
        if (arm_index_[a] == arms_.size())
          continue;
        auto& arm = arms_[arm_index_[a]];
        for (const auto& [name, value] : hypers[a]) {
          auto it = arm.hypers.find(name);
          if (it != arm.hypers.end() && it->second == value)
            continue;
          if (pass == 0)
            arm.opt->check(name, value);
          else
            arm.opt->set(name, value), arm.hypers[name] = value;
        }
      }
  }

  std::vector<block_info> blocks_;
  engine::nonfinite_policy policy_;
  std::vector<arm> arms_;                                  // the arms that got blocks
  std::vector<std::size_t> arm_index_;                     // per rule: its arm, arms_.size() if none
  std::vector<std::pair<std::size_t, std::size_t>> where_; // per block: (rule, index in its store)
  std::vector<T*> bound_p_, bound_g_;                      // the addresses the arms hold
  std::vector<float> counts_;
  std::int64_t skipped_ = 0;
  bool prepared_ = false; // every arm prepared for the addresses and values bound last
  bool bound_ = false;    // a step() or prepare() has bound this step's tensors (step_bound may follow)
};

} // namespace

std::shared_ptr<group> make_group(dtype type, const std::vector<arm_spec>& arms,
                                  std::vector<block_info> blocks, const engine::optimizer_options& opts,
                                  const py::list& params, const py::list& grads) {
  if (type == dtype::f32)
    return std::make_shared<typed_group<float>>(arms, std::move(blocks), opts, params, grads);
  return std::make_shared<typed_group<double>>(arms, std::move(blocks), opts, params, grads);
}

} // namespace steep::python
