#pragma once
// optimizer<Rule, T>: a compiled rule bound to a param_store — its state slots, tables and passes.
//
//   steep::param_store<float> store({{"W", {64, 32}}, {"b", {64}}});
//   steep::optimizer opt(steep::rules::adam(1e-3), store, {.threads = 2});
//   for (...) { fill store.grad(...); opt.step(); }
//   opt.state("W", "exp_avg");     // xtensor view of a slot of one block
//   opt.set("lr", 1e-4);           // a named hyperparameter (hyper<"lr">), between steps
//
// One step is a read-only part (prepare_step) and the update pass (commit_step):
//   [guard]           read-only: a NaN or Inf in the gradient refuses the step (guard.hpp); fused
//                     into the first read-only pass below when the rule has one;
//   [reduction pass]  read-only: every reduction of the rule at once (only if it has any);
//   [matrix phase]    read-only pre-pass writing each matrix stage's operand to scratch, then
//                     the stage's map per block (expr/matrix.hpp);
//   update pass       per element: load grad, param and each slot once; compute the new slot
//                     values, then the change of the parameter; store param and slots once.
// Per-step scalars (learning rate, 1/(1 - beta^t), ...) are computed once per step in double
// before the passes, per-block scalars (a block's norm) once per block between them. Nothing
// is written before the update pass, so a refused step leaves every parameter and slot bitwise
// as it was, and a routed rule can prepare all its arms before any of them commits.
//
// State lives in one 64-byte aligned arena per slot, with the blocks at the same positions as
// in the parameter arena. The store must outlive the optimizer; its layout cannot change.

#include "steep/core/aligned_buffer.hpp"
#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/optimizer_core.hpp"
#include "steep/engine/options.hpp"
#include "steep/engine/slots.hpp"
#include "steep/expr/program.hpp"
#include "steep/kernel/blas.hpp"
#include "steep/kernel/chunk_loop.hpp"
#include "steep/kernel/executor.hpp"
#include "steep/kernel/simd.hpp"
#include "steep/kernel/work_list.hpp"
#include "steep/norms/newton_schulz_apply.hpp"
#include "steep/norms/polar_apply.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace steep::engine {

// What the SIMD loop sees while evaluating one group of elements (V = a batch). Every
// slot's old and new value and every matrix stage's result is a V, so they are arrays indexed
// by slot or stage; Known counts the slots whose new values are computed (in evaluation order).
// (Arrays, not growing std::tuples: a tuple_cat per slot per pass cost front-end time in every
// rule, docs/compile-time.md.) Each array has one spare entry, never read: with it the
// pass functions compile to the instructions they had with tuples; with exact sizes GCC laid
// out NorMuon's reduction pass differently (its lane-by-lane gather no longer unrolled).
template <class V, class P, std::size_t Known = 0>
struct eval_ctx {
  using value_type = V;
  using scalar_type = kernel::scalar_of<V>;
  V grad;
  V param;
  std::array<V, P::n_slots + 1> olds;
  std::array<V, P::n_slots + 1> news;
  std::array<V, P::n_matrices + 1> mats;           // each matrix stage's result here (update pass only)
  const V* steps;                                  // hoisted per-step scalars, broadcast
  const V* block;                                  // this block's per-block scalars, broadcast
  std::size_t index = 0;                           // the first element of this group in its block
  std::size_t cols = 1;                            // the block's columns (matrix view)
  const std::vector<scalar_type>* lines = nullptr; // this block's line tables, by per-block offset
  const std::size_t* line_len = nullptr;           // a slice line's slice length, likewise

  template <std::size_t S>
  V step_scalar() const {
    return steps[S];
  }
  template <std::size_t B>
  V block_scalar() const {
    return block[B];
  }
  template <fixed_string Name>
  V new_value() const {
    static_assert(P::template index_of<Name> < Known, "slot used before its update");
    return news[P::template index_of<Name>];
  }
  template <fixed_string Name>
  V old_value() const {
    return olds[P::template index_of<Name>];
  }

  template <class N>
  V matrix_value() const {
    return mats[P::template matrix_index<N>];
  }

  // The value of the line at per-block offset B (node.hpp) for these elements: one per row
  // (Line = rows_line), column or slice; a group that crosses a row (slice) boundary is
  // gathered lane by lane.
  template <std::size_t B, int Line>
  V line_value() const {
    const scalar_type* t = lines[B].data();
    // A row is a slice of `cols` entries.
    [[maybe_unused]] const std::size_t len = Line == expr::slices_line ? line_len[B] : cols;
    constexpr std::size_t w = V::size;
    if constexpr (Line != expr::cols_line) {
      const std::size_t r = index / len;
      if ((index + w - 1) / len == r)
        return V(t[r]);
    } else {
      const std::size_t c = index % cols;
      if (c + w <= cols)
        return kernel::load<V>(t + c);
    }
    alignas(64) scalar_type g[w];
    for (std::size_t k = 0; k < w; ++k)
      g[k] = Line == expr::cols_line ? t[(index + k) % cols] : t[(index + k) / len];
    return V::load_aligned(g);
  }

  // This context with slot Known's new value x.
  eval_ctx<V, P, Known + 1> with_new(const V& x) const {
    eval_ctx<V, P, Known + 1> c{ grad, param, olds, news, mats, steps, block, index, cols, lines, line_len };
    c.news[Known] = x;
    return c;
  }
};

// (A routed rule, route.hpp, has a specialization of its own.)
template <class Rule, class T>
class optimizer : private detail::optimizer_core<T> {
  static_assert(expr::expression<Rule>,
                "optimizer<Rule, T>: the rule must be a steep expression (built from grad, "
                "param, stages, ...) or a route(...)");
  // (optimizer_core<T> checks T first: it is the base.) Inside generic lambdas GCC does not find
  // the base's members through these using-declarations, so the code there writes this->.
  using core = detail::optimizer_core<T>;
  using core::block_index, core::checked_slice, core::checked_threads, core::line_count, core::lines_of_part;
  using core::block_news_, core::host_block_, core::one_value_, core::line_slot_shapes_, core::line_len_;
  using core::blocks_, core::store_alive_, core::dims_, core::matrix_tasks_, core::wl_, core::exec_;
  using core::line_bad_, core::line_tasks_, core::line_T_, core::line_red_, core::line_news_;
  using core::policy_, core::deterministic_, core::guard_, core::held_, core::chunk_bad_, core::t_,
    core::skipped_;
  using core::step_host_, core::step_T_, core::reductions_, core::partials_, core::block_host_,
    core::block_T_;
  using typename core::line_task;
  using typename core::matrix_task;

public:
  using rule_type = std::remove_cvref_t<Rule>;
  using program_type = expr::program<rule_type>;
  using value_type = T;
  static constexpr std::size_t n_slots = program_type::n_slots;
  static constexpr std::size_t n_matrices = program_type::n_matrices;
  static_assert(program_type::phases_checked);
  static constexpr std::size_t bytes_per_param = program_type::template bytes_per_param<T>;
  // Where the non-finite guard runs (guard.hpp): fused into the depth-0 reduction pass if there
  // is one, else into the matrix pre-pass, else in a read-only pass of its own.
  static constexpr bool guard_in_reductions = program_type::template reductions_at<false, 0> > 0;
  // A rule whose first read-only pass is a line pass (Adam-mini per slice) checks there.
  static constexpr bool guard_in_lines =
    !guard_in_reductions && program_type::template reductions_at<true, 0> > 0;
  static constexpr bool guard_in_prepass = !guard_in_reductions && !guard_in_lines && n_matrices > 0;
  // Whether each coordinate's step reads only its own gradient entry (no reduction of any kind,
  // no matrix stage): the rules nonfinite_policy::mask can hold back coordinate by coordinate.
  static constexpr bool coordinatewise = n_matrices == 0 && program_type::max_depth < 0;

  [[gnu::cold]] optimizer(Rule rule, param_store<T>& store, optimizer_options opts = {});

private:
  [[gnu::cold]] optimizer(typename program_type::compiled rule, param_store<T>& store,
                          const optimizer_options& opts);

public:
  template <class H>
  static void check_hyper(const H&, double value) {
    using R = typename H::range_type;
    if (!R::ok(value))
      detail::hyper_out_of_range(H::name.view(), value, R::text);
  }

  // One optimizer step with the gradients currently in the store. Returns false if the step
  // was skipped (a non-finite gradient under nonfinite_policy::skip); under refuse it throws
  // nonfinite_error instead. Either way nothing was written.
  bool step() { return run_step(*this, policy_, skipped_); }

  // The read-only part of a step: per-step and per-block scalars, the guard, the reduction
  // pass and the matrix phase. Writes only tables and scratch. Returns the first non-finite
  // gradient entry (if the guard is on and found one); then the step must not be committed.
  std::optional<nonfinite_entry> prepare_step();

  // The reduction passes of depth D >= 1 (after the matrix phase).
  template <int D>
  void later_passes(const expr::host_ctx& h) {
    if constexpr (program_type::template reductions_at < false, D >> 0)
      reduction_pass<D>();
    if constexpr (program_type::template reductions_at < true, D >> 0)
      line_pass<D>();
    fill_block_scalars(h);
  }

  void fill_block_scalars(expr::host_ctx h) {
    if constexpr (program_type::n_block_scalars > 0) {
      for (std::size_t b = 0; b < blocks_.size(); ++b) {
        h.reductions = reductions_.data() + b * program_type::n_reductions;
        h.dims = dims_[b];
        compute_block_slots(b, h);
        for_roots([&]<std::size_t R>(const auto& root) {
          expr::fill_block_table<program_type::block_offset[R], program_type::red_offset[R]>(
            root, block_host_.data(), h);
        });
        for (std::size_t i = 0; i < block_host_.size(); ++i)
          block_T_[b * program_type::n_block_scalars + i] = static_cast<T>(block_host_[i]);
        compute_line_tables(b);
      }
    }
  }

  // The update pass of a step prepare_step() accepted: stores parameters and slots once.
  void commit_step();

  // Steps skipped for a non-finite gradient (nonfinite_policy::skip), or applied with some
  // coordinates held back (a non-finite gradient under nonfinite_policy::mask, or a new value
  // that would not be finite under any policy but off).
  std::int64_t skipped_steps() const noexcept { return skipped_; }
  // The last step's first held-back coordinate (its cause in `output`, guard.hpp) and, in its
  // count, how many were held back; empty if it held back none.
  std::optional<nonfinite_entry> held_back() const { return held_; }
  nonfinite_policy nonfinite() const noexcept { return policy_; }

  std::int64_t steps() const noexcept { return t_; }
  // Sets the step counter (a checkpoint's load: engine/checkpoint.hpp).
  // The rule's structural hash (slots.hpp, rule_hash): checkpoints refuse another rule's state.
  static std::string rule_id() { return rule_hash<rule_type>(); }
  void restore_steps(std::int64_t t, std::int64_t skipped = 0) {
    if (t < 0 || skipped < 0)
      throw usage_error("a step count cannot be negative");
    t_ = t, skipped_ = skipped;
  }
  // f(slot_bytes) for every slot of every block, in slot order then block order: the raw state.
  template <class F>
  void visit_slots(F&& f) {
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (
        [&] {
          using S = typename program_type::template slot_storage_t<K, T>;
          for (std::size_t b = 0; b < blocks_.size(); ++b) {
            auto view = state<S>(blocks_[b].name, std::string(program_type::slot_name(K)));
            f(slot_bytes{ blocks_[b].name, std::string(program_type::slot_name(K)),
                          std::string(safetensors_dtype<S>()),
                          shape_t(view.shape().begin(), view.shape().end()),
                          std::as_writable_bytes(std::span<S>(view.data(), view.size())) });
          }
        }(),
        ...);
    }
    (std::make_index_sequence<n_slots>{});
  }
  int threads() const noexcept { return exec_.threads(); }
  void set_threads(int n) { exec_ = kernel::executor(checked_threads(n), exec_.serial_below()); }

  // Named hyperparameters (hyper<"lr">(...)): read or change between steps.
  void set(std::string_view name, double value) {
    check(name, value);
    bool found = false;
    for_roots(roots_, [&]<std::size_t>(auto& root) {
      visit_root_hypers(root, name, [&](auto& hp) { hp.value = value, found = true; });
    });
    if (!found)
      throw usage_error("the rule has no hyperparameter named '" + std::string(name) + "'");
  }
  // Throws, naming it, if `value` is outside the range of hyperparameter `name` (node.hpp, range).
  void check(std::string_view name, double value) const {
    for_roots([&]<std::size_t>(const auto& root) {
      visit_root_hypers(root, name, [&](const auto& hp) { check_hyper(hp, value); });
    });
  }
  // Every named hyperparameter, once per name, with its value (checkpoints save them).
  std::vector<std::pair<std::string, double>> hyperparameters() const {
    std::vector<std::pair<std::string, double>> out;
    for_roots([&]<std::size_t>(const auto& root) {
      expr::visit_hypers(root, [&](const auto& hp) {
        const std::string name(std::remove_cvref_t<decltype(hp)>::name.view());
        if (std::none_of(out.begin(), out.end(), [&](const auto& e) { return e.first == name; }))
          out.emplace_back(name, hp.value);
      });
    });
    return out;
  }
  // Whether the rule has a named hyperparameter `name`.
  bool has(std::string_view name) const {
    bool found = false;
    for_roots([&]<std::size_t>(const auto& root) {
      visit_root_hypers(root, name, [&](const auto&) { found = true; });
    });
    return found;
  }
  double get(std::string_view name) const {
    double v = 0;
    bool found = false;
    for_roots([&]<std::size_t>(const auto& root) {
      visit_root_hypers(root, name, [&](const auto& hp) { v = hp.value, found = true; });
    });
    if (!found)
      throw usage_error("the rule has no hyperparameter named '" + std::string(name) + "'");
    return v;
  }

  static std::vector<slot_info> slots() {
    std::vector<slot_info> out;
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (out.push_back({ std::string(program_type::slot_name(K)),
                       std::string(dtype_name<typename program_type::template slot_storage_t<K, T>>()),
                       sizeof(typename program_type::template slot_storage_t<K, T>),
                       per_block_slot<K>                   ? "block"
                       : line_slot<K> == expr::rows_line   ? "row"
                       : line_slot<K> == expr::cols_line   ? "column"
                       : line_slot<K> == expr::slices_line ? "slice"
                                                           : "element" }),
       ...);
    }
    (std::make_index_sequence<n_slots>{});
    return out;
  }

  // Whether `block` has a state slot named `slot` (every block of a plain rule has them all).
  bool has_slot(const std::string& block, std::string_view slot) const {
    block_index(block);
    for (std::size_t k = 0; k < n_slots; ++k)
      if (program_type::slot_name(k) == slot)
        return true;
    return false;
  }

  // A view of slot `slot` of block `block` (S must be the slot's storage dtype): in the block's
  // shape, or of shape (1) for a per-block slot.
  template <class S = T>
  state_view<S> state(const std::string& block, const std::string& slot) {
    const std::size_t b = block_index(block);
    S* ptr = nullptr;
    bool found = false, dtype_ok = false, per_block = false;
    int line = expr::not_a_line;
    std::size_t k = 0;
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (
        [&] {
          if (program_type::slot_name(K) != slot)
            return;
          found = true;
          per_block = per_block_slot<K>;
          line = line_slot<K>;
          k = K;
          using St = typename program_type::template slot_storage_t<K, T>;
          if constexpr (std::is_same_v<St, S>)
            ptr = std::get<K>(slots_).at(b), dtype_ok = true;
        }(),
        ...);
    }
    (std::make_index_sequence<n_slots>{});
    if (!found)
      throw error(block, "the rule has no state slot named '" + slot + "'");
    if (!dtype_ok)
      throw error(block, "slot '" + slot + "' is not stored as " + std::string(dtype_name<S>()));
    if (per_block)
      return make_state_view(ptr, 1, one_value_);
    if (line != expr::not_a_line) {
      const shape_t& shape = line_slot_shapes_[k * blocks_.size() + b];
      return make_state_view(ptr, shape[0], shape);
    }
    return make_state_view(ptr, blocks_[b].size, blocks_[b].shape);
  }

  // A readable account of what the compiler made of the rule (Eigen's "debug assign" idea).
  [[gnu::cold]] std::string describe() const {
    std::ostringstream os;
    os << "passes: " << program_type::passes << " (" << pass_names() << "update)\nslots:";
    for (auto& s : slots())
      os << ' ' << s.name << ':' << s.dtype
         << (s.granularity != "element" ? " (one per " + s.granularity + ")" : "");
    if (n_slots == 0)
      os << " none";
    os << "\nper-step scalars: " << program_type::n_step_scalars << " (" << distinct_step_scalars()
       << " distinct)"
       << "\nper-block scalars: " << program_type::n_block_scalars
       << "\nreductions: " << program_type::n_reductions << "\nmatrix stages: " << n_matrices
       << "\nbytes per parameter (update pass): " << bytes_per_param
       << "\nbytes per parameter (every pass of a step, at most): " << bytes_per_step()
       << (n_matrices > 0 ? ", scratch: " + std::to_string(n_matrices * sizeof(T)) : std::string())
       << "\nblocks: " << blocks_.size() << ", chunks: " << wl_.size() << ", threads: " << exec_.threads()
       << (wl_.elements() < exec_.serial_below() ? " (passes run on the calling thread: serial_below)" : "")
       << "\nnon-finite guard: " << guard_text() << '\n';
    return os.str();
  }

  const kernel::work_list& work() const noexcept { return wl_; }

private:
  template <std::size_t K>
  static constexpr bool per_block_slot = program_type::template slot_t<K>::per_block;
  // Whether root R is the update of a per-row or per-column slot.
  template <std::size_t R>
  static constexpr bool line_slot_root = [] {
    if constexpr (R < n_slots)
      return program_type::template slot_t<R>::line != expr::not_a_line;
    else
      return false;
  }();
  // rows_line or cols_line for a per-row or per-column slot, not_a_line otherwise.
  template <std::size_t K>
  static constexpr int line_slot = program_type::template slot_t<K>::line;
  // Whether slot K holds one value per element, stored by the update pass.
  template <std::size_t K>
  static constexpr bool element_slot = !per_block_slot<K> && line_slot<K> == expr::not_a_line;

  // ---- per-block slots (expr/state.hpp): updated on the host, once per block ------------------

  // What a per-block slot's update reads through host_ctx::slots: its value before this step
  // (stored) or after it (computed this step, kept in block_news_ until commit_step()).
  static double block_slot_value(const void* self, std::string_view name, bool old) {
    const auto& o = *static_cast<const optimizer*>(self);
    double v = 0;
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (
        [&] {
          if constexpr (per_block_slot<K>)
            if (program_type::slot_name(K) == name)
              v = old ? static_cast<double>(std::get<K>(o.slots_).at(o.host_block_)[0])
                      : o.block_news_[o.host_block_ * n_slots + K];
        }(),
        ...);
    }
    (std::make_index_sequence<n_slots>{});
    return v;
  }

  // This step's new values of block b's per-block slots, in dependency order, each rounded to
  // its storage dtype (the step uses the value as it will be stored).
  void compute_block_slots(std::size_t b, expr::host_ctx& h) {
    host_block_ = b;
    h.slots = { this, &block_slot_value };
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (
        [&] {
          if constexpr (per_block_slot<K>) {
            using S = typename program_type::template slot_storage_t<K, T>;
            const double v = expr::host_value<program_type::red_offset[K]>(expr::get<K>(roots_), h);
            this->block_news_[b * n_slots + K] = static_cast<double>(static_cast<S>(v));
          }
        }(),
        ...);
    }
    (std::make_index_sequence<n_slots>{});
  }

  void store_block_slots() {
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (
        [&] {
          if constexpr (per_block_slot<K>) {
            using S = typename program_type::template slot_storage_t<K, T>;
            for (std::size_t b = 0; b < this->blocks_.size(); ++b)
              std::get<K>(slots_).at(b)[0] = static_cast<S>(this->block_news_[b * n_slots + K]);
          }
        }(),
        ...);
    }
    (std::make_index_sequence<n_slots>{});
  }

  // f.template operator()<R>(root) for each root in evaluation order (slot updates, output).
  template <class F>
  void for_roots(F&& f) const {
    for_roots(roots_, f);
  }
  template <class Roots, class F>
  static void for_roots(Roots& roots, F&& f) {
    [&]<std::size_t... R>(std::index_sequence<R...>) { (f.template operator()<R>(expr::get<R>(roots)), ...); }
    (std::make_index_sequence<program_type::n_roots>{});
  }
  // f.template operator()<S, B, R>(node) for every node of the rule with Trait<node>, with its
  // table offsets (program.hpp, visit_where).
  template <template <class> class Trait, class F>
  void for_each_node(F&& f) const {
    for_roots([&]<std::size_t R>(const auto& root) {
      expr::visit_where<Trait, program_type::step_offset[R], program_type::block_offset[R],
                        program_type::red_offset[R]>(root, f);
    });
  }
  // f.template operator()<S, B, R>(node) for every reduction of the rule, those inside another
  // reduction's operand included (program.hpp, visit_each).
  template <class F>
  void for_each_reduction(F&& f) const {
    for_roots([&]<std::size_t R>(const auto& root) {
      expr::visit_each<expr::is_reduce_node, program_type::step_offset[R], program_type::block_offset[R],
                       program_type::red_offset[R]>(root, f);
    });
  }
  template <class Root, class F>
  static void visit_root_hypers(Root& root, std::string_view name, F&& f) {
    expr::visit_hypers(root, [&](auto& hp) {
      if (std::remove_cvref_t<decltype(hp)>::name.view() == name)
        f(hp);
    });
  }

  // What one chunk's loop reads, hoisted out of it: pointers, and the per-step and per-block
  // scalars already broadcast into local batches. Locals matter: a table the loop reads
  // through a member pointer may alias the parameters it stores, so the compiler would reload
  // and re-broadcast every scalar on every batch.
  struct chunk_frame {
    using VB = kernel::batch<T>;
    T* p;
    const T* g;
    typename program_type::template slot_pointers_t<T> slots;
    std::array<T*, n_matrices + 1> mats;
    const VB* step_v; // the per-step scalars, broadcast (step_vectors)
    std::array<VB, program_type::n_block_scalars + 1> block_v; // this block's per-block scalars, broadcast
    std::size_t cols;
    const std::vector<T>* lines;
    const std::size_t* line_len;
  };

  // The per-step scalars as batches, built on the stack of the function that loops (where the
  // compiler sees that no store through a parameter pointer reaches them, and keeps them in
  // registers). The update pass builds them once per task's range of chunks, not per chunk: a
  // model of 200 small tensors is 200 chunks (README, "Benchmarks": many tensors). The
  // read-only passes still build them per chunk; their speed at many tensors is not measured.
  std::array<typename chunk_frame::VB, program_type::n_step_scalars + 1> step_vectors() const {
    std::array<typename chunk_frame::VB, program_type::n_step_scalars + 1> v;
    for (std::size_t k = 0; k <= program_type::n_step_scalars; ++k)
      v[k] = typename chunk_frame::VB(step_T_[k]);
    return v;
  }

  chunk_frame frame(std::size_t b, const typename chunk_frame::VB* step_v) {
    chunk_frame f{ blocks_[b].param,
                   blocks_[b].grad,
                   slot_pointers(b, std::make_index_sequence<n_slots>{}),
                   {},
                   step_v,
                   {},
                   line_count(b, expr::cols_line),
                   line_T_.data() + b * program_type::n_block_scalars,
                   line_len_.data() };
    for (std::size_t k = 0; k < n_matrices; ++k)
      f.mats[k] = scratch_[k].at(b);
    const T* const block_s = block_T_.data() + b * program_type::n_block_scalars;
    for (std::size_t k = 0; k < program_type::n_block_scalars; ++k)
      f.block_v[k] = typename chunk_frame::VB(block_s[k]);
    return f;
  }
  template <std::size_t... K>
  auto slot_pointers([[maybe_unused]] std::size_t b, std::index_sequence<K...>) {
    return std::make_tuple(std::get<K>(slots_).at(b)...);
  }

  template <std::size_t K, class Ctx>
  auto compute_news(const Ctx& c) const {
    if constexpr (K == n_slots) {
      return c;
    } else {
      using S = typename program_type::template slot_storage_t<K, T>;
      auto v =
        expr::evaluate<program_type::step_offset[K], program_type::block_offset[K]>(expr::get<K>(roots_), c);
      return compute_news<K + 1>(c.with_new(kernel::round_to<S>(v)));
    }
  }

  // Everything the loop computes for the element group at i, nothing stored. Matrix stages'
  // results exist only in the update pass (WithMats); before it they read as zero, and the
  // program's phase check guarantees no value computed before the matrix phase depends on them.
  // Tail: the group is the chunk's last `tail` < V::size elements, loaded as one masked batch
  // (zeros past them; a line table is padded by a batch, so a line read past the block's last
  // row stays inside it). Every pass ends its chunks so, and no pass compiles a scalar copy of
  // the rule: a third of the machine code of a rule with reductions (docs/compile-time.md).
  template <class V, bool WithMats = false, bool Tail = false>
  auto evaluate_group(const chunk_frame& f, std::size_t i, [[maybe_unused]] std::size_t tail = 0) const {
    auto ld = [&](const auto* ptr) {
      return kernel::in_register(kernel::load_group<V, Tail>(ptr + i, tail));
    };
    // (A per-block slot is a per-block scalar to the loop: nothing to load.)
    auto olds = [&]<std::size_t... K>(std::index_sequence<K...>) {
      return std::array<V, n_slots + 1>{ [&] {
        if constexpr (per_block_slot<K> || line_slot<K> != expr::not_a_line)
          return kernel::broadcast<V>(0.0);
        else
          return V(ld(std::get<K>(f.slots)));
      }()... };
    }
    (std::make_index_sequence<n_slots>{});
    auto mats = [&]<std::size_t... K>(std::index_sequence<K...>) {
      if constexpr (WithMats)
        return std::array<V, n_matrices + 1>{ kernel::load_group<V, Tail>(std::get<K>(f.mats) + i, tail)... };
      else
        return std::array<V, n_matrices + 1>{ (static_cast<void>(K), kernel::broadcast<V>(0.0))... };
    }
    (std::make_index_sequence<n_matrices>{});
    eval_ctx<V, program_type> c0{ ld(f.g),          ld(f.p), olds,   {},      mats,      f.step_v,
                                  f.block_v.data(), i,       f.cols, f.lines, f.line_len };
    return compute_news<0>(c0);
  }

  // One chunk of the update pass, flattened into one loop (no call per batch). Hold (every
  // policy but off, guard.hpp): a coordinate whose gradient or new values are not finite stores
  // back what it loaded, and the chunk notes what it held back (note_held). Under refuse and
  // skip the gradient is already known finite here, so only mask and overflow ever hold back.
  // The chunk ends in one masked batch, not a scalar tail (kernel/chunk_loop.hpp).
  template <bool Hold>
  [[gnu::flatten]] void update_chunk(std::size_t ci, const typename chunk_frame::VB* step_v) {
    const kernel::chunk& ch = wl_[ci];
    const chunk_frame f = frame(ch.block, step_v);
    auto group = [&]<class V, bool Tail>(std::size_t i, [[maybe_unused]] std::size_t n) {
      auto c = evaluate_group<V, true, Tail>(f, i, n);
      constexpr std::size_t out = program_type::output_root;
      const V p_new =
        c.param + expr::evaluate<program_type::step_offset[out], program_type::block_offset[out]>(
                    expr::get<out>(roots_), c);
      auto put = [&](auto* ptr, const V& v) { kernel::store_group<Tail>(ptr + i, v, n); };
      [&]<std::size_t... K>(std::index_sequence<K...>) {
        auto put_all = [&] {
          put(f.p, p_new);
          ((element_slot<K> ? put(std::get<K>(f.slots), c.news[K]) : void()), ...);
        };
        if constexpr (!Hold) {
          put_all();
        } else {
          // The new parameter comes last into the probe: it is the last value the group
          // computes (after Adam's square root and division), and the stores wait on the test,
          // so only one fused multiply-add stands between it and the test. Probing it first
          // put every slot's after it and cost Adam at 50K-1M (in cache) a further 5-15%.
          V probe = c.grad * V(0);
          ((element_slot<K> ? void(probe = add_finite_probe(probe, c.news[K])) : void()), ...);
          probe = add_finite_probe(probe, p_new);
          auto ok = finite_sum_ok(probe); // (bool for the scalar tail)
          if constexpr (Tail)
            ok = ok | kernel::lanes_past<V>(n); // (lanes past the tail are never stored)
          // Every lane finite, the case of nearly every batch: plain stores. A masked store of
          // all lanes cost Adam 3-6% at 64M (README, "Benchmarks").
          if (all_lanes(ok)) [[likely]] {
            put_all();
            return;
          }
          auto keep = [&](auto* ptr, const V& v, const V& old) {
            kernel::store_where(ptr + i, ok, v, old, n);
          };
          keep(f.p, p_new, c.param);
          ((element_slot<K> ? keep(std::get<K>(f.slots), c.news[K], c.olds[K]) : void()), ...);
          // What held_back() will report, noted here where the values are: the gradient, the
          // new parameter and each slot's new value (zeros for a slot not kept per element).
          constexpr std::size_t w = kernel::lanes_of<V>;
          alignas(64) std::array<T, w*(n_slots + 2)> rows{};
          kernel::store(rows.data(), c.grad);
          kernel::store(rows.data() + w, p_new);
          ((element_slot<K> ? kernel::store(rows.data() + (2 + K) * w, c.news[K]) : void()), ...);
          this->note_held(ci, i, n, w, rows.data(), n_slots + 2);
        }
      }
      (std::make_index_sequence<n_slots>{});
    };
    kernel::chunk_loop<T>(ch.begin, ch.end, group);
  }

  template <bool Hold>
  [[gnu::flatten]] void update_chunks(std::size_t first, std::size_t last) {
    const auto step_v = step_vectors();
    for (std::size_t ci = first; ci < last; ++ci)
      update_chunk<Hold>(ci, step_v.data());
  }

  template <bool Hold>
  void update_pass() {
    exec_.for_each_range(wl_, [&](std::size_t first, std::size_t last) { update_chunks<Hold>(first, last); });
  }

  // ---- the non-finite guard (guard.hpp) --------------------------------------------------------

  // Whether this step's update pass holds back non-finite coordinates (nonfinite_policy::mask,
  // which the constructor accepts only for coordinatewise rules).
  bool masked() const noexcept {
    return coordinatewise && program_type::reads_grad && policy_ == nonfinite_policy::mask;
  }

  // Where the guard runs and what it does, for describe().
  std::string guard_text() const {
    if (masked())
      return "per coordinate, fused into the update pass (mask)";
    if (!guard_)
      return "off";
    const std::string where = guard_in_reductions ? "fused into the reduction pass"
                              : guard_in_lines    ? "fused into the line reduction pass"
                              : guard_in_prepass
                                ? "fused into the matrix pre-pass"
                                : "a read-only pass of its own (4 bytes per parameter in float32)";
    return where + (policy_ == nonfinite_policy::skip ? ", skips the step" : "");
  }

  // Whether N is a block (or all-blocks) reduction of depth D, or a line reduction of depth D.
  template <class N, int D>
  static constexpr bool block_reduction_at = N::line ==
                                             expr::not_a_line&& expr::detail::reduction_depth<N>() == D;
  template <class N, int D>
  static constexpr bool line_reduction_at = N::line !=
                                            expr::not_a_line&& expr::detail::reduction_depth<N>() == D;
  template <int D>
  static constexpr bool reads_matrices = D >= 1 && n_matrices > 0;

  // x with the lanes past a masked tail's n zeroed (every reduction's identity: its operations
  // are sums and a maximum of absolute values), whatever the rule computed from the zeros
  // loaded there (0 / 0, say).
  template <bool Tail, class V>
  static V past_tail(const V& x, [[maybe_unused]] std::size_t n) {
    if constexpr (Tail)
      return xsimd::select(kernel::lanes_past<V>(n), V(0), x);
    else
      return x;
  }

  // One chunk of a reduction pass: the partial result of every block reduction of depth D, in
  // a fixed order.
  template <bool Guard, int D>
  [[gnu::flatten]] void reduce_chunk(std::size_t ci) {
    constexpr std::size_t nr = program_type::n_reductions;
    // Accumulated in double lanes for float data too (kernel::widen).
    using VD = kernel::batch<double>;
    const auto& ch = wl_[ci];
    const auto step_v = step_vectors();
    const chunk_frame f = frame(ch.block, step_v.data());
    std::array<VD, nr> accv;
    accv.fill(VD(0.0));
    finite_check<T> check;
    kernel::chunk_loop<T>(ch.begin, ch.end, [&]<class V, bool Tail>(std::size_t i, std::size_t n) {
      auto c = evaluate_group<V, reads_matrices<D>, Tail>(f, i, n);
      if constexpr (Guard)
        check.add(c.grad);
      for_each_reduction([&]<std::size_t S, std::size_t B, std::size_t Rr>(const auto& red) {
        using N = std::remove_cvref_t<decltype(red)>;
        if constexpr (block_reduction_at<N, D>) {
          using Op = typename N::op_type;
          using O = typename N::offsets;
          const V x =
            past_tail<Tail>(expr::evaluate<S + O::step[0], B + O::block[0]>(expr::get<0>(red.kids), c), n);
          for (const VD& xd : kernel::widen<T>(x))
            accv[Rr] = Op::accumulate(accv[Rr], xd);
        }
      });
    });
    double* out = partials_.data() + ci * nr;
    for_each_reduction([&]<std::size_t, std::size_t, std::size_t Rr>(const auto& red) {
      using N = std::remove_cvref_t<decltype(red)>;
      if constexpr (block_reduction_at<N, D>)
        out[Rr] = N::op_type::finish(accv[Rr]);
    });
    if constexpr (Guard)
      chunk_bad_[ci] = !check.finite();
  }

  // The block reductions of depth D. The guard rides on depth 0 only.
  template <int D>
  void reduction_pass() {
    constexpr std::size_t nr = program_type::n_reductions;
    // (The guarded variant is compiled only where it can run: each is a whole fused loop.)
    constexpr bool guarded = D == 0 && guard_in_reductions;
    if (guard_ && guarded)
      exec_.for_each_chunk(wl_, [&](std::size_t ci) { reduce_chunk<guarded, D>(ci); });
    else
      exec_.for_each_chunk(wl_, [&](std::size_t ci) { reduce_chunk<false, D>(ci); });
    // Combine chunk partials in list order: per block, then across blocks for global scope.
    for_each_reduction([&]<std::size_t, std::size_t, std::size_t Rr>(const auto& red) {
      using N = std::remove_cvref_t<decltype(red)>;
      if constexpr (block_reduction_at<N, D>) {
        using Op = typename N::op_type;
        double total = 0;
        for (std::size_t b = 0; b < this->blocks_.size(); ++b) {
          double acc = 0;
          for (std::size_t c = this->wl_.first_chunk(b); c < this->wl_.first_chunk(b + 1); ++c)
            acc = Op::combine(acc, this->partials_[c * nr + Rr]);
          this->reductions_[b * nr + Rr] = acc;
          total = Op::combine(total, acc);
        }
        if constexpr (std::is_same_v<typename N::scope, expr::all_blocks>)
          for (std::size_t b = 0; b < this->blocks_.size(); ++b)
            this->reductions_[b * nr + Rr] = total;
      }
    });
  }

  // ---- lines (node.hpp): per-row and per-column reductions, slots and values ------------------

  // The line reductions of depth D. Each block is cut into parts of about one chunk each (so
  // one big matrix keeps every thread busy); a part sums whole rows (slices), or whole columns
  // over every row, each in a fixed order, so the result is the same for any thread count.
  // With the guard (guard_in_lines), a part that reads a non-finite gradient entry flags every
  // chunk of its block, which first_bad_chunk() then scans for the first bad index.
  template <int D>
  void line_pass() {
    // (The guarded variant is compiled only where it can run, as in reduction_pass.)
    constexpr bool guarded = D == 0 && guard_in_lines;
    if (guard_ && guarded) {
      line_bad_.assign(line_tasks_.size(), 0);
      exec_.for_each_task(line_tasks_.size(),
                          [&](std::size_t t) { line_bad_[t] = !line_block<D, guarded>(line_tasks_[t]); });
      for (std::size_t t = 0; t < line_tasks_.size(); ++t)
        if (line_bad_[t])
          for (std::size_t c = wl_.first_chunk(line_tasks_[t].block);
               c < wl_.first_chunk(line_tasks_[t].block + 1); ++c)
            chunk_bad_[c] = 1;
    } else {
      exec_.for_each_task(line_tasks_.size(), [&](std::size_t t) { line_block<D, false>(line_tasks_[t]); });
    }
  }

  // Whether every gradient entry the part read was finite (checked only with Guard).
  template <int D, bool Guard>
  [[gnu::flatten]] bool line_block(const line_task& task) {
    using VD = kernel::batch<double>;
    const std::size_t b = task.block;
    const auto step_v = step_vectors();
    const chunk_frame f = frame(b, step_v.data());
    finite_check<T> check;
    const std::size_t rows = line_count(b, expr::rows_line), cols = line_count(b, expr::cols_line);
    for_each_reduction([&]<std::size_t S, std::size_t B, std::size_t>(const auto& red) {
      using N = std::remove_cvref_t<decltype(red)>;
      if constexpr (line_reduction_at<N, D>) {
        using Op = typename N::op_type;
        using O = typename N::offsets;
        std::vector<double>& out = this->line_red_[b * program_type::n_block_scalars + B];
        auto operand = [&]<class V, bool Tail>(std::size_t i, std::size_t n) {
          auto c = evaluate_group<V, reads_matrices<D>, Tail>(f, i, n);
          if constexpr (Guard)
            check.add(c.grad);
          return past_tail<Tail>(expr::evaluate<S + O::step[0], B + O::block[0]>(expr::get<0>(red.kids), c),
                                 n);
        };
        if constexpr (N::line != expr::cols_line) {
          // A row is a slice of `cols` entries.
          const std::size_t len = N::line == expr::slices_line ? this->line_len_[B] : cols;
          const auto [first, last] = this->lines_of_part(out.size(), task);
          for (std::size_t r = first; r < last; ++r) {
            VD acc(0.0);
            kernel::chunk_loop<T>(r * len, (r + 1) * len,
                                  [&]<class V, bool Tail>(std::size_t i, std::size_t n) {
                                    const V x = operand.template operator()<V, Tail>(i, n);
                                    for (const VD& xd : kernel::widen<T>(x))
                                      acc = Op::accumulate(acc, xd);
                                  });
            out[r] = Op::finish(acc);
          }
        } else {
          const auto [first, last] = this->lines_of_part(cols, task);
          std::fill(out.begin() + static_cast<std::ptrdiff_t>(first),
                    out.begin() + static_cast<std::ptrdiff_t>(last), 0.0);
          for (std::size_t r = 0; r < rows; ++r)
            kernel::chunk_loop<T>(
              r * cols + first, r * cols + last, [&]<class V, bool Tail>(std::size_t i, std::size_t n) {
                const V x = operand.template operator()<V, Tail>(i, n);
                double* acc = out.data() + (i - r * cols);
                if constexpr (!Tail) {
                  std::size_t k = 0;
                  for (const VD& xd : kernel::widen<T>(x)) {
                    Op::accumulate(VD::load_unaligned(acc + k), xd).store_unaligned(acc + k);
                    k += VD::size;
                  }
                } else {
                  // (Only the tail's own columns: the next ones are another part's.)
                  alignas(64) T xs[V::size];
                  kernel::store(+xs, x);
                  for (std::size_t k = 0; k < n; ++k)
                    acc[k] = Op::accumulate(acc[k], static_cast<double>(xs[k]));
                }
              });
        }
      }
    });
    return check.finite();
  }

  // Block b's lines, after its per-block scalars (block_host_ holds them): first the new
  // values of its per-line slots, in dependency order and rounded to their dtype, then every
  // other line the rule reads, each into its table (by per-block offset).
  void compute_line_tables(std::size_t b) {
    constexpr std::size_t nbs = program_type::n_block_scalars;
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (
        [&] {
          if constexpr (line_slot<K> != expr::not_a_line) {
            using S = typename program_type::template slot_storage_t<K, T>;
            constexpr std::size_t Bk = program_type::block_offset[K];
            auto& news = this->line_news_[K * this->blocks_.size() + b];
            auto& table = this->line_T_[b * nbs + Bk];
            for (std::size_t l = 0; l < news.size(); ++l) {
              const double v = line_value_host<program_type::step_offset[K], Bk, program_type::red_offset[K]>(
                expr::get<K>(roots_), b, l);
              news[l] = static_cast<double>(static_cast<S>(v));
              table[l] = static_cast<T>(news[l]);
            }
          }
        }(),
        ...);
    }
    (std::make_index_sequence<n_slots>{});
    // Every line node, inner ones too: the operand of a line reduction (the norm of
    // O / sqrt(V) per slice, with V per row) reads its own lines from their tables.
    for_roots([&]<std::size_t R>(const auto& root) {
      if constexpr (!line_slot_root<R>)
        expr::visit_each<expr::is_line_node, program_type::step_offset[R], program_type::block_offset[R],
                         program_type::red_offset[R]>(
          root, [&]<std::size_t S, std::size_t B, std::size_t Rr>(const auto& node) {
            auto& table = this->line_T_[b * nbs + B];
            for (std::size_t l = 0; l + line_pad < table.size(); ++l)
              table[l] = static_cast<T>(line_value_host<S, B, Rr>(node, b, l));
          });
    });
  }

  // The value of a line subtree at line l of block b, in double, on the host.
  template <std::size_t S, std::size_t B, std::size_t R, class N>
  double line_value_host(const N& n, std::size_t b, std::size_t l) const {
    constexpr std::size_t nbs = program_type::n_block_scalars;
    if constexpr (N::level == 0) {
      if constexpr (N::is_inline)
        return n.hoist_value(expr::host_ctx{});
      else
        return step_host_[S];
    } else if constexpr (N::level == 1) {
      return block_host_[B];
    } else if constexpr (expr::is_reduce_node<N>::value) {
      return line_red_[b * nbs + B][l];
    } else if constexpr (expr::is_state_node_v<N>) {
      return line_news_[program_type::template index_of<N::name> * blocks_.size() + b][l];
    } else if constexpr (expr::is_line_prev_ref<N>::value) {
      return static_cast<double>(std::get<program_type::template index_of<N::name>>(slots_).at(b)[l]);
    } else {
      using O = typename N::offsets;
      return [&]<std::size_t... I>(std::index_sequence<I...>) {
        return n.op(
          line_value_host<S + O::step[I], B + O::block[I], R + O::red[I]>(expr::get<I>(n.kids), b, l)...);
      }
      (std::make_index_sequence<std::remove_cvref_t<decltype(n.kids)>::size>{});
    }
  }

  void store_line_slots() {
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (
        [&] {
          if constexpr (line_slot<K> != expr::not_a_line) {
            using S = typename program_type::template slot_storage_t<K, T>;
            for (std::size_t b = 0; b < this->blocks_.size(); ++b) {
              const auto& news = this->line_news_[K * this->blocks_.size() + b];
              S* out = std::get<K>(slots_).at(b);
              for (std::size_t l = 0; l < news.size(); ++l)
                out[l] = static_cast<S>(news[l]);
            }
          }
        }(),
        ...);
    }
    (std::make_index_sequence<n_slots>{});
  }

  // A line table's entries past its lines (zeros): a masked tail's lanes past a block's last
  // element read there (evaluate_group).
  static constexpr std::size_t line_pad = kernel::lanes_of<kernel::batch<T>>;

  // Sizes the line tables: one entry per row (column, slice) of each block for every line
  // node (and line_pad more), and per-line slots' shapes. A slice line's length must split every block into
  // whole slices; refused here, by block, before anything is allocated for a step. (A line node reserves a
  // per-block entry: a rule without per-block scalars has no lines, and compiles none of this. The tables
  // themselves are sized by optimizer_core.)
  [[gnu::cold]] void init_lines() {
    constexpr std::size_t nbs = program_type::n_block_scalars;
    if constexpr (nbs > 0)
      for (std::size_t b = 0; b < blocks_.size(); ++b) {
        for_roots([&]<std::size_t R>(const auto& root) {
          // Inside a per-slice slot's update, a term made of the slot's own previous value alone
          // fixes no length: it has the slot's.
          const std::size_t root_len = expr::slice_length(root);
          expr::visit_each<expr::is_line_node, program_type::step_offset[R], program_type::block_offset[R],
                           program_type::red_offset[R]>(
            root, [&]<std::size_t, std::size_t B, std::size_t>(const auto& node) {
              constexpr int line = std::remove_cvref_t<decltype(node)>::line;
              if constexpr (line == expr::slices_line) {
                const std::size_t len = expr::slice_length(node);
                this->line_len_[B] = this->checked_slice(b, len == 0 ? root_len : len);
              }
              const std::size_t n = line_count(b, line, line_len_[B]);
              line_T_[b * nbs + B].assign(n + line_pad, T(0));
              line_red_[b * nbs + B].assign(n, 0.0);
            });
        });
        [&]<std::size_t... K>(std::index_sequence<K...>) {
          (
            [&] {
              if constexpr (line_slot<K> != expr::not_a_line) {
                // The slot's update is the line node at its root's first per-block entry, whose
                // slice length (if a slice line) the visit above has checked.
                const std::size_t n =
                  this->line_count(b, line_slot<K>, this->line_len_[program_type::block_offset[K]]);
                this->line_news_[K * this->blocks_.size() + b].assign(n, 0.0);
                this->line_slot_shapes_[K * this->blocks_.size() + b] = { n };
              }
            }(),
            ...);
        }
        (std::make_index_sequence<n_slots>{});
      }
  }

  // Bytes per parameter all passes of a step move: each read-only pass loads what the update
  // pass loads (parameter, gradient, per-element slots; the matrix stages' scratch after the
  // matrix phase), the pre-pass writes the scratch, the update pass also stores. An upper
  // bound: the compiler drops loads a pass does not use. The matrix phase itself (GEMMs on the
  // scratch) is not counted.
  std::size_t bytes_per_step() const {
    std::size_t element = sizeof(T) + (program_type::reads_grad ? sizeof(T) : 0);
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      ((element += per_block_slot<K> || line_slot<K> != expr::not_a_line
                     ? 0
                     : sizeof(typename program_type::template slot_storage_t<K, T>)),
       ...);
    }
    (std::make_index_sequence<n_slots>{});
    const std::size_t scratch = n_matrices * sizeof(T);
    std::size_t total = bytes_per_param + (n_matrices > 0 ? 2 * scratch + element : 0);
    if (guard_ && !guard_in_reductions && !guard_in_lines && !guard_in_prepass)
      total += sizeof(T);
    auto depth = [&]<int D>() {
      const std::size_t read = element + (D >= 1 ? scratch : 0);
      if constexpr (program_type::template reductions_at < false, D >> 0)
        total += read;
      total += program_type::template reductions_at<true, D> * read; // one sweep per line reduction
    };
    [&]<std::size_t... D>(std::index_sequence<D...>) {
      (depth.template operator()<static_cast<int>(D)>(), ...);
    }
    (std::make_index_sequence<static_cast<std::size_t>(program_type::max_depth + 1)>{});
    return total;
  }

  // How many of the hoisted per-step scalars differ: the same subtree (type and value) written
  // twice in a rule, say a learning rate in two terms, is hoisted twice but counted once here.
  std::size_t distinct_step_scalars() const {
    std::vector<std::pair<std::string_view, double>> seen;
    const expr::host_ctx h{ t_ + 1, nullptr };
    for_roots([&]<std::size_t R>(const auto& root) {
      expr::visit_where<step_scalar_node, program_type::step_offset[R], 0, 0>(
        root, [&]<std::size_t, std::size_t, std::size_t>(const auto& n) {
          const std::pair<std::string_view, double> key{ typeid(n).name(), n.hoist_value(h) };
          if (std::find(seen.begin(), seen.end(), key) == seen.end())
            seen.push_back(key);
        });
    });
    return seen.size();
  }
  template <class N>
  struct step_scalar_node : std::bool_constant<N::level == 0 && !N::is_inline> {};

  // What describe() lists before "update".
  static std::string pass_names() {
    std::string out;
    auto depth = [&]<int D>() {
      const std::string when = D == 0 ? "" : " (depth " + std::to_string(D) + ")";
      if constexpr (program_type::template reductions_at < false, D >> 0)
        out += "reduction" + when + ", ";
      if constexpr (program_type::template reductions_at < true, D >> 0)
        out += "line reduction" + when + ", ";
    };
    depth.template operator()<0>();
    if (n_matrices > 0)
      out += "matrix pre-pass, matrix phase, ";
    [&]<std::size_t... D>(std::index_sequence<D...>) {
      (depth.template operator()<static_cast<int>(D) + 1>(), ...);
    }
    (std::make_index_sequence<static_cast<std::size_t>(program_type::max_depth > 0 ? program_type::max_depth
                                                                                   : 0)>{});
    return out;
  }

  // ---- matrix stages (matrix.hpp) --------------------------------------------------------------

  [[gnu::cold]] void init_matrices(const optimizer_options& opts) {
    if constexpr (program_type::needs_matrix_blocks)
      this->check_matrix_blocks(opts);
    // A map whose settings make no map (Newton-Schulz with no steps) is refused outright.
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (
        [&] {
          if constexpr (requires { std::get<K>(maps_).check_settings(); }) {
            const std::string problem = std::get<K>(maps_).check_settings();
            if (!problem.empty())
              throw usage_error(problem + " (the optimizer was not built)");
          }
        }(),
        ...);
    }
    (std::make_index_sequence<n_matrices>{});
    // A map that takes only some shapes (stacked slices) says which it refuses, by block.
    for (std::size_t b = 0; b < blocks_.size(); ++b)
      [&]<std::size_t... K>(std::index_sequence<K...>) {
        (
          [&] {
            const auto& map = std::get<K>(maps_);
            if constexpr (requires { map.check_block(std::size_t{}, std::size_t{}); }) {
              const std::string problem = map.check_block(static_cast<std::size_t>(this->dims_[b].rows),
                                                          static_cast<std::size_t>(this->dims_[b].cols));
              if (!problem.empty())
                throw error(this->blocks_[b].name,
                            "the rule's matrix stage cannot take this block: " + problem);
            }
          }(),
          ...);
      }
    (std::make_index_sequence<n_matrices>{});
    for (auto& sb : scratch_)
      sb.lay_out(blocks_, T(0));
    // One task per block, or per piece of a map that splits blocks (a stacked block's slices);
    // largest first, so the dynamic schedule ends with small tasks (LPT).
    for (std::size_t b = 0; b < blocks_.size(); ++b)
      [&]<std::size_t... K>(std::index_sequence<K...>) {
        (
          [&] {
            const auto& map = std::get<K>(maps_);
            std::size_t pieces = 1;
            if constexpr (requires { map.pieces(std::size_t{}, std::size_t{}); })
              pieces = map.pieces(static_cast<std::size_t>(this->dims_[b].rows),
                                  static_cast<std::size_t>(this->dims_[b].cols));
            for (std::size_t p = 0; p < pieces; ++p)
              this->matrix_tasks_.push_back({ K, b, p, this->blocks_[b].size / pieces });
          }(),
          ...);
      }
    (std::make_index_sequence<n_matrices>{});
    this->order_matrix_tasks();
  }

  // Read-only pass: each matrix stage's operand, per element, into its scratch arena (and the
  // guard, when no reduction pass ran before it).
  template <bool Guard>
  [[gnu::flatten]] void prepass_chunk(std::size_t ci) {
    const kernel::chunk& ch = wl_[ci];
    const auto step_v = step_vectors();
    const chunk_frame f = frame(ch.block, step_v.data());
    finite_check<T> check;
    kernel::chunk_loop<T>(ch.begin, ch.end, [&]<class V, bool Tail>(std::size_t i, std::size_t n) {
      auto c = evaluate_group<V, false, Tail>(f, i, n);
      if constexpr (Guard)
        check.add(c.grad);
      for_each_node<expr::is_matrix_node>([&]<std::size_t S, std::size_t B, std::size_t>(const auto& m) {
        using M = std::remove_cvref_t<decltype(m)>;
        const V x = expr::evaluate<S, B>(expr::get<0>(m.kids), c);
        kernel::store_group<Tail>(f.mats[program_type::template matrix_index<M>] + i, x, n);
      });
    });
    if constexpr (Guard)
      chunk_bad_[ci] = !check.finite();
  }
  void matrix_prepass() {
    // (As in reduction_pass: the guarded loop exists only where the guard rides on this pass.)
    if (guard_ && guard_in_prepass)
      exec_.for_each_chunk(wl_, [&](std::size_t ci) { prepass_chunk<guard_in_prepass>(ci); });
    else
      exec_.for_each_chunk(wl_, [&](std::size_t ci) { prepass_chunk<false>(ci); });
  }

  void run_matrix_task(std::size_t t) {
    const auto [k, b, piece, size] = matrix_tasks_[t];
    // A NaN or Inf anywhere in a block (piece) would spread through every entry of its map (one
    // GEMM mixes them all). Nothing has been written yet, so the step can still be refused whole.
    const T* in = scratch_[k].at(b);
    for (std::size_t i = piece * size; i < (piece + 1) * size; ++i)
      if (!std::isfinite(in[i]))
        throw error(blocks_[b].name,
                    "the operand of a matrix stage has a non-finite entry (NaN or Inf in the "
                    "gradient or the state) at flat index " +
                      std::to_string(i) + "; the step was refused and parameters and state are unchanged");
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (
        [&] {
          if (K != k)
            return;
          const auto& map = std::get<K>(maps_);
          const auto rows = static_cast<std::size_t>(this->dims_[b].rows),
                     cols = static_cast<std::size_t>(this->dims_[b].cols);
          if constexpr (requires { map.pieces(rows, cols); })
            map.apply_piece(scratch_[K].at(b), rows, cols, piece);
          else
            map.apply(scratch_[K].at(b), rows, cols);
        }(),
        ...);
    }
    (std::make_index_sequence<n_matrices>{});
  }

  // Each block's map. Deterministic (the default), or enough blocks to share: blocks in parallel
  // over TBB, BLAS on the calling thread, so every block's products are the same single-threaded
  // calls for any thread count (bitwise the same results). Otherwise (fewer blocks than threads,
  // optimizer_options::deterministic off): one block at a time, BLAS threaded, whose blocking
  // and so rounding depend on the thread count.
  void matrix_phase() {
    const std::size_t n = matrix_tasks_.size();
    if (deterministic_ || (exec_.threads() > 1 && n >= static_cast<std::size_t>(exec_.threads()))) {
      kernel::blas::thread_limit one(1);
      exec_.for_each_task(n, [&](std::size_t t) { run_matrix_task(t); });
    } else {
      kernel::blas::thread_limit own(exec_.threads());
      for (std::size_t t = 0; t < n; ++t)
        run_matrix_task(t);
    }
  }

  template <class Seq>
  struct slot_tuple;
  template <std::size_t... K>
  struct slot_tuple<std::index_sequence<K...>> {
    using type = std::tuple<slot_buffer<typename program_type::template slot_storage_t<K, T>>...>;
  };

  typename program_type::roots_t roots_;
  typename program_type::matrix_maps_t maps_;
  std::array<slot_buffer<T>, n_matrices> scratch_;
  typename slot_tuple<std::make_index_sequence<n_slots>>::type slots_;
};

// The constructors and the two halves of a step are defined outside the class, so they are not
// inline: a unit that declares optimizer<Rule, T> `extern template` (steep::compiled,
// steep/compiled/instance.hpp) then compiles none of the passes they reach. Defined in the
// class, GCC instantiates them in such a unit anyway, to inline them when optimizing: the
// catalogue unit took 32 s that way against 11 s (docs/compile-time.md, "The compiled catalogue").
template <class Rule, class T>
optimizer<Rule, T>::optimizer(Rule rule, param_store<T>& store, optimizer_options opts)
  : optimizer(program_type::make_roots(rule, [](const auto& hp) { check_hyper(hp, hp.value); }), store,
              opts) {}

template <class Rule, class T>
optimizer<Rule, T>::optimizer(typename program_type::compiled rule, param_store<T>& store,
                              const optimizer_options& opts)
  : core(store, opts,
         { n_slots, program_type::n_step_scalars, program_type::n_block_scalars, program_type::n_reductions,
           program_type::reads_grad, coordinatewise })
  , roots_(std::move(rule.roots))
  , maps_(program_type::make_matrix_maps(roots_)) {
  if constexpr (n_matrices > 0)
    init_matrices(opts);
  init_lines();
  [&]<std::size_t... K>(std::index_sequence<K...>) {
    (this->lay_out_slot(std::get<K>(slots_), K, per_block_slot<K> ? -1 : line_slot<K>, rule.inits[K]), ...);
  }
  (std::make_index_sequence<n_slots>{});
}

template <class Rule, class T>
std::optional<nonfinite_entry> optimizer<Rule, T>::prepare_step() {
  require_live_store(store_alive_);
  const std::int64_t t = t_ + 1;
  expr::host_ctx h{ t, nullptr };
  for_roots([&]<std::size_t R>(const auto& root) {
    expr::fill_step_table<program_type::step_offset[R]>(root, step_host_.data(), h);
  });
  for (std::size_t i = 0; i < step_host_.size(); ++i)
    step_T_[i] = static_cast<T>(step_host_[i]);
  // The guard rides on the first read-only pass there is, or runs alone.
  constexpr bool lines0 = program_type::template reductions_at < true, 0 >> 0;
  if constexpr (guard_in_reductions)
    reduction_pass<0>();
  else if constexpr (guard_in_lines)
    line_pass<0>();
  else if constexpr (!guard_in_prepass)
    if (guard_)
      this->guard_pass();
  if constexpr (!guard_in_prepass)
    if (auto bad = this->first_bad_chunk())
      return bad;
  if constexpr (lines0 && !guard_in_lines)
    line_pass<0>();
  // Per-block scalars and lines: all of them now, and again after each later pass (before it,
  // nothing that runs reads those that need it: the compiler's depths see to that).
  fill_block_scalars(h);
  if constexpr (n_matrices > 0) {
    matrix_prepass();
    if constexpr (guard_in_prepass)
      if (auto bad = this->first_bad_chunk())
        return bad;
    matrix_phase();
  }
  [&]<std::size_t... D>(std::index_sequence<D...>) { (later_passes<static_cast<int>(D) + 1>(h), ...); }
  (std::make_index_sequence<static_cast<std::size_t>(program_type::max_depth > 0 ? program_type::max_depth
                                                                                 : 0)>{});
  return std::nullopt;
}

template <class Rule, class T>
void optimizer<Rule, T>::commit_step() {
  require_live_store(store_alive_);
  held_.reset();
  if (policy_ != nonfinite_policy::off) {
    update_pass<true>();
    held_ = this->held_entries(&program_type::slot_name);
  } else
    update_pass<false>();
  store_block_slots();
  store_line_slots();
  ++t_;
}

template <class Rule, class T>
optimizer(Rule, param_store<T>&) -> optimizer<Rule, T>;
template <class Rule, class T>
optimizer(Rule, param_store<T>&, optimizer_options) -> optimizer<Rule, T>;

} // namespace steep::engine
