#!/usr/bin/env bash
# Configures and builds steep into build/ (Release, all targets), installing Debian packages
# first if any is missing. Used by run.sh and test.sh; safe to call repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$jobs"
