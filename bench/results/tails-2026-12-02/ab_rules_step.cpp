// One optimizer step of rules with reductions, lines and matrix stages, on a small model
// (200 blocks of 17 x 19: every block ends in a SIMD tail) and on one 1000 x 1000 block.
// Microseconds per step, median of 7 runs of `steps` steps, 1 thread; guard on (refuse, the
// default) or off. Compiled against two trees and run alternately (docs/compile-time.md).
//   g++ -std=c++20 -O3 -DNDEBUG -march=native -I<tree>/include -I<tree>/dsl ab_rules_step.cpp
//       -ltbb -lopenblas -llapack -o step_<tree>
//   ./step_old on; ./step_new on; ./step_old off; ...
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <steep/engine.hpp>
#include <steep/rules.hpp>
#include <string>
#include <vector>

template <class Rule>
double us_per_step(Rule r, bool guard, int blocks, std::size_t rows, std::size_t cols, int steps) {
  std::vector<steep::block_spec<float>> specs;
  for (int k = 0; k < blocks; ++k)
    specs.push_back({ "W" + std::to_string(k), { rows, cols } });
  steep::param_store<float> s(specs);
  std::mt19937 gen(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int k = 0; k < blocks; ++k) {
    for (auto& x : s.param("W" + std::to_string(k)))
      x = 0.1f * nd(gen);
    for (auto& x : s.grad("W" + std::to_string(k)))
      x = nd(gen);
  }
  steep::optimizer o(
    r, s,
    { .threads = 1, .nonfinite = guard ? steep::nonfinite_policy::refuse : steep::nonfinite_policy::off });
  for (int i = 0; i < 3; ++i)
    o.step();
  std::vector<double> runs;
  for (int k = 0; k < 7; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i)
      o.step();
    runs.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
                   steps);
  }
  std::sort(runs.begin(), runs.end());
  return runs[3];
}

int main(int argc, char** argv) {
  const bool guard = argc < 2 || std::strcmp(argv[1], "off") != 0;
  const char* g = guard ? "on" : "off";
  std::printf("normalized_gd 200x17x19 %s %.2f\n", g,
              us_per_step(steep::rules::normalized_gd(1e-2f), guard, 200, 17, 19, 1000));
  std::printf("adam_mini 200x17x19 %s %.2f\n", g,
              us_per_step(steep::rules::adam_mini(1e-3f), guard, 200, 17, 19, 1000));
  std::printf("normuon 200x17x19 %s %.2f\n", g,
              us_per_step(steep::rules::normuon(0.02f), guard, 200, 17, 19, 60));
  std::printf("normalized_gd 1000x1000 %s %.2f\n", g,
              us_per_step(steep::rules::normalized_gd(1e-2f), guard, 1, 1000, 1000, 60));
  std::printf("adam_mini 1000x1000 %s %.2f\n", g,
              us_per_step(steep::rules::adam_mini(1e-3f), guard, 1, 1000, 1000, 60));
}
