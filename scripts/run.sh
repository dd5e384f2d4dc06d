#!/usr/bin/env bash
# The main job (README quick start): builds steep, runs the quick-start example (a new optimizer
# defined in a few lines, training a small homogeneous model), the spectral-margin example
# (Frobenius vs spectral steepest descent, Muon) and the golden trajectory check.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
./build/examples/quick_start
./build/examples/spectral_margin
./build/tools/steep-golden tests/data/golden --dtype float64
