// Checkpoints (engine/checkpoint.hpp, io/safetensors.hpp): save, load and continue is bitwise
// the run that never stopped, for plain and routed rules and every slot granularity and dtype;
// a file that does not fit — another rule, another model, a truncated or corrupt file — is
// refused by name with parameters and state untouched.

#include <catch2/catch.hpp>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <map>
#include <steep/steep.hpp>
#include <string>
#include <sys/wait.h>
#include <tuple>
#include <unistd.h>
#include <vector>

namespace rules = steep::rules;
using steep::block_role;

namespace {
using T = float;

steep::param_store<T> make_store() {
  steep::param_store<T> s({ steep::block_spec<T>("W1", { 8, 6 }, block_role::hidden_matrix),
                            steep::block_spec<T>("W2", { 5, 8 }, block_role::hidden_matrix),
                            steep::block_spec<T>("b", { 5 }, block_role::vector) });
  for (std::size_t k = 0; k < s.size(); ++k) {
    const auto& b = s.block_at(k);
    for (std::size_t i = 0; i < b.size; ++i)
      b.param[i] = std::sin(0.3f * static_cast<float>(i + 11 * k));
  }
  return s;
}

void fill_grads(steep::param_store<T>& s, int step) {
  for (std::size_t k = 0; k < s.size(); ++k) {
    const auto& b = s.block_at(k);
    for (std::size_t i = 0; i < b.size; ++i)
      b.grad[i] =
        std::cos(0.7f * static_cast<float>(step) + 0.13f * static_cast<float>(i) + static_cast<float>(k));
  }
}

// Every parameter and slot, as bytes, by name.
template <class Opt>
std::map<std::string, std::vector<std::byte>> snapshot(Opt& opt, const steep::param_store<T>& s) {
  std::map<std::string, std::vector<std::byte>> out;
  for (std::size_t k = 0; k < s.size(); ++k) {
    const auto& b = s.block_at(k);
    const auto* p = reinterpret_cast<const std::byte*>(b.param);
    out["param/" + b.name].assign(p, p + b.size * sizeof(T));
  }
  opt.visit_slots([&](const steep::engine::slot_bytes& x) {
    out["state/" + x.block + "/" + x.slot].assign(x.bytes.begin(), x.bytes.end());
  });
  return out;
}

std::string temp_path(const std::string& name) { return "steep-test-" + name + ".safetensors"; }

// A file image edited by a test, its checksum made right again (io/safetensors.hpp): so that the
// checks behind the checksum, which a file without one meets first, are reached.
std::string with_checksum(std::string image) {
  const auto at = steep::io::checksum_at;
  if (image.size() >= at + 8 && image.compare(8, at - 8, steep::io::checksum_prefix) == 0)
    image.replace(at, 8, steep::io::file_checksum(std::as_bytes(std::span(image.data(), image.size()))));
  return image;
}

// One step with fill_grads(.., 0), then a checkpoint at temp_path(name), whose path it returns.
template <class Opt>
std::string save_after_one_step(Opt& opt, steep::param_store<T>& store, const std::string& name) {
  fill_grads(store, 0), opt.step();
  const std::string path = temp_path(name);
  steep::save_checkpoint(opt, store, path);
  return path;
}

// 3 steps, save, 3 more steps; then a fresh store and optimizer load the file and take the same 3.
template <class Rule>
void check_round_trip(const Rule& rule, const std::string& name) {
  INFO(name);
  auto store = make_store();
  steep::optimizer opt(rule, store, { .threads = 2, .chunk_elements = 64 });
  for (int t = 0; t < 3; ++t)
    fill_grads(store, t), opt.step();
  // A learning rate changed between steps is part of the state a checkpoint keeps.
  std::size_t rates = 0;
  for (const auto& [hyper, value] : opt.hyperparameters())
    if (hyper.ends_with("lr"))
      opt.set(hyper, value / 2), ++rates;
  REQUIRE(rates > 0);
  const std::string path = temp_path(name);
  steep::save_checkpoint(opt, store, path);
  for (int t = 3; t < 6; ++t)
    fill_grads(store, t), opt.step();
  const auto uninterrupted = snapshot(opt, store);

  auto fresh = make_store();
  steep::optimizer resumed(rule, fresh, { .threads = 1 });
  fill_grads(fresh, 0), resumed.step(); // some other state, to be overwritten
  steep::load_checkpoint(resumed, fresh, path);
  CHECK(resumed.steps() == 3);
  CHECK(resumed.hyperparameters() == opt.hyperparameters());
  for (int t = 3; t < 6; ++t)
    fill_grads(fresh, t), resumed.step();
  CHECK(snapshot(resumed, fresh) == uninterrupted);
  std::remove(path.c_str());
}
} // namespace

TEST_CASE("checkpoint: save, load, continue is bitwise the uninterrupted run, every slot kind") {
  check_round_trip(rules::adam(1e-2), "adam");
  check_round_trip(rules::adam_bf16(1e-2), "adam_bf16"); // BF16 slots
  check_round_trip(rules::adam_mini(1e-2), "adam_mini"); // a per-block slot
  check_round_trip(rules::lion(1e-3), "lion");
  check_round_trip(rules::muon_adam(), "muon_adam"); // routed, a matrix stage
  check_round_trip(rules::scion(1e-3), "scion");     // routed, column and row lines
  check_round_trip(steep::route(steep::on<block_role::hidden_matrix> >> rules::normuon(0.02),
                                steep::otherwise >> rules::adamw(1e-3)),
                   "normuon_adamw"); // a per-row slot
  check_round_trip(steep::route(steep::on_name("W1") >> rules::adam_mini_sliced(1e-2, 2, 6),
                                steep::on_name("W2") >> rules::normuon_stacked(0.02, 4, 5),
                                steep::otherwise >> rules::adamw(1e-3)),
                   "sliced"); // per-slice slots
}

TEST_CASE("checkpoint: blocks are matched by name, not position") {
  auto store = make_store();
  steep::optimizer opt(rules::adam(1e-2), store);
  const std::string path = save_after_one_step(opt, store, "order");
  const auto saved = snapshot(opt, store);
  // The same blocks, declared in another order.
  steep::param_store<T> other({ steep::block_spec<T>("b", { 5 }, block_role::vector),
                                steep::block_spec<T>("W2", { 5, 8 }, block_role::hidden_matrix),
                                steep::block_spec<T>("W1", { 8, 6 }, block_role::hidden_matrix) });
  steep::optimizer opt2(rules::adam(1e-2), other);
  steep::load_checkpoint(opt2, other, path);
  CHECK(snapshot(opt2, other) == saved);
  std::remove(path.c_str());
}

TEST_CASE("checkpoint: what does not fit is refused by name, and nothing changes") {
  auto store = make_store();
  steep::optimizer opt(rules::adam(1e-2), store);
  const std::string path = save_after_one_step(opt, store, "bad");
  std::ifstream in(path, std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();

  auto target = make_store();
  steep::optimizer victim(rules::adam(1e-2), target);
  fill_grads(target, 5), victim.step(), victim.step();
  const auto before = snapshot(victim, target);
  auto refuses = [&](const std::string& bytes, const std::string& expect) {
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << bytes;
    }
    INFO(expect);
    CHECK_THROWS_WITH(steep::load_checkpoint(victim, target, path), Catch::Contains(expect));
    CHECK(snapshot(victim, target) == before);
    CHECK(victim.steps() == 2);
  };
  refuses(good.substr(0, good.size() - 3), "checksum does not match"); // truncated data
  refuses(with_checksum(good.substr(0, good.size() - 3)), "outside the data section");
  refuses(good.substr(0, 5), "shorter than its 8-byte header length"); // truncated header length
  std::string flipped = good;
  flipped[flipped.size() - 2] = static_cast<char>(flipped[flipped.size() - 2] ^ 0x10);
  refuses(flipped, "checksum does not match"); // a bit flip in the data
  std::string huge = good;
  huge[5] = static_cast<char>(0x7f); // header length ~ 2^47
  refuses(huge, "checksum does not match");
  refuses(with_checksum(huge), "runs past the end of the file");
  refuses(good + std::string(8, '\0'), "checksum does not match"); // trailing bytes no tensor owns
  refuses(with_checksum(good + std::string(8, '\0')), "past the last tensor");
  std::string garbled = good;
  garbled[9] = '#';
  refuses(garbled, "not valid JSON");
  // A shape or offset that is not a whole number >= 0 is refused by tensor and field; converting
  // 1e30 to an integer would be undefined behaviour (libFuzzer found this one).
  for (const auto& [from, to, expect] :
       { std::tuple{ "\"shape\":[", "\"shape\":[1e30,", "its shape holds 1e+30" },
         std::tuple{ "\"shape\":[", "\"shape\":[-1,", "its shape holds -1" },
         std::tuple{ "\"shape\":[", "\"shape\":[2.5,", "not a whole number >= 0" },
         std::tuple{ "\"data_offsets\":[", "\"data_offsets\":[\"0\",", "its data_offsets holds \"0\"" },
         std::tuple{ "\"data_offsets\":[", "\"data_offsets\":{},\"x\":[", "its data_offsets is not a list" },
         std::tuple{ "\"shape\":[", "\"shape\":[[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20],",
                     "its shape holds [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,..., not" } }) {
    std::uint64_t n = 0;
    for (int i = 0; i < 8; ++i)
      n |= std::uint64_t{ static_cast<unsigned char>(good[i]) } << (8 * i);
    std::string header = good.substr(8, n);
    header.replace(header.find(from), std::string(from).size(), to);
    std::string edited(8, '\0');
    for (int i = 0; i < 8; ++i)
      edited[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    refuses(with_checksum(edited + header + good.substr(8 + n)), expect);
  }
  // A saved hyperparameter outside its range, or unknown to the optimizer, is refused likewise.
  for (const auto& [key, text, expect] :
       { std::tuple{ "hyper/beta1", "1.5", "'beta1'" }, std::tuple{ "hyper/lr", "nan", "'lr'" },
         std::tuple{ "hyper/lr", "fast", "not a number" },
         std::tuple{ "hyper/momentum", "0.9", "does not have" } }) {
    auto f = steep::io::parse(std::as_bytes(std::span(good.data(), good.size())), "good");
    f.metadata[key] = text;
    INFO(key << " = " << text);
    CHECK_THROWS_WITH(steep::load_checkpoint(victim, target, f, "edited"), Catch::Contains(expect));
    CHECK(snapshot(victim, target) == before);
    CHECK(victim.get("lr") == Approx(1e-2));
  }
  // Step counts that are not whole numbers are refused before anything is written.
  for (const std::string bad : { "-3", "12abc", "", "99999999999999999999" }) {
    auto f = steep::io::parse(std::as_bytes(std::span(good.data(), good.size())), "good");
    f.metadata["step"] = bad;
    INFO("step = '" << bad << "'");
    CHECK_THROWS_WITH(steep::load_checkpoint(victim, target, f, "edited"),
                      Catch::Contains("not a whole number"));
    CHECK(snapshot(victim, target) == before);
  }

  // Another rule, another model.
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << good;
  }
  steep::optimizer signum(rules::signum(1e-2), target);
  CHECK_THROWS_WITH(steep::load_checkpoint(signum, target, path), Catch::Contains("another rule"));
  steep::param_store<T> bigger({ steep::block_spec<T>("W1", { 8, 7 }, block_role::hidden_matrix),
                                 steep::block_spec<T>("W2", { 5, 8 }, block_role::hidden_matrix),
                                 steep::block_spec<T>("b", { 5 }, block_role::vector) });
  steep::optimizer adam2(rules::adam(1e-2), bigger);
  CHECK_THROWS_WITH(steep::load_checkpoint(adam2, bigger, path),
                    Catch::Contains("block 'W1'") && Catch::Contains("(8, 6)") && Catch::Contains("(8, 7)"));
  steep::param_store<T> fewer({ steep::block_spec<T>("W1", { 8, 6 }, block_role::hidden_matrix) });
  steep::optimizer adam3(rules::adam(1e-2), fewer);
  CHECK_THROWS_WITH(steep::load_checkpoint(adam3, fewer, path), Catch::Contains("'param/W2'"));

  // The explicit opt-in: load what matches, report the rest, leave it as it was.
  const auto w1 = snapshot(adam2, bigger).at("param/W1");
  const auto r = steep::load_checkpoint(adam2, bigger, path, steep::load_mode::matching);
  CHECK(r.same_rule);
  CHECK(r.mismatched == std::vector<std::string>{ "param/W1", "state/W1/exp_avg", "state/W1/exp_avg_sq" });
  CHECK(r.loaded.size() == 6); // W2 and b: parameter and two slots each
  CHECK(r.missing.empty());
  CHECK(r.unused.empty());
  CHECK(snapshot(adam2, bigger).at("param/W1") == w1);
  CHECK(adam2.steps() == 1);
  steep::param_store<T> warm = make_store();
  steep::optimizer lion(rules::lion(1e-3), warm);
  const auto warm_start = steep::load_checkpoint(lion, warm, path, steep::load_mode::matching);
  CHECK_FALSE(warm_start.same_rule); // parameters only; Lion's state and step count stay
  CHECK(warm_start.loaded == std::vector<std::string>{ "param/W1", "param/W2", "param/b" });
  CHECK(warm_start.missing.size() == 3); // Lion's exp_avg of each block
  CHECK(warm_start.unused.size() == 6);  // Adam's moments
  CHECK(lion.steps() == 0);
  std::remove(path.c_str());
}

TEST_CASE("checkpoint: the file another program reads (tests/checkpoint_reader.py checks it)") {
  // A fixed, small file: W = 0.25 i (float32, 3 x 4), its Adam slots after one step with g = 1.
  steep::param_store<T> store({ { "W", { 3, 4 } } });
  for (std::size_t i = 0; i < 12; ++i)
    store.block_at(0).param[i] = 0.25f * static_cast<float>(i), store.block_at(0).grad[i] = 1.f;
  steep::optimizer opt(rules::adam(1e-3), store);
  opt.step();
  for (std::size_t i = 0; i < 12; ++i)
    store.block_at(0).param[i] = 0.25f * static_cast<float>(i); // the values the reader expects
  steep::save_checkpoint(opt, store, "steep-checkpoint-sample.safetensors");
  const auto f = steep::io::load("steep-checkpoint-sample.safetensors");
  CHECK(f.tensors.size() == 3);
  CHECK(f.metadata.at("step") == "1");
}

TEST_CASE("checkpoint: a save killed midway leaves a whole checkpoint, the old one or the new") {
  steep::param_store<T> store({ { "W", { 1024, 1024 } } }); // 4 MB of parameters, 12 MB in the file
  for (std::size_t i = 0; i < store.block_at(0).size; ++i)
    store.block_at(0).grad[i] = std::sin(0.001f * static_cast<float>(i));
  steep::optimizer opt(rules::adam(1e-3), store, { .threads = 1 });
  opt.step();
  const std::string path = temp_path("killed");
  steep::save_checkpoint(opt, store, path); // the previous checkpoint: step 1
  opt.step();                               // the state the killed saves write: step 2
  int saw_new = 0;
  for (int trial = 0; trial < 6; ++trial) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) { // the child saves over and over until it is killed
      for (;;)
        steep::save_checkpoint(opt, store, path);
    }
    ::usleep(static_cast<useconds_t>(3000 + 7000 * trial));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    steep::param_store<T> fresh({ { "W", { 1024, 1024 } } });
    steep::optimizer loaded(rules::adam(1e-3), fresh, { .threads = 1 });
    CHECK_NOTHROW(steep::load_checkpoint(loaded, fresh, path)); // whole: the CRC and every check pass
    CHECK((loaded.steps() == 1 || loaded.steps() == 2));
    saw_new += loaded.steps() == 2;
  }
  INFO("trials that found the new checkpoint: " << saw_new);
  // The killed saves left their temporary files aside; the next save removes them (their
  // processes are gone), and only them.
  steep::save_checkpoint(opt, store, path);
  std::size_t left = 0;
  for (DIR* d = ::opendir("."); d; ::closedir(d), d = nullptr)
    while (const dirent* e = ::readdir(d))
      left += std::string(e->d_name).rfind(path + ".tmp.", 0) == 0;
  CHECK(left == 0);
  std::remove(path.c_str());
}
