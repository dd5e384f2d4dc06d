// Checkpoint integrity (engine/checkpoint.hpp, io/safetensors.hpp; docs/robustness.md): the
// checksum covers the header and the data whatever the header says; strict mode needs every key;
// step counts are range-checked before anything is written; the reader takes regular files
// only, within their size, and lets no foreign exception out; names that are not UTF-8 are
// refused before a save writes anything; saves use their own temporary files and clean up
// after dead ones; and every single-bit flip of a checkpoint is refused or loads it unchanged.

#include <atomic>
#include <bit>
#include <catch2/catch.hpp>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <steep/steep.hpp>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace rules = steep::rules;
using steep::block_role;

namespace {
using T = float;

// Three arms, three kinds of state: Muon (a matrix stage, per-element float32 momentum),
// Adam with bfloat16 moments, Adam-mini (a per-block second moment). Small blocks: the file is
// about 1.5 KB, so the sweep below flips each of its bits.
auto three_arms() {
  return steep::route(steep::on<block_role::hidden_matrix> >> rules::muon(0.02),
                      steep::on<block_role::vector> >> rules::adam_bf16(1e-3),
                      steep::otherwise >> rules::adam_mini(3e-3, 0.9, 0.99, 1e-8, 0.01));
}
using three_arm_optimizer = steep::optimizer<decltype(three_arms()), T>;

steep::param_store<T> make_store() {
  steep::param_store<T> s({ steep::block_spec<T>("W", { 6, 4 }, block_role::hidden_matrix),
                            steep::block_spec<T>("b", { 4 }, block_role::vector),
                            steep::block_spec<T>("E", { 5, 3 }, block_role::embedding) });
  for (std::size_t k = 0; k < s.size(); ++k) {
    const auto& b = s.block_at(k);
    for (std::size_t i = 0; i < b.size; ++i)
      b.param[i] = std::sin(0.3f * static_cast<float>(i + 11 * k));
  }
  return s;
}

// `steps` steps (one of them with a NaN gradient, which the skip policy counts), from `seed`.
void run(three_arm_optimizer& opt, steep::param_store<T>& s, int steps, int seed) {
  for (int t = 0; t < steps; ++t) {
    for (std::size_t k = 0; k < s.size(); ++k) {
      const auto& b = s.block_at(k);
      for (std::size_t i = 0; i < b.size; ++i)
        b.grad[i] = std::cos(0.7f * static_cast<float>(t + seed) + 0.13f * static_cast<float>(i) +
                             static_cast<float>(k));
    }
    if (t == 1)
      s.block_at(1).grad[0] = std::numeric_limits<T>::quiet_NaN();
    opt.step();
  }
}

three_arm_optimizer make_optimizer(steep::param_store<T>& s) {
  return three_arm_optimizer(three_arms(), s, { .threads = 1, .nonfinite = steep::nonfinite_policy::skip });
}

// Everything a checkpoint restores, bit for bit: parameters, slots, counters, hyperparameters.
struct full_state {
  std::map<std::string, std::vector<std::byte>> tensors;
  std::int64_t steps = 0, skipped = 0;
  std::map<std::string, std::uint64_t> hypers; // the doubles' bits
  bool operator==(const full_state&) const = default;
};

template <class Opt>
full_state state_of(Opt& opt, const steep::param_store<T>& s) {
  full_state out;
  for (std::size_t k = 0; k < s.size(); ++k) {
    const auto& b = s.block_at(k);
    const auto* p = reinterpret_cast<const std::byte*>(b.param);
    out.tensors["param/" + b.name].assign(p, p + b.size * sizeof(T));
  }
  opt.visit_slots([&](const steep::engine::slot_bytes& x) {
    out.tensors["state/" + x.block + "/" + x.slot].assign(x.bytes.begin(), x.bytes.end());
  });
  out.steps = opt.steps(), out.skipped = opt.skipped_steps();
  for (const auto& [name, value] : opt.hyperparameters())
    out.hypers[name] = std::bit_cast<std::uint64_t>(value);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return { std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>() };
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::span<const std::byte> as_bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// The saved image of a three-arm optimizer after 4 steps (one skipped), its arms' learning
// rates, beta2 and weight decay set apart (so the file spells them per arm: "arm1/lr").
struct reference {
  steep::param_store<T> store = make_store();
  three_arm_optimizer opt = make_optimizer(store);
  std::string image;
  full_state state;
  reference() {
    run(opt, store, 4, 0);
    opt.set("arm1/lr", 2e-3);
    const std::string path = "steep-integrity-reference.safetensors";
    steep::save_checkpoint(opt, store, path);
    image = read_file(path);
    std::remove(path.c_str());
    state = state_of(opt, store);
  }
};

// A victim in another state: a refused load must leave it as it is.
struct victim {
  steep::param_store<T> store = make_store();
  three_arm_optimizer opt = make_optimizer(store);
  victim() {
    run(opt, store, 2, 7);
    opt.set("lr", 5e-4);
  }
};

// The reference and its image parsed (checksum checked), for tests that edit the parsed file.
struct parsed_reference {
  reference ref;
  steep::io::tensor_file good = steep::io::parse(as_bytes(ref.image), "reference");
};

// The header's JSON text of a file image, and an image with another header (checksum made right).
std::string header_of(const std::string& image) {
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= std::uint64_t{ static_cast<unsigned char>(image[i]) } << (8 * i);
  return image.substr(8, n);
}
std::string with_header(const std::string& image, const std::string& header, bool checksum = true) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  out += header + image.substr(8 + header_of(image).size());
  if (checksum && out.compare(8, steep::io::checksum_prefix.size(), steep::io::checksum_prefix) == 0)
    out.replace(steep::io::checksum_at, 8, steep::io::file_checksum(as_bytes(out)));
  return out;
}

// The same tensors and metadata written as another program would: no checksum, nlohmann's order.
std::string without_checksum(const steep::io::tensor_file& f) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& [name, t] : f.tensors) {
    header[name] = { { "dtype", t.dtype },
                     { "shape", t.shape },
                     { "data_offsets", { data.size(), data.size() + t.data.size() } } };
    data.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  }
  if (!f.metadata.empty())
    header["__metadata__"] = f.metadata;
  const std::string text = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  return out + text + data;
}
} // namespace

TEST_CASE("checkpoint integrity: the checksum covers the header, whatever its format field says") {
  const reference ref;
  victim v;
  const auto before = state_of(v.opt, v.store);
  const std::string path = "steep-integrity-header.safetensors";
  auto refused = [&](const std::string& bytes, const std::string& expect) {
    write_file(path, bytes);
    CHECK_THROWS_WITH(steep::load_checkpoint(v.opt, v.store, path), Catch::Contains(expect));
    CHECK_THROWS_WITH(steep::load_checkpoint(v.opt, v.store, path, steep::load_mode::matching),
                      Catch::Contains(expect));
    CHECK(state_of(v.opt, v.store) == before);
  };
  const std::string header = header_of(ref.image);
  REQUIRE(header.rfind(steep::io::checksum_prefix, 0) == 0);
  // Edits of the header's text that keep its length and its JSON valid, each of which the old
  // format loaded silently: another learning rate, step count, skipped count or momentum; a
  // hyperparameter's key renamed away (so the optimizer kept its own); "format" no longer
  // "steep" (which switched the data's CRC off).
  REQUIRE(ref.opt.steps() == 3); // 4 steps, one skipped
  for (const auto& [from, to] : { std::pair{ "\"hyper/arm1/lr\":\"0.002\"", "\"hyper/arm1/lr\":\"0.003\"" },
                                  std::pair{ "\"step\":\"3\"", "\"step\":\"4\"" },
                                  std::pair{ "\"skipped_steps\":\"1\"", "\"skipped_steps\":\"0\"" },
                                  std::pair{ "\"hyper/momentum\"", "\"hyper/momentun\"" },
                                  std::pair{ "\"format\":\"steep\"", "\"format\":\"steeq\"" } }) {
    INFO(from << " -> " << to);
    std::string edited = header;
    REQUIRE(edited.find(from) != std::string::npos);
    edited.replace(edited.find(from), std::strlen(from), to);
    std::string image = ref.image;
    image.replace(8, header.size(), edited);
    refused(image, "checksum does not match");
  }
  // And a data bit flipped in a file whose "format" a second flip changed.
  std::string both = ref.image;
  both[both.find("\"format\":\"steep\"") + 14] ^= 0x01;
  both[both.size() - 5] ^= 0x01;
  refused(both, "checksum does not match");
  // The checksum gone (its key's first byte flipped): the metadata still says steep, so it is
  // refused in matching mode too, not taken for another program's file.
  std::string renamed = ref.image;
  renamed[8 + std::strlen("{\"__metadata__\":{\"")] ^= 0x01; // "checksum" -> "bhecksum"
  refused(renamed, "no checksum");
  std::remove(path.c_str());
}

TEST_CASE("checkpoint integrity: strict mode needs the checksum and every key, matching reports") {
  const parsed_reference p;
  const auto& [ref, good] = std::tie(p.ref, p.good);
  victim v;
  const auto before = state_of(v.opt, v.store);
  REQUIRE(good.checksummed);
  // A key missing from an (unchanged, checksummed) file: refused in strict mode, naming it.
  for (const std::string key : { "rule", "step", "skipped_steps", "hyper/arm1/lr", "hyper/momentum",
                                 "hyper/beta1", "hyper/arm2/weight_decay" }) {
    auto f = good;
    REQUIRE(f.metadata.erase(key) == 1);
    INFO("without " << key);
    CHECK_THROWS_WITH(steep::load_checkpoint(v.opt, v.store, f, "edited"),
                      Catch::Contains("no '" + key + "'"));
    CHECK(state_of(v.opt, v.store) == before);
  }
  // Matching mode loads the rest and reports the hyperparameter it kept.
  {
    auto f = good;
    f.metadata.erase("hyper/momentum");
    steep::param_store<T> s = make_store();
    auto o = make_optimizer(s);
    const auto r = steep::load_checkpoint(o, s, f, "edited", steep::load_mode::matching);
    CHECK(r.missing == std::vector<std::string>{ "hyper/momentum" });
    CHECK(o.steps() == ref.opt.steps());
  }
  // The same keys, spelled per arm here and for every arm there (or the other way): loads.
  {
    steep::param_store<T> s = make_store();
    auto o = make_optimizer(s); // its arms' lrs differ too, but beta2 is set alike below
    o.set("beta2", 0.95);       // listed once here ("beta2"), per arm in the file
    steep::load_checkpoint(o, s, good, "reference");
    CHECK(state_of(o, s) == ref.state);
  }
  // Without the checksum (a file another program wrote from the same tensors and metadata).
  const std::string path = "steep-integrity-foreign.safetensors";
  auto copied = good;
  copied.metadata.erase("checksum");
  write_file(path, without_checksum(copied));
  CHECK_THROWS_WITH(steep::load_checkpoint(v.opt, v.store, path), Catch::Contains("has no checksum"));
  CHECK_THROWS_WITH(steep::load_checkpoint(v.opt, v.store, path, steep::load_mode::matching),
                    Catch::Contains("no checksum"));
  copied.metadata.erase("format"), copied.metadata.erase("format_version"); // still a checkpoint's keys
  write_file(path, without_checksum(copied));
  CHECK_THROWS_WITH(steep::load_checkpoint(v.opt, v.store, path, steep::load_mode::matching),
                    Catch::Contains("steep checkpoint's metadata but no checksum"));
  CHECK(state_of(v.opt, v.store) == before);
  // Parameters only, as torch's safetensors writes them ({"format": "pt"}): strict refuses,
  // matching warm-starts the parameters and says so.
  steep::io::tensor_file params;
  params.metadata["format"] = "pt";
  for (const auto& [name, t] : good.tensors)
    if (name.rfind("param/", 0) == 0)
      params.tensors[name] = t;
  write_file(path, without_checksum(params));
  CHECK_THROWS_WITH(steep::load_checkpoint(v.opt, v.store, path), Catch::Contains("has no checksum"));
  CHECK(state_of(v.opt, v.store) == before);
  const auto r = steep::load_checkpoint(v.opt, v.store, path, steep::load_mode::matching);
  CHECK_FALSE(r.checksummed);
  CHECK_FALSE(r.same_rule);
  CHECK(r.loaded == std::vector<std::string>{ "param/W", "param/b", "param/E" });
  auto warm = before;
  for (const auto& [name, t] : params.tensors)
    warm.tensors[name] = t.data;
  CHECK(state_of(v.opt, v.store) == warm); // parameters from the file; state, counts, hypers kept
  // steep's format 1 (the data's CRC in decimal, no header checksum): its parameters likewise.
  auto legacy = good;
  legacy.metadata.erase("checksum");
  legacy.metadata["format_version"] = "1";
  std::vector<std::byte> data;
  for (const auto& [name, t] : legacy.tensors)
    data.insert(data.end(), t.data.begin(), t.data.end());
  legacy.metadata["crc32"] = std::to_string(steep::io::crc32_of(data));
  write_file(path, without_checksum(legacy));
  CHECK_THROWS_WITH(steep::load_checkpoint(v.opt, v.store, path), Catch::Contains("format version 1"));
  const auto r1 = steep::load_checkpoint(v.opt, v.store, path, steep::load_mode::matching);
  CHECK_FALSE(r1.checksummed);
  CHECK(r1.loaded.size() == 3);
  std::remove(path.c_str());
}

TEST_CASE("checkpoint integrity: step counts outside their range are refused before any write") {
  const parsed_reference p;
  const auto& [ref, good] = std::tie(p.ref, p.good);
  victim v;
  const auto before = state_of(v.opt, v.store);
  const std::string over = std::to_string(steep::engine::max_steps + 1);
  for (const auto& [step, skipped, expect] :
       { std::tuple{ std::string("9223372036854775807"), std::string("0"), std::string("above the most") },
         std::tuple{ over, std::string("0"), std::string("above the most") },
         std::tuple{ std::string("4"), std::string("5"), std::string("more than its step count") },
         std::tuple{ std::string("4"), std::string("-1"), std::string("not a whole number") } }) {
    auto f = good;
    f.metadata["step"] = step, f.metadata["skipped_steps"] = skipped;
    INFO("step " << step << ", skipped " << skipped);
    CHECK_THROWS_WITH(steep::load_checkpoint(v.opt, v.store, f, "edited"), Catch::Contains(expect));
    CHECK(state_of(v.opt, v.store) == before);
  }
  auto f = good; // the largest count an optimizer keeps is a count a checkpoint may hold
  f.metadata["step"] = std::to_string(steep::engine::max_steps);
  steep::load_checkpoint(v.opt, v.store, f, "edited");
  CHECK(v.opt.steps() == steep::engine::max_steps);
}

namespace {
// Interrupts a blocking open or read after a few seconds (no SA_RESTART: the call fails with
// EINTR), so a reader that blocks on a FIFO fails this test instead of hanging it.
extern "C" void on_alarm(int) {}
struct alarm_guard {
  struct sigaction old {};
  explicit alarm_guard(unsigned seconds) {
    struct sigaction sa {};
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGALRM, &sa, &old);
    ::alarm(seconds);
  }
  ~alarm_guard() {
    ::alarm(0);
    ::sigaction(SIGALRM, &old, nullptr);
  }
};
} // namespace

TEST_CASE("checkpoint integrity: the reader takes regular files only and lets no foreign exception out") {
  victim v;
  const auto before = state_of(v.opt, v.store);
  auto refused = [&](const std::string& path, const std::string& expect) {
    INFO(path);
    try {
      steep::load_checkpoint(v.opt, v.store, path);
      FAIL("loaded");
    } catch (const steep::usage_error& e) {
      CHECK_THAT(e.what(), Catch::Contains(expect) && Catch::Contains("'" + path + "'"));
    } catch (const std::exception& e) {
      FAIL("not a steep error: " << e.what());
    }
    CHECK(state_of(v.opt, v.store) == before);
  };
  const std::string dir = "steep-integrity-dir.safetensors";
  ::mkdir(dir.c_str(), 0755);
  refused(dir, "a directory");
  ::rmdir(dir.c_str());
  const std::string fifo = "steep-integrity-fifo.safetensors";
  ::unlink(fifo.c_str());
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  {
    alarm_guard guard(3); // no writer: a blocking open would wait forever
    refused(fifo, "FIFO");
  }
  ::unlink(fifo.c_str());
  refused("/dev/zero", "a device"); // endless: read up to bad_alloc before
  refused("steep-integrity-no-such-file.safetensors", "cannot open it");
  // A metadata value that is not a string: the JSON library's exception, named by field.
  const reference ref;
  std::string header = header_of(ref.image);
  header.replace(header.find("\"format\":\"steep\""), 16, "\"format\":[12345]");
  const std::string path = "steep-integrity-reader.safetensors";
  write_file(path, with_header(ref.image, header));
  refused(path, "__metadata__/format");
  // A header length of 2^63 (nothing allocated for it).
  std::string huge = ref.image;
  huge[7] = static_cast<char>(0x80);
  write_file(path, huge);
  refused(path, "checksum does not match");
  std::remove(path.c_str());
}

TEST_CASE("checkpoint integrity: a block name that is not UTF-8 is refused before anything is written") {
  for (const std::string& bad :
       { std::string("W\xff"), std::string("emb\xc3"), std::string("x\xed\xa0\x80") }) {
    steep::param_store<T> s({ steep::block_spec<T>(bad, { 2, 3 }, block_role::hidden_matrix) });
    steep::optimizer opt(rules::adam(1e-3), s);
    const std::string path = "steep-integrity-utf8.safetensors";
    std::remove(path.c_str());
    try {
      steep::save_checkpoint(opt, s, path);
      FAIL("saved");
    } catch (const steep::error& e) {
      CHECK(e.subject() == steep::io::hex_escaped(bad));
      CHECK_THAT(e.what(), Catch::Contains("\\x") && Catch::Contains("not UTF-8"));
    } catch (const std::exception& e) {
      FAIL("not a steep error: " << e.what());
    }
    struct stat st {};
    CHECK(::stat(path.c_str(), &st) != 0); // nothing written
  }
  CHECK(steep::io::is_utf8("W1.\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80")); // é, €, an emoji
  CHECK_FALSE(steep::io::is_utf8("\xc0\xaf"));                          // overlong '/'
  CHECK_FALSE(steep::io::is_utf8("\xf4\x90\x80\x80"));                  // past U+10FFFF
}

namespace {
std::vector<std::string> temp_files_of(const std::string& path) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(".")) {
    while (const dirent* e = ::readdir(d))
      if (std::string(e->d_name).rfind(path + ".tmp.", 0) == 0)
        out.push_back(e->d_name);
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}
} // namespace

TEST_CASE("checkpoint integrity: saves use their own temporary files and remove dead processes' only") {
  steep::param_store<T> s({ steep::block_spec<T>("W", { 256, 256 }, block_role::hidden_matrix) });
  steep::optimizer opt(rules::adam(1e-3), s, { .threads = 1 });
  const std::string path = "steep-integrity-save.safetensors";
  // A dead process's temporary files (the old name and the new), a live child's, init's, ours.
  const pid_t dead = ::fork();
  if (dead == 0)
    ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const pid_t live = ::fork();
  if (live == 0) {
    ::pause();
    ::_exit(0);
  }
  const std::vector<std::string> dead_files = { path + ".tmp." + std::to_string(dead),
                                                path + ".tmp." + std::to_string(dead) + ".3" };
  std::vector<std::string> kept = { path + ".tmp." + std::to_string(live) + ".0", path + ".tmp.1.0",
                                    path + ".tmp." + std::to_string(::getpid()) + ".999999",
                                    path + ".tmp." + std::to_string(dead) + ".x" }; // not a save's name
  for (const auto& name : dead_files)
    write_file(name, "partial");
  for (const auto& name : kept)
    write_file(name, "partial");
  steep::save_checkpoint(opt, s, path);
  std::sort(kept.begin(), kept.end());
  CHECK(temp_files_of(path) == kept);
  ::kill(live, SIGKILL);
  ::waitpid(live, nullptr, 0);
  for (const auto& name : kept)
    std::remove(name.c_str());
  // Two threads saving to one path at once: each save has its own temporary file.
  std::atomic<int> failures{ 0 };
  auto saves = [&] {
    for (int i = 0; i < 20; ++i)
      try {
        steep::save_checkpoint(opt, s, path);
      } catch (const std::exception&) {
        ++failures;
      }
  };
  std::thread a(saves), b(saves);
  a.join(), b.join();
  CHECK(failures == 0);
  CHECK(temp_files_of(path).empty());
  CHECK_NOTHROW(steep::load_checkpoint(opt, s, path));
  std::remove(path.c_str());
}

TEST_CASE(
  "checkpoint integrity: every single-bit flip of the header and every flipped data byte is refused or "
  "loads unchanged") {
  const reference ref;
  victim v;
  const std::string victim_path = "steep-integrity-victim.safetensors";
  steep::save_checkpoint(v.opt, v.store, victim_path);
  const auto victim_image = read_file(victim_path);
  std::remove(victim_path.c_str());
  const auto victim_state = state_of(v.opt, v.store);
  REQUIRE(victim_state != ref.state);
  const std::size_t header_end = 8 + header_of(ref.image).size();
  std::size_t tried = 0, refused = 0, unchanged = 0, other = 0;
  std::string first_bad;
  auto try_load = [&](const std::string& image, steep::load_mode mode, const std::string& what) {
    ++tried;
    bool loaded = false;
    try {
      steep::load_checkpoint(v.opt, v.store, steep::io::parse(as_bytes(image), what), what, mode);
      loaded = true;
    } catch (const steep::error&) {
    } catch (const steep::usage_error&) {
    } catch (const std::exception& e) {
      ++other;
      if (first_bad.empty())
        first_bad = what + ": " + e.what();
    }
    const auto now = state_of(v.opt, v.store);
    if (!loaded) {
      refused += now == victim_state;
      if (now != victim_state && first_bad.empty())
        first_bad = what + ": refused, but changed the state";
      return;
    }
    if (now == ref.state)
      ++unchanged;
    else if (first_bad.empty())
      first_bad = what + ": loaded something else";
    // Back to the victim's own state, so the next load shows what it loads.
    steep::load_checkpoint(v.opt, v.store, steep::io::parse(as_bytes(victim_image), "victim"), "victim");
  };
  for (auto mode : { steep::load_mode::strict, steep::load_mode::matching }) {
    const std::string m = mode == steep::load_mode::strict ? "strict" : "matching";
    for (std::size_t i = 0; i < ref.image.size(); ++i)
      for (int bit = 0; bit < (i < header_end ? 8 : 1); ++bit) { // data: each byte's lowest bit
        std::string image = ref.image;
        image[i] = static_cast<char>(image[i] ^ (1 << bit));
        try_load(image, mode, m + " byte " + std::to_string(i) + " bit " + std::to_string(bit));
      }
  }
  std::printf("checkpoint bit-flip sweep (%zu-byte file, %zu header bytes, both load modes): %zu flips "
              "tried, %zu refused, %zu loaded unchanged\n",
              ref.image.size(), header_end, tried, refused, unchanged);
  INFO(first_bad);
  CHECK(other == 0);
  CHECK(refused + unchanged == tried);
}
