// Stacked matrices and per-slice state: a mixture-of-experts layer and a fused QKV projection.
//
// An (E, out, in) expert tensor is E matrices; a fused (3 H d_head, d) projection is 3 H heads.
// The rule below gives the experts NorMuon per expert (each expert orthogonalized on its own,
// one second moment per row of each expert, each rescaled to its own polar factor's norm), the
// QKV projection Adam-mini with one second moment per head (Zhang et al. 2024's partition for
// queries and keys), and everything else AdamW — routed by name:
//
//   steep::route(steep::on_name("*.experts") >> rules::normuon_stacked(lr, out, in),
//                steep::on_name("*.wqkv") >> rules::adam_mini_sliced(lr, d_head, d),
//                steep::otherwise >> rules::adamw(lr));
//
// describe() shows the per-slice slots; state() gives them one value per slice. The model here
// is a stand-in: each block is pulled toward a fixed random target by the loss
// 0.5 ||W - W*||^2, so the example needs no data. Run it: ./build/examples/stacked_experts

#include <cmath>
#include <cstdio>
#include <random>
#include <steep/steep.hpp>
#include <vector>

int main() {
  namespace rules = steep::rules;
  constexpr std::size_t experts = 4, d = 32, hidden = 64, heads = 4, d_head = 8;
  steep::param_store<float> store({
    steep::block_spec<float>("layer0.wqkv", { 3 * heads * d_head, d }, steep::block_role::hidden_matrix),
    steep::block_spec<float>("layer0.experts", { experts, hidden, d }, steep::block_role::hidden_matrix),
    steep::block_spec<float>("layer0.router", { experts, d }, steep::block_role::hidden_matrix),
    steep::block_spec<float>("layer0.norm", { d }, steep::block_role::vector),
  });
  steep::optimizer opt(steep::route(steep::on_name("*.experts") >> rules::normuon_stacked(0.02f, hidden, d),
                                    steep::on_name("*.wqkv") >> rules::adam_mini_sliced(1e-2f, d_head, d),
                                    steep::otherwise >> rules::adamw(1e-2f)),
                       store);
  std::printf("%s\n", opt.describe().c_str());

  // Targets, and the loss 0.5 ||W - W*||^2 summed over blocks; its gradient is W - W*.
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 0.5f);
  std::vector<std::vector<float>> target;
  for (const auto& b : store.blocks()) {
    target.emplace_back(b.size);
    for (auto& t : target.back())
      t = normal(rng);
  }
  auto loss_and_grad = [&] {
    double loss = 0;
    for (std::size_t k = 0; k < store.size(); ++k) {
      const auto& b = store.block_at(k);
      for (std::size_t i = 0; i < b.size; ++i) {
        b.grad[i] = b.param[i] - target[k][i];
        loss += 0.5 * double(b.grad[i]) * double(b.grad[i]);
      }
    }
    return loss;
  };
  const double first = loss_and_grad();
  double loss = first;
  for (int t = 0; t < 200; ++t) {
    opt.step();
    loss = loss_and_grad();
  }
  std::printf("loss %.4g -> %.4g after 200 steps\n", first, loss);
  std::printf("second moments: %zu in layer0.wqkv (one per head), %zu in layer0.experts (one per row of each "
              "expert)\n",
              opt.state("layer0.wqkv", "v").size(),
              opt.state("layer0.experts", "second_momentum_buffer").size());
  const bool ok = loss < 0.5 * first && opt.state("layer0.wqkv", "v").size() == 3 * heads &&
                  opt.state("layer0.experts", "second_momentum_buffer").size() == experts * hidden;
  std::printf("stacked experts done: %s\n", ok ? "yes" : "no");
  return ok ? 0 : 1;
}
