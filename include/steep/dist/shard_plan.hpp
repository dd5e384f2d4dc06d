#pragma once
// plan_shards(layout, ranks, options) -> shard_plan: which contiguous range of the parameter arena
// each rank owns, so gradients can be reduce-scattered and parameters all-gathered in place.
//
//   std::vector<steep::dist::block_layout> layout = {
//     { "W1", 784 * 256, 784, 256, true, 4, 0 },        // a matrix stage needs W1 whole
//     { "b1", 256, 256, 1, false, 4, 200704 },          // elementwise: may be split
//   };
//   auto plan = steep::dist::plan_shards(layout, 4);
//   plan.ranks[r].begin, plan.ranks[r].end;              // rank r's arena elements [begin, end)
//   plan.counts();                                        // end - begin per rank: the collectives' counts
//   plan.element_imbalance, plan.flop_imbalance;          // max / mean per rank
//   steep::dist::plan_hash(plan);                         // equal on every rank, or the ranks disagree
//
// Contract.
// - The ranges partition the arena [0, arena_elements) in rank order: rank r's end is rank r+1's
//   begin. A rank may own nothing (begin == end) when there are more ranks than pieces.
// - Every boundary is a block's offset, or, inside a block that may be split, a multiple of
//   64 bytes (16 floats, 8 doubles, 32 bfloat16) from the arena's start: a shard boundary never
//   moves an element between a SIMD body and its tail (docs/distributed.md). A block whose
//   `whole` is set (a matrix stage reads all of it) is never split.
// - Cost: an elementwise piece costs its elements; a whole matrix (rows x cols, m = min, n = max)
//   costs its elements plus ns_steps * (4 m^2 n + 2 m^3) Newton-Schulz flops divided by
//   `flops_per_element` (default 200: an elementwise step is memory bound at about 2 ns per element
//   per core, an SGEMM runs at about 100 GFLOP/s per core, so one element ~ 200 flops).
// - Optimal at that granularity: the smallest possible maximum cost per rank over all contiguous
//   partitions into pieces of 64 bytes (and whole blocks), found by binary search on the integer
//   max cost with a greedy feasibility test (O(blocks + ranks) per probe). The ranks are then
//   filled in order up to that maximum, so the last ranks may hold less.
// - Deterministic: integer arithmetic only decides the ranges, so the same layout and rank count
//   give the same plan on every rank and every machine.
// - Refusals (steep::error naming the block, or steep::usage_error): ranks < 1, a layout that is
//   not the store's arena order (offsets 0, then each the previous padded to 64 bytes), mixed
//   element sizes, and a whole block above options.max_elements_per_rank.

#include "steep/core/aligned_buffer.hpp"
#include "steep/core/error.hpp"
#include "steep/core/fnv.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace steep::dist {

// One block of the arena, as param_store lays it out.
struct block_layout {
  std::string name;
  std::size_t elements = 0;
  std::size_t rows = 0, cols = 0; // a matrix stage's view (rows = shape[0], cols = the rest)
  bool whole = false;             // a matrix stage needs it whole on one rank
  std::size_t dtype_bytes = 4;
  std::size_t offset = 0; // in elements, a multiple of 64 bytes
};

struct plan_options {
  std::size_t ns_steps = 5;
  double flops_per_element = 200.0;
  std::optional<std::size_t> max_elements_per_rank; // a larger whole block is refused
};

// A part of one block that a rank owns: elements [begin, end) counted from the block's start.
struct block_piece {
  std::size_t block = 0;
  std::size_t begin = 0, end = 0;
};

struct rank_shard {
  std::size_t begin = 0, end = 0; // arena elements [begin, end)
  std::size_t elements = 0;       // block elements inside, padding excluded
  double matrix_flops = 0;        // Newton-Schulz flops of the whole matrices it owns
  std::uint64_t cost = 0;         // what the plan balanced
  std::vector<block_piece> pieces;
};

struct shard_plan {
  std::vector<block_layout> blocks;
  std::vector<rank_shard> ranks;
  std::size_t arena_elements = 0;
  std::uint64_t max_cost = 0;     // the optimum the search found
  double element_imbalance = 1.0; // max / mean of elements per rank (1: perfect)
  double flop_imbalance = 1.0;    // max / mean of matrix flops per rank (1 where there are none)
  double cost_imbalance = 1.0;

  std::vector<std::size_t> counts() const {
    std::vector<std::size_t> c;
    c.reserve(ranks.size());
    for (const auto& r : ranks)
      c.push_back(r.end - r.begin);
    return c;
  }
};

// Newton-Schulz flops of one rows x cols matrix: each step X X^T (2 m^2 n), its square (2 m^3),
// and that times X (2 m^2 n), with m the shorter side.
inline double newton_schulz_flops(std::size_t rows, std::size_t cols, std::size_t steps) {
  const double m = static_cast<double>(std::min(rows, cols)), n = static_cast<double>(std::max(rows, cols));
  return static_cast<double>(steps) * (4 * m * m * n + 2 * m * m * m);
}

namespace detail {

// The arena as a run of segments: a whole block is one piece of its own cost; a splittable block
// is `units` pieces of `unit` elements, the last one holding `last` elements.
struct segment {
  std::size_t block, begin, end; // arena elements (padding included)
  bool whole;
  std::uint64_t cost; // whole: the block's cost
  std::size_t units;  // splittable: pieces of `unit` elements
  std::uint64_t last; // splittable: the last piece's elements (padding excluded)
  double flops;
};

inline std::uint64_t round_up_cost(double flops, double per_element) {
  const double c = std::ceil(flops / per_element);
  if (!(c < 1.8e19))
    throw usage_error("plan_shards: a matrix's Newton-Schulz cost does not fit in 64 bits");
  return static_cast<std::uint64_t>(c);
}

inline std::vector<segment> segments_of(const std::vector<block_layout>& layout, const plan_options& opt,
                                        std::size_t unit, std::size_t& arena) {
  std::vector<segment> segs;
  std::size_t at = 0;
  for (std::size_t b = 0; b < layout.size(); ++b) {
    const auto& l = layout[b];
    if (l.offset != at)
      throw error(l.name, "its offset " + std::to_string(l.offset) +
                            " is not where the arena's order puts it (" + std::to_string(at) +
                            "): list blocks in the store's order with padded offsets");
    const std::size_t padded = (l.elements + unit - 1) / unit * unit;
    at += padded;
    if (l.whole) {
      if (opt.max_elements_per_rank && l.elements > *opt.max_elements_per_rank)
        throw error(
          l.name, "a matrix stage needs it whole on one rank, and its " + std::to_string(l.elements) +
                    " elements exceed max_elements_per_rank = " + std::to_string(*opt.max_elements_per_rank) +
                    "; splitting a matrix across ranks would need an all-to-all path, "
                    "which steep does not build yet");
      const double f = (l.rows > 0 && l.cols > 0) ? newton_schulz_flops(l.rows, l.cols, opt.ns_steps) : 0.0;
      segs.push_back(
        { b, l.offset, at, true, l.elements + round_up_cost(f, opt.flops_per_element), 0, 0, f });
    } else if (padded > 0) {
      segs.push_back({ b, l.offset, at, false, 0, padded / unit, l.elements - (padded - unit), 0.0 });
    }
  }
  arena = at;
  return segs;
}

// Walks the segments, starting a new rank whenever the next piece would push the current one
// past `cap`; calls cut(arena_position) at each new rank's start. Returns the ranks used.
template <class Cut>
std::size_t fill(const std::vector<segment>& segs, std::size_t unit, std::uint64_t cap, std::size_t limit,
                 Cut&& cut) {
  std::size_t used = 1;
  std::uint64_t load = 0;
  for (const auto& s : segs) {
    if (s.whole) {
      if (load > 0 && load + s.cost > cap) {
        if (++used > limit)
          return used;
        cut(s.begin);
        load = 0;
      }
      load += s.cost;
      continue;
    }
    std::size_t i = 0; // next unit of this segment
    while (i < s.units) {
      const std::size_t left = s.units - i;
      const std::uint64_t rest = (left - 1) * std::uint64_t(unit) + s.last;
      if (load + rest <= cap) {
        load += rest;
        break;
      }
      const std::size_t take = static_cast<std::size_t>((cap - std::min(cap, load)) / unit); // < left
      i += take;
      if (++used > limit)
        return used;
      cut(s.begin + i * unit);
      load = 0;
    }
  }
  return used;
}

} // namespace detail

inline shard_plan plan_shards(const std::vector<block_layout>& layout, int ranks,
                              const plan_options& opt = {}) {
  if (ranks < 1)
    throw usage_error("plan_shards: needs at least one rank, got " + std::to_string(ranks));
  if (!(opt.flops_per_element > 0))
    throw usage_error("plan_shards: flops_per_element must be positive");
  const std::size_t bytes = layout.empty() ? 4 : layout.front().dtype_bytes;
  for (const auto& l : layout)
    if (l.dtype_bytes != bytes || bytes == 0 || arena_alignment % bytes != 0)
      throw error(l.name, "its elements have " + std::to_string(l.dtype_bytes) +
                            " bytes, the first block's " + std::to_string(bytes) +
                            ": one arena holds one dtype (1, 2, 4 or 8 bytes)");
  const std::size_t unit = arena_alignment / bytes;
  const auto w = static_cast<std::size_t>(ranks);

  shard_plan plan;
  plan.blocks = layout;
  const auto segs = detail::segments_of(layout, opt, unit, plan.arena_elements);

  // Binary search on the max cost: below the largest piece nothing fits; the total always does.
  std::uint64_t lo = 0, hi = 0;
  for (const auto& s : segs) {
    const std::uint64_t biggest = s.whole ? s.cost : (s.units > 1 ? unit : s.last);
    const std::uint64_t total = s.whole ? s.cost : (s.units - 1) * std::uint64_t(unit) + s.last;
    lo = std::max(lo, biggest);
    hi += total;
  }
  lo = std::max<std::uint64_t>(lo, 1);
  hi = std::max(hi, lo);
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (detail::fill(segs, unit, mid, w, [](std::size_t) {}) <= w)
      hi = mid;
    else
      lo = mid + 1;
  }
  plan.max_cost = lo;

  std::vector<std::size_t> cuts{ 0 };
  detail::fill(segs, unit, lo, w, [&](std::size_t at) { cuts.push_back(at); });
  while (cuts.size() < w)
    cuts.push_back(plan.arena_elements);
  plan.ranks.resize(w);
  for (std::size_t r = 0; r < w; ++r) {
    plan.ranks[r].begin = cuts[r];
    plan.ranks[r].end = r + 1 < w ? cuts[r + 1] : plan.arena_elements;
  }

  // Each rank's pieces, elements, flops and cost, from the ranges (one walk over the blocks).
  std::size_t r = 0;
  for (const auto& s : segs) {
    const auto& l = layout[s.block];
    for (std::size_t at = s.begin; at < s.end;) {
      while (plan.ranks[r].end <= at)
        ++r;
      auto& rk = plan.ranks[r];
      const std::size_t stop = std::min(s.end, rk.end);
      const std::size_t b = at - l.offset, e = std::min(stop - l.offset, l.elements);
      if (e > b) {
        rk.pieces.push_back({ s.block, b, e });
        rk.elements += e - b;
        rk.cost += s.whole ? s.cost : e - b;
        rk.matrix_flops += s.flops;
      }
      at = stop;
    }
  }

  auto imbalance = [&](auto get) {
    double sum = 0, max = 0;
    for (const auto& rk : plan.ranks) {
      sum += static_cast<double>(get(rk));
      max = std::max(max, static_cast<double>(get(rk)));
    }
    return sum > 0 ? max / (sum / static_cast<double>(w)) : 1.0;
  };
  plan.element_imbalance = imbalance([](const rank_shard& s) { return s.elements; });
  plan.flop_imbalance = imbalance([](const rank_shard& s) { return s.matrix_flops; });
  plan.cost_imbalance = imbalance([](const rank_shard& s) { return s.cost; });
  return plan;
}

// FNV-1a (64 bits) over the rank count, the blocks (name, offset, elements, whole) and the ranges:
// ranks that all-reduce it (max and min) and find two values disagree on layout or plan.
inline std::uint64_t plan_hash(const shard_plan& plan) {
  fnv1a h;
  auto number = [&](std::uint64_t v) { h.add(v); };
  number(plan.ranks.size());
  number(plan.arena_elements);
  for (const auto& b : plan.blocks) {
    number(b.name.size());
    h.add_bytes(b.name.data(), b.name.size());
    number(b.offset);
    number(b.elements);
    number(b.whole);
  }
  for (const auto& r : plan.ranks) {
    number(r.begin);
    number(r.end);
  }
  return h.value();
}

} // namespace steep::dist
