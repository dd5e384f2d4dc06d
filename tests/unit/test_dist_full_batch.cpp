// Full-batch training data-parallel (steep/dist/sharded_full_batch.hpp): with one shard the
// gradient, the loss report and the margin certificate are bitwise train::full_batch's; with S
// shards they are bitwise the same on W ranks as in one process with S shards, along a trajectory
// of 40 steps, with and without a gradient shift; S > 1 changes only the order of the sums (the
// results stay within rounding of S = 1). Built twice, as test_dist_comm: on serial_communicator,
// and under mpirun at 1-4 ranks (STEEP_WITH_MPI), where every rank checks itself against a
// one-process run with the same shards.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <memory>
#include <steep/dist/communicator.hpp>
#include <steep/dist/sharded_full_batch.hpp>
#include <steep/train/trainer.hpp>
#include <vector>

namespace {

namespace md = steep::model;
namespace tr = steep::train;
using net_t = md::mlp_t<2, md::relu_pow<2>>;

// 37 samples: shards of 7 and 8 (uneven), a rank without a shard at W = 4 > S = 3.
tr::dataset<double> data() {
  auto d = tr::synthetic_separable<double>({ .samples = 37, .dim = 6, .gap = 0.1, .seed = 3 });
  tr::normalize_rows(d);
  return d;
}

std::vector<double> grads(const steep::param_store<double>& s) {
  std::vector<double> g;
  for (const auto& b : s.blocks())
    g.insert(g.end(), b.grad, b.grad + b.size);
  return g;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

void require_same(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    REQUIRE(same_bits(a[i], b[i]));
}

void require_same(const md::loss_report& a, const md::loss_report& b) {
  REQUIRE(same_bits(a.log_loss, b.log_loss));
  REQUIRE(same_bits(a.q_min, b.q_min));
  REQUIRE(same_bits(a.max_log_weight, b.max_log_weight));
  REQUIRE(a.errors == b.errors);
}

void require_same(const tr::margin_report& a, const tr::margin_report& b) {
  REQUIRE(same_bits(a.log_loss, b.log_loss));
  REQUIRE(same_bits(a.q_min, b.q_min));
  REQUIRE(a.errors == b.errors);
  REQUIRE(a.norms.size() == b.norms.size());
  for (std::size_t k = 0; k < a.norms.size(); ++k)
    for (auto f : { &tr::norm_margin::value, &tr::norm_margin::gamma, &tr::norm_margin::smoothed,
                    &tr::norm_margin::rho, &tr::norm_margin::kkt_eps, &tr::norm_margin::kkt_delta })
      REQUIRE(same_bits(a.norms[k].*f, b.norms[k].*f));
}

// One model and its task: sharded over comm, or train::full_batch when comm is null.
template <class Comm>
struct run {
  md::network<net_t, double> net;
  std::unique_ptr<tr::objective<double>> task;
  run(const tr::dataset<double>& d, Comm* comm, std::size_t shards)
    : net({ d.dim, 5, 1 }, comm ? steep::dist::shard_capacity(d.size(), shards) : d.size()) {
    const md::loss_fn loss{ md::loss_kind::logistic };
    if (comm)
      task =
        std::make_unique<steep::dist::sharded_full_batch<net_t, double, Comm>>(net, d, loss, *comm, shards);
    else
      task = std::make_unique<tr::full_batch<net_t, double>>(net, d, loss);
    net.init_gaussian(0.5, 7);
  }
  // theta -= eta g / ||g||_2: a trajectory on which every later step depends on every earlier bit.
  void step(double eta) {
    double g2 = 0;
    for (double g : grads(net.store()))
      g2 += g * g;
    for (const auto& b : net.store().blocks())
      for (std::size_t i = 0; i < b.size; ++i)
        b.param[i] -= eta * b.grad[i] / std::sqrt(g2);
  }
};

const std::vector<tr::model_norm> norms = { tr::model_norm::l2(), tr::model_norm::linf(),
                                            tr::model_norm::spectral_max(), tr::model_norm::hybrid(1) };

// a and b along 40 steps: the same loss reports, gradients and margin reports, bit for bit.
template <class A, class B>
void require_same_trajectory(run<A>& a, run<B>& b) {
  for (int t = 0; t < 40; ++t) {
    const double shift = t % 3 == 0 ? 2.5 : 0.0; // a gradient rescaled as train/rescale.hpp does
    if (t % 10 == 0)
      require_same(a.task->measure(norms), b.task->measure(norms));
    const auto ra = a.task->gradient(shift), rb = b.task->gradient(shift);
    require_same(ra, rb);
    require_same(grads(a.net.store()), grads(b.net.store()));
    a.step(0.05), b.step(0.05);
  }
}

template <class Comm>
void check_sharded_full_batch(Comm& comm) {
  const auto d = data();
  steep::dist::serial_communicator alone;

  SECTION("one shard is train::full_batch, bit for bit") {
    run<Comm> sharded(d, &comm, 1);
    run<steep::dist::serial_communicator> plain(d, nullptr, 1);
    require_same_trajectory(sharded, plain);
  }
  SECTION("S shards on W ranks are S shards in one process, bit for bit") {
    for (const std::size_t shards : std::vector<std::size_t>{ 2, 3, 5, 37 }) {
      run<Comm> many(d, &comm, shards);
      run<steep::dist::serial_communicator> one(d, &alone, shards);
      require_same_trajectory(many, one);
    }
  }
  SECTION("more shards change only the order of the sums") {
    run<Comm> five(d, &comm, 5);
    run<steep::dist::serial_communicator> plain(d, nullptr, 1);
    const auto r5 = five.task->gradient(), r1 = plain.task->gradient();
    REQUIRE(r5.log_loss == Approx(r1.log_loss).epsilon(1e-13));
    REQUIRE(r5.q_min == r1.q_min); // a min and a count do not depend on the order
    REQUIRE(r5.errors == r1.errors);
    const auto g5 = grads(five.net.store()), g1 = grads(plain.net.store());
    for (std::size_t i = 0; i < g1.size(); ++i)
      REQUIRE(g5[i] == Approx(g1[i]).epsilon(1e-12).margin(1e-15));
  }
  SECTION("a shard without a sample is refused") {
    md::network<net_t, double> net({ d.dim, 5, 1 }, d.size());
    const md::loss_fn loss{ md::loss_kind::logistic };
    using task_t = steep::dist::sharded_full_batch<net_t, double, Comm>;
    REQUIRE_THROWS_WITH(task_t(net, d, loss, comm, 0),
                        Catch::Contains("every shard needs at least one sample"));
    REQUIRE_THROWS_WITH(task_t(net, d, loss, comm, 38), Catch::Contains("38 shards of 37 samples"));
    md::network<net_t, double> small({ d.dim, 5, 1 }, 7);
    REQUIRE_THROWS_WITH(task_t(small, d, loss, comm, 5), Catch::Contains("does not fit the network"));
  }
}

} // namespace

TEST_CASE("dist full batch: serial_communicator, sharded full batch", "[dist][full_batch]") {
  steep::dist::serial_communicator comm;
  check_sharded_full_batch(comm);
}

#if defined(STEEP_WITH_MPI)
TEST_CASE("dist full batch: mpi_communicator, W ranks are one process with the same shards",
          "[dist][full_batch][mpi]") {
  steep::dist::mpi_communicator comm;
  check_sharded_full_batch(comm);
}
#endif
