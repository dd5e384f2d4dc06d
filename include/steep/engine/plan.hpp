#pragma once
// step_plan<State>: the order of one step's passes (docs/design.md, "The plan of one step"), and
// its accounting: the passes and bytes a step moves, as describe() reports them.
//
//   prepare(s)   read-only: per-step scalars; the guard (fused into the first read-only pass there
//                is, or alone); depth-0 reductions and lines; per-block scalars and lines; then
//                for each depth D >= 1: matrix phase D (its pre-pass, then its maps), depth D's
//                reductions and lines, and the per-block scalars again. Returns the first
//                non-finite gradient entry.
//   commit(s)    the update pass, then the per-block and per-line slots; counts the step.
//
// Nothing is written before commit, so a refused step leaves every parameter and slot bitwise as
// it was, and a routed rule can prepare all its arms before any of them commits.

#include "steep/core/param_store.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/passes/lines.hpp"
#include "steep/engine/passes/matrix_phase.hpp"
#include "steep/engine/passes/reduction.hpp"
#include "steep/engine/passes/update.hpp"
#include "steep/engine/slot_set.hpp"
#include "steep/expr/program.hpp"
#include "steep/expr/sliced_state.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

namespace steep::engine::detail {

// A per-step scalar that is not finite (outside step_plan: the same for every rule, so compiled
// once per unit, not once per rule).
[[noreturn, gnu::cold, gnu::noinline]] inline void nonfinite_step_scalar(std::int64_t t, double v) {
  throw usage_error(
    "step " + std::to_string(t) + ": a per-step scalar of the rule (its learning-rate schedule, or " +
    "a term of its hyperparameters at this step) is " + std::to_string(v) + "; nothing was written");
}

template <class State>
struct step_plan {
  using P = typename State::program_type;
  using T = typename State::value_type;
  using guard = guard_plan<P>;
  static constexpr std::size_t n_matrices = P::n_matrices;
  // The depths after matrix phase 1: 1 .. max(max_depth, the last matrix phase); depth D >= 2 runs
  // matrix phase D first (expr/phases.hpp).
  static constexpr std::size_t phases_run = P::matrix_phases_run;
  static constexpr std::size_t later_depths =
    static_cast<std::size_t>(std::max({ P::max_depth, P::n_matrix_phases, 0 }));

  static std::optional<nonfinite_entry> prepare(State& s) {
    require_live_store(s.store_alive_);
    s.clear_block_holds();
    const std::int64_t t = s.t_ + 1;
    expr::host_ctx h{ t, nullptr };
    s.for_roots([&]<std::size_t R>(const auto& root) {
      expr::fill_step_table<P::step_offset[R]>(root, s.step_host_.data(), h);
    });
    for (std::size_t i = 0; i < s.step_host_.size(); ++i) {
      // A user's schedule (expr::schedule(f)) is checked here, at each step: a NaN rate would
      // hold back every coordinate of every step and never say why.
      if (!std::isfinite(s.step_host_[i])) [[unlikely]]
        nonfinite_step_scalar(t, s.step_host_[i]);
      s.step_T_[i] = static_cast<T>(s.step_host_[i]);
    }
    // The guard rides on the first read-only pass there is, or runs alone.
    constexpr bool lines0 = P::template reductions_at < true, 0 >> 0;
    if constexpr (guard::in_reductions)
      reduction_pass<State>::template run<0>(s);
    else if constexpr (guard::in_lines)
      line_pass<State>::template run<0>(s);
    else if constexpr (!guard::in_prepass)
      if (s.guard_)
        s.guard_pass(s);
    if constexpr (!guard::in_prepass)
      if (auto bad = s.first_bad_chunk(s))
        return bad;
    if constexpr (lines0 && !guard::in_lines)
      line_pass<State>::template run<0>(s);
    // Per-block scalars and lines: all of them now, and again after each later pass (before it,
    // nothing that runs reads those that need it: the compiler's depths see to that).
    fill_block_scalars(s, h);
    if constexpr (P::template matrices_in_phase < 1 >> 0) {
      matrix_phase<State>::template prepass<1>(s);
      if constexpr (guard::in_prepass)
        if (auto bad = s.first_bad_chunk(s))
          return bad;
      matrix_phase<State>::template run<1>(s);
    }
    [&]<std::size_t... D>(std::index_sequence<D...>) { (later_passes<static_cast<int>(D) + 1>(s, h), ...); }
    (std::make_index_sequence<later_depths>{});
    if (s.policy_ != nonfinite_policy::off)
      slot_set<State>::hold_nonfinite_host_slots(s);
    return std::nullopt;
  }

  static void commit(State& s) {
    require_live_store(s.store_alive_);
    s.held_.reset();
    if (s.policy_ != nonfinite_policy::off) {
      update_pass<State>::template run<true>(s);
      s.held_ = s.held_entries(s, &P::slot_name);
    } else
      update_pass<State>::template run<false>(s);
    slot_set<State>::store_host_slots(s);
    if constexpr (n_matrices > 0)
      s.commit_state();
    ++s.t_;
  }

  // ---- accounting (describe()) -----------------------------------------------------------------

  // What describe() lists before "update".
  static std::string pass_names() {
    std::string out;
    auto depth = [&]<int D>() {
      const std::string when = D == 0 ? "" : " (depth " + std::to_string(D) + ")";
      if constexpr (P::template reductions_at < false, D >> 0)
        out += "reduction" + when + ", ";
      if constexpr (P::template reductions_at < true, D >> 0)
        out += "line reduction" + when + ", ";
    };
    auto prepass = [&]<int Ph>() {
      if constexpr (P::template matrices_in_phase < Ph >> 0)
        out +=
          Ph == 1 ? std::string("matrix pre-pass, ") : "matrix pre-pass (phase " + std::to_string(Ph) + "), ";
    };
    depth.template operator()<0>();
    [&]<std::size_t... D>(std::index_sequence<D...>) {
      ((prepass.template operator()<static_cast<int>(D) + 1>(),
        depth.template operator()<static_cast<int>(D) + 1>()),
       ...);
    }
    (std::make_index_sequence<later_depths>{});
    return out;
  }

  // Bytes per parameter all passes of a step move: each read-only pass loads what the update
  // pass loads (parameter, gradient, per-element slots; the matrix stages' scratch after the
  // matrix phase), the pre-pass writes the scratch, the update pass also stores. An upper
  // bound: the compiler drops loads a pass does not use. The matrix phase itself (GEMMs on the
  // scratch) is not counted.
  static std::size_t bytes_per_step(const State& s) {
    std::size_t element = sizeof(T) + (P::reads_grad ? sizeof(T) : 0);
    for_each_slot<P>([&]<std::size_t K>() {
      element += slot_granularity<P, K>::per_element ? sizeof(typename P::template slot_storage_t<K, T>) : 0;
    });
    const std::size_t scratch = n_matrices * sizeof(T);
    // Each matrix phase's pre-pass reads what a pass reads (and, after phase 1, the results so
    // far) and writes its stages' scratch.
    // (A stage over inputs(x, y, ...) has an arena per operand: the pre-pass writes each.)
    const std::size_t written = scratch + P::n_extra_operands * sizeof(T);
    std::size_t total = P::template bytes_per_param<T> + phases_run * (scratch + written + element);
    if (s.guard_ && guard::alone)
      total += sizeof(T);
    auto depth = [&]<int D>() {
      const std::size_t read = element + (D >= 1 ? scratch : 0);
      if constexpr (P::template reductions_at < false, D >> 0)
        total += read;
      total += P::template reductions_at<true, D> * read; // one sweep per line reduction
    };
    [&]<std::size_t... D>(std::index_sequence<D...>) {
      (depth.template operator()<static_cast<int>(D)>(), ...);
    }
    (std::make_index_sequence<static_cast<std::size_t>(P::max_depth + 1)>{});
    return total;
  }

  // How many of the hoisted per-step scalars differ: the same subtree (type and value) written
  // twice in a rule, say a learning rate in two terms, is hoisted twice but counted once here.
  static std::size_t distinct_step_scalars(const State& s) {
    std::vector<std::pair<std::string_view, double>> seen;
    const expr::host_ctx h{ s.t_ + 1, nullptr };
    s.for_roots([&]<std::size_t R>(const auto& root) {
      expr::visit_where<step_scalar_node, P::step_offset[R], 0, 0>(
        root, [&]<std::size_t, std::size_t, std::size_t>(const auto& n) {
          const std::pair<std::string_view, double> key{ typeid(n).name(), n.hoist_value(h) };
          if (std::find(seen.begin(), seen.end(), key) == seen.end())
            seen.push_back(key);
        });
    });
    return seen.size();
  }

  // A readable account of what the compiler made of the rule (Eigen's "debug assign" idea).
  [[gnu::cold]] static std::string describe(const State& s) {
    std::ostringstream os;
    // The passes over memory, as P::passes counts them; the matrix phase is not one (it runs on
    // the pre-pass's scratch, block by block, before the passes of depth >= 1).
    os << "passes: " << P::passes << " (" << pass_names() << "update)"
       << (phases_run > 1 ? ", and " + std::to_string(phases_run) + " matrix phases, each after its pre-pass"
           : n_matrices > 0 ? std::string(", and the matrix phase after the matrix pre-pass")
                            : std::string())
       << "\nslots:";
    for (const auto& slot : slot_set<State>::metas)
      os << ' ' << slot.name << ':' << slot.dtype
         << (slot.granularity != "element" ? " (one per " + std::string(slot.granularity) + ")" : "");
    for (const auto& m : s.map_slots_)
      os << ' ' << m.name << ':' << m.dtype().name << " (a matrix per block, kept by matrix stage " << m.stage
         << ')';
    if (P::n_slots == 0 && s.map_slots_.empty())
      os << " none";
    os << "\nper-step scalars: " << P::n_step_scalars << " (" << distinct_step_scalars(s) << " distinct)"
       << "\nper-block scalars: " << P::n_block_scalars << "\nreductions: " << P::n_reductions
       << "\nmatrix stages: " << n_matrices << stage_shapes(s) << "\nbytes per parameter (update pass): "
       << P::template bytes_per_param<T> << "\nbytes per parameter (every pass of a step, at most): "
       << bytes_per_step(s)
       << (n_matrices > 0 ? ", scratch: " + std::to_string((n_matrices + P::n_extra_operands) * sizeof(T))
                          : std::string())
       << (s.map_slots_.empty() ? std::string()
                                : "\nmatrix-stage state: " + std::to_string(s.map_state_values()) +
                                    " values, " + std::to_string(s.map_state_bytes()) +
                                    " bytes (allocated twice, " + std::to_string(2 * s.map_state_bytes()) +
                                    " bytes: the committed state and a step's new values, which a "
                                    "refused step drops)")
       << "\nblocks: " << s.blocks_.size() << ", chunks: " << s.wl_.size()
       << ", threads: " << s.exec_.threads()
       << (s.wl_.elements() < s.exec_.serial_below() ? " (passes run on the calling thread: serial_below)"
                                                     : "")
       << "\nnon-finite guard: " << guard::text(s.policy_, s.guard_, sizeof(T), dtype_name<T>()) << '\n';
    return os.str();
  }

private:
  // What each matrix stage maps: " (each block)", or " (each 2 x 3 slice)" for a sliced map
  // (expr/matrix.hpp, slices(...)), per stage in order; where a step has several matrix phases,
  // each stage's (" (each block, phase 1; each block, phase 2)").
  static std::string stage_shapes(const State& s) {
    if constexpr (n_matrices == 0) {
      return "";
    } else {
      std::string out = " (";
      [&]<std::size_t... K>(std::index_sequence<K...>) {
        ((out += (K ? (P::n_matrix_phases > 1 ? "; " : ", ") : "") + stage_shape(std::get<K>(s.maps_)) +
                 (P::n_matrix_phases > 1 ? ", phase " + std::to_string(P::matrix_phase[K]) : "")),
         ...);
      }
      (std::make_index_sequence<n_matrices>{});
      return out + ")";
    }
  }
  template <class M>
  static std::string stage_shape(const M&) {
    return "each block";
  }
  template <class M>
  static std::string stage_shape(const expr::sliced_state<M>& m) {
    return "each " + std::to_string(m.slice_rows) + " x " + std::to_string(m.slice_cols) + " slice";
  }
  template <class M>
  static std::string stage_shape(const expr::sliced<M>& m) {
    return "each " + std::to_string(m.slice_rows) + " x " + std::to_string(m.slice_cols) + " slice";
  }

  template <class N>
  struct step_scalar_node : std::bool_constant<N::level == 0 && !N::is_inline> {};

  // Matrix phase D (D >= 2), then the reduction passes of depth D >= 1 and the per-block scalars
  // (when the rule has reductions that deep).
  template <int D>
  static void later_passes(State& s, const expr::host_ctx& h) {
    if constexpr (D >= 2 && P::template matrices_in_phase < D >> 0) {
      matrix_phase<State>::template prepass<D>(s);
      matrix_phase<State>::template run<D>(s);
    }
    if constexpr (D <= P::max_depth) {
      if constexpr (P::template reductions_at < false, D >> 0)
        reduction_pass<State>::template run<D>(s);
      if constexpr (P::template reductions_at < true, D >> 0)
        line_pass<State>::template run<D>(s);
      fill_block_scalars(s, h);
    }
  }

  // Every block's per-block slots and scalars (from this step's reductions), then its lines.
  static void fill_block_scalars(State& s, expr::host_ctx h) {
    if constexpr (P::n_block_scalars > 0) {
      for (std::size_t b = 0; b < s.blocks_.size(); ++b) {
        h.reductions = s.reductions_.data() + b * P::n_reductions;
        h.dims = s.dims_[b];
        slot_set<State>::compute_block_slots(s, b, h);
        s.for_roots([&]<std::size_t R>(const auto& root) {
          expr::fill_block_table<P::block_offset[R], P::red_offset[R]>(root, s.block_host_.data(), h);
        });
        for (std::size_t i = 0; i < s.block_host_.size(); ++i)
          s.block_T_[b * P::n_block_scalars + i] = static_cast<T>(s.block_host_[i]);
        line_pass<State>::compute_tables(s, b);
      }
    }
  }
};

} // namespace steep::engine::detail
