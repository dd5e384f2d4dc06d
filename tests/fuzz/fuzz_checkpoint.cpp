// libFuzzer target: the checkpoint loader (io/safetensors.hpp, engine/checkpoint.hpp) on any
// bytes. Each input is a file image; it either loads (then parameters and state are what it
// held) or is refused with steep::error or steep::usage_error — and a refused load leaves every parameter and
// slot byte as it was. Any other exception, a crash, or a sanitizer report is a finding.
//
//   scripts/check.sh fuzz                  # builds with clang, runs every target (docs/robustness.md)
//   build-fuzz/fuzz-checkpoint out/ tests/fuzz/corpus/checkpoint -runs=20000
//
// The seed corpus is this model's own checkpoints, written by the target itself:
//   STEEP_FUZZ_WRITE_SEEDS=tests/fuzz/corpus/checkpoint build-fuzz/fuzz-checkpoint -runs=0

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <steep/steep.hpp>
#include <string>
#include <vector>

namespace {

// A small model whose slots cover per-element and per-block state in two dtypes.
struct model {
  steep::param_store<float> store{ { { "W", { 4, 3 } }, { "b", { 3 } } } };
  steep::optimizer<decltype(steep::rules::adam(1e-3f)), float> adam{ steep::rules::adam(1e-3f), store };

  std::vector<unsigned char> bytes() {
    std::vector<unsigned char> out;
    auto add = [&](const void* p, std::size_t n) {
      const auto* c = static_cast<const unsigned char*>(p);
      out.insert(out.end(), c, c + n);
    };
    for (const auto& b : store.blocks())
      add(b.param, b.size * sizeof(float));
    adam.visit_slots([&](const steep::engine::slot_bytes& s) { add(s.bytes.data(), s.bytes.size()); });
    const auto t = adam.steps(), k = adam.skipped_steps();
    add(&t, sizeof t), add(&k, sizeof k);
    return out;
  }
};

} // namespace

// With STEEP_FUZZ_WRITE_SEEDS=<dir>: writes the seeds (a fresh model's checkpoint and one
// after two steps), then fuzzes as usual.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("STEEP_FUZZ_WRITE_SEEDS");
  if (!dir)
    return 0;
  model m;
  steep::save_checkpoint(m.adam, m.store, std::string(dir) + "/fresh.safetensors");
  for (int t = 0; t < 2; ++t) {
    for (const auto& b : m.store.blocks())
      for (std::size_t i = 0; i < b.size; ++i)
        b.grad[i] = 0.25f * static_cast<float>(i) - 1.f;
    m.adam.step();
  }
  steep::save_checkpoint(m.adam, m.store, std::string(dir) + "/two-steps.safetensors");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static model m;
  // Both modes: strict refuses any mismatch; matching loads what fits. Either way a refusal
  // must leave everything as it was.
  for (auto mode : { steep::load_mode::strict, steep::load_mode::matching }) {
    const std::vector<unsigned char> before = m.bytes();
    try {
      const auto file = steep::io::parse(std::as_bytes(std::span(data, size)), "fuzz input");
      steep::load_checkpoint(m.adam, m.store, file, "fuzz input", mode);
    } catch (const steep::error&) { // names a block
      if (m.bytes() != before)
        std::abort();                     // a refused load changed something
    } catch (const steep::usage_error&) { // names the file
      if (m.bytes() != before)
        std::abort();
    }
  }
  return 0;
}
