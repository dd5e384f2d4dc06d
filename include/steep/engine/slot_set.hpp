#pragma once
// slot_set<State>: a rule's state slots as the engine keeps them, and granularity as one policy.
// A slot holds one value per element (the update pass loads and stores it), per block (expr/
// state.hpp: updated on the host once per block, a per-block scalar to the loop) or per line: per
// row, column or slice (updated on the host per line, a line table to the loop).
//
//   using G = detail::slot_granularity<program<Rule>, 1>;   // G::per_element, G::name: "row", ...
//   detail::slot_set<State>::metas;                          // slots(): name, dtype, granularity
//   s.state<float>("W", "exp_avg");                          // a view of one block's slot (part.hpp)
//
// Every other room asks this one what a slot is (slot_granularity) and walks the slots with
// for_each_slot, so a new granularity is one more case here and its pass (engine/passes/).
// Per-element slots are stored by the update pass (engine/passes/update.hpp), the others here,
// at commit, from the new values the host computed while preparing the step.

#include "steep/core/param_store.hpp"
#include "steep/core/shape.hpp"
#include "steep/engine/slots.hpp"
#include "steep/expr/degree.hpp"
#include "steep/expr/program.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace steep::engine::detail {

// Slot K of program P: what it holds one value per.
template <class P, std::size_t K>
struct slot_granularity {
  static constexpr bool per_block = P::template slot_t<K>::per_block;
  // rows_line, cols_line or slices_line for a per-line slot, not_a_line otherwise.
  static constexpr int line = P::template slot_t<K>::line;
  static constexpr bool per_line = line != expr::not_a_line;
  // One value per element, loaded and stored by the update pass.
  static constexpr bool per_element = !per_block && !per_line;
  static constexpr std::string_view name = per_block                   ? "block"
                                           : line == expr::rows_line   ? "row"
                                           : line == expr::cols_line   ? "column"
                                           : line == expr::slices_line ? "slice"
                                                                       : "element";
};

// f.template operator()<K>() for every slot K of P, in slot (evaluation) order. (The fold is a
// member of a class over P's indices, not a lambda inside for_each_slot: one function fewer
// instantiated per walk of each rule, docs/compile-time.md.)
template <class P, class Seq = std::make_index_sequence<P::n_slots>>
struct each_slot;
template <class P, std::size_t... K>
struct each_slot<P, std::index_sequence<K...>> {
  template <class F>
  static void run(F&& f) {
    (f.template operator()<K>(), ...);
  }
};
template <class P, class F>
[[gnu::always_inline]] inline void for_each_slot(F&& f) {
  each_slot<P>::run(f);
}

// One arena per slot, in its storage dtype.
template <class P, class T, class Seq = std::make_index_sequence<P::n_slots>>
struct slot_tuple;
template <class P, class T, std::size_t... K>
struct slot_tuple<P, T, std::index_sequence<K...>> {
  using type = std::tuple<slot_buffer<typename P::template slot_storage_t<K, T>>...>;
};

// What the slots need whatever the rule (compiled once per T).
template <class T>
struct slot_tables {
  [[gnu::cold, gnu::noinline]] slot_tables(std::size_t blocks, std::size_t slots) {
    block_news_.assign(blocks * slots, 0.0);
  }
  [[gnu::noinline]] ~slot_tables() = default;
  slot_tables(slot_tables&&) noexcept = default;
  slot_tables& operator=(slot_tables&&) noexcept = default;

  // Lays out a slot's arena, every entry `init`: one value per element of each block (line
  // not_a_line), one per block (line -1), or one per line of each block (`line_shapes`, [block]).
  // Per storage type, not per slot of each rule.
  template <class S>
  [[gnu::cold, gnu::noinline]] static void lay_out_slot(slot_buffer<S>& sb,
                                                        const std::vector<block<T>>& blocks,
                                                        const shape_t* line_shapes, int line, double init) {
    if (line < 0) {
      sb.lay_out_per_block(blocks.size(), static_cast<S>(init));
    } else if (line != expr::not_a_line) {
      std::vector<std::size_t> counts;
      for (std::size_t b = 0; b < blocks.size(); ++b)
        counts.push_back(line_shapes[b][0]);
      sb.lay_out_counts(counts, static_cast<S>(init));
    } else {
      sb.lay_out(blocks, static_cast<S>(init));
    }
  }

  std::vector<double> block_news_; // per-block slots' new values, [block][slot], until commit
  std::size_t host_block_ = 0;     // the block compute_block_slots() is evaluating
  shape_t one_value_ = { 1 };      // the shape state() gives a per-block slot
};

// The slots of engine_state State (engine/state.hpp): its slots_ tuple, tables and line tables.
template <class State>
struct slot_set {
  using P = typename State::program_type;
  using T = typename State::value_type;
  template <std::size_t K>
  using G = slot_granularity<P, K>;
  template <std::size_t K>
  using storage_t = typename P::template slot_storage_t<K, T>;

  // Lays out every slot, slot K's entries all inits[K]. Per-line slots after the line tables
  // (passes/lines.hpp: init), which size them.
  template <class Inits>
  [[gnu::cold, gnu::noinline]] static void lay_out(State& s, const Inits& inits) {
    for_each_slot<P>([&]<std::size_t K>() {
      s.lay_out_slot(std::get<K>(s.slots_), s.blocks_, s.line_slot_shapes_.data() + K * s.blocks_.size(),
                     G<K>::per_block ? -1 : G<K>::line, inits[K]);
      s.add_slot(metas[K], std::get<K>(s.slots_), G<K>::per_block, G<K>::line);
    });
  }

  // What the rule's type says of its slots, in slot order (name, dtype, granularity, degree).
  static constexpr auto metas = []<std::size_t... K>(std::index_sequence<K...>) {
    return std::array<slot_meta, sizeof...(K)>{ slot_meta{
      P::slot_name(K), dtype_name<storage_t<K>>(), sizeof(storage_t<K>), G<K>::name,
      expr::gradient_degree<typename P::template slot_t<K>>.or_nan() }... };
  }
  (std::make_index_sequence<P::n_slots>{});

  // ---- per-block slots: updated on the host, once per block -----------------------------------

  // What a per-block slot's update reads through host_ctx::slots: its value before this step
  // (stored) or after it (computed this step, kept in block_news_ until commit).
  static double block_slot_value(const void* self, std::string_view name, bool old) {
    const auto& s = *static_cast<const State*>(self);
    double v = 0;
    for_each_slot<P>([&]<std::size_t K>() {
      if constexpr (G<K>::per_block)
        if (P::slot_name(K) == name)
          v = old ? static_cast<double>(std::get<K>(s.slots_).at(s.host_block_)[0])
                  : s.block_news_[s.host_block_ * P::n_slots + K];
    });
    return v;
  }

  // This step's new values of block b's per-block slots, in dependency order, each rounded to
  // its storage dtype (the step uses the value as it will be stored).
  static void compute_block_slots(State& s, std::size_t b, expr::host_ctx& h) {
    s.host_block_ = b;
    h.slots = { &s, &block_slot_value };
    for_each_slot<P>([&]<std::size_t K>() {
      if constexpr (G<K>::per_block) {
        const double v = expr::host_value<P::red_offset[K]>(expr::get<K>(s.roots_), h);
        s.block_news_[b * P::n_slots + K] = static_cast<double>(static_cast<storage_t<K>>(v));
      }
    });
  }

  // Whether the rule keeps a slot per block or per line (computed on the host).
  static constexpr bool has_host_slots = []<std::size_t... K>(std::index_sequence<K...>) {
    return ((G<K>::per_block || G<K>::per_line) || ... || false);
  }
  (std::make_index_sequence<P::n_slots>{});

  // At the end of a prepare (every policy but off): holds back whole each block one of whose
  // per-block or per-line slots would get a value that is not finite (guard_state::hold_block):
  // the same rule as a per-element slot's, where every coordinate of the block reads the value.
  static void hold_nonfinite_host_slots(State& s) {
    if constexpr (has_host_slots) {
      const std::size_t nb = s.blocks_.size();
      for_each_slot<P>([&]<std::size_t K>() {
        for (std::size_t b = 0; b < nb; ++b) {
          if constexpr (G<K>::per_block) {
            const double v = s.block_news_[b * P::n_slots + K];
            if (!std::isfinite(v))
              s.hold_block(nb, b, K, 0, v);
          } else if constexpr (G<K>::per_line) {
            const auto& news = s.line_news_[K * nb + b];
            for (std::size_t l = 0; l < news.size(); ++l)
              if (!std::isfinite(news[l])) {
                s.hold_block(nb, b, K, l, news[l]);
                break;
              }
          }
        }
      });
    }
  }

  // At commit: the per-block and per-line slots' new values, computed while preparing the step
  // (not those of a block held back).
  static void store_host_slots(State& s) {
    for_each_slot<P>([&]<std::size_t K>() {
      if constexpr (G<K>::per_block)
        for (std::size_t b = 0; b < s.blocks_.size(); ++b)
          if (!s.block_held(b))
            std::get<K>(s.slots_).at(b)[0] = static_cast<storage_t<K>>(s.block_news_[b * P::n_slots + K]);
    });
    for_each_slot<P>([&]<std::size_t K>() {
      if constexpr (G<K>::per_line)
        for (std::size_t b = 0; b < s.blocks_.size(); ++b) {
          if (s.block_held(b))
            continue;
          const auto& news = s.line_news_[K * s.blocks_.size() + b];
          storage_t<K>* out = std::get<K>(s.slots_).at(b);
          for (std::size_t l = 0; l < news.size(); ++l)
            out[l] = static_cast<storage_t<K>>(news[l]);
        }
    });
  }
};

} // namespace steep::engine::detail
