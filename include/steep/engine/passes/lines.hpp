#pragma once
// The line passes: per-row, per-column and per-slice reductions (expr/reduce.hpp), per-line
// slots (expr/state.hpp) and the line tables the loop reads (eval_ctx::line_value).
//
//   NorMuon's v = ema(row_mean(square(O)))   ->  a line pass (depth 1, after the matrix phase)
//                                                 sums each row of O * O, then the host updates v
//                                                 per row and fills the table the update pass reads
//
//   line_pass<State>::run<D>(s);           // every line reduction of depth D, into line_red_
//   line_pass<State>::compute_tables(s, b); // block b's per-line slots and line tables, on the host
//
// Each block is cut into parts of about one chunk each (so one big matrix keeps every thread
// busy); a part sums whole rows (slices), or whole columns over every row, each in a fixed order,
// so the result is the same for any thread count.

#include "steep/engine/eval_ctx.hpp"
#include "steep/engine/guard.hpp"
#include "steep/engine/slot_set.hpp"
#include "steep/engine/tables.hpp"
#include "steep/expr/program.hpp"
#include "steep/kernel/chunk_loop.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace steep::engine::detail {

// The line tables of every rule (compiled once per T).
template <class T>
struct line_tables {
  [[gnu::cold, gnu::noinline]] line_tables(const tables<T>& t, const program_sizes& n) {
    line_T_.resize(t.blocks_.size() * n.block_scalars);
    line_red_.resize(t.blocks_.size() * n.block_scalars);
    line_len_.assign(n.block_scalars + 1, 1);
    line_news_.resize(n.slots * t.blocks_.size());
    line_slot_shapes_.resize(n.slots * t.blocks_.size());
    for (std::size_t b = 0; b < t.blocks_.size(); ++b) {
      const std::size_t parts = std::max<std::size_t>(1, t.blocks_[b].size / t.wl_.chunk_elements());
      for (std::size_t k = 0; k < parts; ++k)
        line_tasks_.push_back({ b, k, parts });
    }
  }
  [[gnu::noinline]] ~line_tables() = default;
  line_tables(line_tables&&) noexcept = default;
  line_tables& operator=(line_tables&&) noexcept = default;

  struct line_task {
    std::size_t block, part, parts;
  };
  // Part `part` of `parts` of n lines: [begin, end).
  static std::pair<std::size_t, std::size_t> lines_of_part(std::size_t n, const line_task& t) {
    return { n * t.part / t.parts, n * (t.part + 1) / t.parts };
  }

  std::vector<shape_t> line_slot_shapes_;      // [slot][block]: a per-line slot's shape, (its lines)
  std::vector<std::size_t> line_len_;          // [per-block offset]: a slice line's slice length
  std::vector<std::uint8_t> line_bad_;         // [line task]: it read a non-finite gradient entry (guard)
  std::vector<line_task> line_tasks_;          // the line passes' tasks: each block in parts of about a chunk
  std::vector<std::vector<T>> line_T_;         // [block][per-block offset]: a line's values, for the loop
  std::vector<std::vector<double>> line_red_;  // [block][per-block offset]: a line reduction's results
  std::vector<std::vector<double>> line_news_; // [slot][block]: per-line slots' new values until commit
};

template <class State>
struct line_pass {
  using P = typename State::program_type;
  using T = typename State::value_type;
  using E = evaluator<State>;
  template <std::size_t K>
  using G = slot_granularity<P, K>;
  static constexpr std::size_t nbs = P::n_block_scalars;

  // The line reductions of depth D. With the guard (guard_plan::in_lines), a part that reads a
  // non-finite gradient entry flags every chunk of its block, which first_bad_chunk() then
  // scans for the first bad index.
  template <int D>
  static void run(State& s) {
    // (The guarded variant is compiled only where it can run, as in reduction_pass.)
    constexpr bool guarded = D == 0 && guard_plan<P>::in_lines;
    if (s.guard_ && guarded) {
      s.line_bad_.assign(s.line_tasks_.size(), 0);
      s.exec_.for_each_task(s.line_tasks_.size(),
                            [&](std::size_t t) { s.line_bad_[t] = !block<D, guarded>(s, s.line_tasks_[t]); });
      for (std::size_t t = 0; t < s.line_tasks_.size(); ++t)
        if (s.line_bad_[t])
          for (std::size_t c = s.wl_.first_chunk(s.line_tasks_[t].block);
               c < s.wl_.first_chunk(s.line_tasks_[t].block + 1); ++c)
            s.chunk_bad_[c] = 1;
    } else {
      s.exec_.for_each_task(s.line_tasks_.size(),
                            [&](std::size_t t) { block<D, false>(s, s.line_tasks_[t]); });
    }
  }

  // One part of a block. Whether every gradient entry the part read was finite (checked only
  // with Guard).
  template <int D, bool Guard>
  [[gnu::flatten]] static bool block(State& s, const typename State::line_task& task) {
    using VD = kernel::batch<double>;
    const std::size_t b = task.block;
    const auto step_v = E::step_vectors(s);
    const typename E::chunk_frame f = E::frame(s, b, step_v.data());
    finite_check<T> check;
    const std::size_t rows = s.line_count(b, expr::rows_line), cols = s.line_count(b, expr::cols_line);
    s.for_each_reduction([&]<std::size_t S, std::size_t B, std::size_t>(const auto& red) {
      using N = std::remove_cvref_t<decltype(red)>;
      if constexpr (E::template line_reduction_at<N, D>) {
        using Op = typename N::op_type;
        using O = typename N::offsets;
        std::vector<double>& out = s.line_red_[b * nbs + B];
        auto operand = [&]<class V, bool Tail>(std::size_t i, std::size_t n) {
          auto c = E::template evaluate_group<V, E::template reads_matrices<D>, Tail>(s, f, i, n);
          if constexpr (Guard)
            check.add(c.grad);
          return E::template past_tail<Tail>(
            expr::evaluate<S + O::step[0], B + O::block[0]>(expr::get<0>(red.kids), c), n);
        };
        if constexpr (N::line != expr::cols_line) {
          // A row is a slice of `cols` entries.
          const std::size_t len = N::line == expr::slices_line ? s.line_len_[B] : cols;
          const auto [first, last] = s.lines_of_part(out.size(), task);
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
          const auto [first, last] = s.lines_of_part(cols, task);
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
  static void compute_tables(State& s, std::size_t b) {
    static_assert(expr::line_context<host_line>);
    for_each_slot<P>([&]<std::size_t K>() {
      if constexpr (G<K>::per_line) {
        using St = typename P::template slot_storage_t<K, T>;
        constexpr std::size_t Bk = P::block_offset[K];
        auto& news = s.line_news_[K * s.blocks_.size() + b];
        auto& table = s.line_T_[b * nbs + Bk];
        for (std::size_t l = 0; l < news.size(); ++l) {
          const double v = value_host<P::step_offset[K], Bk>(s, expr::get<K>(s.roots_), b, l);
          news[l] = static_cast<double>(static_cast<St>(v));
          table[l] = static_cast<T>(news[l]);
        }
      }
    });
    // Every line node, inner ones too: the operand of a line reduction (the norm of
    // O / sqrt(V) per slice, with V per row) reads its own lines from their tables.
    s.for_roots([&]<std::size_t R>(const auto& root) {
      if constexpr (!line_slot_root<R>)
        expr::visit_each<expr::is_line_node, P::step_offset[R], P::block_offset[R], P::red_offset[R]>(
          root, [&]<std::size_t S, std::size_t B, std::size_t>(const auto& node) {
            auto& table = s.line_T_[b * nbs + B];
            for (std::size_t l = 0; l + line_pad < table.size(); ++l)
              table[l] = static_cast<T>(value_host<S, B>(s, node, b, l));
          });
    });
  }

  // What a line subtree reads at line l of block b, on the host, in double: the scalars' host
  // tables, this line's reductions and the per-line slots (new values as computed so far in
  // dependency order, old ones from the slot). expr::evaluate computes the rest.
  struct host_line {
    using value_type = double;
    static constexpr bool computes_lines = true;
    const State& s;
    std::size_t b, l;
    template <std::size_t S>
    double step_scalar() const {
      return s.step_host_[S];
    }
    template <std::size_t B>
    double block_scalar() const {
      return s.block_host_[B];
    }
    template <std::size_t B>
    double line_reduction() const {
      return s.line_red_[b * nbs + B][l];
    }
    template <fixed_string Name>
    double new_value() const {
      return s.line_news_[P::template index_of<Name> * s.blocks_.size() + b][l];
    }
    template <fixed_string Name>
    double old_value() const {
      return static_cast<double>(std::get<P::template index_of<Name>>(s.slots_).at(b)[l]);
    }
  };
  template <std::size_t S, std::size_t B, class N>
  static double value_host(const State& s, const N& n, std::size_t b, std::size_t l) {
    return expr::evaluate<S, B>(n, host_line{ s, b, l });
  }

  // A line table's entries past its lines (zeros): a masked tail's lanes past a block's last
  // element read there (evaluator::evaluate_group).
  static constexpr std::size_t line_pad = kernel::lanes_of<kernel::batch<T>>;

  // Sizes the line tables: one entry per row (column, slice) of each block for every line
  // node (and line_pad more), and per-line slots' shapes. A slice line's length must split every
  // block into whole slices; refused here, by block, before anything is allocated for a step. (A
  // line node reserves a per-block entry: a rule without per-block scalars has no lines, and
  // compiles none of this.)
  [[gnu::cold]] static void init(State& s) {
    if constexpr (nbs > 0)
      for (std::size_t b = 0; b < s.blocks_.size(); ++b) {
        s.for_roots([&]<std::size_t R>(const auto& root) {
          // Inside a per-slice slot's update, a term made of the slot's own previous value alone
          // fixes no length: it has the slot's.
          const std::size_t root_len = expr::slice_length(root);
          expr::visit_each<expr::is_line_node, P::step_offset[R], P::block_offset[R], P::red_offset[R]>(
            root, [&]<std::size_t, std::size_t B, std::size_t>(const auto& node) {
              constexpr int line = std::remove_cvref_t<decltype(node)>::line;
              if constexpr (line == expr::slices_line) {
                const std::size_t len = expr::slice_length(node);
                s.line_len_[B] = s.checked_slice(b, len == 0 ? root_len : len);
              }
              const std::size_t n = s.line_count(b, line, s.line_len_[B]);
              s.line_T_[b * nbs + B].assign(n + line_pad, T(0));
              s.line_red_[b * nbs + B].assign(n, 0.0);
            });
        });
        for_each_slot<P>([&]<std::size_t K>() {
          if constexpr (G<K>::per_line) {
            // The slot's update is the line node at its root's first per-block entry, whose
            // slice length (if a slice line) the visit above has checked.
            const std::size_t n = s.line_count(b, G<K>::line, s.line_len_[P::block_offset[K]]);
            s.line_news_[K * s.blocks_.size() + b].assign(n, 0.0);
            s.line_slot_shapes_[K * s.blocks_.size() + b] = { n };
          }
        });
      }
  }

private:
  // Whether root R is the update of a per-line slot.
  template <std::size_t R>
  static constexpr bool line_slot_root = [] {
    if constexpr (R < P::n_slots)
      return slot_granularity<P, R>::per_line;
    else
      return false;
  }();
};

} // namespace steep::engine::detail
