#pragma once
// variant_error(rule, case): a rule run over the float64 reference trajectories of
// tests/data/variants (scripts/reference-variants.py), on the wide W1 (6 x 10) and the tall W2
// (12 x 5), and its largest relative error against them. Shared by the tests of matrix stages
// (test_muon.cpp, test_shampoo.cpp, test_soap.cpp), with the helpers those tests share; the
// target defines STEEP_GOLDEN_DIR.

#include "bits.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <steep/steep.hpp>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>
#include <xtensor/xview.hpp>

namespace steep_test {
using steep::block_role;

// ||got - ref||_F / ||ref||_F, got holding ref's entries in its (row-major) order.
template <class Ref>
double relative_error(const double* got, const Ref& ref) {
  double d = 0, n = 0;
  std::size_t i = 0;
  for (double x : ref) {
    const double e = got[i++] - x;
    d += e * e, n += x * x;
  }
  return std::sqrt(d / n);
}

// The optimizer's slots added to the run's fingerprint, then its line (STEEP_PRINT_BITS, bits.hpp).
template <class Opt>
void print_bits(bits& fingerprint, Opt& opt, const std::string& name_of_case, int threads) {
  opt.visit_slots(
    [&](const steep::engine::slot_bytes& s) { fingerprint.add(s.bytes.data(), s.bytes.size()); });
  fingerprint.print(name_of_case + " " + std::to_string(threads) + " threads, rule " + opt.rule_id());
}
// Runs `rule` over the trajectories of tests/data/variants (written by
// scripts/reference-variants.py) and returns the largest relative error, over steps and
// blocks, of the parameters against the float64 reference: max_t ||p_t - ref_t||_F / ||ref_t||_F.
// The blocks are W1, W2, ... (block_prefix "W"), or the square S1, S2 ("S").
template <class Rule>
inline double variant_error(const Rule& rule, const std::string& name_of_case, int threads = 1,
                            std::vector<block_role> roles = { block_role::hidden_matrix,
                                                              block_role::hidden_matrix },
                            const std::string& block_prefix = "W") {
  const std::string dir = std::string(STEEP_GOLDEN_DIR) + "/../variants/";
  std::vector<xt::xarray<double>> p0, grads, ref;
  std::vector<steep::block_spec<double>> specs;
  for (std::size_t k = 0; k < roles.size(); ++k) {
    const std::string n = block_prefix + std::to_string(k + 1);
    p0.push_back(xt::load_npy<double>(dir + n + "_p0.npy"));
    grads.push_back(xt::load_npy<double>(dir + n + "_grads.npy"));
    ref.push_back(xt::load_npy<double>(dir + name_of_case + "_" + n + ".npy"));
    specs.emplace_back(n, steep::shape_t{ p0[k].shape()[0], p0[k].shape()[1] }, roles[k]);
  }
  const std::vector<std::string> names(roles.size()); // W1, W2, ...
  steep::param_store<double> store(specs);
  for (std::size_t k = 0; k < roles.size(); ++k)
    std::copy(p0[k].begin(), p0[k].end(), store.block_at(k).param);
  steep::optimizer opt(rule, store, { .threads = threads });
  double worst = 0;
  steep_test::bits fingerprint;
  for (std::size_t t = 0; t < grads[0].shape()[0]; ++t) {
    for (std::size_t k = 0; k < names.size(); ++k) {
      auto g = xt::view(grads[k], t);
      std::copy(g.begin(), g.end(), store.block_at(k).grad);
    }
    opt.step();
    for (std::size_t k = 0; k < names.size(); ++k) {
      auto r = xt::view(ref[k], t);
      worst = std::max(worst, relative_error(store.block_at(k).param, r));
      fingerprint.add(store.block_at(k).param, store.block_at(k).size * sizeof(double));
    }
  }
  print_bits(fingerprint, opt, name_of_case, threads);
  return worst;
}

// G G^T (rows x rows) of a row-major rows x cols G, in double: a left factor's first value.
inline std::vector<double> gram(const std::vector<double>& g, std::size_t rows, std::size_t cols) {
  std::vector<double> out(rows * rows, 0.0);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < rows; ++j)
      for (std::size_t k = 0; k < cols; ++k)
        out[i * rows + j] += g[i * cols + k] * g[j * cols + k];
  return out;
}

// Every slot's values, in visit_slots' order: what a refused step must leave as it found.
template <class Opt>
std::vector<std::vector<double>> slot_values(Opt& opt) {
  std::vector<std::vector<double>> out;
  opt.visit_slots([&](const steep::engine::slot_bytes& s) {
    const auto* p = reinterpret_cast<const double*>(s.bytes.data());
    out.emplace_back(p, p + s.bytes.size() / sizeof(double));
  });
  return out;
}

// Whether an optimizer loaded from a checkpoint taken after `before` steps then takes `after`
// steps bitwise as the one that went on (blocks W1 6 x 10 and W2 12 x 5, sine gradients): a
// matrix stage's state between its refreshes must be all it needs.
template <class Rule>
bool resumes_bitwise(const Rule& rule, int before, int after, const std::string& path) {
  auto fill = [](steep::param_store<double>& s, int t) {
    for (std::size_t k = 0; k < 2; ++k)
      for (std::size_t i = 0; i < s.block_at(k).size; ++i)
        s.block_at(k).grad[i] =
          std::sin(0.37 * static_cast<double>(i + 1) * (t + 1) + static_cast<double>(k));
  };
  const std::vector<steep::block_spec<double>> specs = { { "W1", { 6, 10 } }, { "W2", { 12, 5 } } };
  steep::param_store<double> a(specs), b(specs);
  steep::optimizer oa(rule, a);
  for (int t = 0; t < before; ++t) {
    fill(a, t);
    oa.step();
  }
  steep::save_checkpoint(oa, a, path);
  steep::optimizer ob(rule, b);
  steep::load_checkpoint(ob, b, path);
  std::remove(path.c_str());
  for (int t = before; t < before + after; ++t) {
    fill(a, t);
    fill(b, t);
    oa.step();
    ob.step();
  }
  bool same = true;
  for (std::size_t k = 0; k < 2; ++k)
    same =
      same && std::equal(a.block_at(k).param, a.block_at(k).param + a.block_at(k).size, b.block_at(k).param);
  return same;
}
} // namespace steep_test
