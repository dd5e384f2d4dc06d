#pragma once
// Checkpoints: an optimizer's whole state and the model's parameters in one safetensors file.
//
//   steep::save_checkpoint(opt, store, "run.ckpt");   // atomic: the old file survives a crash
//   steep::load_checkpoint(opt, store, "run.ckpt");   // everything checked before anything changes
//   auto r = steep::load_checkpoint(opt, store, "old.ckpt", steep::load_mode::matching);
//   r.missing, r.mismatched, r.unused;                // what a warm start did not load
//
// The file (io/safetensors.hpp) holds "param/<block>" for every block of the store and
// "state/<block>/<slot>" for every slot of every block (per element, per row or column, per
// block; in the slot's dtype: F32, F64 or BF16), keyed by name, with the step count, the
// skipped-step count, the named hyperparameters and the rule's structural hash in the
// metadata, and a CRC-32 over the whole file, header and data (io/safetensors.hpp says where).
// Loading matches by name, never by position (blocks may come in another order), and
// refuses — naming the block and slot — a missing or extra tensor, another shape or dtype,
// another rule, a corrupt or truncated file, a missing key (rule, step, skipped_steps, any
// hyperparameter the optimizer has), a step count outside [0, max_steps] or a skipped count
// outside [0, step]; then parameters and state are as they were.
// A file without steep's checksum (another program's safetensors, or steep's format 1) is
// refused in strict mode; load_mode::matching takes its parameters alone (report.checksummed
// false), unless it carries a steep checkpoint's metadata: a flipped bit must not turn a
// checkpoint into a "foreign" file (docs/robustness.md).
// Save, load and continue is bitwise the run that never stopped (tests/unit/test_checkpoint.cpp).

#include "steep/core/error.hpp"
#include "steep/core/param_store.hpp"
#include "steep/engine/interface.hpp"
#include "steep/engine/slots.hpp"
#include "steep/io/safetensors.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace steep::engine {

namespace detail {
template <class T>
std::span<std::byte> param_bytes(const block<T>& b) {
  return std::as_writable_bytes(std::span<T>(b.param, b.size));
}
} // namespace detail

template <optimizer_interface Opt, class T>
void save_checkpoint(Opt& opt, const param_store<T>& store, const std::string& path) {
  // A safetensors header is JSON, which is UTF-8: a block name that is not would stop the
  // serializer halfway; refuse it by name (hex-escaped) before anything is written.
  for (std::size_t k = 0; k < store.size(); ++k)
    if (const auto& name = store.block_at(k).name; !io::is_utf8(name))
      throw error(io::hex_escaped(name), "checkpoint '" + path +
                                           "': the block's name is not UTF-8, which a safetensors "
                                           "header (JSON) must be; nothing was written");
  io::tensor_file f;
  f.metadata["rule"] = opt.rule_id();
  f.metadata["step"] = std::to_string(opt.steps());
  f.metadata["skipped_steps"] = std::to_string(opt.skipped_steps());
  for (const auto& [name, value] : opt.hyperparameters()) {
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", value); // round-trips a double exactly
    f.metadata["hyper/" + name] = text;
  }
  for (std::size_t k = 0; k < store.size(); ++k) {
    const auto& b = store.block_at(k);
    f.add("param/" + b.name, std::string(safetensors_dtype<T>()), b.shape, detail::param_bytes(b));
  }
  opt.visit_slots(
    [&](const slot_bytes& s) { f.add("state/" + s.block + "/" + s.slot, s.dtype, s.shape, s.bytes); });
  io::save_atomic(f, path);
}

// How strictly load_checkpoint matches the file to the optimizer and store:
//   strict    (the default) every tensor they need and nothing else, from the same rule; anything
//             else is refused and nothing is loaded;
//   matching  an explicit opt-in for warm starts and changed models: every tensor whose name,
//             shape and dtype match is loaded, the rest stays as it was and is reported; state,
//             step counts and hyperparameters only from the same rule (else parameters only).
// A corrupt file, or a bad step count or hyperparameter, is refused in both modes. A file
// without steep's checksum: refused by strict; matching loads its parameters alone, so that a
// safetensors file of parameters written by torch still warm-starts a model (a flipped bit in
// a steep checkpoint cannot get there: such a file is refused, see the top of this file).
enum class load_mode { strict, matching };

// What a load did, by tensor name ("param/<block>", "state/<block>/<slot>").
struct load_report {
  std::vector<std::string> loaded;
  std::vector<std::string> missing;    // needed here, not in the file: left as it was (tensors,
                                       // and "hyper/<name>" for a hyperparameter, matching only)
  std::vector<std::string> mismatched; // in the file with another shape or dtype: left as it was
  std::vector<std::string> unused;     // in the file, not needed here (or state of another rule)
  bool same_rule = true;               // false: only parameters were considered
  bool checksummed = true;             // false: the file had no steep checksum (matching only):
                                       // parameters alone were considered
};

namespace detail {
// The key (less "hyper/") the file lacks to set `name`, one of those opt.hyperparameters() lists;
// none if it sets it. The names may be spelled differently than when the file was saved:
// "arm1/lr" (the arms differ here) is set by the file's "lr"; "lr" (the arms agree here) by the
// file's "arm<k>/lr" for every arm k that has one.
template <optimizer_interface Opt>
std::optional<std::string> hyper_missing(const Opt& opt, const std::string& name,
                                         const std::set<std::string>& in_file) {
  if (in_file.count(name))
    return std::nullopt;
  if (name.rfind("arm", 0) == 0 && name.find('/') != std::string::npos) {
    if (in_file.count(name.substr(name.find('/') + 1)))
      return std::nullopt;
    return name;
  }
  const bool per_arm = std::any_of(in_file.begin(), in_file.end(), [&](const std::string& h) {
    return h.rfind("arm", 0) == 0 && h.size() > name.size() && h.ends_with("/" + name);
  });
  if (!per_arm)
    return name;
  bool any = false;
  for (std::size_t k = 0; k < 4096; ++k) { // a route's arms, until has() says there is no arm k
    const std::string own = "arm" + std::to_string(k) + "/" + name;
    bool has = false;
    try {
      has = opt.has(own);
    } catch (const usage_error&) {
      break;
    }
    if (has && !in_file.count(own))
      return own;
    any = any || has;
  }
  return any ? std::nullopt : std::optional<std::string>(name);
}

// Whether a file without a checksum carries anything of a steep checkpoint: then it is one
// that lost its checksum (a flipped bit in its first bytes), not another program's file.
inline bool looks_like_steep(const io::tensor_file& f) {
  for (const auto& [key, value] : f.metadata)
    if (key == "rule" || key == "step" || key == "skipped_steps" || key == "format_version" ||
        key == "checksum" || key.rfind("hyper/", 0) == 0 || (key == "format" && value == "steep"))
      return true;
  for (const auto& [name, t] : f.tensors)
    if (name.rfind("state/", 0) == 0)
      return true;
  return false;
}
} // namespace detail

// From a file image already parsed (io::parse); `path` names it in errors.
template <optimizer_interface Opt, class T>
load_report load_checkpoint(Opt& opt, param_store<T>& store, const io::tensor_file& f,
                            const std::string& path, load_mode mode = load_mode::strict) {
  const bool strict = mode == load_mode::strict;
  load_report report;
  // A steep format 1 file (its data CRC checked, its header not) or another program's file.
  const bool legacy = !f.checksummed && f.metadata.count("format") && f.metadata.at("format") == "steep" &&
                      f.metadata.count("format_version") && f.metadata.at("format_version") == "1";
  if (!f.checksummed) {
    if (strict)
      throw usage_error("checkpoint '" + path + "' has no checksum over its header and data (" +
                        (legacy ? "written by an older steep, format version 1"
                                : "not written by steep, or its first bytes are damaged") +
                        "); nothing was loaded (load_mode::matching loads its parameters alone)");
    if (!legacy && detail::looks_like_steep(f))
      throw usage_error("checkpoint '" + path +
                        "' has a steep checkpoint's metadata but no checksum: the file is corrupt; "
                        "nothing was loaded");
    report.checksummed = false;
  }
  auto meta = [&](const std::string& key) {
    const auto it = f.metadata.find(key);
    if (it == f.metadata.end())
      throw usage_error("checkpoint '" + path + "': its metadata has no '" + key + "'; nothing was loaded");
    return it->second;
  };
  report.same_rule = report.checksummed && meta("rule") == opt.rule_id();
  if (strict && !report.same_rule)
    throw usage_error("checkpoint '" + path + "' holds the state of another rule (structural hash " +
                      meta("rule") + ", this optimizer's is " + opt.rule_id() +
                      "); nothing was loaded (load_mode::matching loads its parameters alone)");
  // Every check first: each tensor the optimizer and the store need, by name, shape and dtype.
  std::set<std::string> used;
  auto check = [&](const std::string& name, const std::string& block, const std::string& dtype,
                   const shape_t& shape, std::size_t bytes) -> const io::tensor_entry* {
    const auto it = f.tensors.find(name);
    if (it == f.tensors.end()) {
      if (strict)
        throw error(block, "checkpoint '" + path + "' has no '" + name + "'; nothing was loaded");
      report.missing.push_back(name);
      return nullptr;
    }
    used.insert(name);
    if (it->second.dtype != dtype || it->second.shape != shape || it->second.data.size() != bytes) {
      if (strict)
        throw error(block, "checkpoint '" + path + "': '" + name + "' is " + it->second.dtype + " " +
                             to_string(it->second.shape) + ", this optimizer needs " + dtype + " " +
                             to_string(shape) + "; nothing was loaded");
      report.mismatched.push_back(name);
      return nullptr;
    }
    report.loaded.push_back(name);
    return &it->second;
  };
  std::vector<std::pair<std::span<std::byte>, const io::tensor_entry*>> copies;
  for (std::size_t k = 0; k < store.size(); ++k) {
    const auto& b = store.block_at(k);
    const auto dst = detail::param_bytes(b);
    if (auto src = check("param/" + b.name, b.name, std::string(safetensors_dtype<T>()), b.shape, dst.size()))
      copies.emplace_back(dst, src);
  }
  opt.visit_slots([&](const slot_bytes& s) {
    const std::string name = "state/" + s.block + "/" + s.slot;
    if (!report.same_rule)
      report.missing.push_back(name);
    else if (auto src = check(name, s.block, s.dtype, s.shape, s.bytes.size()))
      copies.emplace_back(s.bytes, src);
  });
  for (const auto& [name, t] : f.tensors)
    if (!used.count(name)) {
      if (strict)
        throw usage_error("checkpoint '" + path + "' has '" + name +
                          "', which this optimizer and store do not (another model?); nothing was loaded");
      report.unused.push_back(name);
    }
  auto count = [&](const std::string& key) {
    const auto v = io::parse_count(meta(key));
    if (!v)
      throw usage_error("checkpoint '" + path + "': its '" + key + "' is '" + meta(key) +
                        "', not a whole number; nothing was loaded");
    return *v;
  };
  const std::int64_t step = report.same_rule ? count("step") : opt.steps();
  const std::int64_t skipped = report.same_rule ? count("skipped_steps") : opt.skipped_steps();
  // In range before anything is written: the next step() must not overflow, and restore_steps()
  // runs after the copies below (engine/interface.hpp, max_steps).
  if (step > max_steps)
    throw usage_error("checkpoint '" + path + "': its step count " + std::to_string(step) +
                      " is above the most an optimizer keeps (2^53); nothing was loaded");
  if (skipped > step)
    throw usage_error("checkpoint '" + path + "': its skipped_steps " + std::to_string(skipped) +
                      " is more than its step count " + std::to_string(step) + "; nothing was loaded");
  // The named hyperparameters as they were saved (a learning rate changed by set() between
  // steps comes back too, as torch's load_state_dict restores its param_groups): each one the
  // optimizer has, in its range.
  std::vector<std::pair<std::string, double>> hypers;
  std::set<std::string> in_file;
  for (const auto& [key, text] : f.metadata) {
    if (key.rfind("hyper/", 0) != 0 || !report.same_rule)
      continue;
    const std::string name = key.substr(6);
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size())
      throw usage_error("checkpoint '" + path + "': hyperparameter '" + name + "' is '" + text +
                        "', not a number; nothing was loaded");
    if (!opt.has(name))
      throw usage_error("checkpoint '" + path + "' sets hyperparameter '" + name +
                        "', which this optimizer does not have; nothing was loaded");
    opt.check(name, value);
    hypers.emplace_back(name, value);
    in_file.insert(name);
  }
  // Every hyperparameter the optimizer has must come from the file (strict), or is reported.
  if (report.same_rule)
    for (const auto& [name, value] : opt.hyperparameters())
      if (const auto lacks = detail::hyper_missing(opt, name, in_file)) {
        if (strict)
          throw usage_error("checkpoint '" + path + "': its metadata has no 'hyper/" + *lacks +
                            "', a hyperparameter of this optimizer; nothing was loaded");
        report.missing.push_back("hyper/" + *lacks);
      }
  // Values for every arm ("lr") before one arm's own ("arm1/lr"), whatever the names' order.
  std::stable_partition(hypers.begin(), hypers.end(), [](const auto& h) {
    return !(h.first.rfind("arm", 0) == 0 && h.first.find('/') != std::string::npos);
  });
  // Then the writes.
  for (const auto& [dst, src] : copies)
    if (!dst.empty()) // (an empty block's buffer may be null, which memcpy must not see)
      std::memcpy(dst.data(), src->data.data(), dst.size());
  opt.restore_steps(step, skipped);
  for (const auto& [name, value] : hypers)
    opt.set(name, value);
  return report;
}

// From the file at `path` (io::load: a regular file, read within its size).
template <optimizer_interface Opt, class T>
load_report load_checkpoint(Opt& opt, param_store<T>& store, const std::string& path,
                            load_mode mode = load_mode::strict) {
  const io::tensor_file f = io::load(path);
  return io::detail::foreign_as_usage(path, "loading it",
                                      [&] { return load_checkpoint(opt, store, f, path, mode); });
}

} // namespace steep::engine

namespace steep {
using engine::load_checkpoint;
using engine::load_mode;
using engine::load_report;
using engine::save_checkpoint;
} // namespace steep
