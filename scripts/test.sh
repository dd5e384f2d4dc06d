#!/usr/bin/env bash
# Runs every test (README quick start): unit, equivalence, golden, compile-time and
# compile-failure tests, the find_package consumer, examples and the benchmark smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
jobs=$(nproc 2>/dev/null || echo 2)
cd build && ctest --output-on-failure -j"$jobs"
