// The sharded optimizer (steep/dist/sharded_optimizer.hpp): for Adam, Lion (split blocks), Muon,
// Adam-mini, NorMuon (whole blocks) and the Muon + Adam route, W ranks stepping with their own
// gradients give, at every step, the parameters and state of one process stepping with the sum
// of those gradients, bitwise. Gradients are small multiples of 2^-6, so their sum over ranks is
// exact in any order (what MPI's reduction order may be does not matter). Also: state only for
// the owned range (its bytes sum over ranks to one process's), the guard agreed across ranks, a
// global norm (normalized GD) folded across ranks, the refusals (a global norm in a route, ranks
// that disagree on a hyperparameter or a set() value). Built twice,
// as test_dist_comm: on serial_communicator, and under mpirun at 1-4 ranks (STEEP_WITH_MPI).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
// The rules from steep::compiled where the build has it (STEEP_COMPILED, from linking it): its
// headers declare the optimizers `extern template`, which only the library defines.
#ifdef STEEP_COMPILED
#include <steep/compiled/adam.hpp>
#include <steep/compiled/adam_mini.hpp>
#include <steep/compiled/hybrids.hpp>
#include <steep/compiled/lion.hpp>
#include <steep/compiled/muon.hpp>
#include <steep/compiled/normalized_gd.hpp>
#include <steep/compiled/normuon.hpp>
#endif
#include <steep/dist/communicator.hpp>
#include <steep/dist/sharded_checkpoint.hpp>
#include <steep/dist/sharded_optimizer.hpp>
#include <steep/engine.hpp>
#include <steep/engine/checkpoint.hpp>
#include <steep/rules/catalogue.hpp>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

namespace {

using steep::block_role;
using steep::dist::reduce_op;

// A model with hidden matrices, an embedding, a head and vectors; "v" (1,000 entries) is large
// enough that an elementwise rule's plan splits it between ranks.
std::vector<steep::block_spec<float>> model() {
  return { { "E", { 40, 8 }, block_role::embedding },
           { "W1", { 24, 20 } },
           { "b1", { 24 } },
           { "v", { 1000 } },
           { "W2", { 16, 24 } },
           { "head", { 3, 16 }, block_role::head } };
}

// Hidden matrices only: what a plain Muon or NorMuon runs on (their maps refuse other roles).
std::vector<steep::block_spec<float>> matrices() {
  return { { "W0", { 8, 40 } }, { "W1", { 24, 20 } }, { "W2", { 16, 24 } }, { "W3", { 40, 16 } } };
}

// Rank q's gradient entry i at step t: a multiple of 2^-6 in [-8, 8] * 2^-6.
float grad_of(int q, std::size_t i, int t) {
  return static_cast<float>(
           static_cast<int>((i * 7 + static_cast<std::size_t>(t) * 3 + static_cast<std::size_t>(q) * 5) %
                            17) -
           8) /
         64.0f;
}

void fill(steep::param_store<float>& store, int rank, int ranks, int t, bool summed) {
  for (std::size_t k = 0; k < store.size(); ++k) {
    const auto& b = store.block_at(k);
    for (std::size_t j = 0; j < b.size; ++j) {
      const std::size_t i = b.offset + j;
      float g = 0;
      if (summed)
        for (int q = 0; q < ranks; ++q)
          g += grad_of(q, i, t);
      else
        g = grad_of(rank, i, t);
      b.grad[j] = g;
    }
  }
}

void init_params(steep::param_store<float>& store) {
  for (std::size_t k = 0; k < store.size(); ++k) {
    const auto& b = store.block_at(k);
    for (std::size_t j = 0; j < b.size; ++j)
      b.param[j] = static_cast<float>(std::sin(0.37 * static_cast<double>(b.offset + j) + 1.0)) * 0.1f;
  }
}

bool same_params(const steep::param_store<float>& a, const steep::param_store<float>& b) {
  for (std::size_t k = 0; k < a.size(); ++k)
    if (std::memcmp(a.block_at(k).param, b.block_at(k).param, a.block_at(k).size * sizeof(float)) != 0)
      return false;
  return true;
}

// Every slot of every piece this rank owns equals that range of the one-process optimizer's slot.
template <class Sharded, class Ref>
bool same_state(Sharded& sharded, Ref& ref, int rank) {
  auto* local = sharded.local();
  if (!local)
    return true;
  std::map<std::string, std::vector<std::byte>> whole;
  ref.visit_slots([&](const steep::engine::slot_bytes& s) {
    whole[s.block + "/" + s.slot].assign(s.bytes.begin(), s.bytes.end());
  });
  const auto& plan = sharded.plan();
  bool same = true;
  local->visit_slots([&](const steep::engine::slot_bytes& s) {
    const auto& w = whole.at(s.block + "/" + s.slot);
    std::size_t begin = 0; // a piece's slot: its range of the block's (per element)
    for (const auto& p : plan.ranks[static_cast<std::size_t>(rank)].pieces)
      if (plan.blocks[p.block].name == s.block && w.size() != s.bytes.size())
        begin = p.begin * (s.bytes.size() / (p.end - p.begin));
    if (begin + s.bytes.size() > w.size() ||
        std::memcmp(w.data() + begin, s.bytes.data(), s.bytes.size()) != 0)
      same = false;
  });
  return same;
}

enum class splits { none, elementwise, not_matrices, unchecked };

template <class Comm, class Rule>
void check_matches_one_process(Comm& comm, Rule rule, std::string_view name, splits split_policy,
                               std::vector<steep::block_spec<float>> (*blocks)() = model, int steps = 4) {
  INFO(name << " at " << comm.size() << " rank(s), rank " << comm.rank());
  const int w = comm.size(), r = comm.rank();
  steep::param_store<float> store(blocks()), ref_store(blocks());
  init_params(store);
  init_params(ref_store);
  steep::engine::optimizer_options o;
  o.threads = 1;
  steep::dist::sharded_optimizer opt(rule, store, comm, { o, {} });
  steep::any_optimizer<float> ref(rule, ref_store, o); // (its chunk size: the whole model's, as the shards')

  // Elementwise rules split a large block between ranks; a block a rule reads whole is whole
  // (a route: its hidden matrices, Muon's, are whole; its other blocks may be split).
  bool split = false, matrix_split = false;
  for (const auto& rk : opt.plan().ranks)
    for (const auto& p : rk.pieces)
      if (p.end - p.begin != opt.plan().blocks[p.block].elements) {
        split = true;
        matrix_split = matrix_split || store.block_at(p.block).role == block_role::hidden_matrix;
      }
  if (split_policy == splits::none)
    CHECK(!split);
  else if (split_policy == splits::elementwise)
    CHECK(split == (w > 1));
  else if (split_policy == splits::not_matrices)
    CHECK(!matrix_split);

  for (int t = 1; t <= steps; ++t) {
    fill(store, r, w, t, false);
    fill(ref_store, r, w, t, true);
    REQUIRE(opt.step() == ref.step());
    REQUIRE(same_params(store, ref_store));
  }
  REQUIRE(same_state(opt, ref, r));
  CHECK(opt.steps() == steps);

  // State only for the owned range: over the ranks, the bytes of one process.
  std::size_t ref_bytes = 0;
  ref.visit_slots([&](const steep::engine::slot_bytes& s) { ref_bytes += s.bytes.size(); });
  const double total = comm.all_reduce(static_cast<double>(opt.state_bytes()), reduce_op::sum);
  CHECK(total == static_cast<double>(ref_bytes));
  if (w > 1 && split_policy == splits::elementwise)
    CHECK(static_cast<double>(opt.state_bytes()) < static_cast<double>(ref_bytes));
  CHECK_THAT(opt.describe(), Catch::Contains("rank " + std::to_string(r)));
}

template <class Comm>
void check_sharded(Comm& comm) {
  namespace rules = steep::rules;
  check_matches_one_process(comm, rules::adam(1e-3), "adam", splits::elementwise);
  check_matches_one_process(comm, rules::lion(1e-4), "lion", splits::elementwise);
  check_matches_one_process(comm, rules::muon(0.02), "muon", splits::none, matrices);
  check_matches_one_process(comm, rules::adam_mini(1e-3), "adam_mini", splits::none);
  check_matches_one_process(comm, rules::normuon(0.02), "normuon", splits::none, matrices);
  // MomentumGD normalized over all blocks: every rank's per-block sums folded in the model's order.
  check_matches_one_process(comm, rules::normalized_gd(1e-2), "normalized_gd", splits::none);
  // Muon on the hidden matrices (whole), Adam elsewhere (the vector "v" split).
  check_matches_one_process(comm, rules::muon_adam(), "muon_adam", splits::not_matrices);
}

// The catalogue's blocks (steep/rules/catalogue.hpp): any rule takes hidden matrices and vectors,
// "v" large enough to be split; a matrix rule takes matrices whose sizes its slices divide (6).
std::vector<steep::block_spec<float>> catalogue_any() {
  return { { "W1", { 6, 4 } }, { "W2", { 5, 6 } }, { "b", { 6 } }, { "v", { 1000 } }, { "c", { 5 } } };
}
std::vector<steep::block_spec<float>> catalogue_matrices() {
  return { { "W1", { 6, 4 } }, { "W2", { 5, 6 } }, { "W3", { 6, 6 } }, { "W4", { 4, 6 } } };
}

// Every rule of the catalogue, plain and routed: 100 steps at W ranks are one process's.
template <class Comm>
void check_catalogue(Comm& comm) {
  steep::rules::for_each_catalogue_rule([&](std::string_view name, const auto& rule, steep::rules::takes t) {
    check_matches_one_process(comm, rule, name, splits::unchecked,
                              t == steep::rules::takes::any ? catalogue_any : catalogue_matrices, 100);
  });
}

template <class Comm>
void check_guard(Comm& comm) {
  const int w = comm.size(), r = comm.rank();
  steep::param_store<float> store(model());
  init_params(store);
  steep::engine::optimizer_options o;
  o.threads = 1;
  for (auto policy : { steep::engine::nonfinite_policy::skip, steep::engine::nonfinite_policy::refuse }) {
    o.nonfinite = policy;
    steep::dist::sharded_optimizer opt(steep::rules::adam(1e-3), store, comm, { o, {} });
    fill(store, r, w, 1, false);
    REQUIRE(opt.step().applied());
    const std::vector<float> before(store.arena_params(), store.arena_params() + store.arena_size());
    fill(store, r, w, 2, false);
    if (r == w - 1) // planted by the last rank, in a range rank 0 owns: found there, agreed by all
      store.block_at(0).grad[3] = std::numeric_limits<float>::quiet_NaN();
    if (policy == steep::engine::nonfinite_policy::skip)
      CHECK(opt.step().refused());
    else
      CHECK_THROWS_AS(opt.step(), steep::engine::nonfinite_error);
    CHECK(std::memcmp(before.data(), store.arena_params(), before.size() * sizeof(float)) == 0);
    CHECK(opt.skipped_steps() == 1);
  }
}

template <class Comm>
void check_refusals(Comm& comm) {
  const int w = comm.size(), r = comm.rank();
  steep::param_store<float> store(model());
  // A global norm inside a route's arm: its fold across ranks is built for plain rules only.
  const auto routed_global =
    steep::route(steep::on<block_role::hidden_matrix> >> steep::rules::normalized_gd(1e-2),
                 steep::otherwise >> steep::rules::adam(1e-3));
  if (w > 1)
    CHECK_THROWS_WITH(steep::dist::sharded_optimizer(routed_global, store, comm),
                      Catch::Contains("reduces over all of its blocks"));
  else
    CHECK_NOTHROW(steep::dist::sharded_optimizer(routed_global, store, comm));
  // Ranks that disagree on a hyperparameter: every rank refuses, naming it.
  if (w > 1)
    CHECK_THROWS_WITH(steep::dist::sharded_optimizer(steep::rules::adam(1e-3 * (1 + r)), store, comm),
                      Catch::Contains("named hyperparameters"));
  steep::dist::sharded_optimizer opt(steep::rules::adam(1e-3), store, comm);
  opt.set("lr", 5e-4);
  if (opt.local())
    CHECK(opt.local()->get("lr") == 5e-4);
  if (w > 1)
    CHECK_THROWS_AS(opt.set("lr", 1e-4 * (1 + r)), steep::dist::mismatch_error);
  CHECK_THROWS_WITH(opt.set("no_such", 1.0), Catch::Contains("no rank's rule"));
}

// A checkpoint written at W ranks is the one a single process writes: it resumes the sharded run
// bitwise, and loads into one process's optimizer, which then steps as the W ranks do; and one
// process's checkpoint resumes at W ranks.
template <class Comm>
void check_checkpoint(Comm& comm) {
  const int w = comm.size(), r = comm.rank();
  const auto rule = steep::rules::muon_adam(); // whole matrices and a split vector
  // Names unique to this run (rank 0's process id, on every rank): ctest runs several at once.
  const auto id =
    std::to_string(w) + "-" +
    std::to_string(static_cast<long>(comm.all_reduce(r == 0 ? double(::getpid()) : 0.0, reduce_op::sum)));
  const std::string path = "sharded-" + id + ".ckpt", one = "one-" + id + ".ckpt";
  steep::engine::optimizer_options o;
  o.threads = 1;
  steep::param_store<float> a(model());
  init_params(a);
  steep::dist::sharded_optimizer opt(rule, a, comm, { o, {} });
  for (int t = 1; t <= 3; ++t) {
    fill(a, r, w, t, false);
    opt.step();
  }
  opt.set("adam_lr", 2e-4); // a value set() gave travels in the file
  steep::dist::save_checkpoint(opt, path);

  // One process's optimizer loads it (here, on every rank alike), and rank 0 writes its own.
  steep::param_store<float> c(model());
  steep::any_optimizer<float> single(rule, c, o);
  steep::load_checkpoint(single, c, path);
  CHECK(single.steps() == 3);
  CHECK(single.get("adam_lr") == 2e-4);
  if (r == 0)
    steep::save_checkpoint(single, c, one);
  comm.all_reduce(0.0, reduce_op::sum); // (a barrier: the file exists before any rank reads it)

  steep::param_store<float> b(model()), d(model());
  steep::dist::sharded_optimizer from_sharded(rule, b, comm, { o, {} });
  steep::dist::sharded_optimizer from_single(rule, d, comm, { o, {} });
  steep::dist::load_checkpoint(from_sharded, path);
  steep::dist::load_checkpoint(from_single, one);
  CHECK(from_sharded.steps() == 3);
  if (from_sharded.local() && from_sharded.local()->has("adam_lr"))
    CHECK(from_sharded.local()->get("adam_lr") == 2e-4);
  for (int t = 4; t <= 5; ++t) {
    fill(a, r, w, t, false);
    fill(b, r, w, t, false);
    fill(d, r, w, t, false);
    fill(c, r, w, t, true);
    opt.step();
    from_sharded.step();
    from_single.step();
    single.step();
    REQUIRE(same_params(a, b));
    REQUIRE(same_params(a, d));
    REQUIRE(same_params(a, c));
    REQUIRE(same_state(from_sharded, single, r));
    REQUIRE(same_state(opt, single, r));
  }
  // A file that is not there: every rank refuses, nothing changed.
  const std::vector<float> before(b.arena_params(), b.arena_params() + b.arena_size());
  CHECK_THROWS(steep::dist::load_checkpoint(from_sharded, "no-such-" + path));
  CHECK(std::memcmp(before.data(), b.arena_params(), before.size() * sizeof(float)) == 0);
  comm.all_reduce(0.0, reduce_op::sum);
  if (r == 0) {
    std::remove(path.c_str());
    std::remove(one.c_str());
  }
}

} // namespace

TEST_CASE("dist sharded: serial_communicator, one rank, is the plain optimizer", "[dist][sharded]") {
  steep::dist::serial_communicator comm;
  check_sharded(comm);
  check_catalogue(comm);
  check_guard(comm);
  check_refusals(comm);
  check_checkpoint(comm);
}

#if defined(STEEP_WITH_MPI)
TEST_CASE("dist sharded: mpi_communicator, W ranks, is one process with the summed gradient",
          "[dist][sharded][mpi]") {
  steep::dist::mpi_communicator comm;
  check_sharded(comm);
  check_catalogue(comm);
  check_guard(comm);
  check_refusals(comm);
  check_checkpoint(comm);
}
#endif
