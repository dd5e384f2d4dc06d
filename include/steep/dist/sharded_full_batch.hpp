#pragma once
// sharded_full_batch<Net, T, Comm>: full-batch training data-parallel over the ranks of a
// communicator, with gradients, losses, margins and KKT certificates that do not depend on the
// rank count: bitwise those of one process with the same number of shards.
//
//   steep::dist::mpi_communicator comm;                      // or serial_communicator: one rank
//   const std::size_t shards = 12;                            // fixed: independent of comm.size()
//   steep::model::network<net_t, double> net(widths, steep::dist::shard_capacity(data.size(), shards));
//   steep::dist::sharded_full_batch<net_t, double, decltype(comm)> task(net, data, loss, comm, shards);
//   steep::optimizer opt(rule, net.store());                   // replicated: the same on every rank
//   auto h = steep::train::fit(task, opt, { .steps = 1000, .norms = { model_norm::l2() } });
//
// The math. The loss is a sum over samples, L = sum_k L_k over S contiguous shards (shard k holds
// samples [k n / S, (k + 1) n / S)), and so is its gradient, g = sum_k g_k. Rank r computes the
// g_k of its shards, k in [r S / W, (r + 1) S / W), one forward and backward per shard (so every
// g_k is the same GEMMs whichever rank runs it); an all-gather brings every shard's g_k to every
// rank, which adds them in shard order, ((g_0 + g_1) + g_2) + ..., so g is the same bits at any
// rank count W. The loss report combines likewise: log L = logsumexp_k log L_k (over shards, in
// order), q_min = min_k, errors = sum_k, max_i log w_i = max_k. The margin certificate
// (train/margins.hpp) needs one shift for every sample's weight (the largest weight, over all
// shards), so measure() runs twice over its shards: the first pass finds the loss report, the
// second forms the weights at the agreed shift and their sums and backward pass, per shard; then
// train::certify, as one process.
// At S = 1 each sum has one term, and every number is bitwise that of train::full_batch. At S > 1
// the sums are added in another order than one GEMM over all samples adds them, so results differ
// from S = 1 in the last bits (and by more after many steps of a chaotic trajectory), but not
// between rank counts (docs/distributed.md, "The main job, data-parallel").
//
// sharded_objective<T, Comm> holds all of this and asks the model only for forward(x, n) and
// backward(dout) over one shard (and store(), degree()): sharded_full_batch gives those of a
// model::network, and is the only part compiled once per network type.
//
// Traffic per gradient: every rank receives every shard's gradient, S (P + 6) doubles for P
// parameters (an all-gather; a reduce-scatter would add in MPI's order, which depends on W). The
// training set is held whole by every rank (only its shards are read). A rank without a shard
// (W > S) computes nothing but still joins every collective.

#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/dist/communicator.hpp"
#include "steep/model/loss.hpp"
#include "steep/model/network.hpp"
#include "steep/train/data.hpp"
#include "steep/train/margins.hpp"
#include "steep/train/trainer.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace steep::dist {

// The first sample of shard k of S over n samples (shard_begin(n, S, S) = n): balanced, contiguous.
constexpr std::size_t shard_begin(std::size_t n, std::size_t shards, std::size_t k) noexcept {
  return k * n / shards;
}
// The largest shard: the batch capacity a network needs to run every shard.
constexpr std::size_t shard_capacity(std::size_t n, std::size_t shards) noexcept {
  return (n + shards - 1) / shards;
}

// What sharding a full batch needs of a model, and everything else: the shards' sums over comm's
// ranks, the loss report and the certificate. Independent of the network's type, so it is compiled
// once per (T, Comm); sharded_full_batch below adds the network's forward and backward passes.
template <class T, communicator Comm>
class sharded_objective : public train::objective<T> {
public:
  std::size_t shards() const noexcept { return shards_; }
  // This rank's shards: [first, last).
  std::size_t first_shard() const noexcept { return first_shard(static_cast<std::size_t>(comm_.rank())); }
  std::size_t last_shard() const noexcept { return first_shard(static_cast<std::size_t>(comm_.rank()) + 1); }

  // The loss over every sample, and dL/dtheta * exp(-log_shift) into the store's gradients.
  model::loss_report gradient(double log_shift = 0) override {
    for (std::size_t k = first_shard(); k < last_shard(); ++k) {
      const auto r = run_shard(k, log_shift);
      put_report(r, at(k) + params_);
      copy_grads(at(k));
    }
    gather(all_, counts_, record_);
    add_grads();
    return combined_from(all_.data() + params_, record_);
  }

  // Margins and certificates over every sample (overwrites the gradients with -v).
  train::margin_report measure(const std::vector<train::model_norm>& norms) override {
    // First pass: each shard's loss report (no backward), so that every rank knows the shift.
    std::vector<double> reports(shards_ * scalars, 0.0);
    for (std::size_t k = first_shard(); k < last_shard(); ++k)
      put_report(evaluate_shard(k, nullptr, 0.0), reports.data() + k * scalars);
    gather(reports, scalar_counts_, scalars);
    const auto lr = combined_from(reports.data(), scalars);
    // Second pass: the weights at the common shift, their sums and their backward pass.
    for (std::size_t k = first_shard(); k < last_shard(); ++k) {
      run_shard(k, lr.max_log_weight);
      const auto ws = train::weight_sums(loss_, terms_, lr.q_min, lr.max_log_weight);
      at(k)[params_ + wsum_at] = ws.w, at(k)[params_ + wslack_at] = ws.slack;
      copy_grads(at(k));
    }
    gather(all_, counts_, record_);
    add_grads();
    double wsum = all_[params_ + wsum_at], wslack = all_[params_ + wslack_at];
    for (std::size_t k = 1; k < shards_; ++k)
      wsum += at(k)[params_ + wsum_at], wslack += at(k)[params_ + wslack_at];
    return train::certify(lr, wsum, wslack, loss_.kind(), this->degree(), this->store(), norms);
  }

protected:
  // The model's outputs for n samples from row x (n x outputs, valid until the next call), and the
  // backward pass of dout over them into the store's gradients.
  virtual const T* forward(const T* x, std::size_t n) = 0;
  virtual void backward(const T* dout) = 0;

  // outputs: the model's; capacity: the most samples it takes at once (a shard must fit).
  sharded_objective(const train::dataset<T>& data, model::loss_fn loss, Comm& comm, std::size_t shards,
                    std::size_t params, std::size_t outputs, std::size_t input_dim, std::size_t capacity)
    : data_(data)
    , loss_(loss)
    , comm_(comm)
    , shards_(shards)
    , outputs_(outputs)
    , params_(params)
    , record_(params + scalars) {
    if (shards == 0 || shards > data.size())
      throw usage_error("sharded_full_batch: " + std::to_string(shards) + " shards of " +
                        std::to_string(data.size()) + " samples: every shard needs at least one sample");
    if ((data.classes == 1) != (outputs == 1) || (data.classes > 1 && data.classes != outputs))
      throw usage_error("sharded_full_batch: the data has " + std::to_string(data.classes) +
                        " class(es) (1 = binary +-1) but the network has " + std::to_string(outputs) +
                        " outputs");
    if (data.dim != input_dim || shard_capacity(data.size(), shards) > capacity)
      throw usage_error("sharded_full_batch: a shard (up to " +
                        std::to_string(shard_capacity(data.size(), shards)) + " x " +
                        std::to_string(data.dim) + ") does not fit the network (input " +
                        std::to_string(input_dim) + ", capacity " + std::to_string(capacity) + ")");
    const std::size_t w = static_cast<std::size_t>(comm.size());
    for (std::size_t q = 0; q < w; ++q) {
      counts_.push_back((first_shard(q + 1) - first_shard(q)) * record_);
      scalar_counts_.push_back((first_shard(q + 1) - first_shard(q)) * scalars);
    }
    all_.assign(shards * record_, 0.0);
    dout_.resize(shard_capacity(data.size(), shards) * outputs);
  }

private:
  // A shard's record in all_: its gradient (the store's blocks in order), then its scalars.
  static constexpr std::size_t scalars = 6;
  static constexpr std::size_t log_loss_at = 0, q_min_at = 1, max_log_weight_at = 2, errors_at = 3,
                               wsum_at = 4, wslack_at = 5;

  std::size_t first_shard(std::size_t rank) const noexcept {
    return rank * shards_ / static_cast<std::size_t>(comm_.size());
  }
  struct sample_range {
    std::size_t begin, size;
  };
  sample_range range(std::size_t k) const noexcept {
    const std::size_t b = shard_begin(data_.size(), shards_, k);
    return { b, shard_begin(data_.size(), shards_, k + 1) - b };
  }
  double* at(std::size_t k) noexcept { return all_.data() + k * record_; }

  // Forward and loss over shard k (dL/d(output) into dout unless null), its terms in terms_.
  model::loss_report evaluate_shard(std::size_t k, T* dout, double log_shift) {
    const auto [b, n] = range(k);
    const T* out = forward(data_.row(b), n);
    return loss_.evaluate(out, data_.labels.data() + b, n, outputs_, dout, terms_, log_shift);
  }
  // ... and its backward pass: shard k's gradient in the store.
  model::loss_report run_shard(std::size_t k, double log_shift) {
    const auto r = evaluate_shard(k, dout_.data(), log_shift);
    backward(dout_.data());
    return r;
  }

  static void put_report(const model::loss_report& r, double* to) {
    to[log_loss_at] = r.log_loss, to[q_min_at] = r.q_min, to[max_log_weight_at] = r.max_log_weight;
    to[errors_at] = static_cast<double>(r.errors);
  }

  void copy_grads(double* to) {
    for (const auto& b : this->store().blocks())
      to = std::copy(b.grad, b.grad + b.size, to);
  }

  // Every rank's records into every rank (in place: this rank's already sit in `all`).
  void gather(std::vector<double>& all, const std::vector<std::size_t>& counts, std::size_t stride) {
    const std::span<double> whole(all);
    const auto mine = whole.subspan(first_shard() * stride, (last_shard() - first_shard()) * stride);
    comm_.template all_gather_v<double>(std::span<const double>(mine), whole, counts).wait();
  }

  // The store's gradients = g_0 + g_1 + ... + g_{S-1}, added in shard order.
  void add_grads() {
    const double* g0 = at(0);
    for (const auto& b : this->store().blocks()) {
      const std::size_t off = static_cast<std::size_t>(g0 - at(0));
      std::copy(g0, g0 + b.size, b.grad);
      for (std::size_t k = 1; k < shards_; ++k) {
        const double* gk = at(k) + off;
        for (std::size_t i = 0; i < b.size; ++i)
          b.grad[i] += static_cast<T>(gk[i]);
      }
      g0 += b.size;
    }
  }

  // The loss report over every shard, from the shards' reports (stride apart), in shard order.
  model::loss_report combined_from(const double* reports, std::size_t stride) const {
    model::loss_report r;
    r.q_min = std::numeric_limits<double>::infinity();
    r.max_log_weight = -std::numeric_limits<double>::infinity();
    std::vector<double> log_losses(shards_);
    double errors = 0;
    for (std::size_t k = 0; k < shards_; ++k) {
      const double* s = reports + k * stride;
      log_losses[k] = s[log_loss_at];
      r.q_min = std::min(r.q_min, s[q_min_at]);
      r.max_log_weight = std::max(r.max_log_weight, s[max_log_weight_at]);
      errors += s[errors_at];
    }
    // One shard: its own log L (logsumexp of one term is that term, but say so exactly).
    r.log_loss = shards_ == 1 ? log_losses[0] : model::logsumexp(log_losses.data(), shards_);
    r.errors = static_cast<std::size_t>(errors);
    return r;
  }

  const train::dataset<T>& data_;
  model::loss_fn loss_;
  Comm& comm_;
  std::size_t shards_, outputs_, params_, record_;
  std::vector<std::size_t> counts_, scalar_counts_; // per rank: its shards' records, its shards' reports
  std::vector<double> all_;                         // every shard's record, in shard order
  std::vector<T> dout_;
  model::sample_terms terms_;
};

template <class Net, class T, communicator Comm>
class sharded_full_batch final : public sharded_objective<T, Comm> {
public:
  // The network, the data and the communicator must outlive the task (it keeps references).
  sharded_full_batch(model::network<Net, T>&, train::dataset<T>&&, model::loss_fn, Comm&,
                     std::size_t) = delete;
  sharded_full_batch(model::network<Net, T>& net, const train::dataset<T>& data, model::loss_fn loss,
                     Comm& comm, std::size_t shards)
    : sharded_objective<T, Comm>(data, loss, comm, shards, net.parameter_count(), net.output_dim(),
                                 net.input_dim(), net.capacity())
    , net_(net) {}

  param_store<T>& store() override { return net_.store(); }
  int degree() const override { return model::network<Net, T>::degree(); }

private:
  const T* forward(const T* x, std::size_t n) override { return net_.forward(x, n); }
  void backward(const T* dout) override { net_.backward(dout); }

  model::network<Net, T>& net_;
};

} // namespace steep::dist
