#!/usr/bin/env bash
# The main job (README quick start): builds steep, runs the quick-start example (a new optimizer
# defined in a few lines, training a small homogeneous model) and the golden trajectory check.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
./build/examples/quick_start
./build/tools/steep-golden tests/data/golden --dtype float64
