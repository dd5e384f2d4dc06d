#!/usr/bin/env bash
# The main job (README quick start): builds steep, runs the implicit-bias experiment (six
# optimizers, one homogeneous network, which margin each maximizes; README "The main job"),
# then the quick-start and spectral-margin examples and the golden trajectory check.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
mkdir -p results
./build/examples/implicit_bias --json results/implicit-bias.json --csv results/implicit-bias.csv --plot results/implicit-bias
./build/examples/quick_start
./build/examples/spectral_margin
./build/tools/steep-golden tests/data/golden --dtype float64
