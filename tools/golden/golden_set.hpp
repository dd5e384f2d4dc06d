#pragma once
// Runs one case of a golden set (the format of tests/data/golden: manifest.json, inputs/, cases/)
// through steep and measures how far steep's trajectory is from the peer's.
//
//   steep::golden::golden_set set("tests/data/golden");
//   auto r = steep::golden::run_case<float>(set, "adam");
//   r.status;         // passed / failed / skipped
//   r.max_rel;        // max over steps and params of ||a_t - b_t||_F / ||b_t||_F (manifest's metric)
//   r.bits;           // CRC-32 of every step's parameters and the final state, byte for byte
//
// r.bits proves a refactor by bits: the same build flags give the same CRC before and after
// exactly when every parameter of every step and every state slot at the end is bitwise the same
// (up to CRC-32's collisions, 2^-32 per case).
//
// Tolerances (docs/testing.md, "Golden trajectories"): float64 1e-12 relative. float32 1e-6 relative (seen:
// <= 2.5e-7 on the public set), except
// for sign-based rules (signum, lion), where float32 rounding may flip the sign of a momentum
// entry whose margin is below its precision (manifest notes): there, an entry off by a whole
// number of sign flips (a multiple of 2 lr, within 1e-5) is counted as a flip and only its
// remainder enters the 1e-6 relative bound; flips are reported, nothing else is excused.

#include "manifest.hpp"
#include "rule_from_manifest.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>
#include <xtensor/xview.hpp>
#include <zlib.h>

namespace steep::golden {

enum class status { passed, failed, skipped };

struct case_result {
  std::string name;
  status state = status::skipped;
  double max_rel = 0;
  double tolerance = 0;
  std::size_t sign_flips = 0;
  std::uint32_t bits = 0; // CRC-32 of the trajectory and final state (zlib's crc32)
  std::string note;
};

class golden_set {
public:
  explicit golden_set(std::filesystem::path dir)
    : dir_(std::move(dir)) {
    std::ifstream in(dir_ / "manifest.json");
    if (!in)
      throw std::runtime_error("cannot open " + (dir_ / "manifest.json").string());
    manifest_ = nlohmann::json::parse(in);
    info_ = read_manifest(manifest_);
  }
  const nlohmann::json& manifest() const { return manifest_; }
  std::size_t steps() const { return info_.steps; }
  const manifest_info& info() const { return info_; }
  const shape_t& shape(const std::string& name) const { return info_.shapes.at(name); }

  // inputs/<file>_<param>.npy or cases/<case>/<param>.npy, cached.
  const xt::xarray<double>& array(const std::filesystem::path& rel) {
    auto it = cache_.find(rel.string());
    if (it != cache_.end())
      return it->second;
    const auto path = dir_ / rel;
    if (!std::filesystem::exists(path))
      throw std::runtime_error("missing " + path.string());
    return cache_.emplace(rel.string(), xt::load_npy<double>(path.string())).first->second;
  }

private:
  std::filesystem::path dir_;
  nlohmann::json manifest_;
  manifest_info info_;
  std::map<std::string, xt::xarray<double>> cache_;
};

inline bool sign_based(const std::string& algo) { return algo == "signum" || algo == "lion"; }

template <class T>
case_result run_case(golden_set& set, const std::string& name, optimizer_options opts = {},
                     order rule_order = order::steep) {
  case_result r;
  r.name = name;
  const auto [grads, specs] = read_case(set.manifest(), set.info(), name);
  const bool f64 = std::is_same_v<T, double>;
  r.tolerance = f64 ? 1e-12 : 1e-6;

  struct group {
    std::vector<std::string> params;
    std::unique_ptr<param_store<T>> store;
    std::unique_ptr<any_optimizer<T>> opt;
    double lr;
    bool sign;
  };
  std::vector<group> groups;
  try {
    for (const auto& g : specs) {
      group gr;
      gr.params = g.params;
      const std::string& algo = g.algo;
      // optax's peers see JAX's (fan_in, fan_out) weights (manifest, muon_optax): say so.
      const weight_layout layout =
        algo.rfind("optax_", 0) == 0 ? weight_layout::in_out : weight_layout::out_in;
      std::vector<block_spec<T>> specs;
      for (auto& p : gr.params)
        specs.emplace_back(p, set.shape(p)).layout = layout;
      gr.store = std::make_unique<param_store<T>>(std::move(specs));
      for (auto& p : gr.params) {
        auto init = set.array("inputs/init_" + p + ".npy");
        auto view = gr.store->param(p);
        std::copy(init.begin(), init.end(), view.begin());
      }
      gr.opt = make_group_optimizer<T>(algo, g.hp, *gr.store, opts, rule_order);
      gr.lr = num(g.hp, "lr", 0.0);
      gr.sign = sign_based(algo);
      groups.push_back(std::move(gr));
    }
  } catch (const unsupported& e) {
    r.state = status::skipped;
    r.note = e.what();
    return r;
  }

  uLong crc = crc32(0L, Z_NULL, 0);
  auto add_bits = [&crc](const void* data, std::size_t bytes) {
    if (bytes > 0) // (zlib's crc32 of a null buffer is its initial value, not crc)
      crc = crc32(crc, static_cast<const Bytef*>(data), static_cast<uInt>(bytes));
  };
  for (std::size_t t = 0; t < set.steps(); ++t) {
    for (auto& g : groups) {
      for (auto& p : g.params) {
        const auto& all = set.array("inputs/" + grads + "_" + p + ".npy");
        auto row = xt::view(all, t);
        auto dst = g.store->grad(p);
        std::copy(row.begin(), row.end(), dst.begin());
      }
      g.opt->step();
    }
    for (auto& g : groups)
      for (auto& p : g.params) {
        auto expected = xt::view(set.array("cases/" + name + "/" + p + ".npy"), t);
        auto got = g.store->param(p);
        add_bits(got.data(), got.size() * sizeof(T));
        double diff2 = 0, ref2 = 0;
        auto e = expected.begin();
        for (auto a = got.begin(); a != got.end(); ++a, ++e) {
          double d = static_cast<double>(*a) - *e;
          if (!f64 && g.sign) {
            // float32 only: remove whole sign flips (2 lr each) before judging the residual.
            const double flips = std::round(std::abs(d) / (2 * g.lr));
            if (flips >= 1 && std::abs(std::abs(d) - flips * 2 * g.lr) <= 1e-5) {
              r.sign_flips += 1;
              d = std::copysign(std::abs(d) - flips * 2 * g.lr, d);
            }
          }
          diff2 += d * d;
          ref2 += *e * *e;
        }
        r.max_rel = std::max(r.max_rel, std::sqrt(diff2) / std::sqrt(ref2));
      }
  }
  for (auto& g : groups)
    g.opt->visit_slots([&](const engine::slot_bytes& s) { add_bits(s.bytes.data(), s.bytes.size()); });
  r.bits = static_cast<std::uint32_t>(crc);
  if (!f64 && r.sign_flips > 0)
    r.note = std::to_string(r.sign_flips) + " entry-steps off by whole sign flips";
  r.state = r.max_rel <= r.tolerance ? status::passed : status::failed;
  if (!std::isfinite(r.max_rel))
    r.state = status::failed;
  return r;
}

} // namespace steep::golden
