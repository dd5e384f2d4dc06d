// steep-dist-table: what the shard plan (steep/dist/shard_plan.hpp) gives a model at 1 to 64
// ranks, computed in one process: per rank the parameters, optimizer state, bytes sent per step
// and Newton-Schulz flops, the plan's imbalance, and step times from an alpha-beta model
// (labelled as modelled: nothing here ran on 64 ranks). Beside ZeRO-1 over the plan, what plain
// data parallelism (DDP: replicated state, one all-reduce) holds and sends (docs/distributed.md).
//
//   ./build/bench/steep-dist-table                 # GPT-2 small with Muon + AdamW, and 24 x 1024^2
//   ./build/bench/steep-dist-table --markdown      # the tables as docs/distributed.md shows them
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <steep/dist/shard_plan.hpp>
#include <string>
#include <vector>

namespace {

namespace sd = steep::dist;

// The layout of a model whose hidden matrices a matrix stage takes whole (Muon) and whose other
// blocks an elementwise rule (AdamW) takes, as param_store lays them out (64-byte aligned, fp32).
struct model {
  std::string name;
  std::vector<sd::block_layout> blocks;
  void add(const std::string& n, std::size_t rows, std::size_t cols, bool matrix) {
    const std::size_t at =
      blocks.empty() ? 0 : (blocks.back().offset + blocks.back().elements + 15) / 16 * 16;
    blocks.push_back({ n, rows * cols, rows, cols, matrix, 4, at });
  }
};

model gpt2_small() {
  model m{ "GPT-2 small (124 M; Muon on the 48 hidden matrices, AdamW elsewhere)", {} };
  m.add("wte", 50257, 768, false);
  m.add("wpe", 1024, 768, false);
  for (int l = 0; l < 12; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    m.add(p + "ln_1.weight", 768, 1, false), m.add(p + "ln_1.bias", 768, 1, false);
    m.add(p + "attn.c_attn.weight", 2304, 768, true), m.add(p + "attn.c_attn.bias", 2304, 1, false);
    m.add(p + "attn.c_proj.weight", 768, 768, true), m.add(p + "attn.c_proj.bias", 768, 1, false);
    m.add(p + "ln_2.weight", 768, 1, false), m.add(p + "ln_2.bias", 768, 1, false);
    m.add(p + "mlp.c_fc.weight", 3072, 768, true), m.add(p + "mlp.c_fc.bias", 3072, 1, false);
    m.add(p + "mlp.c_proj.weight", 768, 3072, true), m.add(p + "mlp.c_proj.bias", 768, 1, false);
  }
  m.add("ln_f.weight", 768, 1, false), m.add("ln_f.bias", 768, 1, false);
  return m;
}

model square_matrices() {
  model m{ "24 hidden matrices of 1024 x 1024 and their biases (Muon + AdamW)", {} };
  for (int l = 0; l < 24; ++l) {
    m.add("W" + std::to_string(l), 1024, 1024, true);
    m.add("b" + std::to_string(l), 1024, 1, false);
  }
  return m;
}

// The alpha-beta model: a ring reduce-scatter or all-gather of n bytes over W ranks takes
// (W - 1) alpha + (W - 1) / W * n / beta; an elementwise update ns_per_element per element; an
// SGEMM gflops. Illustrative values for one node's interconnect and one core.
struct machine_model {
  double alpha = 5e-6, beta = 10e9, ns_per_element = 2.0, gflops = 100.0;
};

void table(const model& m, bool markdown) {
  const machine_model mm;
  std::size_t psi = 0, matrix_elements = 0;
  for (const auto& b : m.blocks) {
    psi += b.elements;
    matrix_elements += b.whole ? b.elements : 0;
  }
  // State per parameter: Muon's momentum (4 B) on matrices, AdamW's two moments (8 B) elsewhere.
  const double state_all =
    4.0 * static_cast<double>(matrix_elements) + 8.0 * static_cast<double>(psi - matrix_elements);
  std::printf("\n%s: %zu parameters, %zu blocks; optimizer state %.1f MB in one process\n", m.name.c_str(),
              psi, m.blocks.size(), state_all / 1e6);
  if (markdown)
    std::printf("\n| W | params/rank (max) | state/rank MB (max) | DDP state/rank MB | sent/rank/step MB | "
                "NS GFLOP/rank (max) | imbalance elem / flops | modelled comm ms | modelled update ms |\n"
                "|---|---|---|---|---|---|---|---|---|\n");
  else
    std::printf("%4s %14s %12s %12s %12s %12s %16s %10s %10s\n", "W", "params/rank", "state MB", "DDP MB",
                "sent MB", "NS GFLOP", "imbalance e/f", "comm ms", "update ms");
  for (std::size_t w : { 1, 2, 4, 8, 16, 32, 64 }) {
    const auto plan = sd::plan_shards(m.blocks, w);
    double state_max = 0, flops_max = 0, update_max = 0;
    std::size_t elem_max = 0;
    for (const auto& r : plan.ranks) {
      double state = 0;
      for (const auto& p : r.pieces)
        state += static_cast<double>(p.end - p.begin) * (m.blocks[p.block].whole ? 4.0 : 8.0);
      state_max = std::max(state_max, state);
      flops_max = std::max(flops_max, r.matrix_flops);
      elem_max = std::max(elem_max, r.elements);
      update_max = std::max(update_max, static_cast<double>(r.elements) * mm.ns_per_element * 1e-9 +
                                          r.matrix_flops / (mm.gflops * 1e9));
    }
    const double f = static_cast<double>(w - 1) / static_cast<double>(w);
    const double sent = 2 * f * static_cast<double>(psi) * 4; // reduce-scatter + all-gather, fp32
    const double comm =
      2 * (static_cast<double>(w - 1) * mm.alpha + f * static_cast<double>(psi) * 4 / mm.beta);
    if (markdown)
      std::printf("| %zu | %zu | %.1f | %.1f | %.1f | %.1f | %.3f / %.3f | %.2f | %.2f |\n", w, elem_max,
                  state_max / 1e6, state_all / 1e6, sent / 1e6, flops_max / 1e9, plan.element_imbalance,
                  plan.flop_imbalance, comm * 1e3, update_max * 1e3);
    else
      std::printf("%4zu %14zu %12.1f %12.1f %12.1f %12.1f %8.3f/%7.3f %10.2f %10.2f\n", w, elem_max,
                  state_max / 1e6, state_all / 1e6, sent / 1e6, flops_max / 1e9, plan.element_imbalance,
                  plan.flop_imbalance, comm * 1e3, update_max * 1e3);
  }
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{ "steep-dist-table: the shard plan of a model at 1 to 64 ranks, with modelled times" };
  bool markdown = false;
  app.add_flag("--markdown", markdown, "print the tables as markdown");
  CLI11_PARSE(app, argc, argv);
  const machine_model mm;
  std::printf("modelled, not measured: alpha %.0f us, beta %.0f GB/s (ring reduce-scatter + all-gather), "
              "%.0f ns per element updated, %.0f GFLOP/s for Newton-Schulz (5 steps); the sent bytes equal "
              "DDP's all-reduce (2 (W-1)/W Psi 4 B) at a fraction of its state\n",
              mm.alpha * 1e6, mm.beta / 1e9, mm.ns_per_element, mm.gflops);
  table(gpt2_small(), markdown);
  table(square_matrices(), markdown);
}
