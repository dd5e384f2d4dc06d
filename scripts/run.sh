#!/usr/bin/env bash
# The main job (README quick start): builds what it runs and nothing else (no tests, no
# benchmarks: scripts/test.sh builds everything), runs the implicit-bias experiment (six
# optimizers, one homogeneous network, which margin each maximizes; README "The main job"),
# then the quick-start, first-rule and spectral-margin examples and the golden trajectory check.
# The main job is built and run first, so its table comes before the other targets are compiled.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh --target implicit_bias
mkdir -p results
./build/examples/implicit_bias --json results/implicit-bias.json --csv results/implicit-bias.csv --plot results/implicit-bias
scripts/build.sh --target quick_start my_first_rule spectral_margin steep-golden
./build/examples/quick_start
./build/examples/my_first_rule
./build/examples/spectral_margin
./build/tools/steep-golden tests/data/golden --dtype float64
