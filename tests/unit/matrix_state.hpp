#pragma once
// What the tests of matrix stages that keep state (test_shampoo.cpp, test_dion.cpp, test_soap.cpp) check of
// any such stage: a refused step leaves every slot bitwise as it was, and a checkpoint resumes bitwise.
//
//   const auto before = steep_test::slot_values(opt);
//   CHECK_THROWS(opt.step());
//   CHECK(steep_test::slot_values(opt) == before);
//   CHECK(steep_test::checkpoint_resumes_bitwise(rules::shampoo(0.05), 4, 4, "shampoo-resume.ckpt"));

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <steep/steep.hpp>
#include <string>
#include <vector>

namespace steep_test {

// G G^T (rows x rows) of a row-major rows x cols G, in double: a left factor's first value.
inline std::vector<double> gram(const std::vector<double>& g, std::size_t rows, std::size_t cols) {
  std::vector<double> out(rows * rows, 0.0);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < rows; ++j)
      for (std::size_t k = 0; k < cols; ++k)
        out[i * rows + j] += g[i * cols + k] * g[j * cols + k];
  return out;
}

// Steps `opt` once with a fixed gradient in its store's first block (3 x 4) and returns G G^T, of
// which a left factor's first value is made (Shampoo's L_1, the grammar's ema of it).
template <class Opt>
std::vector<double> step_with_sample_gradient(Opt& opt, steep::param_store<double>& store) {
  const std::vector<double> g = { 1, 2, 0, -1, 0.5, 0, 3, 1, -2, 1, 1, 0 };
  std::copy(g.begin(), g.end(), store.block_at(0).grad);
  opt.step();
  return gram(g, 3, 4);
}

// Every slot of an optimizer as its bytes, in visit_slots order (any storage dtype: equal means
// bitwise equal).
template <class Opt>
std::vector<std::vector<std::byte>> slot_values(Opt& opt) {
  std::vector<std::vector<std::byte>> out;
  opt.visit_slots(
    [&](const steep::engine::slot_bytes& s) { out.emplace_back(s.bytes.begin(), s.bytes.end()); });
  return out;
}

// Runs `rule` on a wide W1 (6 x 10) and a tall W2 (12 x 5) for `before` steps, saves a checkpoint
// to `path`, loads it into a fresh optimizer, runs both `after` more steps on the same gradients
// (sines of step and index), and says whether their parameters agree bitwise.
template <class Rule>
bool checkpoint_resumes_bitwise(const Rule& rule, int before, int after, const std::string& path) {
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
  for (std::size_t k = 0; k < 2; ++k)
    if (!std::equal(a.block_at(k).param, a.block_at(k).param + a.block_at(k).size, b.block_at(k).param))
      return false;
  return true;
}

// Whether `narrow` (a rule whose matrix stage stores the slots `names` as bfloat16:
// expr::bfloat16_state) steps bit for bit as `wide` (the same rule, every slot float32) does when
// wide's slots `names` are rounded to bfloat16 after each step: storage only, float arithmetic,
// one rounding per store. Both run `steps` steps on `specs` (gradients: sines of step and index),
// and the narrow slots must hold the rounded values after each.
template <class Narrow, class Wide>
bool narrow_state_is_rounded_state(const Narrow& narrow, const Wide& wide,
                                   const std::vector<std::string>& names,
                                   const std::vector<steep::block_spec<float>>& specs, int steps) {
  using steep::bfloat16;
  steep::param_store<float> ns(specs), ws(specs);
  steep::optimizer on(narrow, ns, { .threads = 2 }), ow(wide, ws, { .threads = 2 });
  bool same = true;
  for (int t = 0; t < steps; ++t) {
    for (auto* s : { &ns, &ws })
      for (std::size_t k = 0; k < specs.size(); ++k)
        for (std::size_t i = 0; i < s->block_at(k).size; ++i)
          s->block_at(k).grad[i] = std::sin(
            0.37f * static_cast<float>((i + 1) * static_cast<std::size_t>(t + 1)) + static_cast<float>(k));
    on.step();
    ow.step();
    for (const auto& spec : specs)
      for (const auto& slot : names) {
        auto w = ow.state(spec.name, slot);
        const auto n = on.template state<bfloat16>(spec.name, slot);
        same = same && w.size() == n.size();
        for (std::size_t i = 0; same && i < w.size(); ++i) {
          w[i] = bfloat16(w[i]);
          same = n[i].bits == bfloat16(w[i]).bits;
        }
      }
    for (std::size_t k = 0; k < specs.size(); ++k)
      same = same && std::equal(ns.block_at(k).param, ns.block_at(k).param + ns.block_at(k).size,
                                ws.block_at(k).param);
  }
  return same;
}

} // namespace steep_test
