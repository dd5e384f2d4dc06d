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

} // namespace steep_test
