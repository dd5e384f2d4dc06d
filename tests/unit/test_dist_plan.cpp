// plan_shards (steep/dist/shard_plan.hpp): ranges that partition the arena, whole blocks never
// split, split points on 64 bytes, balance reported, refusals that name the block, determinism.
// No MPI: the plan is a pure function of (layout, ranks).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <steep/core/param_store.hpp>
#include <steep/dist/shard_plan.hpp>
#include <steep/dist/store_layout.hpp>
#include <string>
#include <vector>

using steep::dist::block_layout;
using steep::dist::plan_shards;

namespace {

// A layout the way param_store lays it out: offsets padded to 64 bytes of `bytes`-wide elements.
struct layout_builder {
  std::size_t bytes = 4;
  std::vector<block_layout> blocks;
  std::size_t at = 0;

  layout_builder& matrix(std::string name, std::size_t rows, std::size_t cols, bool whole = true) {
    return add(std::move(name), rows * cols, rows, cols, whole);
  }
  layout_builder& vector(std::string name, std::size_t n) { return add(std::move(name), n, n, 1, false); }
  layout_builder& add(std::string name, std::size_t n, std::size_t rows, std::size_t cols, bool whole) {
    blocks.push_back({ std::move(name), n, rows, cols, whole, bytes, at });
    const std::size_t unit = 64 / bytes;
    at += (n + unit - 1) / unit * unit;
    return *this;
  }
};

std::vector<block_layout> mixed() {
  layout_builder b;
  b.matrix("embed", 100, 48, false) // an embedding: elementwise (Adam), may be split
    .matrix("W1", 64, 48)
    .vector("b1", 64)
    .matrix("W2", 96, 64)
    .vector("b2", 7) // padded to 16
    .matrix("W3", 10, 96)
    .vector("gain", 1000)
    .matrix("head", 10, 100, false);
  return b.blocks;
}

std::vector<block_layout> matrices_only() {
  layout_builder b;
  for (int i = 0; i < 6; ++i)
    b.matrix("W" + std::to_string(i), 32 + 16 * i, 64);
  return b.blocks;
}

std::vector<block_layout> vectors_only() {
  layout_builder b;
  b.vector("a", 5).vector("b", 12345).vector("c", 1).vector("d", 4096);
  return b.blocks;
}

// Every property of the contract that can be checked from the plan alone.
void check_plan(const std::vector<block_layout>& layout, int ranks) {
  const auto plan = plan_shards(layout, ranks);
  const std::size_t unit = 64 / layout.front().dtype_bytes;
  const auto& last = layout.back();
  const std::size_t arena = last.offset + (last.elements + unit - 1) / unit * unit;
  REQUIRE(plan.arena_elements == arena);
  REQUIRE(plan.ranks.size() == static_cast<std::size_t>(ranks));

  // The ranges partition [0, arena) in rank order.
  REQUIRE(plan.ranks.front().begin == 0);
  REQUIRE(plan.ranks.back().end == arena);
  std::size_t counted = 0;
  for (std::size_t r = 0; r < plan.ranks.size(); ++r) {
    const auto& s = plan.ranks[r];
    REQUIRE(s.begin <= s.end);
    if (r > 0)
      REQUIRE(s.begin == plan.ranks[r - 1].end);
    counted += s.end - s.begin;
    // Every boundary is 64-byte aligned, and a boundary inside a block is a block that may be split.
    REQUIRE(s.begin % unit == 0);
    for (const auto& b : layout)
      if (s.begin > b.offset && s.begin < b.offset + b.elements)
        REQUIRE_FALSE(b.whole);
  }
  REQUIRE(counted == arena);
  const auto counts = plan.counts();
  REQUIRE(counts.size() == plan.ranks.size());

  // Pieces: each block's elements owned exactly once; a whole block by one rank, in one piece.
  std::vector<std::size_t> owned(layout.size(), 0), owners(layout.size(), 0);
  std::size_t elements = 0;
  for (const auto& s : plan.ranks) {
    std::size_t mine = 0;
    for (const auto& p : s.pieces) {
      REQUIRE(p.begin < p.end);
      REQUIRE(p.end <= layout[p.block].elements);
      REQUIRE(layout[p.block].offset + p.begin >= s.begin);
      REQUIRE(layout[p.block].offset + p.end <= s.end);
      owned[p.block] += p.end - p.begin;
      ++owners[p.block];
      mine += p.end - p.begin;
    }
    REQUIRE(mine == s.elements);
    elements += mine;
  }
  for (std::size_t b = 0; b < layout.size(); ++b) {
    REQUIRE(owned[b] == layout[b].elements);
    if (layout[b].whole && layout[b].elements > 0)
      REQUIRE(owners[b] == 1);
  }

  // Balance: no rank above the optimum, the ratios at least 1 and at most the rank count.
  std::uint64_t max_cost = 0;
  for (const auto& s : plan.ranks)
    max_cost = std::max(max_cost, s.cost);
  REQUIRE(max_cost <= plan.max_cost);
  for (double x : { plan.element_imbalance, plan.flop_imbalance, plan.cost_imbalance }) {
    REQUIRE(x >= 1.0 - 1e-12);
    REQUIRE(x <= ranks + 1e-12);
  }
  REQUIRE(elements > 0);
}

} // namespace

TEST_CASE("dist plan: ranges partition the arena for 1..8 ranks", "[dist][plan]") {
  for (const auto& layout : { mixed(), matrices_only(), vectors_only() })
    for (int w = 1; w <= 8; ++w) {
      INFO("ranks " << w << ", first block " << layout.front().name);
      check_plan(layout, w);
    }
}

TEST_CASE("dist plan: one rank owns everything; elementwise layouts balance to one unit", "[dist][plan]") {
  const auto one = plan_shards(mixed(), 1);
  REQUIRE(one.ranks[0].begin == 0);
  REQUIRE(one.ranks[0].end == one.arena_elements);
  REQUIRE(one.element_imbalance == 1.0);

  // A single long vector: each rank within one 16-float unit of the mean.
  layout_builder b;
  b.vector("v", 16 * 1000);
  for (int w = 2; w <= 8; ++w) {
    const auto plan = plan_shards(b.blocks, w);
    for (const auto& s : plan.ranks)
      REQUIRE(s.elements <= 16000 / static_cast<std::size_t>(w) + 16);
    REQUIRE(plan.element_imbalance < 1.0 + 16.0 * w / 16000 + 1e-12);
  }
}

TEST_CASE("dist plan: the max load is optimal for whole matrices", "[dist][plan]") {
  // Four equal whole matrices on 2 ranks: two each; on 3 ranks the best is 2 + 1 + 1.
  layout_builder b;
  for (int i = 0; i < 4; ++i)
    b.matrix("M" + std::to_string(i), 64, 64);
  const auto two = plan_shards(b.blocks, 2);
  REQUIRE(two.ranks[0].pieces.size() == 2);
  REQUIRE(two.ranks[1].pieces.size() == 2);
  REQUIRE(two.flop_imbalance == Approx(1.0));
  const auto three = plan_shards(b.blocks, 3);
  REQUIRE(three.max_cost == two.ranks[0].cost);
  REQUIRE(three.flop_imbalance == Approx(1.5));
  // More ranks than matrices: some own nothing, which the plan says (begin == end).
  const auto six = plan_shards(b.blocks, 6);
  int empty = 0;
  for (const auto& s : six.ranks)
    empty += s.begin == s.end;
  REQUIRE(empty == 2);
}

// The best max cost over all contiguous partitions, by dynamic programming over the pieces
// (a whole block, or 64 bytes of a splittable one): what the binary search must find.
std::uint64_t brute_force_optimum(const std::vector<block_layout>& layout, int ranks) {
  const steep::dist::plan_options opt;
  std::vector<std::uint64_t> piece;
  for (const auto& b : layout) {
    if (b.whole) {
      const double f = steep::dist::newton_schulz_flops(b.rows, b.cols, opt.ns_steps);
      piece.push_back(b.elements + static_cast<std::uint64_t>(std::ceil(f / opt.flops_per_element)));
    } else
      for (std::size_t at = 0; at < b.elements; at += 16)
        piece.push_back(std::min<std::size_t>(16, b.elements - at));
  }
  const std::size_t n = piece.size();
  std::vector<std::uint64_t> prefix(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i)
    prefix[i + 1] = prefix[i] + piece[i];
  // best[k][i]: the smallest max cost of the first i pieces on k ranks.
  const auto inf = std::numeric_limits<std::uint64_t>::max();
  std::vector<std::vector<std::uint64_t>> best(static_cast<std::size_t>(ranks) + 1,
                                               std::vector<std::uint64_t>(n + 1, inf));
  best[0][0] = 0;
  for (std::size_t k = 1; k <= static_cast<std::size_t>(ranks); ++k)
    for (std::size_t i = 0; i <= n; ++i)
      for (std::size_t j = 0; j <= i; ++j)
        if (best[k - 1][j] != inf)
          best[k][i] = std::min(best[k][i], std::max(best[k - 1][j], prefix[i] - prefix[j]));
  return best[static_cast<std::size_t>(ranks)][n];
}

TEST_CASE("dist plan: 24 matrices of 1024 x 1024 balance within 10% at 4 ranks", "[dist][plan]") {
  // The matrix phase's load: Newton-Schulz flops per rank, max / mean (bench/dist_table.cpp shows
  // the whole table up to 64 ranks).
  layout_builder b;
  for (int i = 0; i < 24; ++i)
    b.matrix("W" + std::to_string(i), 1024, 1024).vector("b" + std::to_string(i), 1024);
  for (std::size_t w : { 2, 3, 4, 6, 8 }) {
    const auto plan = plan_shards(b.blocks, w);
    INFO(w << " ranks");
    REQUIRE(plan.flop_imbalance <= 1.10);
    REQUIRE(plan.element_imbalance <= 1.10);
  }
}

TEST_CASE("dist plan: the binary search finds the optimal max cost", "[dist][plan]") {
  layout_builder small;
  small.vector("a", 40)
    .matrix("M1", 8, 8)
    .vector("b", 100)
    .matrix("M2", 4, 12)
    .vector("c", 7)
    .matrix("M3", 16, 8);
  for (const auto& layout : { small.blocks, vectors_only() })
    for (int w = 1; w <= 6; ++w) {
      INFO("ranks " << w);
      REQUIRE(plan_shards(layout, w).max_cost == brute_force_optimum(layout, w));
    }
}

TEST_CASE("dist plan: Newton-Schulz flops weigh a whole matrix", "[dist][plan]") {
  REQUIRE(steep::dist::newton_schulz_flops(64, 32, 5) == 5.0 * (4.0 * 32 * 32 * 64 + 2.0 * 32 * 32 * 32));
  REQUIRE(steep::dist::newton_schulz_flops(32, 64, 5) == steep::dist::newton_schulz_flops(64, 32, 5));
  // A 64x64 matrix then 4096 vector elements: by elements alone an even split, but the matrix's
  // flops make it heavier, so rank 0 holds the matrix alone.
  layout_builder b;
  b.matrix("M", 64, 64).vector("v", 4096);
  const auto plan = plan_shards(b.blocks, 2);
  REQUIRE(plan.ranks[0].end == 4096);
  REQUIRE(plan.ranks[0].matrix_flops == steep::dist::newton_schulz_flops(64, 64, 5));
  REQUIRE(plan.ranks[1].matrix_flops == 0.0);
  REQUIRE(plan.flop_imbalance == Approx(2.0));
  // Elements 4096 + 4096 = 8192, but costs 4096 + flops/200 versus 4096.
  REQUIRE(plan.ranks[0].cost > plan.ranks[1].cost);
}

TEST_CASE("dist plan: split points are 64 bytes for every dtype", "[dist][plan]") {
  for (std::size_t bytes : { 2u, 4u, 8u }) {
    layout_builder b;
    b.bytes = bytes;
    b.vector("a", 1001).matrix("M", 24, 24).vector("c", 3333);
    for (int w = 1; w <= 8; ++w) {
      INFO("dtype bytes " << bytes << ", ranks " << w);
      check_plan(b.blocks, w);
      for (const auto& s : plan_shards(b.blocks, w).ranks)
        REQUIRE(s.begin * bytes % 64 == 0);
    }
  }
}

TEST_CASE("dist plan: the layout of a param_store", "[dist][plan]") {
  steep::param_store<float> store(
    { { "W1", { 48, 32 } }, { "b1", { 48 } }, { "W2", { 10, 48 } }, { "b2", { 10 } } });
  const auto layout = steep::dist::layout_of(store);
  REQUIRE(layout.size() == 4);
  REQUIRE(layout[0].whole);
  REQUIRE_FALSE(layout[1].whole);
  REQUIRE(layout[2].rows == 10);
  REQUIRE(layout[2].cols == 48);
  const auto plan = plan_shards(layout, 3);
  REQUIRE(plan.arena_elements == store.arena_size());
  check_plan(layout, 3);
  // Everything elementwise: W1 may then be split.
  const auto flat = steep::dist::layout_of(store, [](const steep::block<float>&) { return false; });
  REQUIRE_FALSE(flat[0].whole);
  check_plan(flat, 5);

  std::vector<float> w(6), g(6);
  steep::param_store<float> external({ { "X", { 2, 3 }, std::span(w), std::span(g) } });
  REQUIRE_THROWS_WITH(steep::dist::layout_of(external),
                      Catch::Contains("'X'") && Catch::Contains("external"));
}

TEST_CASE("dist plan: refusals name the block", "[dist][plan]") {
  auto layout = mixed();
  steep::dist::plan_options opt;
  opt.max_elements_per_rank = 5000; // W2 (96 x 64 = 6144) must be whole
  REQUIRE_THROWS_WITH(plan_shards(layout, 4, opt),
                      Catch::Contains("'W2'") && Catch::Contains("6144") && Catch::Contains("all-to-all"));
  opt.max_elements_per_rank = 6144;
  REQUIRE_NOTHROW(plan_shards(layout, 4, opt));

  REQUIRE_THROWS_WITH(plan_shards(layout, 0), Catch::Contains("at least one rank"));
  auto shifted = layout;
  shifted[2].offset += 16;
  REQUIRE_THROWS_WITH(plan_shards(shifted, 2), Catch::Contains("'b1'") && Catch::Contains("offset"));
  auto mixed_dtype = layout;
  mixed_dtype[3].dtype_bytes = 2;
  REQUIRE_THROWS_WITH(plan_shards(mixed_dtype, 2), Catch::Contains("'W2'") && Catch::Contains("one dtype"));
}

TEST_CASE("dist plan: deterministic, and its hash tells plans apart", "[dist][plan]") {
  const auto layout = mixed();
  for (int w = 1; w <= 8; ++w) {
    const auto a = plan_shards(layout, w), b = plan_shards(layout, w);
    REQUIRE(a.counts() == b.counts());
    REQUIRE(steep::dist::plan_hash(a) == steep::dist::plan_hash(b));
    if (w > 1)
      REQUIRE(steep::dist::plan_hash(a) != steep::dist::plan_hash(plan_shards(layout, w - 1)));
  }
  auto renamed = layout;
  renamed[1].name = "W1x";
  REQUIRE(steep::dist::plan_hash(plan_shards(renamed, 3)) != steep::dist::plan_hash(plan_shards(layout, 3)));
}

TEST_CASE("dist plan: an empty layout and empty blocks", "[dist][plan]") {
  const auto none = plan_shards({}, 3);
  REQUIRE(none.arena_elements == 0);
  for (const auto& s : none.ranks)
    REQUIRE(s.begin == s.end);
  layout_builder b;
  b.vector("empty", 0).matrix("M", 16, 16).vector("v", 0);
  check_plan(b.blocks, 4);
}
