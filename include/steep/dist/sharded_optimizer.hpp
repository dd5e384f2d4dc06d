#pragma once
// sharded_optimizer<T, Comm>: any steep rule, plain or routed, with its state sharded over the
// ranks of a communicator (ZeRO-1; Rajbhandari et al. 2020). Every rank holds the whole model
// and its own gradient; each owns one contiguous range of the parameter arena (plan_shards) and
// keeps optimizer state for that range alone.
//
//   steep::dist::mpi_session mpi(argc, argv);
//   steep::dist::mpi_communicator comm;
//   steep::param_store<float> store({{"W1", {256, 784}}, {"b1", {256}}});   // the same on every rank
//   steep::dist::sharded_optimizer opt(steep::rules::adam(1e-3f), store, comm);
//   for (...) { store.grad(...) = this rank's gradient; opt.step(); }    // steps with the sum
//   opt.plan();  opt.local();  opt.state_bytes();  opt.describe();        // this rank's share
//
// One step, on every rank:
//   1. reduce_scatter_sum of the gradient arena by the plan's counts: the rank's range of the
//      sum over ranks of their gradients (the caller scales: a mean is its loss over W);
//   2. the engine's read-only half over the owned range (prepare_step), then the ranks agree on
//      the guard: if any rank found a non-finite gradient entry, every rank refuses the step
//      under nonfinite_policy::refuse (throws) or skip (returns refused), so no rank commits a
//      step another refused; then the update pass (commit_step);
//   3. all_gather_v of the owned parameter ranges: every rank holds the whole updated model.
//
// What is rank-count independent, and why (docs/distributed.md):
// - a block whose update reads more than its own element (a per-block or per-line value, a
//   reduction, a matrix stage) is owned whole by one rank, as plan_shards keeps `whole` blocks;
//   only blocks of purely elementwise rules (or route arms) are split, at 64-byte boundaries;
// - the work list's chunk size is the one the whole model gives (the engine's per-block
//   reductions combine chunk partials in a fixed order), so a whole block's results are bitwise
//   those of one process, at any rank count.
// So for the same summed gradient, parameters and state are bitwise those of one process.
// - a reduction over all blocks (a global norm: normalized GD) folds every rank's per-block
//   results in the model's block order, as one process folds its blocks: the same bits.
// Refused at construction, naming what (with more than one rank): a global norm in a route's arm,
// or after another reduction; a store with external blocks (not in the arena). A route's pieces
// go where their whole blocks went (optimizer_options::arms), whatever its selectors.
//
// Consistency: construction compares, across ranks, hashes of the rule's type, its named
// hyperparameters, the store's layout and the plan; a difference throws mismatch_error on every
// rank, naming the first thing that differs. set() refuses a value that differs across ranks.

#include "steep/core/aligned_buffer.hpp"
#include "steep/core/error.hpp"
#include "steep/core/fnv.hpp"
#include "steep/core/param_store.hpp"
#include "steep/dist/communicator.hpp"
#include "steep/dist/shard_plan.hpp"
#include "steep/dist/store_layout.hpp"
#include "steep/engine/any_optimizer.hpp"
#include "steep/engine/slots.hpp"
#include "steep/expr/detail/type_list.hpp"
#include "steep/expr/reduce.hpp"
#include "steep/expr/route.hpp"
#include "steep/kernel/work_list.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace steep::dist {

struct sharded_options {
  engine::optimizer_options engine{}; // threads, chunk size, non-finite policy (as for one process)
  plan_options plan{};                // plan_shards' cost model
};

// The ranks disagree on something that must be the same everywhere (rule, hyperparameters,
// layout, plan, a set() value).
class mismatch_error : public usage_error {
public:
  using usage_error::usage_error;
};

namespace detail {

template <class N>
struct is_global_reduction : std::false_type {};
template <class Op, class C>
struct is_global_reduction<expr::reduce_node<Op, expr::all_blocks, C>> : std::true_type {};
// One that runs after another reduction or the matrix phase (depth > 0, expr/phases.hpp).
template <class N>
struct is_late_global_reduction : std::false_type {};
template <class Op, class C>
struct is_late_global_reduction<expr::reduce_node<Op, expr::all_blocks, C>>
  : std::bool_constant<(expr::detail::reduction_depth<expr::reduce_node<Op, expr::all_blocks, C>>() > 0)> {};

// What a rule's update of one block reads (expr/program.hpp): only its own element (the block
// may be split), or more (a per-block scalar, a line, a matrix stage: the block stays whole),
// and whether it reduces over all blocks.
template <class Rule>
struct block_needs {
  using P = expr::program<Rule>;
  static constexpr bool whole = P::n_block_scalars > 0 || P::n_matrices > 0;
  template <template <class> class Pred>
  static constexpr bool any = [] {
    return []<std::size_t... R>(std::index_sequence<R...>) {
      return (
        false || ... ||
        (expr::detail::list_size<
           typename expr::detail::collected<true, Pred, typename P::template root_t<R>>::type>::value > 0));
    }
    (std::make_index_sequence<P::n_roots>{});
  }();
  static constexpr bool global = any<is_global_reduction>;
  static constexpr bool late_global = any<is_late_global_reduction>;
};

template <class Rule>
constexpr bool is_route = false;
template <class... Arms>
constexpr bool is_route<expr::routed<Arms...>> = true;

// Whether every rank got here without an exception; if one did not, every rank throws (the rank
// that failed, its own exception), so no rank waits in a collective the others never reach.
template <class Comm>
void agree(Comm& comm, std::exception_ptr failed, const std::string& what) {
  if (comm.all_reduce(failed ? 1.0 : 0.0, reduce_op::max) == 0)
    return;
  if (failed)
    std::rethrow_exception(failed);
  throw usage_error(what + ": another rank failed (its own message says why); nothing was changed here");
}

template <class Rule, class F>
void for_each_arm_rule(const Rule& rule, F&& f) {
  f(rule, std::size_t{ 0 });
}
template <class... Arms, class F>
void for_each_arm_rule(const expr::routed<Arms...>& rule, F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) { (f(std::get<I>(rule.arms).rule, I), ...); }
  (std::index_sequence_for<Arms...>{});
}

// Per block of the store: the arm that takes it (a plain rule: 0), and whether that arm's rule
// needs it whole.
struct block_arms {
  std::vector<std::size_t> arm;
  std::vector<bool> whole;
};
template <class Rule, class T>
block_arms arms_of(const Rule&, const param_store<T>& store) {
  return { std::vector<std::size_t>(store.size(), 0),
           std::vector<bool>(store.size(), block_needs<Rule>::whole) };
}
template <class... Arms, class T>
block_arms arms_of(const expr::routed<Arms...>& rule, const param_store<T>& store) {
  constexpr std::array<bool, sizeof...(Arms) + 1> arm_whole{ block_needs<typename Arms::rule_type>::whole...,
                                                             false };
  block_arms out;
  for (std::size_t i = 0; i < store.size(); ++i) {
    const auto& b = store.block_at(i);
    out.arm.push_back(engine::optimizer<expr::routed<Arms...>, T>::first_arm(
      rule, expr::block_info{ b.name, b.shape, b.role, b.layout, i }));
    out.whole.push_back(arm_whole[out.arm.back()]);
  }
  return out;
}

} // namespace detail

template <class T, communicator Comm>
class sharded_optimizer {
public:
  using value_type = T;

  template <class Rule>
  [[gnu::cold]] sharded_optimizer(Rule rule, param_store<T>& store, Comm& comm, sharded_options opts = {})
    : store_(&store)
    , comm_(&comm)
    , policy_(opts.engine.nonfinite) {
    const int w = comm.size();
    bool global = false, late = false;
    detail::for_each_arm_rule(rule, [&](const auto& r, std::size_t) {
      using needs = detail::block_needs<std::remove_cvref_t<decltype(r)>>;
      global = global || needs::global;
      late = late || needs::late_global;
    });
    global = global && w > 1;
    if (w > 1) {
      if (global && detail::is_route<Rule>)
        throw usage_error("sharded_optimizer: an arm of the route reduces over all of its blocks (a global "
                          "norm); the ranks' fold of it is built for plain rules only");
      // (A step refused early on one rank would skip a later fold the others wait in.)
      if (late)
        throw usage_error(
          "sharded_optimizer: the rule reduces over all blocks after another reduction or the "
          "matrix phase; the ranks' fold is built for a first reduction only");
    }
    const detail::block_arms arms = detail::arms_of(rule, store);
    std::vector<block_layout> layout = layout_of(
      store, [&](const block<T>& b) { return static_cast<bool>(arms.whole[store.index_of(b.name)]); });
    plan_ = plan_shards(layout, static_cast<std::size_t>(w), opts.plan);
    counts_ = plan_.counts();
    for (const rank_shard& r : plan_.ranks)
      pieces_.push_back(r.pieces.size());
    check_agreement(rule, layout);

    // The chunk size one process would pick for the whole model: a whole block's reductions
    // then combine the same chunk partials in the same order on any rank.
    if (opts.engine.chunk_elements == 0) {
      std::vector<std::size_t> sizes;
      for (const auto& b : store.blocks())
        sizes.push_back(b.size);
      opts.engine.chunk_elements = kernel::work_list::auto_chunk_elements(sizes);
    }
    const rank_shard& mine = plan_.ranks[static_cast<std::size_t>(comm.rank())];
    grad_.assign(mine.end - mine.begin, T(0));
    std::vector<block_spec<T>> specs;
    for (const block_piece& piece : mine.pieces) {
      const block<T>& b = store.block_at(piece.block);
      const bool all = piece.begin == 0 && piece.end == b.size;
      const std::size_t n = piece.end - piece.begin;
      T* grad = grad_.data() + (b.offset + piece.begin - mine.begin);
      specs.emplace_back(b.name, all ? b.shape : shape_t{ n }, b.role, std::span<T>(b.param + piece.begin, n),
                         std::span<T>(grad, n));
      specs.back().layout = b.layout;
      // (A route sends each piece where its whole block went: a piece's index and shape are not
      // its block's, and on_index or on_if would choose again.)
      if constexpr (detail::is_route<Rule>)
        opts.engine.arms.push_back(arms.arm[piece.block]);
    }
    engine::optimizer_options one = opts.engine;
    one.threads = 1;
    one.arms.clear(); // (the whole model's route chooses by its selectors, as one process does)
    make_whole_ = [rule, one](param_store<T>& s) {
      return std::make_unique<engine::any_optimizer<T>>(rule, s, one);
    };
    // (A rank whose optimizer refuses its blocks must not leave the others waiting: they agree.)
    std::exception_ptr failed;
    try {
      if (!specs.empty()) {
        local_store_ = std::make_unique<param_store<T>>(std::move(specs));
        local_ = std::make_unique<engine::any_optimizer<T>>(std::move(rule), *local_store_, opts.engine);
        // A global norm over every rank's blocks, folded in the model's block order: each rank's
        // blocks are a run of the model's, and the ranks are in order (plan_shards).
        if (global)
          local_->fold_all_blocks_with(
            [this](std::span<const double> mine, double (*combine)(double, double)) {
              return fold(mine, combine);
            });
      }
    } catch (...) {
      failed = std::current_exception();
    }
    detail::agree(comm, failed, "sharded_optimizer");
    // A rank that owns nothing takes part in each fold too: how many a step makes, from a rank
    // that counted them (the engine's own walk, all_blocks_reductions).
    if (global)
      folds_ = static_cast<std::size_t>(
        comm.all_reduce(local_ ? static_cast<double>(local_->all_blocks_reductions()) : 0.0, reduce_op::max));
  }
  // (The fold above keeps `this`: the object stays where it was built.)
  sharded_optimizer(const sharded_optimizer&) = delete;
  sharded_optimizer& operator=(const sharded_optimizer&) = delete;

  // One step with the sum over ranks of the gradients now in the store (collective: every rank
  // calls it). Applied, held back (on any rank) or refused (on every rank), as step() of one
  // optimizer; under nonfinite_policy::refuse a non-finite gradient on any rank throws
  // nonfinite_error on every rank, nothing written anywhere.
  engine::step_result step() {
    const rank_shard& mine = plan_.ranks[static_cast<std::size_t>(comm_->rank())];
    comm_
      ->template reduce_scatter_sum<T>(std::span<const T>(store_->arena_grads(), plan_.arena_elements),
                                       std::span<T>(grad_), counts_)
      .wait();
    std::optional<engine::nonfinite_entry> bad;
    if (local_)
      bad = local_->prepare_step();
    else // (a rank that owns nothing still takes part in each fold of a global norm, with nothing)
      for (std::size_t k = 0; k < folds_; ++k)
        fold({}, nullptr);
    if (comm_->all_reduce(bad ? 1.0 : 0.0, reduce_op::max) > 0) {
      ++skipped_;
      if (policy_ == engine::nonfinite_policy::skip)
        return { engine::step_outcome::refused };
      if (bad)
        throw engine::nonfinite_error(bad->block, bad->index, engine::describe_nonfinite(*bad));
      throw engine::nonfinite_error("(another rank)", 0,
                                    "a non-finite gradient entry on another rank refused this step on every "
                                    "rank; nothing was written");
    }
    if (local_)
      local_->commit_step();
    ++steps_;
    // (In place: this rank's range of the arena is the one it sends.)
    comm_
      ->template all_gather_v<T>(
        std::span<const T>(store_->arena_params() + mine.begin, mine.end - mine.begin),
        std::span<T>(store_->arena_params(), plan_.arena_elements), counts_)
      .wait();
    const bool held = local_ && local_->any_held_back();
    if (comm_->all_reduce(held ? 1.0 : 0.0, reduce_op::max) > 0)
      return { engine::step_outcome::held_back };
    return {};
  }

  // A named hyperparameter, on every rank (collective): refused on every rank if no rank's rule
  // has it or if the ranks pass different values.
  void set(std::string_view name, double value) {
    const bool here = local_ && local_->has(name);
    if (comm_->all_reduce(here ? 1.0 : 0.0, reduce_op::max) == 0)
      throw usage_error("sharded_optimizer::set: no rank's rule has a hyperparameter named '" +
                        std::string(name) + "'");
    if (comm_->all_reduce(value, reduce_op::min) != comm_->all_reduce(value, reduce_op::max))
      throw mismatch_error("sharded_optimizer::set('" + std::string(name) +
                           "'): the ranks passed different values; nothing was changed");
    if (here)
      local_->set(name, value);
    set_values_.emplace_back(name, value);
  }

  const shard_plan& plan() const noexcept { return plan_; }
  // This rank's optimizer over the range it owns (state(), slots(), describe()); null if it owns
  // nothing (more ranks than pieces).
  engine::any_optimizer<T>* local() noexcept { return local_.get(); }
  const engine::any_optimizer<T>* local() const noexcept { return local_.get(); }
  std::int64_t steps() const noexcept { return steps_; }
  std::int64_t skipped_steps() const noexcept { return skipped_; }
  int rank() const { return comm_->rank(); }
  Comm& communicator() const noexcept { return *comm_; }
  param_store<T>& store() const noexcept { return *store_; }

  // What a checkpoint needs (dist/sharded_checkpoint.hpp): one process's optimizer of the same
  // rule over a store like the whole model (one thread), with the values set() gave since
  // construction; after a load, the file's step counters and hyperparameters.
  std::unique_ptr<engine::any_optimizer<T>> make_whole(param_store<T>& s) const {
    auto whole = make_whole_(s);
    for (const auto& [name, value] : set_values_)
      whole->set(name, value);
    return whole;
  }
  void restore(std::int64_t t, std::int64_t skipped,
               const std::vector<std::pair<std::string, double>>& hypers) {
    if (local_) {
      local_->restore_steps(t, skipped);
      for (const auto& [name, value] : hypers)
        if (local_->has(name))
          local_->set(name, value);
    }
    steps_ = t, skipped_ = skipped;
    set_values_ = hypers;
  }

  // Bytes of optimizer state on this rank (every slot of every owned block or piece).
  std::size_t state_bytes() const {
    std::size_t n = 0;
    if (local_)
      const_cast<engine::any_optimizer<T>&>(*local_).visit_slots(
        [&](const engine::slot_bytes& s) { n += s.bytes.size(); });
    return n;
  }

  // This rank's share, then what the engine made of the rule over it.
  std::string describe() const {
    const rank_shard& mine = plan_.ranks[static_cast<std::size_t>(comm_->rank())];
    std::string s = "sharded over " + std::to_string(comm_->size()) + " rank(s); rank " +
                    std::to_string(comm_->rank()) + " owns arena [" + std::to_string(mine.begin) + ", " +
                    std::to_string(mine.end) + "): " + std::to_string(mine.elements) + " of " +
                    std::to_string(store_->total_elements()) + " parameters in " +
                    std::to_string(mine.pieces.size()) + " piece(s); optimizer state " +
                    std::to_string(state_bytes()) + " bytes on this rank; imbalance (max/mean): elements " +
                    std::to_string(plan_.element_imbalance) + ", matrix flops " +
                    std::to_string(plan_.flop_imbalance) + "\n";
    return local_ ? s + local_->describe() : s + "(this rank owns no parameters)\n";
  }

private:
  // A reduction over all blocks: every rank's per-block results, in the model's block order (each
  // rank's blocks are a run of the model's, the ranks in order: plan_shards), folded from 0 as one
  // process folds its blocks (engine/passes/reduction.hpp).
  double fold(std::span<const double> mine, double (*combine)(double, double)) {
    std::size_t n = 0;
    for (std::size_t c : pieces_)
      n += c;
    std::vector<double> all(n);
    comm_->template all_gather_v<double>(mine, std::span<double>(all), pieces_).wait();
    double total = 0;
    if (combine)
      for (double x : all)
        total = combine(total, x);
    return total;
  }

  // Hashes of what must agree, compared across ranks in order; the first that differs is named.
  template <class Rule>
  [[gnu::cold]] void check_agreement(const Rule& rule, const std::vector<block_layout>& layout) {
    fnv1a rule_h, hyper_h, layout_h;
    rule_h.add(engine::rule_hash<Rule>());
    detail::for_each_arm_rule(rule, [&](const auto& r, std::size_t arm) {
      auto copy = r;
      expr::visit_hypers(copy, [&](auto& hp) {
        hyper_h.add(arm);
        hyper_h.add(std::string_view(hp.name.view()));
        hyper_h.add(hp.value);
      });
    });
    for (const auto& l : layout) {
      layout_h.add(l.name);
      layout_h.add(l.elements), layout_h.add(l.rows), layout_h.add(l.cols), layout_h.add(l.whole);
      layout_h.add(l.dtype_bytes), layout_h.add(l.offset);
    }
    const std::pair<const char*, std::uint64_t> what[] = {
      { "the rule (its type)", rule_h.value() },
      { "the rule's named hyperparameters", hyper_h.value() },
      { "the store's layout (block names, sizes, order, dtype)", layout_h.value() },
      { "the shard plan", plan_hash(plan_) },
    };
    for (const auto& [name, h] : what)
      for (const std::uint64_t half : { std::uint64_t{ h >> 32 }, std::uint64_t{ h & 0xffffffffu } }) {
        const double x = static_cast<double>(half); // exact: 32 bits
        if (comm_->all_reduce(x, reduce_op::min) != comm_->all_reduce(x, reduce_op::max))
          throw mismatch_error("sharded_optimizer: the ranks disagree on " + std::string(name) + " (rank " +
                               std::to_string(comm_->rank()) + " of " + std::to_string(comm_->size()) +
                               ", its hash " + std::to_string(h) + "); nothing was built");
      }
  }

  param_store<T>* store_;
  Comm* comm_;
  engine::nonfinite_policy policy_;
  shard_plan plan_;
  std::vector<std::size_t> counts_;
  std::vector<std::size_t> pieces_; // per rank: its blocks or pieces (the global fold's counts)
  std::size_t folds_ = 0;           // reductions over all blocks per step, with more than one rank
  aligned_buffer<T> grad_;          // the owned range of the summed gradient (the local store's gradients)
  std::unique_ptr<param_store<T>> local_store_;
  std::unique_ptr<engine::any_optimizer<T>> local_;
  std::function<std::unique_ptr<engine::any_optimizer<T>>(param_store<T>&)> make_whole_;
  std::vector<std::pair<std::string, double>> set_values_; // set() since construction, in order
  std::int64_t steps_ = 0, skipped_ = 0;
};

template <class Rule, class T, class Comm>
sharded_optimizer(Rule, param_store<T>&, Comm&) -> sharded_optimizer<T, Comm>;
template <class Rule, class T, class Comm>
sharded_optimizer(Rule, param_store<T>&, Comm&, sharded_options) -> sharded_optimizer<T, Comm>;

} // namespace steep::dist
