// libFuzzer target: the checkpoint loader (io/safetensors.hpp, engine/checkpoint.hpp). Every
// input is used twice, each time in both load modes, on a three-arm route (Muon, Adam with
// bfloat16 moments, Adam-mini: per-element, bfloat16 and per-block state):
//
//   as a file image: it is refused with steep::error or steep::usage_error, leaving every
//     parameter, slot, counter and hyperparameter bit as it was; or it loads, and then the
//     optimizer holds exactly what the file says: each tensor the report lists as loaded,
//     bit for bit, the rest as it was; the file's step counts and hyperparameters (if the
//     rule is the same), the old ones otherwise. (A mutation that kept the checksum right —
//     libFuzzer learns compared values — is a valid file, and must load as such.)
//   as a patch on a reference checkpoint: triples (offset low byte, offset high byte, XOR
//     mask) flip bytes of the reference's image (not its 8 checksum digits, which
//     test_checkpoint_integrity's sweep flips). Such a file is refused, or loads the
//     reference bit for bit: what was saved, nothing else.
//
// Any other exception, a crash, a sanitizer report, or a load that breaks the above aborts.
//
//   scripts/check.sh fuzz                  # builds with clang, runs every target (docs/robustness.md)
//   build-fuzz/fuzz-checkpoint out/ tests/fuzz/corpus/checkpoint -runs=20000
//
// The seed corpus is written by the target itself: the reference, a fresh model's checkpoint,
// and single-bit flips of the reference's header that steep's format 1 (a CRC over the data
// only, and only when "format" was "steep") loaded silently, each as a file image and as a patch:
//   STEEP_FUZZ_WRITE_SEEDS=tests/fuzz/corpus/checkpoint build-fuzz/fuzz-checkpoint -runs=0

#include <bit>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <steep/steep.hpp>
#include <string>
#include <vector>

namespace {

using steep::block_role;

auto three_arms() {
  return steep::route(steep::on<block_role::hidden_matrix> >> steep::rules::muon(0.02),
                      steep::on<block_role::vector> >> steep::rules::adam_bf16(1e-3),
                      steep::otherwise >> steep::rules::adam_mini(3e-3, 0.9, 0.99, 1e-8, 0.01));
}

// Everything a checkpoint restores, bit for bit.
struct full_state {
  std::map<std::string, std::vector<std::byte>> tensors;
  std::int64_t steps = 0, skipped = 0;
  std::map<std::string, std::uint64_t> hypers; // as hyperparameters() lists them, the doubles' bits
  bool operator==(const full_state&) const = default;
};

struct model {
  steep::param_store<float> store{ { steep::block_spec<float>("W", { 6, 4 }, block_role::hidden_matrix),
                                     steep::block_spec<float>("b", { 4 }, block_role::vector),
                                     steep::block_spec<float>("E", { 5, 3 }, block_role::embedding) } };
  steep::optimizer<decltype(three_arms()), float> opt{ three_arms(),
                                                       store,
                                                       { .threads = 1,
                                                         .nonfinite = steep::nonfinite_policy::skip } };

  // `steps` steps from `seed`, the second with a NaN gradient (skipped, and counted).
  void run(int steps, int seed) {
    for (int t = 0; t < steps; ++t) {
      for (const auto& b : store.blocks())
        for (std::size_t i = 0; i < b.size; ++i)
          b.grad[i] = std::cos(0.7f * static_cast<float>(t + seed) + 0.13f * static_cast<float>(i));
      if (t == 1)
        store.blocks()[1].grad[0] = std::numeric_limits<float>::quiet_NaN();
      opt.step();
    }
  }

  full_state state() {
    full_state out;
    for (const auto& b : store.blocks()) {
      const auto* p = reinterpret_cast<const std::byte*>(b.param);
      out.tensors["param/" + b.name].assign(p, p + b.size * sizeof(float));
    }
    opt.visit_slots([&](const steep::engine::slot_bytes& s) {
      out.tensors["state/" + s.block + "/" + s.slot].assign(s.bytes.begin(), s.bytes.end());
    });
    out.steps = opt.steps(), out.skipped = opt.skipped_steps();
    for (const auto& [name, value] : opt.hyperparameters())
      out.hypers[name] = std::bit_cast<std::uint64_t>(value);
    return out;
  }

  std::vector<std::byte> image() {
    const std::string path = "/tmp/steep-fuzz-checkpoint." + std::to_string(::getpid());
    steep::save_checkpoint(opt, store, path);
    std::ifstream in(path, std::ios::binary);
    std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::remove(path.c_str());
    const auto bytes = std::as_bytes(std::span(raw));
    return { bytes.begin(), bytes.end() };
  }
};

// The reference (4 steps, one skipped; its arms' learning rates apart, so the file spells them
// per arm) and another checkpoint of the same model, to load before a patched reference so that
// a load that changed nothing cannot pass for a load of the reference.
struct references {
  std::vector<std::byte> image, other_image;
  full_state state;
  references() {
    model m;
    m.run(2, 7);
    m.opt.set("lr", 5e-4);
    other_image = m.image();
    model r;
    r.run(4, 0);
    r.opt.set("arm1/lr", 2e-3);
    image = r.image();
    state = r.state();
  }
};

const references& reference() {
  static const references r;
  return r;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_checkpoint: %s\n", what);
    std::abort();
  }
}

// What the file says each hyperparameter is (given for every arm, "lr", or for one, "arm1/lr",
// which wins), compared with what the optimizer now has.
void check_hypers(model& m, const steep::io::tensor_file& f) {
  std::map<std::string, double>
    given; // by name, one arm's as "arm<k>/<name>" however k was spelled ("arm01")
  for (const auto& [key, text] : f.metadata)
    if (key.rfind("hyper/", 0) == 0) {
      double v = 0;
      std::from_chars(text.data(), text.data() + text.size(), v);
      std::string name = key.substr(6);
      std::size_t arm = 0;
      const auto slash = name.find('/');
      if (name.rfind("arm", 0) == 0 && slash != std::string::npos) {
        const auto [end, ec] = std::from_chars(name.data() + 3, name.data() + slash, arm);
        if (ec == std::errc{} && end == name.data() + slash)
          name = "arm" + std::to_string(arm) + name.substr(slash);
      }
      given[name] = v;
    }
  for (std::size_t arm = 0; arm < 3; ++arm) {
    const std::string prefix = "arm" + std::to_string(arm) + "/";
    for (const auto& [name, value] : given) {
      if (name.rfind("arm", 0) == 0)
        continue;
      const auto own = given.find(prefix + name);
      if (m.opt.has(prefix + name))
        check(std::bit_cast<std::uint64_t>(m.opt.get(prefix + name)) ==
                std::bit_cast<std::uint64_t>(own != given.end() ? own->second : value),
              "a loaded hyperparameter is not the file's");
    }
    for (const auto& [name, value] : given)
      if (name.rfind(prefix, 0) == 0)
        check(std::bit_cast<std::uint64_t>(m.opt.get(name)) == std::bit_cast<std::uint64_t>(value),
              "a loaded hyperparameter is not the file's");
  }
}

// Loads `bytes` in `mode`. Refused: nothing changed. Loaded: returns true, the caller checks.
bool load(model& m, std::span<const std::byte> bytes, steep::load_mode mode, steep::io::tensor_file* parsed,
          steep::load_report* report) {
  const full_state before = m.state();
  try {
    auto f = steep::io::parse(bytes, "fuzz input");
    auto r = steep::load_checkpoint(m.opt, m.store, f, "fuzz input", mode);
    if (parsed)
      *parsed = std::move(f);
    if (report)
      *report = std::move(r);
    return true;
  } catch (const steep::error&) {       // names a block
  } catch (const steep::usage_error&) { // names the file
  }
  check(m.state() == before, "a refused load changed something");
  return false;
}

} // namespace

// With STEEP_FUZZ_WRITE_SEEDS=<dir>: writes the seeds, then fuzzes as usual.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("STEEP_FUZZ_WRITE_SEEDS");
  if (!dir)
    return 0;
  auto write = [&](const std::string& name, std::span<const std::byte> bytes) {
    std::ofstream out(std::string(dir) + "/" + name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  };
  model fresh;
  write("fresh.safetensors", fresh.image());
  const auto& ref = reference();
  write("reference.safetensors", ref.image);
  // Header flips that format 1 loaded without a word: another lr, step or skipped count, beta,
  // eps, momentum; a key renamed away (its hyperparameter left as it was); "format" changed,
  // which switched its CRC off. Each is now refused by the checksum.
  const std::string text(reinterpret_cast<const char*>(ref.image.data()), ref.image.size());
  struct flip {
    const char* name;
    const char* find; // the flipped byte is the last of this text's first occurrence
    unsigned char mask;
  };
  for (const flip& x : { flip{ "lr", "\"hyper/arm1/lr\":\"0.002", 0x01 },  // 0.003
                         flip{ "step", "\"step\":\"3", 0x04 },             // 7
                         flip{ "skipped", "\"skipped_steps\":\"1", 0x01 }, // 0
                         flip{ "beta1", "\"hyper/beta1\":\"0.9", 0x02 },   // 0.;
                         flip{ "eps", "\"hyper/eps\":\"1e-08", 0x01 },     // 1e-09
                         flip{ "momentum-key", "\"hyper/momentum", 0x01 }, // momentul
                         flip{ "format", "\"format\":\"steep", 0x01 } }) { // steeq
    const auto at = text.find(x.find);
    if (at == std::string::npos)
      continue;
    const std::size_t i = at + std::strlen(x.find) - 1;
    auto image = ref.image;
    image[i] ^= std::byte{ x.mask };
    write(std::string("flip-") + x.name + ".safetensors", image);
    const std::byte patch[3] = { std::byte(i & 0xff), std::byte(i >> 8), std::byte{ x.mask } };
    write(std::string("patch-") + x.name + ".bin", patch);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static model m;
  const auto& ref = reference();
  const auto input = std::as_bytes(std::span(data, size));
  // 1. The input as a file image.
  for (auto mode : { steep::load_mode::strict, steep::load_mode::matching }) {
    const full_state before = m.state();
    steep::io::tensor_file f;
    steep::load_report r;
    if (!load(m, input, mode, &f, &r))
      continue;
    const full_state now = m.state();
    std::map<std::string, bool> loaded;
    for (const auto& name : r.loaded)
      loaded[name] = true;
    for (const auto& [name, bytes] : now.tensors)
      check(bytes == (loaded.count(name) ? f.tensors.at(name).data : before.tensors.at(name)),
            "a tensor is neither the file's nor what it was");
    if (r.same_rule) {
      check(steep::io::parse_count(f.metadata.at("step")) == now.steps &&
              steep::io::parse_count(f.metadata.at("skipped_steps")) == now.skipped,
            "the step counts are not the file's");
      check_hypers(m, f);
    } else {
      check(now.steps == before.steps && now.skipped == before.skipped && now.hypers == before.hypers,
            "another rule's file changed the counts or hyperparameters");
    }
  }
  // 2. The input as a patch on the reference.
  std::vector<std::byte> image = ref.image;
  for (std::size_t k = 0; k + 3 <= size; k += 3) {
    const std::size_t at = (data[k] | std::size_t{ data[k + 1] } << 8) % image.size();
    if (at < steep::io::checksum_at || at >= steep::io::checksum_at + 8)
      image[at] ^= std::byte{ data[k + 2] };
  }
  for (auto mode : { steep::load_mode::strict, steep::load_mode::matching }) {
    if (m.state() == ref.state) // else a load that changed nothing would look right
      check(load(m, ref.other_image, steep::load_mode::strict, nullptr, nullptr),
            "the other checkpoint loads");
    if (load(m, image, mode, nullptr, nullptr))
      check(m.state() == ref.state, "a patched reference loaded, and is not the reference");
  }
  return 0;
}
